//! Recommendations: remove a grant unused over the lookback window, narrow a broad grant to the
//! generalised patterns actually used, and, when a finding's events were authorised by more
//! than the agent ever needed, a high-priority narrowing at once. "No data" is never "unused":
//! every recommendation needs `grants.min_history_days` and `grants.min_events` of observed
//! history, and states how much it had.

use crate::grants::settings::GrantsSettings;
use crate::output::OutputRecord;
use crate::output::recommendation::{Change, Evidence, Priority, Recommendation};
use crate::output::time::rfc3339_ms;

use super::entitlements::{AgentGrants, GrantSpec, glob_match};
use super::usage::{GrantUse, Ledger};

const DAY_MS: i64 = 86_400_000;

/// A generalised pattern as a grant pattern: placeholders (`{n}`, `{date}`, ...) become `*`.
pub(crate) fn pattern_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut depth = 0usize;
    for c in pattern.chars() {
        match c {
            '{' => {
                if depth == 0 && !out.ends_with('*') {
                    out.push('*');
                }
                depth += 1;
            }
            '}' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            '*' if out.ends_with('*') => {}
            _ => out.push(c),
        }
    }
    out
}

/// The container of a used resource under a service-wide grant pattern (one whose wildcard
/// starts right after the scheme): the authority used (`s3://*` and `s3://raw/*/part-*.gz` give
/// `s3://raw/*`; `mailto:*` and `mailto:a@x.example` give `mailto:*@x.example`). `None` for a
/// pattern already within one authority: working sets grow within a bucket, database or
/// repository organisation, so such a pattern is never narrowed.
fn container(pattern: &str, used: &str) -> Option<String> {
    let star = pattern.find('*')?;
    let prefix = &pattern[..star];
    let scheme_only = prefix.ends_with("://") || (prefix.ends_with(':') && !prefix.contains('/'));
    if !scheme_only {
        return None;
    }
    let rest = used.strip_prefix(prefix)?;
    if let Some(i) = rest.find('/') {
        let seg = &rest[..i];
        return (!seg.is_empty() && !seg.contains('*')).then(|| format!("{prefix}{seg}/*"));
    }
    let at = rest.find('@')?;
    let domain = &rest[at..];
    (!domain.contains('*')).then(|| format!("{prefix}*{domain}"))
}

/// Uses at or below which a value counts as rare. Rare values are the sign that unseen ones are
/// still to come (the Good-Turing estimate of the unseen share is the share of values seen once),
/// so a pattern or action list with a rare member is not narrowed.
const RARE_USES: u32 = 2;

fn dedup(mut v: Vec<String>) -> Vec<String> {
    v.sort_unstable();
    v.dedup();
    v
}

