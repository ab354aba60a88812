//! The engine's clock: what happens when event time moves on (fleet snapshots, closing
//! findings, the circuit breaker, suppressions, grant reviews), analyst feedback coming due, and
//! the recommendations that follow findings.

use rustc_hash::FxHashMap;

use super::Engine;
use crate::fleet::Window;
use crate::grants::recommend;
use crate::output::OutputRecord;
use crate::profile::counter::{Minute, minute_of};

impl Engine {
    /// Moves the engine's event-time watermark to `time_ms` (later than the current one) and
    /// runs everything due by then.
    pub(super) fn tick(&mut self, time_ms: i64, out: &mut Vec<OutputRecord>) {
        let hour_before = minute_of(self.watermark_ms) / 60;
        self.watermark_ms = time_ms;
        let now = minute_of(time_ms);
        if now / 60 != hour_before {
            self.evict_idle();
        }
        let tick_min = self.settings.detect.fleet_tick_secs / 60;
        if let Some(boundary) = self.fleet.window_due(now) {
            self.before_fleet_window(boundary);
        }
        self.fleet.advance(now, tick_min);
        let closing = crate::decide::Closing::new(&self.settings.commands, &self.fleet.snapshot);
        self.decider
            .advance(&self.settings.decide, &closing, self.watermark_ms, out);
        self.decider.responder.breaker.tick(self.watermark_ms, out);
        self.decider.suppressions.expire(self.watermark_ms, out);
        let interval = (self.settings.grants.recommend_interval_secs as i64).saturating_mul(1000);
        let next = |t: i64| (t.div_euclid(interval) + 1).saturating_mul(interval);
        if self.next_review_ms == i64::MIN {
            self.next_review_ms = next(time_ms);
        } else if time_ms >= self.next_review_ms {
            self.review(self.next_review_ms, out);
            self.next_review_ms = next(time_ms);
        }
    }

    /// Applies a fleet window merged across engines, which ends at `boundary` (minutes), after
    /// readying the decisions for it (see [`Engine::before_fleet_window`]).
    pub(crate) fn apply_fleet_window(&mut self, boundary: Minute, window: &Window) {
        self.before_fleet_window(boundary);
        self.fleet.apply_merged(window);
    }

    /// Readies the decisions for the fleet window that ends at `boundary` (minutes): findings
    /// held for a roll-out whose due time comes before it keep the peers' counts in force now
    /// (see [`crate::decide::Decider::freeze_due`]). Called before every window is applied,
    /// whoever applies it.
    fn before_fleet_window(&mut self, boundary: Minute) {
        let closing = crate::decide::Closing::new(&self.settings.commands, &self.fleet.snapshot);
        self.decider.freeze_due(
            &self.settings.decide,
            &closing,
            i64::from(boundary).saturating_mul(60_000),
        );
    }

    /// Applies the feedback due by `now`.
    pub(super) fn apply_feedback(&mut self, now: i64, out: &mut Vec<OutputRecord>) {
        while self
            .feedback
            .front()
            .is_some_and(|f| f.time_ms.is_none_or(|t| t <= now))
        {
            if let Some(fb) = self.feedback.pop_front() {
                self.decider.suppressions.apply(
                    &fb,
                    now,
                    self.settings.feedback.suppression_days,
                    out,
                );
            }
        }
    }

    /// Reviews the grants of every agent with known entitlements, in agent order.
    pub(super) fn review(&mut self, now: i64, out: &mut Vec<OutputRecord>) {
        let ents = self.ents.clone();
        let mut ids: Vec<&Box<str>> = self
            .agents
            .keys()
            .filter(|a| ents.agent(a).is_some())
            .collect();
        ids.sort_unstable();
        let ids: Vec<Box<str>> = ids.into_iter().cloned().collect();
        let families = self.family_use(None);
        let none = recommend::Peers::default();
        for id in ids {
            if let (Some(grants), Some(a)) = (ents.agent(&id), self.agents.get_mut(&id)) {
                let peers = families.get(&a.groups[0]).unwrap_or(&none);
                let before = out.len();
                recommend::review(
                    &id,
                    grants,
                    peers,
                    &mut a.ledger,
                    now,
                    &self.settings.grants,
                    out,
                );
                if out.len() > before {
                    // Its ledger now remembers the emission: checkpoint it with the rest.
                    a.touched = true;
                }
            }
        }
    }

    /// What the agents of each family (or of `only` that one) did under each grant.
    fn family_use(&self, only: Option<u64>) -> FxHashMap<u64, recommend::Peers> {
        let mut families: FxHashMap<u64, recommend::Peers> = FxHashMap::default();
        for a in self.agents.values() {
            if only.is_some_and(|f| f != a.groups[0]) {
                continue;
            }
            let peers = families.entry(a.groups[0]).or_default();
            for u in a.ledger.grants() {
                peers.entry(u.grant.as_ref().into()).or_default().add(u);
            }
        }
        families
    }

    /// High-priority recommendations for the grants used by findings just closed.
    fn after_findings(&mut self, records: &[OutputRecord], out: &mut Vec<OutputRecord>) {
        let ents = self.ents.clone();
        for r in records {
            let OutputRecord::Finding(f) = r else {
                continue;
            };
            let (Some(grants), Some(family)) = (
                ents.agent(&f.agent_id),
                self.agents.get(f.agent_id.as_str()).map(|a| a.groups[0]),
            ) else {
                continue;
            };
            let peers = self
                .family_use(Some(family))
                .remove(&family)
                // The finding's agent is of this family, so its entry exists.
                .unwrap_or_default();
            let Some(a) = self.agents.get_mut(f.agent_id.as_str()) else {
                continue;
            };
            let before = out.len();
            for g in &f.grants {
                recommend::after_finding(
                    &f.agent_id,
                    grants,
                    g,
                    &f.finding_id,
                    &f.resources,
                    &peers,
                    &mut a.ledger,
                    f.last_ms,
                    &self.settings.grants,
                    out,
                );
            }
            if out.len() > before {
                a.touched = true;
            }
        }
    }

    /// Follows up the records appended to `out` since `before`: recommendations for the grants
    /// of new findings, and the counts.
    pub(super) fn after_decisions(&mut self, before: usize, out: &mut Vec<OutputRecord>) {
        if out.len() > before {
            let new: Vec<OutputRecord> = out[before..]
                .iter()
                .filter(|r| matches!(r, OutputRecord::Finding(f) if !f.grants.is_empty()))
                .cloned()
                .collect();
            if !new.is_empty() {
                self.after_findings(&new, out);
            }
            for r in &out[before..] {
                match r {
                    OutputRecord::Finding(_) => self.stats.findings += 1,
                    OutputRecord::Recommendation(_) => self.stats.recommendations += 1,
                    _ => {}
                }
            }
        }
    }
}
