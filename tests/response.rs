//! The response side as a security team sees it: least-privilege recommendations, signed
//! containment commands and the rails around them (learning period, cool-down, circuit
//! breaker), and analyst feedback that suppresses a false positive.

use std::borrow::Cow;
use std::sync::Arc;

use cinch::config::Settings;
use cinch::decide::suppress::Feedback;
use cinch::engine::Engine;
use cinch::event::{AccessEvent, Format, Outcome};
use cinch::grants::Entitlements;
use cinch::output::OutputRecord;
use cinch::output::audit::{Audit, AuditEvent};
use cinch::output::command::{Action, Command};
use cinch::output::finding::Finding;
use cinch::output::recommendation::{Change, Priority, Recommendation};
use cinch::output::sign::Signer;

const DAY: i64 = 86_400_000;
const MIN: i64 = 60_000;
/// Monday 2026-01-05 00:00 UTC.
const T0: i64 = 1_767_571_200_000;

const ENTITLEMENTS: &str = r#"
etl-1:
  raw-read: {actions: ["s3:GetObject"], resources: ["s3://raw/*"]}
  lake-read: {actions: ["s3:Get*", "s3:List*"], resources: ["s3://*"]}
  hr-read: {actions: ["db:Select"], resources: ["postgres://hr/*"]}
"#;

#[derive(Clone)]
struct Ev {
    id: String,
    t: i64,
    agent: String,
    action: String,
    resource: String,
    session: String,
    denied: bool,
    ip: String,
}

fn ev(agent: &str, t: i64, action: &str, resource: &str) -> Ev {
    Ev {
        id: format!("{agent}-{t}-{action}-{resource}"),
        t,
        agent: agent.into(),
        action: action.into(),
        resource: resource.into(),
        session: format!("s-{agent}-{}", (t - T0) / DAY),
        denied: false,
        ip: "10.0.0.5".into(),
    }
}

impl Ev {
    fn as_event(&self) -> AccessEvent<'_> {
        AccessEvent {
            format: Format::Native,
            event_id: Cow::Borrowed(&self.id),
            time_ms: self.t,
            agent_id: Cow::Borrowed(&self.agent),
            agent_kind: Some(Cow::Borrowed("service_account")),
            action: Cow::Borrowed(&self.action),
            resource: Cow::Borrowed(&self.resource),
            outcome: if self.denied {
                Outcome::Denied
            } else {
                Outcome::Success
            },
            session_id: Some(Cow::Borrowed(&self.session)),
            source_ip: Some(Cow::Borrowed(&self.ip)),
            bytes: Some(4_000),
            grant: None,
            intent: None,
            attributes: None,
            tool: None,
        }
    }
}

/// Routine traffic of `agent`: a raw object read every 20 minutes, from `from` for `days`.
fn routine(agent: &str, from: i64, days: i64) -> Vec<Ev> {
    (0..days * 72)
        .map(|i| {
            let t = from + i * 20 * MIN + 7_000;
            ev(
                agent,
                t,
                "s3:GetObject",
                &format!("s3://raw/part-{}.json", i % 12),
            )
        })
        .collect()
}

/// Reads of the finance team's secure bucket: a grant the agent's routine never uses.
fn raid(agent: &str, at: i64) -> Vec<Ev> {
    (0..12)
        .map(|i| {
            let (action, res) = if i % 3 == 0 {
                ("s3:ListObjects", "s3://finance-secure/".to_string())
            } else {
                (
                    "s3:GetObject",
                    format!("s3://finance-secure/payroll/2025-{:02}.csv", i),
                )
            };
            ev(agent, at + i * 5_000, action, &res)
        })
        .collect()
}

struct Run {
    engine: Engine,
    out: Vec<OutputRecord>,
    signer: Arc<Signer>,
}

impl Run {
    fn new(settings: Settings, ents: &str) -> Run {
        let mut engine = Engine::new(settings);
        let agents = ents_for(ents);
        engine.set_entitlements(Arc::new(agents));
        let signer = Arc::new(cinch::drive::files::fresh_signer());
        engine.set_signer(signer.clone());
        Run {
            engine,
            out: Vec::new(),
            signer,
        }
    }