/// The grant narrowed to what `used` shows, if that is narrower than `spec`. Actions narrow to
/// those used; each wildcard resource pattern narrows to the containers used under it; a
/// resource pattern never used is dropped. Nothing narrows while the use is still spreading
/// (an action or container first used within `narrow_stable_days`), or when more than
/// `max_proposed_resources` patterns would be needed.
fn narrowed(
    spec: &GrantSpec,
    used: &GrantUse,
    peers: Option<&PeerUse>,
    s: &GrantsSettings,
    now_ms: i64,
) -> Option<GrantSpec> {
    if used.actions.overflow > 0 || used.patterns.overflow > 0 || used.uses == 0 {
        return None;
    }
    let stable_since = now_ms - (s.narrow_stable_days * DAY_MS as f64) as i64;
    let covered = |pats: &[String], v: &str| pats.iter().any(|p| glob_match(p, v));
    let actions = if spec.actions.iter().any(|p| p.contains('*')) {
        let rare = used.actions.ranked().iter().any(|(_, n)| *n <= RARE_USES);
        let used: Vec<(&str, i64)> = used
            .actions
            .first_seen()
            .chain(
                peers
                    .iter()
                    .flat_map(|p| p.actions.iter().map(|a| (a.as_str(), i64::MIN))),
            )
            .filter(|(a, _)| covered(&spec.actions, a))
            .collect();
        if rare || used.is_empty() || used.iter().any(|(_, t)| *t > stable_since) {
            spec.actions.clone()
        } else {
            dedup(used.into_iter().map(|(a, _)| a.to_string()).collect())
        }
    } else {
        spec.actions.clone()
    };
    let counts: Vec<(&str, u32)> = used.patterns.ranked();
    let globs: Vec<(String, i64, u32)> = used
        .patterns
        .first_seen()
        .map(|(p, t)| {
            let n = counts.iter().find(|(q, _)| *q == p).map_or(0, |(_, n)| *n);
            (pattern_glob(p), t, n)
        })
        .chain(peers.iter().flat_map(|p| {
            p.patterns
                .iter()
                .map(|q| (pattern_glob(q), i64::MIN, u32::MAX))
        }))
        .collect();
    let mut spreading = false;
    let mut resources: Vec<String> = Vec::new();
    let mut unused: Vec<&String> = Vec::new();
    for c in &spec.resources {
        let under: Vec<&(String, i64, u32)> =
            globs.iter().filter(|(g, _, _)| glob_match(c, g)).collect();
        if under.is_empty() {
            unused.push(c);
            continue;
        }
        if !c.contains('*') {
            spreading |= under
                .iter()
                .any(|(_, t, n)| *n <= RARE_USES || *t > stable_since);
            resources.push(c.clone());
            continue;
        }
        let mut containers: Vec<(String, i64, u32)> = Vec::new();
        let mut leaf = false;
        for (g, t, n) in under {
            match container(c, g) {
                Some(k) => match containers.iter_mut().find(|(x, _, _)| *x == k) {
                    Some(e) => {
                        e.1 = e.1.min(*t);
                        e.2 = e.2.saturating_add(*n);
                    }
                    None => containers.push((k, *t, *n)),
                },
                None => {
                    leaf = true;
                    spreading |= *t > stable_since;
                }
            }
        }
        let young = containers.iter().any(|(_, t, _)| *t > stable_since);
        let rare = containers.iter().any(|(_, _, n)| *n <= RARE_USES);
        spreading |= young || rare;
        if leaf || young || rare || containers.len() > s.max_proposed_resources {
            resources.push(c.clone());
        } else {
            resources.extend(containers.into_iter().map(|(k, _, _)| k));
        }
    }
    if spreading {
        resources.extend(unused.into_iter().cloned());
    }
    let resources = dedup(resources);
    if resources.is_empty() || resources.len() > s.max_proposed_resources.max(spec.resources.len())
    {
        return None;
    }
    let same = dedup(actions.clone()) == dedup(spec.actions.clone())
        && resources == dedup(spec.resources.clone());
    (!same).then_some(GrantSpec { actions, resources })
}

/// What the agent's peers (agents of its family) did under grants of the same id: their use
/// is kept by a narrowing, since the agent is likely to need it too.
#[derive(Clone, Debug, Default)]
pub struct PeerUse {
    /// Actions used.
    pub actions: std::collections::BTreeSet<String>,
    /// Generalised resource patterns used.
    pub patterns: std::collections::BTreeSet<String>,
}

impl PeerUse {
    /// Adds one agent's use of a grant.
    pub fn add(&mut self, u: &GrantUse) {
        for (a, _) in u.actions.first_seen() {
            if !self.actions.contains(a) {
                self.actions.insert(a.to_string());
            }
        }
        for (p, _) in u.patterns.first_seen() {
            if !self.patterns.contains(p) {
                self.patterns.insert(p.to_string());
            }
        }
    }
}

/// Peers' use, by grant id.
pub(crate) type Peers = rustc_hash::FxHashMap<Box<str>, PeerUse>;

struct Draft<'a> {
    agent_id: &'a str,
    grant: &'a str,
    current: &'a GrantSpec,
    change: Change,
    priority: Priority,
    proposed: GrantSpec,
    reason: String,
    finding_ids: Vec<String>,
}

