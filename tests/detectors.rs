//! Behaviour of each detector as a user sees it: what is flagged and what is not.

use std::borrow::Cow;

use cinch::config::Settings;
use cinch::detect::Verdict;
use cinch::engine::Engine;
use cinch::event::{AccessEvent, Format, Outcome};
use cinch::output::OutputRecord;
use cinch::vocab::DetectorId;

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
const MIN: i64 = 60_000;
/// Monday 2026-01-05 00:00 UTC.
const T0: i64 = 1_767_571_200_000;

#[derive(Clone)]
struct Ev {
    id: String,
    t: i64,
    agent: String,
    kind: &'static str,
    action: String,
    resource: String,
    outcome: Outcome,
    session: Option<String>,
    ip: String,
    bytes: Option<u64>,
    intent: Option<String>,
}

impl Ev {
    fn new(agent: &str, t: i64, action: &str, resource: &str) -> Ev {
        Ev {
            id: format!("{agent}-{t}-{action}-{resource}"),
            t,
            agent: agent.into(),
            kind: "ai_agent",
            action: action.into(),
            resource: resource.into(),
            outcome: Outcome::Success,
            session: None,
            ip: "10.0.0.5".into(),
            bytes: Some(2_000),
            intent: None,
        }
    }
    fn session(mut self, s: &str) -> Ev {
        self.session = Some(s.into());
        self
    }
    fn intent(mut self, s: &str) -> Ev {
        self.intent = Some(s.into());
        self
    }
    fn ip(mut self, s: &str) -> Ev {
        self.ip = s.into();
        self
    }
    fn bytes(mut self, b: u64) -> Ev {
        self.bytes = Some(b);
        self
    }
    fn denied(mut self) -> Ev {
        self.outcome = Outcome::Denied;
        self
    }
    fn kind(mut self, k: &'static str) -> Ev {
        self.kind = k;
        self
    }
    fn as_event(&self) -> AccessEvent<'_> {
        AccessEvent {
            format: Format::Native,
            event_id: Cow::Borrowed(&self.id),
            time_ms: self.t,
            agent_id: Cow::Borrowed(&self.agent),
            agent_kind: Some(Cow::Borrowed(self.kind)),
            action: Cow::Borrowed(&self.action),
            resource: Cow::Borrowed(&self.resource),
            outcome: self.outcome,
            session_id: self.session.as_deref().map(Cow::Borrowed),
            source_ip: Some(Cow::Borrowed(&self.ip)),
            bytes: self.bytes,
            grant: None,
            intent: self.intent.as_deref().map(Cow::Borrowed),
            attributes: None,
            tool: None,
        }
    }
}

struct Harness {
    engine: Engine,
    out: Vec<OutputRecord>,
}

impl Harness {
    fn new() -> Self {
        Harness {
            engine: Engine::new(Settings::default()),
            out: Vec::new(),
        }
    }
    fn feed(&mut self, e: &Ev) -> Verdict {
        self.engine.process(&e.as_event(), &mut self.out)
    }
    fn feed_all(&mut self, evs: &mut [Ev]) -> Vec<Verdict> {
        evs.sort_by_key(|e| e.t);
        evs.iter().map(|e| self.feed(e)).collect()
    }
    fn findings(&mut self) -> Vec<cinch::output::finding::Finding> {
        self.engine.finish(&mut self.out);
        self.out
            .iter()
            .filter_map(|r| match r {
                OutputRecord::Finding(f) => Some(f.clone()),
                _ => None,
            })
            .collect()
    }
}

fn detector(v: &Verdict, id: DetectorId) -> f32 {
    v.reasons
        .iter()
        .find(|r| r.detector == id)
        .map_or(0.0, |r| r.score)
}

