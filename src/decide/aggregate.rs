//! Building one finding from the anomalous events of a burst.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::settings::DecideSettings;
use crate::detect::{Reason, Verdict, round4};
use crate::event::AccessEvent;
use crate::output::finding::Finding;
use crate::output::time::rfc3339_ms;
use crate::vocab::{DetectorId, Severity};

/// Most distinct values of one kind (resources, actions, ...) listed in a finding.
const MAX_LISTED: usize = 25;

/// A finding being aggregated.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct FindingBuilder {
    finding_id: String,
    agent_id: String,
    agent_kind: Option<String>,
    first_ms: i64,
    last_ms: i64,
    score: f32,
    strong: u8,
    event_ids: Vec<String>,
    event_count: u64,
    /// Best reason per detector.
    reasons: BTreeMap<DetectorId, Reason>,
    actions: Vec<String>,
    resources: Vec<String>,
    patterns: Vec<String>,
    sessions: Vec<String>,
    source_ips: Vec<String>,
    grants: Vec<String>,
    intents: Vec<String>,
    denied: u64,
    bytes: u64,
    /// Grants used by the finding's events that the agent's normal behaviour never used.
    #[serde(default)]
    fresh_grants: Vec<String>,
    /// Commands issued for the finding: (action, target).
    #[serde(default)]
    commanded: Vec<(crate::output::command::Action, String)>,
    /// Whether the finding counted towards the circuit breaker.
    #[serde(default)]
    tripped: bool,
    /// Reasons for withholding a command already written to the audit stream (bits).
    #[serde(default)]
    withheld: u8,
    /// Some event reached beyond the agent's own territory (see `detect::novelty::reach`).
    #[serde(default)]
    reach: bool,
    /// Resource patterns new to the agent (or new destinations), with the strongest novelty
    /// score an event on them had: what a `narrow` command would deny.
    #[serde(default)]
    new_patterns: Vec<(String, f32)>,
    /// Some event came from where the agent's own use would not (see `detect::source::foreign`).
    #[serde(default)]
    foreign: bool,
    /// Some event's action was one the agent had not been using.
    #[serde(default)]
    new_action: bool,
    /// Some event came from a new network of an address class the agent never came from (see
    /// `detect::source::outside_class`).
    #[serde(default)]
    outside_class: bool,
    /// The new actions of the finding's events, as their peer group knew them.
    #[serde(default)]
    rollout: Vec<PeerUse>,
    /// Events of the finding whose action was new to the agent and is remembered in
    /// `rollout` (one whose peer group is not known, or beyond what `rollout` keeps, is not
    /// counted: its finding cannot be judged a roll-out).
    #[serde(default)]
    new_action_events: u64,
    /// Some event reached an outside destination (a mail address, a host, an account).
    #[serde(default)]
    outward: bool,
}

/// Most new actions a finding remembers for a roll-out.
const MAX_ROLLOUT: usize = 8;

/// An action new to the agent, as its peer group knew it when a finding first saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct PeerUse {
    /// The peer group.
    pub group: u64,
    /// The action's key.
    pub key: u64,
    /// The action.
    pub action: String,
    /// Agents of the group that had used it.
    pub users: u32,
    /// Whether the agent's own first use of it is still to reach the group's count (it had
    /// never used the action before).
    pub own_pending: bool,
    /// Agents of the group that had used it in the fleet snapshot in force at the finding's
    /// due time, kept once a later fleet window is applied (see [`FindingBuilder::freeze`]).
    pub at_due: Option<u32>,
}

fn push_distinct(list: &mut Vec<String>, v: &str) {
    if list.len() < MAX_LISTED && !list.iter().any(|x| x == v) {
        list.push(v.to_string());
    }
}

/// The number in a finding id (`fnd-` and 16 lower-case hex digits, as every finding id is
/// written); `None` for text of another form, which names no finding.
pub(crate) fn finding_number(finding_id: &str) -> Option<u64> {
    let hex = finding_id.strip_prefix("fnd-")?;
    if hex.len() != 16 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    // Sixteen hex digits always fit: the error cannot arise.
    u64::from_str_radix(hex, 16).ok()
}