fn id_of(
    agent: &str,
    grant: &str,
    change: Change,
    proposed: &GrantSpec,
    priority: Priority,
) -> u64 {
    let text = format!(
        "{agent}\u{1f}{grant}\u{1f}{change:?}\u{1f}{}\u{1f}{}\u{1f}{priority:?}",
        proposed.actions.join("\u{1e}"),
        proposed.resources.join("\u{1e}")
    );
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

fn justification(used: Option<&GrantUse>, in_window: u64, window_days: f64) -> String {
    let Some(u) = used.filter(|u| u.uses > 0) else {
        return format!("not used in {window_days:.1} days observed");
    };
    let mut s = format!("used {in_window} times in {window_days:.1} days");
    let intents: Vec<String> = u
        .intents
        .ranked()
        .into_iter()
        .take(3)
        .map(|(i, _)| format!("'{i}'"))
        .collect();
    if !intents.is_empty() {
        s.push_str(&format!(", by {} sessions", intents.join(", ")));
    }
    let pats: Vec<String> = u
        .patterns
        .ranked()
        .into_iter()
        .take(5)
        .map(|(p, _)| pattern_glob(p))
        .collect();
    s.push_str(&format!(", on {}", dedup(pats).join(", ")));
    if u.patterns.overflow > 0 {
        s.push_str(" and more");
    }
    s
}

fn finish(
    d: Draft<'_>,
    ledger: &mut Ledger,
    now_ms: i64,
    s: &GrantsSettings,
    out: &mut Vec<OutputRecord>,
) {
    let id = id_of(d.agent_id, d.grant, d.change, &d.proposed, d.priority);
    if d.priority == Priority::Normal {
        // A high-priority recommendation of the same change stands; do not repeat it as routine.
        let high = id_of(d.agent_id, d.grant, d.change, &d.proposed, Priority::High);
        if ledger.last_emission(d.grant) == Some(high) || !ledger.first_emission(d.grant, id) {
            return;
        }
    } else if !ledger.first_emission(d.grant, id) {
        return;
    }
    let lookback_ms = i64::from(s.lookback_days) * DAY_MS;
    let observed_days = ledger.history_days(now_ms).min(f64::from(s.lookback_days));
    let used = ledger.grant(d.grant);
    let in_window = used.map_or(0, |u| u.uses_since(now_ms - lookback_ms));
    let evidence = Evidence {
        lookback_days: s.lookback_days,
        observed_days: (observed_days * 10.0).round() / 10.0,
        events_observed: ledger.events,
        uses: in_window,
        anomalous_uses: used.map_or(0, |u| u.anomalous),
        last_use: used.filter(|u| u.uses > 0).map(|u| rfc3339_ms(u.last_ms)),
        observed_actions: used.map_or_else(Vec::new, |u| {
            u.actions.sorted().into_iter().map(str::to_string).collect()
        }),
        observed_resources: used.map_or_else(Vec::new, |u| {
            dedup(u.patterns.sorted().into_iter().map(pattern_glob).collect())
        }),
        intents: used.map_or_else(Vec::new, |u| {
            u.intents.sorted().into_iter().map(str::to_string).collect()
        }),
        justification: justification(used, in_window, observed_days),
    };
    out.push(OutputRecord::Recommendation(Recommendation {
        kind: "recommendation",
        recommendation_id: format!("rec-{id:016x}"),
        agent_id: d.agent_id.to_string(),
        grant: d.grant.to_string(),
        change: d.change,
        priority: d.priority,
        time: rfc3339_ms(now_ms),
        current: d.current.clone(),
        proposed: d.proposed,
        evidence,
        reason: d.reason,
        finding_ids: d.finding_ids,
    }));
}

fn enough_history(ledger: &Ledger, now_ms: i64, s: &GrantsSettings) -> bool {
    ledger.events >= s.min_events && ledger.history_days(now_ms) >= s.min_history_days
}

fn describe(spec: &GrantSpec) -> String {
    format!(
        "{} on {}",
        spec.actions.join(", "),
        spec.resources.join(", ")
    )
}

/// Reviews every grant of an agent at event time `now_ms` and appends the recommendations that
/// are new or changed.
pub fn review(
    agent_id: &str,
    grants: &AgentGrants,
    peers: &Peers,
    ledger: &mut Ledger,
    now_ms: i64,
    s: &GrantsSettings,
    out: &mut Vec<OutputRecord>,
) {
    if !enough_history(ledger, now_ms, s) {
        return;
    }
    let lookback_ms = i64::from(s.lookback_days) * DAY_MS;
    let days = ledger.history_days(now_ms).min(f64::from(s.lookback_days));
    for (grant, spec) in grants.iter() {
        let used = ledger.grant(grant);
        let in_window = used.map_or(0, |u| u.uses_since(now_ms - lookback_ms));
        let draft = if in_window == 0 {
            Draft {
                agent_id,
                grant,
                current: spec,
                change: Change::Remove,
                priority: Priority::Normal,
                proposed: GrantSpec {
                    actions: vec![],
                    resources: vec![],
                },
                reason: format!(
                    "grant {grant} ({}) was not used in {days:.1} days of observed history ({} events of the agent)",
                    describe(spec),
                    ledger.events
                ),
                finding_ids: vec![],
            }
        } else {
            let Some(proposed) = used.and_then(|u| narrowed(spec, u, peers.get(grant), s, now_ms))
            else {
                continue;
            };
            Draft {
                agent_id,
                grant,
                current: spec,
                change: Change::Narrow,
                priority: Priority::Normal,
                reason: format!(
                    "grant {grant} allows {}, but in {days:.1} days only {} was used",
                    describe(spec),
                    describe(&proposed)
                ),
                proposed,
                finding_ids: vec![],
            }
        };
        finish(draft, ledger, now_ms, s, out);
    }
}

/// A finding whose anomalous events were authorised by `grant`: when the agent's normal
/// behaviour never needed the grant, or needed less of it, appends a high-priority
/// recommendation to remove or narrow it. `resources` are the finding's resources: a narrowing
/// is urgent only when some of them lie outside what normal behaviour needed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn after_finding(
    agent_id: &str,
    grants: &AgentGrants,
    grant: &str,
    finding_id: &str,
    resources: &[String],
    peers: &Peers,
    ledger: &mut Ledger,
    now_ms: i64,
    s: &GrantsSettings,
    out: &mut Vec<OutputRecord>,
) {
    let Some(spec) = grants.get(grant) else {
        return;
    };
    if !enough_history(ledger, now_ms, s) {
        return;
    }
    let days = ledger.history_days(now_ms).min(f64::from(s.lookback_days));
    let draft = match ledger.grant(grant).filter(|u| u.uses > 0) {
        None => Draft {
            agent_id,
            grant,
            current: spec,
            change: Change::Remove,
            priority: Priority::High,
            proposed: GrantSpec {
                actions: vec![],
                resources: vec![],
            },
            reason: format!(
                "finding {finding_id} used grant {grant} ({}), which the agent's normal behaviour never needed in {days:.1} days",
                describe(spec)
            ),
            finding_ids: vec![finding_id.to_string()],
        },
        Some(u) => {
            let Some(proposed) = narrowed(spec, u, peers.get(grant), s, now_ms) else {
                return;
            };
            let excess = resources.iter().any(|r| {
                spec.resources.iter().any(|p| glob_match(p, r))
                    && !proposed.resources.iter().any(|p| glob_match(p, r))
            });
            if !excess {
                return;
            }
            Draft {
                agent_id,
                grant,
                current: spec,
                change: Change::Narrow,
                priority: Priority::High,
                reason: format!(
                    "finding {finding_id} used grant {grant} beyond what the agent's normal behaviour needed in {days:.1} days ({})",
                    describe(&proposed)
                ),
                proposed,
                finding_ids: vec![finding_id.to_string()],
            }
        }
    };
    finish(draft, ledger, now_ms, s, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grants::Entitlements;
    use crate::grants::usage::Use;

    fn settings() -> GrantsSettings {
        GrantsSettings::default()
    }

    fn ents() -> Entitlements {
        Entitlements::parse(
            r#"{"fin-1": {
                "finance": {"actions": ["db:*"], "resources": ["postgres://finance/*"]},
                "hr": {"actions": ["db:Select"], "resources": ["postgres://hr/*"]}}}"#,
            "t",
        )
        .unwrap()
    }

    fn feed(l: &mut Ledger, days: i64) {
        for d in 0..days {
            for h in 0..20 {
                let t = d * DAY_MS + h * 3_600_000;
                l.observe(t);
                let table = if h % 2 == 0 { "invoices" } else { "ledger" };
                l.record(&Use {
                    grant: "finance",
                    time_ms: t,
                    action: (1, "db:Select"),
                    pattern: (
                        (h % 2) as u64,
                        Box::leak(format!("postgres://finance/{table}").into_boxed_str()),
                    ),
                    intent: Some((3, "monthly variance report")),
                    anomalous: false,
                });
            }
        }
    }

    #[test]
    fn globs_from_patterns() {
        assert_eq!(
            pattern_glob("s3://raw/{date}/part-{n}.json.gz"),
            "s3://raw/*/part-*.json.gz"
        );
        assert_eq!(pattern_glob("crm://customers/{n}"), "crm://customers/*");
        assert_eq!(
            container("s3://*", "s3://raw/*/part-*.gz").as_deref(),
            Some("s3://raw/*")
        );
        assert_eq!(
            container("mailto:*", "mailto:a@x.example").as_deref(),
            Some("mailto:*@x.example")
        );
        assert_eq!(
            container("postgres://finance/*", "postgres://finance/ledger"),
            None
        );
    }

    #[test]
    fn unused_grants_are_removed_and_broad_ones_narrowed_once() {
        let e = ents();
        let a = e.agent("fin-1").unwrap();
        let mut l = Ledger::default();
        feed(&mut l, 14);
        let now = 14 * DAY_MS;
        let mut out = Vec::new();
        review(
            "fin-1",
            a,
            &Peers::default(),
            &mut l,
            now,
            &settings(),
            &mut out,
        );
        assert_eq!(out.len(), 2, "{out:?}");
        let recs: Vec<&Recommendation> = out
            .iter()
            .map(|r| match r {
                OutputRecord::Recommendation(r) => r,
                _ => panic!("not a recommendation"),
            })
            .collect();
        let narrow = recs.iter().find(|r| r.grant == "finance").unwrap();
        assert_eq!(narrow.change, Change::Narrow);
        assert_eq!(narrow.proposed.actions, vec!["db:Select"]);
        // Tables are leaves: siblings are likely, so the database pattern stays.
        assert_eq!(narrow.proposed.resources, vec!["postgres://finance/*"]);
        assert!(
            narrow
                .evidence
                .justification
                .contains("'monthly variance report'"),
            "{}",
            narrow.evidence.justification
        );
        let remove = recs.iter().find(|r| r.grant == "hr").unwrap();
        assert_eq!(remove.change, Change::Remove);
        assert_eq!(remove.evidence.uses, 0);
        assert_eq!(remove.evidence.observed_days, 14.0);
        // Nothing changed: nothing emitted again.
        let mut again = Vec::new();
        review(
            "fin-1",
            a,
            &Peers::default(),
            &mut l,
            now + DAY_MS,
            &settings(),
            &mut again,
        );
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn no_data_is_not_unused() {
        let e = ents();
        let mut l = Ledger::default();
        feed(&mut l, 3);
        let mut out = Vec::new();
        review(
            "fin-1",
            e.agent("fin-1").unwrap(),
            &Peers::default(),
            &mut l,
            3 * DAY_MS,
            &settings(),
            &mut out,
        );
        assert!(
            out.is_empty(),
            "3 days is less than the minimum history: {out:?}"
        );
    }

    #[test]
    fn a_finding_on_a_never_needed_grant_gives_a_high_priority_removal() {
        let e = ents();
        let mut l = Ledger::default();
        feed(&mut l, 10);
        let mut out = Vec::new();
        let now = 10 * DAY_MS;
        after_finding(
            "fin-1",
            e.agent("fin-1").unwrap(),
            "hr",
            "fnd-1",
            &["postgres://hr/payroll".to_string()],
            &Peers::default(),
            &mut l,
            now,
            &settings(),
            &mut out,
        );
        let OutputRecord::Recommendation(r) = &out[0] else {
            panic!()
        };
        assert_eq!((r.change, r.priority), (Change::Remove, Priority::High));
        assert_eq!(r.finding_ids, vec!["fnd-1"]);
        // The routine review does not repeat it at normal priority.
        let mut routine = Vec::new();
        review(
            "fin-1",
            e.agent("fin-1").unwrap(),
            &Peers::default(),
            &mut l,
            now,
            &settings(),
            &mut routine,
        );
        assert!(
            routine
                .iter()
                .all(|r| matches!(r, OutputRecord::Recommendation(r) if r.grant != "hr")),
            "{routine:?}"
        );
    }
}