/// A support agent's working-hours routine for `days` days: sessions of
/// kb search -> customer lookup -> ticket read -> ticket update.
fn support_history(agent: &str, days: i64) -> Vec<Ev> {
    let mut v = Vec::new();
    for d in 0..days {
        if d % 7 >= 5 {
            continue;
        }
        for s in 0..12 {
            let t = T0 + d * DAY + 9 * HOUR + s * 35 * MIN;
            let sess = format!("{agent}-s{d}-{s}");
            let cust = 1000 + d * 100 + s;
            for (i, (a, r)) in [
                ("kb:Search", "kb://articles".to_string()),
                ("crm:GetCustomer", format!("crm://customers/{cust}")),
                ("tickets:Read", format!("tickets://queue/{}", cust * 7)),
                ("tickets:Update", format!("tickets://queue/{}", cust * 7)),
            ]
            .into_iter()
            .enumerate()
            {
                v.push(
                    Ev::new(agent, t + i as i64 * 20_000, a, &r)
                        .session(&sess)
                        .intent("answer customer ticket")
                        .bytes(1500 + (s as u64 * 37 + i as u64 * 11) % 900),
                );
            }
        }
    }
    v
}

fn after_history(days: i64) -> i64 {
    T0 + days * DAY + 10 * HOUR
}

#[test]
fn new_customer_id_in_a_known_pattern_is_not_novel() {
    let mut h = Harness::new();
    h.feed_all(&mut support_history("support-1", 14));
    let t = after_history(14);
    let v = h.feed(
        &Ev::new("support-1", t, "crm:GetCustomer", "crm://customers/987654")
            .session("x")
            .intent("answer customer ticket"),
    );
    assert!(detector(&v, DetectorId::Novelty) < 0.2, "{v:?}");
    assert!(v.score < 0.3, "{v:?}");
}

#[test]
fn a_new_table_is_novel() {
    let mut h = Harness::new();
    let mut hist = Vec::new();
    for d in 0..14 {
        for i in 0..40 {
            let table = ["orders", "invoices", "customers"][i % 3];
            hist.push(Ev::new(
                "analyst-1",
                T0 + d * DAY + 9 * HOUR + i as i64 * 5 * MIN,
                "db:Select",
                &format!("postgres://sales/{table}"),
            ));
        }
    }
    h.feed_all(&mut hist);
    let t = after_history(14);
    let v = h.feed(&Ev::new(
        "analyst-1",
        t,
        "db:Select",
        "postgres://hr/payroll",
    ));
    assert!(detector(&v, DetectorId::Novelty) >= 0.6, "{v:?}");
    assert!(
        v.reasons
            .iter()
            .any(|r| r.explanation.contains("postgres://hr")),
        "{v:?}"
    );
}

#[test]
fn first_use_of_a_tool_is_flagged_with_an_explanation() {
    let mut h = Harness::new();
    h.feed_all(&mut support_history("support-1", 14));
    let t = after_history(14);
    let v = h.feed(
        &Ev::new("support-1", t, "mail:Send", "mailto:drop@exfil.example")
            .session("x")
            .intent("answer customer ticket"),
    );
    assert!(v.score >= 0.6, "{v:?}");
    let novelty = v
        .reasons
        .iter()
        .find(|r| r.detector == DetectorId::Novelty)
        .expect("novelty reason");
    assert!(
        novelty.explanation.contains("mail:Send"),
        "{}",
        novelty.explanation
    );
    assert!(
        novelty.explanation.contains("days of history"),
        "{}",
        novelty.explanation
    );
}

#[test]
fn a_burst_is_flagged_and_gives_one_finding() {
    let mut h = Harness::new();
    h.feed_all(&mut support_history("support-1", 14));
    let t = after_history(14);
    let mut burst: Vec<Ev> = (0..200)
        .map(|i| {
            Ev::new(
                "support-1",
                t + i * 500,
                "crm:GetCustomer",
                &format!("crm://customers/{}", 50_000 + i),
            )
            .session("burst")
        })
        .collect();
    let verdicts = h.feed_all(&mut burst);
    let max_rate = verdicts
        .iter()
        .map(|v| detector(v, DetectorId::Rate))
        .fold(0.0, f32::max);
    assert!(max_rate >= 0.8, "rate detector peak {max_rate}");
    let findings = h.findings();
    let burst_findings: Vec<_> = findings.iter().filter(|f| f.first_ms >= t).collect();
    assert_eq!(
        burst_findings.len(),
        1,
        "one burst, one finding: {burst_findings:#?}"
    );
    assert!(
        burst_findings[0].event_count >= 100,
        "the finding lists the burst's events"
    );
}