/// The finding id of a number: `fnd-` and its 16 lower-case hex digits (read back by
/// [`finding_number`]).
pub(crate) fn finding_id(number: u64) -> String {
    format!("fnd-{number:016x}")
}

impl FindingBuilder {
    /// Opens a finding with its first event. The id is derived from the agent and that event, so
    /// a replay produces the same id.
    pub fn open(
        settings: &DecideSettings,
        ev: &AccessEvent<'_>,
        pattern: &str,
        verdict: &Verdict,
        grant: Option<&str>,
    ) -> Self {
        let h =
            xxhash_rust::xxh3::xxh3_64(format!("{}\u{1f}{}", ev.agent_id, ev.event_id).as_bytes());
        let mut f = FindingBuilder {
            finding_id: finding_id(h),
            agent_id: ev.agent_id.to_string(),
            agent_kind: ev.agent_kind.as_deref().map(str::to_string),
            first_ms: ev.time_ms,
            last_ms: ev.time_ms,
            score: 0.0,
            strong: 0,
            event_ids: Vec::new(),
            event_count: 0,
            reasons: BTreeMap::new(),
            actions: Vec::new(),
            resources: Vec::new(),
            patterns: Vec::new(),
            sessions: Vec::new(),
            source_ips: Vec::new(),
            grants: Vec::new(),
            intents: Vec::new(),
            denied: 0,
            bytes: 0,
            fresh_grants: Vec::new(),
            commanded: Vec::new(),
            tripped: false,
            withheld: 0,
            reach: false,
            new_patterns: Vec::new(),
            foreign: false,
            new_action: false,
            outside_class: false,
            rollout: Vec::new(),
            new_action_events: 0,
            outward: false,
        };
        f.add(settings, ev, pattern, verdict, grant);
        f
    }

    /// The finding id.
    pub fn finding_id(&self) -> &str {
        &self.finding_id
    }

    /// The agent.
    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    /// Event time of the finding's first event.
    pub fn first_ms(&self) -> i64 {
        self.first_ms
    }

    /// Anomalous events so far.
    pub fn event_count(&self) -> u64 {
        self.event_count
    }

    /// The first session involved.
    pub fn first_session(&self) -> Option<&str> {
        self.sessions.first().map(String::as_str)
    }

    /// Independent lines of evidence: detector families with a reason scoring at least `min`
    /// on some event, repeated refusals (two or more denied or failed events: one is common
    /// noise, several are probing), and use of a grant the agent's normal behaviour never used.
    ///
    /// Two families count only where they point at harm rather than change. What was accessed
    /// counts when some event reached beyond the agent's own territory: a new kind of object in
    /// its own bucket, or a new tool on a store it uses, is change. How much counts when data
    /// moved in bulk (volume together with rate or breadth): a scheduled job reading more
    /// partitions than usual, or one large object, is not exfiltration on its own.
    /// The learned model corroborates scores, not commands: it is not counted.
    pub fn evidence(&self, min: f32) -> usize {
        self.lines(min, true)
    }

    /// Independent lines of evidence scoring at least `min`; with `harm_gated`, what was
    /// accessed and how much count only where they point at harm (see
    /// [`FindingBuilder::evidence`]).
    fn lines(&self, min: f32, harm_gated: bool) -> usize {
        use crate::vocab::Evidence;
        let bulk = self.bulk(min);
        let mut fams: Vec<Evidence> = self
            .reasons
            .values()
            .filter(|r| r.score >= min && r.detector != DetectorId::Model)
            .map(|r| r.detector.family())
            .filter(|f| match f {
                _ if !harm_gated => true,
                Evidence::Access => self.reach,
                Evidence::Amount => bulk,
                _ => true,
            })
            .collect();
        if self.denied >= 2 {
            fams.push(Evidence::Refusal);
        }
        if !self.fresh_grants.is_empty() {
            fams.push(Evidence::Privilege);
        }
        fams.sort_unstable();
        fams.dedup();
        fams.len()
    }

