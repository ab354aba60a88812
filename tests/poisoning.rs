//! Baseline poisoning: an attacker who ramps up a little each day, so that a baseline that
//! learns absorbs the target, is still caught early, and a place taken up for good is not.
//!
//! Each ramp starts on its day 1 with an access or two to a place the agent never used and
//! roughly doubles every day. Its first accesses are mildly unusual and the moving baseline
//! learns them, so from the third day on the ramp's events look ordinary to it. The `trend`
//! detector judges a place the agent took up recently against its own first days instead: it
//! leaves out the first day of use (usually partial, for a place taken up for good) and needs
//! three new daily highs, so a doubling ramp the other detectors let through is caught on its
//! day 5 at the latest (N = 5): new highs on days 3, 4 and 5 over day 2.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use cinch::config::Settings;
use cinch::detect::Verdict;
use cinch::engine::Engine;
use cinch::eval::{Scorer, load_dataset, run};
use cinch::event::{AccessEvent, Format, Outcome};
use cinch::output::OutputRecord;
use cinch::output::finding::Finding;
use cinch::sim::{Scenario, SimConfig, simulate};
use cinch::vocab::DetectorId;

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
const MIN: i64 = 60_000;
/// Monday 2026-01-05 00:00 UTC.
const T0: i64 = 1_767_571_200_000;
/// The ramp's last day by which it must be caught.
const N: i64 = 5;

/// One access of the coding agent `agent` at `t`.
fn access(agent: &str, t: i64, action: &str, resource: &str) -> AccessEvent<'static> {
    AccessEvent {
        format: Format::Native,
        event_id: Cow::Owned(format!("{agent}-{t}-{resource}")),
        time_ms: t,
        agent_id: Cow::Owned(agent.to_string()),
        agent_kind: Some(Cow::Borrowed("ai_agent")),
        action: Cow::Owned(action.to_string()),
        resource: Cow::Owned(resource.to_string()),
        outcome: Outcome::Success,
        session_id: Some(Cow::Owned(format!("{agent}-{}", t / HOUR))),
        source_ip: Some(Cow::Borrowed("10.0.0.5")),
        bytes: Some(40_000_000),
        grant: None,
        intent: None,
        attributes: None,
        tool: None,
    }
}

/// A coding agent's working day: 30 pulls and pushes on its two repositories, every 15
/// minutes from 09:00 (`extra` accesses of another place, spread over the same hours, are
/// added by the caller).
fn work_day(agent: &str, day: i64) -> Vec<AccessEvent<'static>> {
    (0..30)
        .map(|i| {
            let repo = ["git://org/checkout", "git://org/checkout-ui"][i % 2];
            let action = ["git:Pull", "git:Push"][(i / 2) % 2];
            access(
                agent,
                T0 + day * DAY + 9 * HOUR + i as i64 * 15 * MIN,
                action,
                repo,
            )
        })
        .collect()
}

/// `n` pulls of `repo` on `day`, spread over the working hours.
fn pulls(agent: &str, day: i64, n: usize, repo: &str) -> Vec<AccessEvent<'static>> {
    (0..n)
        .map(|i| {
            let t = T0 + day * DAY + 9 * HOUR + 7 * MIN + (i as i64 * 7 * HOUR) / n as i64;
            access(agent, t, "git:Pull", repo)
        })
        .collect()
}

/// What one agent's run gave.
struct Run {
    /// The extra accesses' verdicts by day (1 = the first day of them).
    verdicts: BTreeMap<i64, Vec<Verdict>>,
    findings: Vec<Finding>,
    /// The extra accesses' event ids and days, in time order.
    extra: Vec<(String, i64)>,
}