#[test]
fn a_routine_hourly_job_is_not_flagged() {
    let mut h = Harness::new();
    let mut evs = Vec::new();
    // An ETL job: every hour, 120 reads of new dated objects within two minutes, 24/7.
    for hour in 0..(21 * 24) {
        let base = T0 + hour * HOUR + 5 * MIN;
        for i in 0..120 {
            let day = hour / 24;
            evs.push(
                Ev::new(
                    "etl-orders-1",
                    base + i * 1000,
                    "s3:GetObject",
                    &format!(
                        "s3://orders-raw/2026/01/{:02}/part-{:04}.json.gz",
                        5 + day % 20,
                        hour * 1000 + i
                    ),
                )
                .kind("service_account")
                .bytes(50_000 + (i as u64 * 7919) % 20_000),
            );
        }
    }
    let verdicts = h.feed_all(&mut evs);
    let last_week = &verdicts[verdicts.len() - 7 * 24 * 120..];
    let flagged = last_week.iter().filter(|v| v.score >= 0.6).count();
    assert_eq!(
        flagged, 0,
        "a routine job raised {flagged} anomalous events"
    );
}

/// A pipeline that reads a few objects every hour, all day; from day 7 on a nightly stage reads
/// 60 more within two minutes at 03:20, in the same time-of-day block as the quiet hours before
/// it, every day. With `odd_hour`, from day 7 on the hour before the stage is quiet save for one
/// call the agent has never made: an anomalous hour that raises no peak. Returns the events and
/// the (day, index) of each event of the stage's bursts.
fn nightly_stage(odd_hour: bool) -> (Vec<Ev>, Vec<(i64, usize)>) {
    let mut evs = Vec::new();
    let mut spikes = Vec::new();
    for day in 0..16 {
        for hour in 0..24 {
            let base = T0 + day * DAY + hour * HOUR;
            if odd_hour && hour == 2 && day >= 7 {
                evs.push(
                    Ev::new(
                        "etl-clicks-1",
                        base + 30 * MIN,
                        &format!("ops{day}:DeleteSnapshot"),
                        &format!("ops{day}://backups/snap-{day}"),
                    )
                    .kind("service_account"),
                );
                continue;
            }
            let n = if hour == 3 && day >= 7 { 70 } else { 10 };
            for i in 0..n {
                if n > 10 {
                    spikes.push((day, evs.len()));
                }
                evs.push(
                    Ev::new(
                        "etl-clicks-1",
                        base + 20 * MIN + i * 2_000,
                        "s3:GetObject",
                        &format!(
                            "s3://clicks-raw/2026/01/{:02}/part-{:04}.json.gz",
                            5 + day,
                            hour * 100 + i
                        ),
                    )
                    .kind("service_account"),
                );
            }
        }
    }
    (evs, spikes)
}

/// The highest `rate` score of the stage's events on `days`.
fn stage_rate(verdicts: &[Verdict], spikes: &[(i64, usize)], days: std::ops::Range<i64>) -> f32 {
    spikes
        .iter()
        .filter(|(d, _)| days.contains(d))
        .map(|&(_, i)| detector(&verdicts[i], DetectorId::Rate))
        .fold(0.0, f32::max)
}