    /// The signs of harm, as opposed to change, among the finding's lines of evidence (each
    /// scoring at least `min`): `reach` beyond the agent's own territory, `bulk` data movement,
    /// repeated `refusals`, an `unused_grant`, `steering` by data the agent read (a chain
    /// from what it read to whom it reaches) and a `foreign_origin` (an address class the agent
    /// never came from, or a new network while it is active from its usual one).
    pub fn harm(&self, min: f32) -> Vec<&'static str> {
        use crate::vocab::Evidence;
        let family = |e: Evidence| self.has_family(e, min);
        let mut out = Vec::new();
        if self.reach && family(Evidence::Access) {
            out.push("reach");
        }
        if self.bulk(min) {
            out.push("bulk");
        }
        if self.denied >= 2 {
            out.push("refusals");
        }
        if !self.fresh_grants.is_empty() {
            out.push("unused_grant");
        }
        if family(Evidence::Steering) {
            out.push("steering");
        }
        if self.foreign && family(Evidence::Origin) {
            out.push("foreign_origin");
        }
        out
    }

    /// Whether the finding's origin evidence (scoring at least `min`) includes a new network of
    /// an address class the agent never came from: credentials used outside the places it runs.
    pub fn outside_class_origin(&self, min: f32) -> bool {
        self.outside_class && self.has_family(crate::vocab::Evidence::Origin, min)
    }

    /// Data moved in bulk: volume together with rate or breadth, each scoring at least `min`.
    fn bulk(&self, min: f32) -> bool {
        self.has_line(DetectorId::Volume, min)
            && (self.has_line(DetectorId::Rate, min) || self.has_line(DetectorId::Breadth, min))
    }

    /// Whether some detector of the family `e` gave the finding a reason scoring at least `min`.
    fn has_family(&self, e: crate::vocab::Evidence, min: f32) -> bool {
        self.reasons
            .values()
            .any(|r| r.score >= min && r.detector.family() == e)
    }

    /// Whether some event's action was one the agent had not been using.
    pub fn new_action(&self) -> bool {
        self.new_action
    }

    /// Notes what the event just added changed: `new_action`, its action new to the agent with
    /// its peer group's use of it (`None` for a familiar action, or when the agent has no peer
    /// group); `outward`, whether it reached an outside destination.
    pub fn note_change(&mut self, new_action: Option<PeerUse>, outward: bool) {
        self.outward |= outward;
        let Some(u) = new_action else {
            return;
        };
        if self
            .rollout
            .iter()
            .any(|r| (r.group, r.key) == (u.group, u.key))
        {
            self.new_action_events += 1;
        } else if self.rollout.len() < MAX_ROLLOUT {
            self.rollout.push(u);
            self.new_action_events += 1;
        }
    }

    /// Whether the finding could be the agent's part in a roll-out that its peers follow: every
    /// event took up an action new to the agent, known to its peer group, through no outside
    /// destination or `counterparty` reason, with no sign of harm (see [`FindingBuilder::harm`],
    /// which counts `provenance` as steering), and no command was called for (issued or
    /// withheld). Such a finding is held until the peers could follow.
    pub fn may_be_rollout(&self, min: f32) -> bool {
        !self.rollout.is_empty()
            && self.new_action_events == self.event_count
            && !self.outward
            && !self.has_commands()
            && self.withheld == 0
            && !self.tripped
            && !self.outside_class_origin(min)
            && !self.has_line(DetectorId::Counterparty, min)
            && self.harm(min).is_empty()
    }

    /// Keeps what `peers` count of the finding's new actions now, as the count in force at its
    /// due time: the fleet is about to apply a window of changes from after it.
    pub fn freeze(&mut self, peers: &dyn super::PeerUses) {
        for u in &mut self.rollout {
            if u.at_due.is_none() {
                u.at_due = Some(peers.action_users(u.group, u.key));
            }
        }
    }

    /// The finding's new actions with how many other agents of the group took each up since the
    /// finding first saw it, as `peers` count them now or as they counted them at its due time
    /// when that is kept (see [`FindingBuilder::freeze`]).
    pub fn followers(&self, peers: &dyn super::PeerUses) -> Vec<(&str, u32)> {
        self.rollout
            .iter()
            .map(|u| {
                let users = u
                    .at_due
                    .unwrap_or_else(|| peers.action_users(u.group, u.key));
                let since = users.saturating_sub(u.users);
                // The agent's own first use, if it was one, is among those counted since.
                (
                    u.action.as_str(),
                    since.saturating_sub(u32::from(u.own_pending)),
                )
            })
            .collect()
    }

    /// Whether the detector `d` gave the finding a reason scoring at least `min`.
    pub fn has_line(&self, d: DetectorId, min: f32) -> bool {
        self.reasons.get(&d).is_some_and(|r| r.score >= min)
    }

    /// Lines of evidence as [`FindingBuilder::evidence`] counts them, but with what was
    /// accessed and how much counted whether or not they point at harm: how well the finding
    /// shows a change in behaviour.
    pub fn change_evidence(&self, min: f32) -> usize {
        self.lines(min, false)
    }

    /// Resource patterns new to the agent on which an event of the finding scored at least
    /// `min` for novelty, in the order first seen.
    pub fn new_patterns(&self, min: f32) -> impl Iterator<Item = &str> {
        self.new_patterns
            .iter()
            .filter(move |(_, s)| *s >= min)
            .map(|(p, _)| p.as_str())
    }

    /// The highest step on the response ladder of the commands issued for the finding (0: none).
    pub fn top_level(&self) -> u8 {
        self.commanded
            .iter()
            .map(|(a, _)| a.level())
            .max()
            .unwrap_or(0)
    }

    /// The detectors involved, strongest first.
    pub fn detector_names(&self) -> Vec<&'static str> {
        let mut v: Vec<(&DetectorId, &Reason)> = self.reasons.iter().collect();
        v.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then(a.0.cmp(b.0)));
        v.into_iter().map(|(d, _)| d.as_str()).collect()
    }

    /// The detectors and resource patterns involved (what a suppression of it covers).
    pub fn signature(&self) -> (Vec<DetectorId>, &[String]) {
        (self.reasons.keys().copied().collect(), &self.patterns)
    }

    /// Severity so far (as [`FindingBuilder::build`] would give it).
    pub fn severity(&self, settings: &DecideSettings) -> Severity {
        super::Decider::severity(settings, self.score, self.corroborated_strong())
    }

    fn corroborated_strong(&self) -> u8 {
        // Corroboration: several detectors agreeing, or a sustained run of anomalous events,
        // makes a finding more severe than one detector on one event.
        if self.event_count >= 5 {
            self.strong.max(2)
        } else {
            self.strong
        }
    }

    /// Notes that the event just added used `grant`, which the agent's normal behaviour never
    /// used.
    pub fn add_fresh_grant(&mut self, grant: &str) {
        if !self.fresh_grants.iter().any(|g| g == grant) {
            self.fresh_grants.push(grant.to_string());
        }
    }

    /// Grants used that the agent's normal behaviour never used.
    pub fn fresh_grants(&self) -> &[String] {
        &self.fresh_grants
    }

    /// Whether a command of `action` on `target` was issued for the finding.
    pub fn commanded(&self, action: crate::output::command::Action, target: &str) -> bool {
        self.commanded
            .iter()
            .any(|(a, t)| *a == action && t == target)
    }

    /// Whether any command was issued for the finding.
    pub fn has_commands(&self) -> bool {
        !self.commanded.is_empty()
    }

    /// Records a command issued for the finding.
    pub fn set_commanded(&mut self, action: crate::output::command::Action, target: &str) {
        self.commanded.push((action, target.to_string()));
    }

    /// Whether the finding counted towards the circuit breaker.
    pub fn tripped(&self) -> bool {
        self.tripped
    }

    /// Counts the finding towards the circuit breaker.
    pub fn set_tripped(&mut self) {
        self.tripped = true;
    }

    /// Marks a reason for withholding as reported; true the first time.
    pub fn note_withheld(&mut self, bit: u8) -> bool {
        let first = self.withheld & bit == 0;
        self.withheld |= bit;
        first
    }

    /// Whether this finding would keep `r` from an event that joins it: the finding keeps each
    /// detector's strongest reason.
    pub fn keeps(&self, r: &Reason) -> bool {
        self.reasons
            .get(&r.detector)
            .is_none_or(|old| old.score < r.score)
    }

    /// Whether an anomalous event at `t` joins this finding.
    pub fn accepts(&self, t: i64, gap_ms: i64, max_ms: i64) -> bool {
        t <= self.last_ms + gap_ms && t < self.first_ms + max_ms
    }

    /// Event time after which the finding closes.
    pub fn deadline(&self, gap_ms: i64, max_ms: i64) -> i64 {
        (self.last_ms + gap_ms).min(self.first_ms + max_ms)
    }

    /// Sort key for deterministic output order.
    pub fn order_key(&self) -> (i64, &str) {
        (self.first_ms, &self.finding_id)
    }

    /// Adds an anomalous event.
    pub fn add(
        &mut self,
        settings: &DecideSettings,
        ev: &AccessEvent<'_>,
        pattern: &str,
        verdict: &Verdict,
        grant: Option<&str>,
    ) {
        self.event_count += 1;
        self.reach |= verdict.reach;
        self.new_action |= verdict.new_action;
        self.foreign |= verdict.foreign;
        self.outside_class |= verdict.outside_class;
        let novel = verdict
            .reasons
            .iter()
            .filter(|r| matches!(r.detector, DetectorId::Novelty | DetectorId::Counterparty))
            .map(|r| r.score)
            .fold(0.0f32, f32::max);
        if novel > 0.0 {
            match self.new_patterns.iter().position(|(p, _)| p == pattern) {
                Some(i) => self.new_patterns[i].1 = self.new_patterns[i].1.max(novel),
                None if self.new_patterns.len() < MAX_LISTED => {
                    self.new_patterns.push((pattern.to_string(), novel))
                }
                None => {}
            }
        }
        if self.event_ids.len() < settings.max_events_per_finding {
            self.event_ids.push(ev.event_id.to_string());
        }
        self.first_ms = self.first_ms.min(ev.time_ms);
        self.last_ms = self.last_ms.max(ev.time_ms);
        if verdict.score > self.score {
            self.score = verdict.score;
        }
        self.strong = self.strong.max(verdict.strong);
        for r in &verdict.reasons {
            match self.reasons.get(&r.detector) {
                Some(old) if old.score >= r.score => {}
                _ => {
                    self.reasons.insert(r.detector, r.clone());
                }
            }
        }
        push_distinct(&mut self.actions, &ev.action);
        push_distinct(&mut self.resources, &ev.resource);
        push_distinct(&mut self.patterns, pattern);
        if let Some(s) = ev.session_id.as_deref() {
            push_distinct(&mut self.sessions, s);
        }
        if let Some(s) = ev.source_ip.as_deref() {
            push_distinct(&mut self.source_ips, s);
        }
        if let Some(s) = grant {
            push_distinct(&mut self.grants, s);
        }
        if let Some(s) = ev.intent.as_deref() {
            push_distinct(&mut self.intents, s);
        }
        if ev.outcome != crate::event::Outcome::Success {
            self.denied += 1;
        }
        self.bytes = self.bytes.saturating_add(ev.bytes.unwrap_or(0));
    }

    /// The finished record.
    pub fn build(self, settings: &DecideSettings) -> Finding {
        let severity = self.severity(settings);
        let mut reasons: Vec<Reason> = self.reasons.into_values().collect();
        reasons.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.detector.cmp(&b.detector))
        });
        Finding {
            kind: "finding",
            finding_id: self.finding_id,
            agent_id: self.agent_id,
            agent_kind: self.agent_kind,
            time: rfc3339_ms(self.first_ms),
            first_seen: rfc3339_ms(self.first_ms),
            last_seen: rfc3339_ms(self.last_ms),
            score: round4(self.score),
            severity,
            event_count: self.event_count,
            event_ids: self.event_ids,
            reasons,
            actions: self.actions,
            resources: self.resources,
            resource_patterns: self.patterns,
            sessions: self.sessions,
            source_ips: self.source_ips,
            grants: self.grants,
            intents: self.intents,
            denied_events: self.denied,
            bytes: self.bytes,
            first_ms: self.first_ms,
            last_ms: self.last_ms,
            ocsf: None,
        }
        .with_ocsf()
    }
}