/// Runs an agent's days through an engine: 10 days of routine, then `extra[d]` pulls of
/// `repo` on each of the following days.
fn run_agent(agent: &str, repo: &str, extra: &[usize]) -> Run {
    let mut engine = Engine::new(Settings::default());
    let mut out: Vec<OutputRecord> = Vec::new();
    let mut run = Run {
        verdicts: BTreeMap::new(),
        findings: Vec::new(),
        extra: Vec::new(),
    };
    for day in 0..10 + extra.len() as i64 {
        let k = day - 9;
        let added = match usize::try_from(k - 1) {
            Ok(i) => pulls(agent, day, extra[i], repo),
            Err(_) => Vec::new(),
        };
        let ids: HashSet<String> = added.iter().map(|e| e.event_id.to_string()).collect();
        let mut evs = work_day(agent, day);
        evs.extend(added);
        evs.sort_by_key(|e| e.time_ms);
        for ev in &evs {
            let v = engine.process(ev, &mut out);
            if ids.contains(ev.event_id.as_ref()) {
                run.verdicts.entry(k).or_default().push(v);
                run.extra.push((ev.event_id.to_string(), k));
            }
        }
    }
    engine.finish(&mut out);
    run.findings = out
        .into_iter()
        .filter_map(|r| match r {
            OutputRecord::Finding(f) => Some(f),
            _ => None,
        })
        .collect();
    run
}

fn max_score(vs: &[Verdict]) -> f32 {
    vs.iter().map(|v| v.score).fold(0.0, f32::max)
}

#[test]
fn a_ramp_the_baseline_absorbed_is_caught_by_its_trend_within_n_days() {
    let ramp = [1, 2, 4, 8, 16, 32, 64];
    let Run {
        verdicts,
        findings,
        extra: ids,
    } = run_agent("code-agent-1", "git://org/payments-core", &ramp);
    // The moving baseline learned the target: from day 3 on its accesses look ordinary to
    // every detector but the trend.
    for day in 3..=4 {
        for v in &verdicts[&day] {
            let others = v.reasons.iter().filter(|r| r.detector != DetectorId::Trend);
            assert!(others.clone().all(|r| r.score < 0.3), "day {day}: {v:?}");
        }
    }
    // The first finding holding ramp events names the trend and comes by day N, before a
    // quarter of the ramp's accesses.
    let held: HashSet<&str> = findings
        .iter()
        .flat_map(|f| f.event_ids.iter().map(String::as_str))
        .collect();
    let pos = ids
        .iter()
        .position(|(id, _)| held.contains(id.as_str()))
        .expect("the ramp is caught");
    let (first_id, day) = (&ids[pos].0, ids[pos].1);
    assert!(day <= N, "caught on ramp day {day}");
    assert!(
        pos * 4 < ids.len(),
        "{pos} of {} accesses before",
        ids.len()
    );
    let first = findings
        .iter()
        .find(|f| f.event_ids.contains(first_id))
        .expect("its finding");
    let trend = first
        .reasons
        .iter()
        .find(|r| r.detector == DetectorId::Trend)
        .unwrap_or_else(|| panic!("no trend reason: {:?}", first.reasons));
    assert!(
        trend.explanation.contains("git://org/payments-core"),
        "{}",
        trend.explanation
    );
    assert!(max_score(&verdicts[&day]) >= 0.6);
}

#[test]
fn a_place_taken_up_for_good_is_not_a_trend() {
    // Taken up late on its first day (2 pulls), then used steadily (7 to 10 a day).
    let steady = [2, 8, 10, 7, 9, 10, 8];
    let Run {
        verdicts,
        findings,
        extra: ids,
    } = run_agent("code-agent-2", "git://org/checkout-api", &steady);
    for (day, vs) in &verdicts {
        for v in vs {
            assert!(
                v.reasons.iter().all(|r| r.detector != DetectorId::Trend),
                "day {day}: {v:?}"
            );
        }
        if *day >= 3 {
            assert!(max_score(vs) < 0.6, "day {day}: {vs:?}");
        }
    }
    let later: HashSet<&str> = ids
        .iter()
        .filter(|(_, d)| *d >= 3)
        .map(|(id, _)| id.as_str())
        .collect();
    let flagged_later = findings
        .iter()
        .any(|f| f.event_ids.iter().any(|id| later.contains(id.as_str())));
    assert!(!flagged_later, "{findings:?}");
}