#[test]
fn a_daily_batch_spike_becomes_routine_within_days() {
    let mut h = Harness::new();
    let (mut evs, spikes) = nightly_stage(false);
    let verdicts = h.feed_all(&mut evs);
    assert!(
        stage_rate(&verdicts, &spikes, 7..8) >= 0.6,
        "the first night of the new stage is a burst"
    );
    let later = stage_rate(&verdicts, &spikes, 12..16);
    assert!(
        later < 0.3,
        "five nights later the stage is routine, rate {later}"
    );
}

#[test]
fn an_odd_quiet_hour_before_a_nightly_spike_does_not_keep_it_unusual() {
    let mut h = Harness::new();
    let (mut evs, spikes) = nightly_stage(true);
    let verdicts = h.feed_all(&mut evs);
    let odd: Vec<f32> = evs
        .iter()
        .zip(&verdicts)
        .filter(|(e, _)| e.action.contains("DeleteSnapshot"))
        .map(|(_, v)| v.score)
        .collect();
    assert!(
        odd.len() == 9 && odd.iter().all(|&s| s >= 0.3),
        "each odd call is anomalous: {odd:?}"
    );
    assert!(
        stage_rate(&verdicts, &spikes, 7..8) >= 0.6,
        "the first night is a burst"
    );
    let later = stage_rate(&verdicts, &spikes, 12..16);
    assert!(
        later < 0.3,
        "five nights later the stage is routine, rate {later}"
    );
}

#[test]
fn volume_outlier_is_flagged() {
    let mut h = Harness::new();
    h.feed_all(&mut support_history("support-1", 14));
    let t = after_history(14);
    let v = h.feed(
        &Ev::new("support-1", t, "crm:GetCustomer", "crm://customers/4242")
            .bytes(2_000_000_000)
            .session("v"),
    );
    assert!(detector(&v, DetectorId::Volume) >= 0.8, "{v:?}");
}

#[test]
fn denial_spike_is_flagged_single_denial_is_not() {
    let mut h = Harness::new();
    h.feed_all(&mut support_history("support-1", 14));
    let t = after_history(14);
    let one = h.feed(
        &Ev::new("support-1", t, "tickets:Read", "tickets://queue/1")
            .denied()
            .session("d"),
    );
    assert!(detector(&one, DetectorId::Denial) < 0.2, "{one:?}");
    let mut probing: Vec<Ev> = (0..8)
        .map(|i| {
            Ev::new(
                "support-1",
                t + 10_000 + i * 5_000,
                "iam:AttachRolePolicy",
                &format!("arn:aws:iam::1:role/admin{i}"),
            )
            .denied()
        })
        .collect();
    let vs = h.feed_all(&mut probing);
    let peak = vs
        .iter()
        .map(|v| detector(v, DetectorId::Denial))
        .fold(0.0, f32::max);
    assert!(peak >= 0.8, "denial peak {peak}");
}

#[test]
fn unlikely_transition_in_a_session_is_flagged() {
    let mut h = Harness::new();
    h.feed_all(&mut support_history("support-1", 28));
    let t = after_history(28);
    h.feed(
        &Ev::new("support-1", t, "kb:Search", "kb://articles")
            .session("q")
            .intent("answer customer ticket"),
    );
    // Known actions, but tickets:Update straight after a search never happens.
    let v = h.feed(
        &Ev::new(
            "support-1",
            t + 5_000,
            "tickets:Update",
            "tickets://queue/77",
        )
        .session("q")
        .intent("answer customer ticket"),
    );
    // Sequence corroborates: it reports the oddity but alone opens no finding.
    assert!(detector(&v, DetectorId::Sequence) >= 0.25, "{v:?}");
    assert!(
        v.reasons
            .iter()
            .any(|r| r.explanation.contains("tickets:Update")),
        "{v:?}"
    );
    assert!(v.score < 0.6, "{v:?}");
    // The usual next step after a search is not reported.
    h.feed(
        &Ev::new("support-1", t + 60_000, "kb:Search", "kb://articles")
            .session("r")
            .intent("answer customer ticket"),
    );
    let usual = h.feed(
        &Ev::new(
            "support-1",
            t + 65_000,
            "crm:GetCustomer",
            "crm://customers/5",
        )
        .session("r")
        .intent("answer customer ticket"),
    );
    assert_eq!(detector(&usual, DetectorId::Sequence), 0.0, "{usual:?}");
}

