//! Recommendations: remove a grant unused over the lookback window, narrow a broad grant to the
//! generalised patterns actually used, and, when a finding's events were authorised by more
//! than the agent ever needed, a high-priority narrowing at once. "No data" is never "unused":
//! every recommendation needs `grants.min_history_days` and `grants.min_events` of observed
//! history, and states how much it had.

use crate::config::GrantsSettings;
use crate::output::OutputRecord;
use crate::output::recommendation::{Change, Evidence, Priority, Recommendation};
use crate::output::time::rfc3339_ms;

use super::entitlements::{AgentGrants, GrantSpec, glob_match};
use super::usage::{GrantUse, Ledger};

const DAY_MS: i64 = 86_400_000;

/// A generalised pattern as a grant pattern: placeholders (`{n}`, `{date}`, ...) become `*`.
pub fn pattern_glob(pattern: &str) -> String {
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

/// The first `levels` path levels of a pattern, followed by `/*`
/// (`s3://raw/*/part-*.gz` at 1 level is `s3://raw/*`).
fn truncate(pattern: &str, levels: usize) -> String {
    let (head, rest) = match pattern.find("://") {
        Some(i) => pattern.split_at(i + 3),
        None => ("", pattern),
    };
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.len() <= levels + 1 {
        return pattern.to_string();
    }
    let mut s = String::from(head);
    s.push_str(&parts[..=levels].join("/"));
    s.push_str("/*");
    s
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    v.sort_unstable();
    v.dedup();
    v
}

/// The grant narrowed to what `used` shows, if that is narrower than `spec`.
fn narrowed(spec: &GrantSpec, used: &GrantUse, max_resources: usize) -> Option<GrantSpec> {
    if used.actions.overflow > 0 || used.patterns.overflow > 0 || used.uses == 0 {
        return None;
    }
    let covered = |pats: &[String], v: &str| pats.iter().any(|p| glob_match(p, v));
    let actions = if spec.actions.iter().any(|p| p.contains('*')) {
        let used: Vec<String> = used
            .actions
            .sorted()
            .into_iter()
            .filter(|a| covered(&spec.actions, a))
            .map(str::to_string)
            .collect();
        if used.is_empty() {
            spec.actions.clone()
        } else {
            dedup(used)
        }
    } else {
        spec.actions.clone()
    };
    let resources = if spec.resources.iter().any(|p| p.contains('*')) {
        let globs: Vec<String> = used
            .patterns
            .sorted()
            .into_iter()
            .map(pattern_glob)
            .collect();
        let mut proposed = dedup(globs.clone());
        let mut level = 3;
        while proposed.len() > max_resources && level > 0 {
            proposed = dedup(globs.iter().map(|g| truncate(g, level)).collect());
            level -= 1;
        }
        // Only a proposal every current pattern already allows is a narrowing.
        if proposed.len() <= max_resources && proposed.iter().all(|p| covered(&spec.resources, p)) {
            proposed
        } else {
            spec.resources.clone()
        }
    } else {
        spec.resources.clone()
    };
    let same = dedup(actions.clone()) == dedup(spec.actions.clone())
        && dedup(resources.clone()) == dedup(spec.resources.clone());
    (!same).then_some(GrantSpec { actions, resources })
}

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
            let Some(proposed) = used.and_then(|u| narrowed(spec, u, s.max_proposed_resources))
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
pub fn after_finding(
    agent_id: &str,
    grants: &AgentGrants,
    grant: &str,
    finding_id: &str,
    resources: &[String],
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
            let Some(proposed) = narrowed(spec, u, s.max_proposed_resources) else {
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
                    action: "db:Select",
                    pattern: Box::leak(format!("postgres://finance/{table}").into_boxed_str()),
                    intent: Some("monthly variance report"),
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
        assert_eq!(truncate("s3://raw/*/part-*.gz", 1), "s3://raw/*");
    }

    #[test]
    fn unused_grants_are_removed_and_broad_ones_narrowed_once() {
        let e = ents();
        let a = e.agent("fin-1").unwrap();
        let mut l = Ledger::default();
        feed(&mut l, 14);
        let now = 14 * DAY_MS;
        let mut out = Vec::new();
        review("fin-1", a, &mut l, now, &settings(), &mut out);
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
        assert_eq!(
            narrow.proposed.resources,
            vec!["postgres://finance/invoices", "postgres://finance/ledger"]
        );
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
        review("fin-1", a, &mut l, now + DAY_MS, &settings(), &mut again);
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