/// Ramp day (1 = its first) of an attack's first event in a finding, and the share of its
/// events before it.
fn onset(events: &[(i64, String)], in_finding: &HashSet<&str>) -> Option<(i64, f64)> {
    let first_day = events.first()?.0.div_euclid(DAY);
    let pos = events
        .iter()
        .position(|(_, id)| in_finding.contains(id.as_str()))?;
    Some((
        events[pos].0.div_euclid(DAY) - first_day + 1,
        pos as f64 / events.len() as f64,
    ))
}

#[test]
fn every_poisoning_agent_of_a_small_fleet_is_caught_within_n_days() {
    // 60 agents over 14 days, 12 of them poisoned from day 7 to day 14 (seed 4: measured all
    // 12 caught, the last on ramp day 5 after 20% of its ramp's events; 0.099 benign findings
    // per agent-day, none of them a trend).
    let dir = tempfile::tempdir().unwrap();
    let cfg = SimConfig {
        agents: 60,
        days: 14,
        seed: 4,
        scenarios: vec![Scenario::BaselinePoisoning],
        out: dir.path().to_path_buf(),
        ..SimConfig::default()
    };
    simulate(&cfg).expect("simulate");
    let ds = load_dataset(dir.path()).expect("dataset");
    let mut engine = Engine::new(Settings::default());
    if let Some(e) = &ds.entitlements {
        engine.set_entitlements(std::sync::Arc::new(e.clone()));
    }
    let mut out = Vec::new();
    for ev in &ds.events {
        engine.process(ev, &mut out);
    }
    engine.finish(&mut out);
    let findings: Vec<&Finding> = out
        .iter()
        .filter_map(|r| match r {
            OutputRecord::Finding(f) => Some(f),
            _ => None,
        })
        .collect();
    // Each attack's events, in time order.
    let mut ramps: HashMap<&str, Vec<(i64, String)>> = HashMap::new();
    for ev in &ds.events {
        if let Some(l) = ds.labels.get(ev.event_id.as_ref())
            && let Some(a) = l.attack_id.as_deref()
        {
            ramps
                .entry(a)
                .or_default()
                .push((ev.time_ms, ev.event_id.to_string()));
        }
    }
    assert_eq!(ds.attacks.len(), 12);
    for a in &ds.attacks {
        assert_eq!(a.scenario, "baseline_poisoning");
        // Only findings on the attacked agent that hold the ramp's own events count.
        let held: HashSet<&str> = findings
            .iter()
            .filter(|f| f.agent_id == a.agent_id)
            .flat_map(|f| f.event_ids.iter().map(String::as_str))
            .collect();
        let (day, share) = onset(&ramps[a.attack_id.as_str()], &held)
            .unwrap_or_else(|| panic!("{} on {} is not caught", a.attack_id, a.agent_id));
        assert!(day <= N, "{} caught on ramp day {day}", a.attack_id);
        assert!(
            share <= 0.25,
            "{}: {share:.2} of its events before",
            a.attack_id
        );
    }
    let attacked: HashSet<&str> = ds.attacks.iter().map(|a| a.agent_id.as_str()).collect();
    let trend_on_benign = findings.iter().any(|f| {
        !attacked.contains(f.agent_id.as_str())
            && f.reasons.iter().any(|r| r.detector == DetectorId::Trend)
    });
    assert!(!trend_on_benign, "a benign agent's finding names a trend");
    let r = run(&ds, &Scorer::Engine(Box::default()));
    assert!(
        r.benign_findings_per_agent_day <= 0.11,
        "{} benign findings per agent-day",
        r.benign_findings_per_agent_day
    );
}