#[test]
fn enumeration_breadth_is_flagged() {
    let mut h = Harness::new();
    h.feed_all(&mut support_history("support-1", 14));
    let t = after_history(14);
    let mut evs: Vec<Ev> = (0..60)
        .map(|i| {
            Ev::new(
                "support-1",
                t + i * 3_000,
                "kb:Search",
                &format!("kb://articles/secret-{i}x"),
            )
        })
        .collect();
    let vs = h.feed_all(&mut evs);
    let peak = vs
        .iter()
        .map(|v| detector(v, DetectorId::Breadth))
        .fold(0.0, f32::max);
    assert!(peak >= 0.8, "breadth peak {peak}");
}

#[test]
fn off_hours_activity_is_flagged() {
    let mut h = Harness::new();
    h.feed_all(&mut support_history("support-1", 14));
    let t = T0 + 15 * DAY + 3 * HOUR; // Tuesday 03:00, the agent works 09:00-16:00 on weekdays
    let v = h.feed(&Ev::new("support-1", t, "kb:Search", "kb://articles").session("night"));
    // An unusual hour alone is reported but opens no finding...
    assert!(detector(&v, DetectorId::TimeOfDay) >= 0.5, "{v:?}");
    assert!(v.score < 0.6, "{v:?}");
    // ...together with a network the agent never used, it does (a replayed session).
    let replay = h.feed(
        &Ev::new("support-1", t + 60_000, "kb:Search", "kb://articles")
            .ip("198.51.100.7")
            .session("night"),
    );
    assert!(replay.score >= 0.6, "{replay:?}");
    let day = h.feed(
        &Ev::new(
            "support-1",
            T0 + 15 * DAY + 10 * HOUR,
            "kb:Search",
            "kb://articles",
        )
        .session("day"),
    );
    assert!(detector(&day, DetectorId::TimeOfDay) < 0.2, "{day:?}");
}

#[test]
fn new_network_is_flagged_new_address_on_known_network_less_so() {
    let mut h = Harness::new();
    h.feed_all(&mut support_history("support-1", 14));
    let t = after_history(14);
    let same_net = h.feed(
        &Ev::new("support-1", t, "kb:Search", "kb://articles")
            .ip("10.0.0.9")
            .session("a"),
    );
    let new_net = h.feed(
        &Ev::new("support-1", t + 1000, "kb:Search", "kb://articles")
            .ip("203.0.113.50")
            .session("b"),
    );
    assert!(detector(&new_net, DetectorId::Source) >= 0.5, "{new_net:?}");
    assert!(detector(&same_net, DetectorId::Source) < detector(&new_net, DetectorId::Source));
}

#[test]
fn intent_mismatch_is_flagged_with_the_intent_named() {
    let mut h = Harness::new();
    h.feed_all(&mut support_history("support-1", 14));
    let t = after_history(14);
    let v = h.feed(
        &Ev::new("support-1", t, "crm:GetCustomer", "postgres://hr/payroll")
            .session("p")
            .intent("answer customer ticket"),
    );
    let r = v
        .reasons
        .iter()
        .find(|r| r.detector == DetectorId::Intent)
        .expect("intent reason");
    assert!(r.score >= 0.5, "{r:?}");
    assert!(
        r.explanation.contains("answer customer ticket"),
        "{}",
        r.explanation
    );
}