    fn feed(&mut self, mut evs: Vec<Ev>) {
        evs.sort_by_key(|e| e.t);
        for e in &evs {
            self.engine.process(&e.as_event(), &mut self.out);
        }
    }

    fn finish(&mut self) {
        self.engine.finish(&mut self.out);
    }

    fn findings(&self) -> Vec<&Finding> {
        self.out
            .iter()
            .filter_map(|r| match r {
                OutputRecord::Finding(f) => Some(f),
                _ => None,
            })
            .collect()
    }

    fn commands(&self) -> Vec<&Command> {
        self.out
            .iter()
            .filter_map(|r| match r {
                OutputRecord::Command(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    fn recommendations(&self) -> Vec<&Recommendation> {
        self.out
            .iter()
            .filter_map(|r| match r {
                OutputRecord::Recommendation(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    fn audit(&self, event: AuditEvent) -> Vec<&Audit> {
        self.out
            .iter()
            .filter_map(|r| match r {
                OutputRecord::Audit(a) if a.event == event => Some(a),
                _ => None,
            })
            .collect()
    }
}

fn ents_for(yaml: &str) -> Entitlements {
    Entitlements::parse(yaml, "test").expect("test entitlements")
}

/// The same grants for several agents.
fn fleet_ents(agents: &[String]) -> String {
    let mut s = String::new();
    for a in agents {
        s.push_str(&format!(
            "{a}:\n  raw-read: {{actions: [\"s3:GetObject\"], resources: [\"s3://raw/*\"]}}\n  lake-read: {{actions: [\"s3:Get*\", \"s3:List*\"], resources: [\"s3://*\"]}}\n"
        ));
    }
    s
}

#[test]
fn unused_grants_are_proposed_for_removal_only_after_enough_history_and_only_once() {
    let mut run = Run::new(Settings::default(), ENTITLEMENTS);
    run.feed(routine("etl-1", T0, 6));
    assert!(
        run.recommendations().is_empty(),
        "6 days is less than the minimum history: no data is not unused"
    );
    run.feed(routine("etl-1", T0 + 6 * DAY, 6));
    run.finish();
    let recs = run.recommendations();
    let mut removed: Vec<&str> = recs
        .iter()
        .filter(|r| r.change == Change::Remove)
        .map(|r| r.grant.as_str())
        .collect();
    removed.sort_unstable();
    assert_eq!(removed, ["hr-read", "lake-read"], "{recs:#?}");
    for r in &recs {
        assert!(r.evidence.observed_days >= 7.0, "{r:?}");
        assert_eq!(r.evidence.uses, 0, "{r:?}");
        assert!(r.reason.contains("not used"), "{}", r.reason);
        assert!(r.proposed.actions.is_empty() && r.proposed.resources.is_empty());
    }
    assert!(
        recs.iter().all(|r| r.grant != "raw-read"),
        "the grant the routine uses, within one bucket, stays as it is"
    );
    assert_eq!(
        recs.len(),
        2,
        "each is emitted once, not every day: {recs:#?}"
    );
}

#[test]
fn a_never_used_grant_taken_by_an_attack_is_revoked_by_a_signed_command() {
    let mut settings = Settings::default();
    settings.grants.min_history_days = 3.0;
    let mut run = Run::new(settings, ENTITLEMENTS);
    run.feed(routine("etl-1", T0, 5));
    run.feed(raid("etl-1", T0 + 5 * DAY + 3 * 3_600_000));
    run.feed(routine("etl-1", T0 + 5 * DAY + 4 * 3_600_000, 1));
    run.finish();
    let findings = run.findings();
    let raid_finding = findings
        .iter()
        .find(|f| f.resources.iter().any(|r| r.contains("finance-secure")))
        .expect("the raid raises a finding");
    assert!(raid_finding.grants.contains(&"lake-read".to_string()));
    let cmds = run.commands();
    let revoke = cmds
        .iter()
        .find(|c| c.action == Action::RevokeGrant)
        .unwrap_or_else(|| panic!("no revoke_grant: {cmds:#?}"));
    assert_eq!(revoke.target, "lake-read");
    assert_eq!(revoke.finding_ids, vec![raid_finding.finding_id.clone()]);
    assert!(revoke.dry_run, "dry run is the default");
    assert_eq!(
        revoke.rollback.grant.as_ref().unwrap().resources,
        vec!["s3://*"],
        "the rollback holds the grant as it was"
    );
    assert!(revoke.expires_at > revoke.issued_at);
    let record = serde_json::to_value(revoke).unwrap();
    run.signer.verifier().verify(&record).expect("signature");
    let mut tampered = record.clone();
    tampered["target"] = "raw-read".into();
    assert!(run.signer.verifier().verify(&tampered).is_err());
    // And a high-priority recommendation to remove the grant, naming the finding.
    let recs = run.recommendations();
    let urgent = recs
        .iter()
        .find(|r| r.grant == "lake-read" && r.priority == Priority::High)
        .unwrap_or_else(|| panic!("no high-priority recommendation: {recs:#?}"));
    assert_eq!(urgent.change, Change::Remove);
    assert_eq!(urgent.finding_ids, vec![raid_finding.finding_id.clone()]);
    // Replaying gives the same command id.
    let mut again = Run::new(
        {
            let mut s = Settings::default();
            s.grants.min_history_days = 3.0;
            s
        },
        ENTITLEMENTS,
    );
    again.feed(routine("etl-1", T0, 5));
    again.feed(raid("etl-1", T0 + 5 * DAY + 3 * 3_600_000));
    assert!(
        again
            .commands()
            .iter()
            .any(|c| c.command_id == revoke.command_id),
        "command ids are stable"
    );
}

#[test]
fn no_command_during_the_learning_period_and_none_again_within_the_cooldown() {
    // Day 1: still learning. Even a policy that commands at any severity on one line of
    // evidence (here, repeated refusals) waits.
    let mut eager = Settings::default();
    eager.commands.min_severity = cinch::vocab::Severity::Low;
    eager.commands.min_evidence = 1;
    let mut run = Run::new(eager, ENTITLEMENTS);
    run.feed(routine("etl-1", T0, 1));
    let mut refused = raid("etl-1", T0 + DAY + 3 * 3_600_000);
    for e in refused.iter_mut().skip(6) {
        e.denied = true;
    }
    run.feed(refused);
    run.finish();
    assert!(!run.findings().is_empty(), "the raid is still a finding");
    assert!(run.commands().is_empty(), "{:#?}", run.commands());
    let withheld = run.audit(AuditEvent::CommandWithheld);
    assert!(
        withheld
            .iter()
            .any(|a| a.details["reason"] == "learning_period"),
        "{withheld:#?}"
    );

    // Day 5: a command, then a second raid 30 minutes later falls in the cool-down.
    let mut run = Run::new(Settings::default(), ENTITLEMENTS);
    let at = T0 + 5 * DAY + 3 * 3_600_000;
    run.feed(routine("etl-1", T0, 5));
    run.feed(raid("etl-1", at));
    let mut second = raid("etl-1", at + 30 * MIN);
    for e in &mut second {
        e.resource = e.resource.replace("payroll", "bonus");
        e.id.push_str("-2");
    }
    run.feed(second);
    run.finish();
    assert_eq!(run.findings().len(), 2, "two bursts, two findings");
    assert_eq!(run.commands().len(), 1, "{:#?}", run.commands());
    assert!(
        run.audit(AuditEvent::CommandWithheld)
            .iter()
            .any(|a| a.details["reason"] == "cooldown")
    );
}

#[test]
fn the_circuit_breaker_stops_commands_when_many_agents_trip_at_once() {
    let agents: Vec<String> = (0..10).map(|i| format!("etl-{i}")).collect();
    let mut run = Run::new(Settings::default(), &fleet_ents(&agents));
    let mut evs = Vec::new();
    for a in &agents {
        evs.extend(routine(a, T0, 5));
    }
    run.feed(evs);
    // Five agents raid within a minute: a fleet-wide change, not five attacks.
    let at = T0 + 5 * DAY + 3 * 3_600_000;
    let mut evs = Vec::new();
    for (i, a) in agents.iter().take(5).enumerate() {
        evs.extend(raid(a, at + i as i64 * 10_000));
    }
    run.feed(evs);
    let mut evs = Vec::new();
    for a in &agents {
        evs.extend(routine(a, at + 3_600_000, 1));
    }
    run.feed(evs);
    run.finish();
    let raided: Vec<&Finding> = run
        .findings()
        .into_iter()
        .filter(|f| f.resources.iter().any(|r| r.contains("finance-secure")))
        .collect();
    assert_eq!(raided.len(), 5, "findings go on");
    let opened = run.audit(AuditEvent::BreakerOpened);
    assert_eq!(opened.len(), 1, "{opened:#?}");
    assert!(
        opened[0].message.contains("agents tripped"),
        "{}",
        opened[0].message
    );
    assert_eq!(
        run.commands().len(),
        2,
        "the first two agents' commands went out before the third tripped the breaker"
    );
    assert_eq!(
        run.audit(AuditEvent::CommandWithheld)
            .iter()
            .filter(|a| a.details["reason"] == "circuit_breaker_open")
            .count(),
        3
    );
    assert_eq!(
        run.audit(AuditEvent::BreakerClosed).len(),
        1,
        "it closes after its cool-down"
    );
    assert_eq!(run.engine.stats().breaker_trips, 1);
}

#[test]
fn a_false_positive_is_suppressed_announced_and_learned() {
    let mut settings = Settings::default();
    settings.feedback.suppression_days = 2;
    let mut run = Run::new(settings, ENTITLEMENTS);
    run.feed(routine("etl-1", T0, 5));
    let first_raid = T0 + 5 * DAY + 3 * 3_600_000;
    run.feed(raid("etl-1", first_raid));
    run.feed(routine("etl-1", first_raid + 3_600_000, 1)[..10].to_vec());
    let f = run
        .findings()
        .into_iter()
        .find(|f| f.resources.iter().any(|r| r.contains("finance-secure")))
        .expect("a finding")
        .clone();
    run.engine.add_feedback(
        Feedback::parse(
            &serde_json::json!({
                "finding_id": f.finding_id,
                "agent_id": "etl-1",
                "verdict": "false_positive",
                "analyst": "alice@example.com",
                "reason": "month-end payroll export, approved",
            })
            .to_string(),
            "test",
        )
        .unwrap(),
    );
    let before = run.findings().len();
    // The same behaviour on each of the next days.
    for d in 1..=4 {
        let mut evs = routine("etl-1", first_raid + d * DAY - 2 * 3_600_000, 1)[..12].to_vec();
        let mut r = raid("etl-1", first_raid + d * DAY);
        for e in &mut r {
            e.id.push_str(&format!("-d{d}"));
        }
        evs.extend(r);
        run.feed(evs);
    }
    run.finish();
    let created = run.audit(AuditEvent::SuppressionCreated);
    assert_eq!(created.len(), 1);
    assert!(created[0].message.contains("alice@example.com"));
    let applied = run.audit(AuditEvent::SuppressionApplied);
    assert!(!applied.is_empty(), "a hidden finding is announced");
    assert!(
        applied[0].details["suppression_id"] == created[0].details["suppression_id"],
        "it names its suppression"
    );
    let later: Vec<&Finding> = run.findings()[before..]
        .iter()
        .copied()
        .filter(|f| f.resources.iter().any(|r| r.contains("finance-secure")))
        .collect();
    assert!(
        later.is_empty(),
        "no finding while suppressed, nor after it lapses once learned: {later:#?}"
    );
    assert_eq!(run.audit(AuditEvent::SuppressionExpired).len(), 1);
    assert!(run.engine.suppressions().is_empty(), "it lapsed");
}

/// A burst of twelve reads of `{dir}/summary-N.parquet`, five seconds apart.
fn reads(agent: &str, at: i64, dir: &str) -> Vec<Ev> {
    (0..12)
        .map(|i| {
            ev(
                agent,
                at + i * 5_000,
                "s3:GetObject",
                &format!("{dir}/summary-{i}.parquet"),
            )
        })
        .collect()
}

#[test]
fn change_within_the_agents_own_territory_is_narrowed_never_revoked() {
    // Day 5: a burst of reads of a new kind of object in the bucket the agent always reads. It is
    // new (a finding, severe and sustained enough for a command), but it names no place outside
    // the agent's territory: at most `narrow`, denying only the new pattern.
    let at = T0 + 5 * DAY + 3 * 3_600_000;
    let policy = Settings::default().commands;
    for dir in ["s3://raw", "s3://raw/hr-exports"] {
        // The second is a place the agent never used, inside the bucket its grant `raw-read`
        // names: its territory all the same.
        let mut run = Run::new(Settings::default(), ENTITLEMENTS);
        run.feed(routine("etl-1", T0, 5));
        run.feed(reads("etl-1", at, dir));
        run.finish();
        let findings = run.findings();
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = findings[0];
        assert!(f.severity >= policy.min_severity, "{f:#?}");
        assert!(f.event_count >= policy.sustained_events, "{f:#?}");
        let commands = run.commands();
        assert!(!commands.is_empty(), "{dir}: the new pattern is narrowed");
        for c in &commands {
            assert_eq!(c.action, Action::Narrow, "{dir}: {commands:#?}");
            assert!(f.resource_patterns.contains(&c.target), "{c:#?}");
            assert!(c.target.starts_with(dir), "{c:#?}");
            assert!(c.reason.contains("change, not harm"), "{c:#?}");
        }
    }

    // The same burst into a bucket no grant of the agent names (only the service-wide
    // `lake-read`, never used) is harm: revoked.
    let mut run = Run::new(Settings::default(), ENTITLEMENTS);
    run.feed(routine("etl-1", T0, 5));
    run.feed(reads("etl-1", at, "s3://hr-exports"));
    run.finish();
    assert_eq!(run.findings().len(), 1, "{:#?}", run.findings());
    let commands = run.commands();
    assert!(!commands.is_empty(), "{:#?}", run.findings());
    assert!(
        commands
            .iter()
            .all(|c| c.action.level() >= Action::RevokeSession.level()),
        "{commands:#?}"
    );
}

#[test]
fn a_place_named_only_by_a_grant_the_agent_never_used_is_not_its_territory() {
    // `hr-read` names postgres://hr, but the agent's routine never used it: reaching HR tables
    // through it is the abuse of a standing grant, not a new corner of the agent's own work.
    let at = T0 + 5 * DAY + 3 * 3_600_000;
    let mut run = Run::new(Settings::default(), ENTITLEMENTS);
    run.feed(routine("etl-1", T0, 5));
    run.feed(vec![
        ev("etl-1", at, "db:Select", "postgres://hr/salaries"),
        ev("etl-1", at + 40_000, "db:Select", "postgres://hr/reviews"),
    ]);
    run.finish();
    let findings = run.findings();
    let f = findings
        .iter()
        .find(|f| f.grants.contains(&"hr-read".to_string()))
        .unwrap_or_else(|| panic!("the HR reads raise a finding: {findings:#?}"));
    let commands = run.commands();
    let revoke = commands
        .iter()
        .find(|c| c.action == Action::RevokeGrant)
        .unwrap_or_else(|| panic!("no revoke_grant: {f:#?} {commands:#?}"));
    assert_eq!(revoke.target, "hr-read");
    assert!(revoke.reason.contains("reach"), "{revoke:#?}");
    assert!(
        commands.iter().all(|c| c.action != Action::Narrow),
        "{commands:#?}"
    );
}

/// The grants of each support bot of a team: mail to anyone, the knowledge base and, unused, a
/// vault of secrets.
fn support_ents(agents: &[String]) -> String {
    agents
        .iter()
        .map(|a| {
            format!(
                "{a}:\n  customer-mail: {{actions: [\"mail:*\"], resources: [\"mailto:*\"]}}\n  kb-search: {{actions: [\"kb:*\"], resources: [\"kb://*\"]}}\n  vault-read: {{actions: [\"secrets:Get\"], resources: [\"secrets://*\"]}}\n"
            )
        })
        .collect()
}

/// A support bot's working days: from 09:00 to 17:00, a knowledge-base search and a mail to one
/// of forty customers every ten minutes.
fn support_days(agent: &str, days: i64) -> Vec<Ev> {
    (0..days)
        .flat_map(|d| {
            (0..48).flat_map(move |i| {
                let t = T0 + d * DAY + 9 * 3_600_000 + i * 10 * MIN + 1_000;
                let to = format!("mailto:c{}@customer.example", (d * 48 + i) % 40);
                [
                    ev(agent, t, "kb:Search", "kb://support-articles"),
                    ev(agent, t + 30_000, "mail:Send", &to),
                ]
            })
        })
        .collect()
}

/// Six days of a team of six support bots (with the built-in model, as `cinch replay` runs),
/// then `last`.
fn support_team(last: Ev) -> Run {
    support_team_with(last, "")
}

/// [`support_team`], with `more` entitlements (of other agents) known as well.
fn support_team_with(last: Ev, more: &str) -> Run {
    let team: Vec<String> = (1..=6).map(|i| format!("support-{i}")).collect();
    let mut run = Run::new(Settings::default(), &(support_ents(&team) + more));
    let model = cinch::ml::Model::embedded().expect("the built-in model");
    run.engine.set_model(Some(Arc::new(model)));
    run.feed(team.iter().flat_map(|a| support_days(a, 6)).collect());
    run.feed(vec![last]);
    run.finish();
    run
}

#[test]
fn one_new_outside_destination_of_a_familiar_act_is_narrowed_a_new_kind_of_act_is_not() {
    // At 04:16 on day 7 a bot mails a domain none of the team ever wrote to: one place beyond
    // its territory, by an act it does all day. Denying that destination removes all the harm
    // the finding shows, so the ladder stops at `narrow` of it, however corroborated.
    let at = T0 + 6 * DAY + 4 * 3_600_000 + 16 * MIN;
    let policy = Settings::default().commands;
    let to_parcelnet = |action: &str| {
        support_team(ev(
            "support-1",
            at,
            action,
            "mailto:returns@parcelnet.example",
        ))
    };
    let run = to_parcelnet("mail:Send");
    let findings = run.findings();
    let f = findings
        .iter()
        .find(|f| f.resources.iter().any(|r| r.contains("parcelnet")))
        .unwrap_or_else(|| panic!("the new destination raises a finding: {findings:#?}"));
    assert!(f.severity >= policy.min_severity, "{f:#?}");
    let commands = run.commands();
    assert_eq!(commands.len(), 1, "{f:#?} {commands:#?}");
    let c = commands[0];
    assert_eq!(c.action, Action::Narrow, "{f:#?} {c:#?}");
    assert_eq!(c.target, "mailto:returns@parcelnet.example");
    assert!(c.reason.contains("one sign of harm is reach"), "{c:#?}");

    // The same hour, the same destination, but by an act the bot never did (forwarding a whole
    // mailbox, through the same grant): a new kind of act, not only a new place, so the ladder
    // goes past `narrow`.
    let run = to_parcelnet("mail:ForwardMailbox");
    let commands = run.commands();
    assert!(
        commands
            .iter()
            .any(|c| c.action.level() > Action::Narrow.level()),
        "{:#?} {commands:#?}",
        run.findings()
    );
}

#[test]
fn a_partner_that_the_organisations_grants_name_is_no_unknown_destination() {
    // At 10:05 on day 7 a bot mails a carrier's returns desk that none of the team ever wrote
    // to. Its own grant allows any address; another agent's names that desk exactly.
    let at = T0 + 6 * DAY + 10 * 3_600_000 + 5 * MIN + 15_000;
    let to = "mailto:returns@parcelnet.example";
    let names_it = format!(
        "returns-desk:\n  carrier-mail: {{actions: [\"mail:Send\"], resources: [\"{to}\"]}}\n"
    );
    let about = |run: &Run| -> Vec<Finding> {
        run.findings()
            .into_iter()
            .filter(|f| f.resources.iter().any(|r| r.contains("parcelnet")))
            .cloned()
            .collect()
    };

    // Named by nobody, it is a first contact with an unknown party.
    let unknown = support_team(ev("support-1", at, "mail:Send", to));
    let found = about(&unknown);
    assert_eq!(found.len(), 1, "{:#?}", unknown.findings());
    assert!(
        found[0]
            .reasons
            .iter()
            .any(|r| r.explanation.contains("outside destination")),
        "{:#?}",
        found[0]
    );

    // Named by a grant, it is a partner the organisation chose: no finding, no command.
    let named = support_team_with(ev("support-1", at, "mail:Send", to), &names_it);
    assert!(about(&named).is_empty(), "{:#?}", named.findings());
    assert!(named.commands().is_empty(), "{:#?}", named.commands());

    // A grant naming the whole domain with a wildcard names no partner: a stranger's mailbox
    // there is still unknown.
    let domain = names_it.replace(to, "mailto:*@parcelnet.example");
    let wildcard = support_team_with(ev("support-1", at, "mail:Send", to), &domain);
    assert_eq!(about(&wildcard).len(), 1, "{:#?}", wildcard.findings());
}

#[test]
fn a_workload_acting_from_the_internet_is_held_for_approval_a_new_private_network_is_not() {
    // Ten days of routine reads from the workload's private address, then at 03:00 on day 11 a
    // session of its usual reads from elsewhere, while it keeps working from home.
    let agents = vec!["etl-1".to_string()];
    let from = |ip: &str| {
        let mut run = Run::new(Settings::default(), &fleet_ents(&agents));
        run.feed(routine("etl-1", T0, 11));
        let at = T0 + 10 * DAY + 3 * 3_600_000 + 2 * MIN;
        run.feed(
            (0..10)
                .map(|i| {
                    let mut e = ev(
                        "etl-1",
                        at + i * 20_000,
                        "s3:GetObject",
                        &format!("s3://raw/part-{}.json", i % 12),
                    );
                    e.ip = ip.into();
                    e.session = "s-stolen".into();
                    e
                })
                .collect(),
        );
        run.finish();
        run
    };
    let policy = Settings::default().commands;

    // A public address, a class the workload never came from: credentials used outside the
    // places it runs. The finding is below `min_severity`, and still held for approval.
    let run = from("45.155.205.122");
    let findings = run.findings();
    let f = findings
        .iter()
        .find(|f| f.source_ips.iter().any(|ip| ip == "45.155.205.122"))
        .unwrap_or_else(|| panic!("the outside address raises a finding: {findings:#?}"));
    assert!(f.severity < policy.min_severity, "{f:#?}");
    assert!(f.severity >= policy.outside_class_min_severity, "{f:#?}");
    let commands = run.commands();
    assert!(
        commands
            .iter()
            .any(|c| c.finding_ids.contains(&f.finding_id)
                && c.action.level() >= Action::RequireApproval.level()
                && c.reason.contains("foreign_origin")),
        "{f:#?} {commands:#?}"
    );

    // A new network of the class it uses: change, not harm, and below `min_severity`.
    let run = from("10.9.9.9");
    let commands = run.commands();
    assert!(
        commands
            .iter()
            .all(|c| c.action.level() <= Action::Narrow.level()),
        "{:#?} {commands:#?}",
        run.findings()
    );
}