#[test]
fn fleet_wide_rollout_of_a_new_tool_is_excused_by_peers() {
    let mut h = Harness::new();
    let mut evs = Vec::new();
    for a in 0..10 {
        evs.extend(support_history(&format!("support-{a}"), 14));
    }
    // From day 14 every support agent starts using a new tool, staggered over the morning.
    for a in 0..10 {
        for d in 14..16 {
            for s in 0..6 {
                let t = T0 + d * DAY + 9 * HOUR + a * 20 * MIN + s * 30 * MIN;
                evs.push(
                    Ev::new(
                        &format!("support-{a}"),
                        t,
                        "kb:SemanticSearch",
                        "kb://articles",
                    )
                    .session(&format!("r{a}{d}{s}")),
                );
            }
        }
    }
    evs.sort_by_key(|e| e.t);
    let mut late_adopter_scores = Vec::new();
    for e in &evs {
        let v = h.feed(e);
        if e.action == "kb:SemanticSearch" && e.t >= T0 + 15 * DAY {
            late_adopter_scores.push(v.score);
        }
    }
    let flagged = late_adopter_scores.iter().filter(|s| **s >= 0.6).count();
    assert_eq!(
        flagged, 0,
        "a fleet-wide rollout raised {flagged} anomalous events on day two: {late_adopter_scores:?}"
    );
}

/// Ten support agents with two weeks of history; from day 14 the first `adopters` of them
/// start using `action`, one every 40 minutes from 09:07. Returns the findings and the audit
/// records of a run under `settings`.
fn adoption(
    settings: Settings,
    adopters: i64,
    action: &str,
) -> (
    Vec<cinch::output::finding::Finding>,
    Vec<cinch::output::audit::Audit>,
) {
    let mut h = Harness {
        engine: Engine::new(settings),
        out: Vec::new(),
    };
    let mut evs = Vec::new();
    for a in 0..10 {
        evs.extend(support_history(&format!("support-{a}"), 16));
    }
    for a in 0..adopters {
        for s in 0..3 {
            let t = T0 + 14 * DAY + 9 * HOUR + 7 * MIN + a * 40 * MIN + s * 2 * MIN;
            evs.push(
                Ev::new(&format!("support-{a}"), t, action, "kb://articles")
                    .session(&format!("new-{a}-{s}")),
            );
        }
    }
    h.feed_all(&mut evs);
    let findings = h.findings();
    let audits = h
        .out
        .iter()
        .filter_map(|r| match r {
            OutputRecord::Audit(a) => Some(a.clone()),
            _ => None,
        })
        .collect();
    (findings, audits)
}

#[test]
fn the_first_users_of_a_tool_the_team_then_takes_up_are_absorbed_as_a_rollout() {
    let on =
        |f: &cinch::output::finding::Finding| f.actions.iter().any(|a| a == "kb:SemanticSearch");
    // Without the hold the first adopters, whom no peer has followed yet, raise findings.
    let mut off = Settings::default();
    off.decide.rollout_hold_secs = 0;
    let (findings, _) = adoption(off, 6, "kb:SemanticSearch");
    let before = findings.iter().filter(|f| on(f)).count();
    assert!(
        before >= 1,
        "no finding on the roll-out to absorb: {findings:?}"
    );
    // With it, the team follows within the hold: no finding, an audit record each instead.
    let (findings, audits) = adoption(Settings::default(), 6, "kb:SemanticSearch");
    let left: Vec<_> = findings.iter().filter(|f| on(f)).collect();
    assert!(left.is_empty(), "roll-out findings emitted: {left:?}");
    let absorbed: Vec<_> = audits
        .iter()
        .filter(|a| a.event == cinch::output::audit::AuditEvent::RolloutAbsorbed)
        .collect();
    assert_eq!(absorbed.len(), before, "{absorbed:?}");
    for a in &absorbed {
        assert_eq!(a.details["actions"][0]["action"], "kb:SemanticSearch");
        assert!(a.details["actions"][0]["followers"].as_u64().unwrap() >= 2);
    }
}

#[test]
fn a_new_tool_no_peer_follows_is_reported_after_the_hold() {
    let (findings, audits) = adoption(Settings::default(), 1, "admin:ExportAllCustomers");
    let f: Vec<_> = findings
        .iter()
        .filter(|f| f.actions.iter().any(|a| a == "admin:ExportAllCustomers"))
        .collect();
    assert_eq!(f.len(), 1, "{findings:?}");
    assert!(
        !audits
            .iter()
            .any(|a| a.event == cinch::output::audit::AuditEvent::RolloutAbsorbed)
    );
}

#[test]
fn baseline_does_not_learn_an_attack_quickly() {
    let mut h = Harness::new();
    h.feed_all(&mut support_history("support-1", 14));
    let t = after_history(14);
    // The same exfiltration call repeated 50 times in one afternoon stays anomalous.
    let mut evs: Vec<Ev> = (0..50)
        .map(|i| {
            Ev::new(
                "support-1",
                t + i * 2 * MIN,
                "mail:Send",
                "mailto:drop@exfil.example",
            )
            .session("inj")
        })
        .collect();
    let vs = h.feed_all(&mut evs);
    assert!(vs.last().unwrap().score >= 0.6, "{:?}", vs.last());
}

#[test]
fn scores_are_deterministic() {
    let run = || {
        let mut h = Harness::new();
        let mut evs = support_history("support-1", 10);
        evs.extend(support_history("support-2", 10));
        evs.push(Ev::new(
            "support-1",
            after_history(10),
            "mail:Send",
            "mailto:x@y.example",
        ));
        h.feed_all(&mut evs)
            .into_iter()
            .map(|v| (v.score, v.reasons))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn explaining_only_what_findings_quote_changes_no_score_and_no_finding() {
    let t = after_history(14);
    let mut evs = support_history("support-1", 14);
    evs.push(Ev::new("support-1", t, "crm:GetCustomer", "crm://customers/812").session("y"));
    evs.push(
        Ev::new(
            "support-1",
            t + MIN,
            "mail:Send",
            "mailto:drop@exfil.example",
        )
        .session("x")
        .intent("answer customer ticket"),
    );
    // A burst: its events join one finding, which keeps each detector's strongest reason.
    evs.extend((0..120).map(|i| {
        Ev::new(
            "support-1",
            t + 2 * MIN + i * 500,
            "crm:GetCustomer",
            &format!("crm://customers/{}", 50_000 + i),
        )
        .session("burst")
    }));
    let mut all = Harness::new();
    let mut lean = Harness::new();
    lean.engine.set_explain_all(false);
    let (va, vl) = (all.feed_all(&mut evs.clone()), lean.feed_all(&mut evs));
    let threshold = Settings::default().decide.finding_threshold;
    let (mut below_with_reasons, mut finding_reasons_unexplained) = (0, 0);
    for (a, l) in va.iter().zip(&vl) {
        assert_eq!(a.score, l.score);
        assert_eq!(a.reasons.len(), l.reasons.len());
        for (ra, rl) in a.reasons.iter().zip(&l.reasons) {
            assert_eq!((ra.detector, ra.score), (rl.detector, rl.score));
            assert!(!ra.explanation.is_empty(), "explained by default");
            if l.score >= threshold {
                // Explained when its finding keeps it (each detector's strongest reason).
                assert!(rl.explanation.is_empty() || rl.explanation == ra.explanation);
                finding_reasons_unexplained += usize::from(rl.explanation.is_empty());
            } else {
                assert!(rl.explanation.is_empty(), "{rl:?} was explained");
                below_with_reasons += 1;
            }
        }
    }
    assert!(
        below_with_reasons > 0,
        "some verdicts below the threshold had reasons"
    );
    assert!(
        finding_reasons_unexplained > 0,
        "reasons a finding did not keep were left unexplained"
    );
    let (fa, fl) = (all.findings(), lean.findings());
    assert!(!fa.is_empty());
    assert_eq!(
        serde_json::to_string(&fa).unwrap(),
        serde_json::to_string(&fl).unwrap(),
        "the findings are the same, explanations included"
    );
}
