//! Every finding, score line and dead letter that replaying the shipped fixture
//! (`fixtures/replay/fleet.jsonl`) writes, and every recommendation, command and audit record
//! that replaying a simulated fleet with entitlements, a signing key and analyst feedback
//! writes, is valid against its JSON Schema under `configs/schemas/`, and the schemas list
//! exactly what the code writes. The feedback schema accepts exactly the feedback lines the
//! parser accepts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cinch::config::Settings;
use cinch::decide::suppress::{Feedback, FeedbackVerdict};
use cinch::drive::replay::{ReplayOptions, replay};
use cinch::event::time::parse_rfc3339_ms;
use cinch::output::audit::AuditEvent;
use cinch::output::command::Action;
use cinch::output::recommendation::{Change, Priority};
use cinch::output::time::rfc3339_ms;
use cinch::vocab::DetectorId;
use cinch::vocab::Severity;
use jsonschema::{Draft, Validator};
use serde::Serialize;
use serde_json::{Value, json};

/// A named way to break a valid record.
type Breakage = (&'static str, Box<dyn Fn(&mut Value)>);

/// Removes a member of a JSON object.
fn without(v: &mut Value, key: &str) {
    v.as_object_mut().unwrap().remove(key);
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn schema(name: &str) -> Value {
    let path = root().join("configs/schemas").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{name}"
    );
    if let Err(e) = jsonschema::meta::validate(&v) {
        panic!("{name} is not a valid schema: {e}");
    }
    v
}

fn validator(schema: &Value) -> Validator {
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .build(schema)
        .unwrap()
}

/// The schema's complaints about one instance, one per line.
fn errors(v: &Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn assert_valid(what: &str, v: &Validator, instance: &Value) {
    let errs = errors(v, instance);
    assert!(
        errs.is_empty(),
        "{what} does not match its schema:\n  {}\n{instance}",
        errs.join("\n  ")
    );
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// Every member of `record` is declared in `schema` (the schemas allow unknown members for
/// consumers' sake, so validation alone would not notice an undocumented one).
fn assert_declared(what: &str, schema: &Value, record: &Value) {
    let declared = keys(&schema["properties"]);
    for k in keys(record) {
        assert!(
            declared.contains(&k),
            "{what}: member `{k}` is not in the schema"
        );
    }
}

/// Outputs of replaying the fixture with the default settings.
struct Replayed {
    findings: Vec<Value>,
    scores: Vec<Value>,
    dead: Vec<Value>,
    events: u64,
}

fn replay_fixture() -> Replayed {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| -> PathBuf { dir.path().join(n) };
    let summary = replay(
        Settings::default(),
        &ReplayOptions {
            input: root().join("fixtures/replay/fleet.jsonl"),
            out: Some(path("findings.jsonl")),
            scores_out: Some(path("scores.jsonl")),
            dead_letter: Some(path("dead.jsonl")),
            progress: false,
            ..Default::default()
        },
    )
    .unwrap();
    // Commands (and recommendations, with entitlements) share the findings' destination.
    let out = read_lines(&path("findings.jsonl"));
    for r in &out {
        assert!(
            ["finding", "recommendation", "command", "audit"]
                .contains(&r["kind"].as_str().unwrap()),
            "{r}"
        );
    }
    Replayed {
        findings: out.into_iter().filter(|r| r["kind"] == "finding").collect(),
        scores: read_lines(&path("scores.jsonl")),
        dead: read_lines(&path("dead.jsonl")),
        events: summary.input.events,
    }
}

fn reason_schema_matches_the_code(reason: &Value) {
    let names: BTreeSet<String> = DetectorId::ALL
        .iter()
        .map(|d| d.as_str().to_owned())
        .collect();
    assert_eq!(strings(&reason["properties"]["detector"]["enum"]), names);
    assert_eq!(
        strings(&reason["required"]),
        keys(&reason["properties"]),
        "every reason member is required"
    );
}

fn assert_highest_first(what: &str, reasons: &Value) {
    let scores: Vec<f64> = reasons
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "{what}: reasons not highest first: {scores:?}"
    );
}

#[test]
fn findings_match_their_schema() {
    let s = schema("finding.schema.json");
    reason_schema_matches_the_code(&s["$defs"]["reason"]);
    assert_eq!(strings(&s["properties"]["severity"]["enum"]), severities());
    // The contract's required members are required.
    let required = strings(&s["required"]);
    for k in [
        "finding_id",
        "agent_id",
        "time",
        "score",
        "severity",
        "event_ids",
        "reasons",
    ] {
        assert!(required.contains(k), "{k} is not required");
    }

    let v = validator(&s);
    let out = replay_fixture();
    assert!(!out.findings.is_empty(), "the fixture raises no finding");
    let mut ids = BTreeSet::new();
    for f in &out.findings {
        let what = format!("finding {}", f["finding_id"]);
        assert_valid(&what, &v, f);
        assert_declared(&what, &s, f);
        for r in f["reasons"].as_array().unwrap() {
            assert_declared(&what, &s["$defs"]["reason"], r);
        }
        assert_highest_first(&what, &f["reasons"]);
        assert!(ids.insert(f["finding_id"].as_str().unwrap().to_owned()));
        // Agreement between members the schema cannot relate.
        assert_eq!(f["time"], f["first_seen"], "{what}");
        assert!(
            f["first_seen"].as_str() <= f["last_seen"].as_str(),
            "{what}"
        );
        let listed = f["event_ids"].as_array().unwrap().len() as u64;
        assert!(listed <= f["event_count"].as_u64().unwrap(), "{what}");
        let ocsf = &f["ocsf"];
        assert!(ocsf.is_object(), "{what}: no ocsf member");
        assert_eq!(ocsf["finding_info"]["uid"], f["finding_id"], "{what}");
        assert_eq!(
            ocsf["evidences"][0]["actor"]["user"]["uid"], f["agent_id"],
            "{what}"
        );
        let sev = f["severity"].as_str().unwrap();
        let want_id = match sev {
            "low" => 2,
            "medium" => 3,
            "high" => 4,
            _ => 5,
        };
        assert_eq!(ocsf["severity_id"], want_id, "{what}");
        assert_eq!(
            ocsf["severity"].as_str().unwrap().to_lowercase(),
            sev,
            "{what}"
        );
    }
}

#[test]
fn score_lines_match_their_schema() {
    let s = schema("score_line.schema.json");
    reason_schema_matches_the_code(&s["$defs"]["reason"]);
    // The contract's members are required.
    let required = strings(&s["required"]);
    for k in ["event_id", "agent_id", "score", "reasons"] {
        assert!(required.contains(k), "{k} is not required");
    }
    let v = validator(&s);
    let out = replay_fixture();
    assert_eq!(out.scores.len() as u64, out.events);
    for line in &out.scores {
        let what = format!("score line of {}", line["event_id"]);
        assert_valid(&what, &v, line);
        assert_declared(&what, &s, line);
        assert_highest_first(&what, &line["reasons"]);
    }
}

#[test]
fn dead_letters_match_their_schema() {
    let s = schema("dead_letter.schema.json");
    let v = validator(&s);
    let out = replay_fixture();
    assert_eq!(out.dead.len(), 4);
    for d in &out.dead {
        assert_valid("dead letter", &v, d);
        assert_declared("dead letter", &s, d);
    }
}

/// The schemas are not vacuous: records broken in typical ways fail them.
#[test]
fn schemas_reject_broken_records() {
    let out = replay_fixture();
    let good = out.findings[0].clone();
    let broken: Vec<Breakage> = vec![
        ("score above 1", Box::new(|f| f["score"] = json!(1.5))),
        (
            "unknown severity",
            Box::new(|f| f["severity"] = json!("severe")),
        ),
        ("no reasons", Box::new(|f| f["reasons"] = json!([]))),
        ("missing event_ids", Box::new(|f| without(f, "event_ids"))),
        (
            "unknown detector",
            Box::new(|f| f["reasons"][0]["detector"] = json!("vibes")),
        ),
        (
            "reason without explanation",
            Box::new(|f| {
                f["reasons"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("explanation");
            }),
        ),
        (
            "time not RFC 3339",
            Box::new(|f| f["time"] = json!("yesterday")),
        ),
        (
            "wrong id shape",
            Box::new(|f| f["finding_id"] = json!("42")),
        ),
        (
            "ocsf of another class",
            Box::new(|f| f["ocsf"]["class_uid"] = json!(2001)),
        ),
        (
            "ocsf without finding_info",
            Box::new(|f| without(&mut f["ocsf"], "finding_info")),
        ),
    ];
    assert_rejects("finding.schema.json", &good, broken);

    let good = out
        .scores
        .iter()
        .find(|l| !l["reasons"].as_array().unwrap().is_empty())
        .unwrap()
        .clone();
    let broken: Vec<Breakage> = vec![
        ("negative score", Box::new(|l| l["score"] = json!(-0.1))),
        ("score as a string", Box::new(|l| l["score"] = json!("0.5"))),
        ("empty event id", Box::new(|l| l["event_id"] = json!(""))),
        ("no agent", Box::new(|l| without(l, "agent_id"))),
        (
            "extra reason member",
            Box::new(|l| l["reasons"][0]["weight"] = json!(1)),
        ),
    ];
    assert_rejects("score_line.schema.json", &good, broken);

    let d = decided();
    let good = d
        .recommendations
        .iter()
        .find(|r| r["change"] == "narrow" && r["priority"] == "normal")
        .expect("a routine narrowing")
        .clone();
    let broken: Vec<Breakage> = vec![
        (
            "change not in enum",
            Box::new(|r| r["change"] = json!("widen")),
        ),
        (
            "unknown priority",
            Box::new(|r| r["priority"] = json!("urgent")),
        ),
        (
            "wrong id shape",
            Box::new(|r| r["recommendation_id"] = json!("rec-42")),
        ),
        ("missing grant", Box::new(|r| without(r, "grant"))),
        ("missing evidence", Box::new(|r| without(r, "evidence"))),
        (
            "evidence without last_use",
            Box::new(|r| without(&mut r["evidence"], "last_use")),
        ),
        (
            "last_use not RFC 3339",
            Box::new(|r| r["evidence"]["last_use"] = json!("last week")),
        ),
        (
            "negative uses",
            Box::new(|r| r["evidence"]["uses"] = json!(-1)),
        ),
        (
            "extra evidence member",
            Box::new(|r| r["evidence"]["confidence"] = json!(0.9)),
        ),
        (
            "current grant without resources",
            Box::new(|r| without(&mut r["current"], "resources")),
        ),
        (
            "narrowing to nothing",
            Box::new(|r| r["proposed"] = json!({"actions": [], "resources": []})),
        ),
        (
            "removal proposing a grant",
            Box::new(|r| r["change"] = json!("remove")),
        ),
        (
            "high priority without findings",
            Box::new(|r| r["priority"] = json!("high")),
        ),
        (
            "findings on a routine recommendation",
            Box::new(|r| r["finding_ids"] = json!(["fnd-0123456789abcdef"])),
        ),
    ];
    assert_rejects("recommendation.schema.json", &good, broken);

    let good = d
        .commands
        .iter()
        .find(|c| c["rollback"].get("grant").is_some())
        .unwrap_or(&d.commands[0])
        .clone();
    let broken: Vec<Breakage> = vec![
        ("missing signature", Box::new(|c| without(c, "signature"))),
        (
            "bad action",
            Box::new(|c| c["action"] = json!("delete_agent")),
        ),
        (
            "wrong id shape",
            Box::new(|c| c["command_id"] = json!("cmd-0123")),
        ),
        (
            "unknown severity",
            Box::new(|c| c["severity"] = json!("severe")),
        ),
        ("no findings", Box::new(|c| c["finding_ids"] = json!([]))),
        (
            "expires_at not RFC 3339",
            Box::new(|c| c["expires_at"] = json!("in an hour")),
        ),
        (
            "requires_approval as a string",
            Box::new(|c| c["requires_approval"] = json!("yes")),
        ),
        ("missing dry_run", Box::new(|c| without(c, "dry_run"))),
        (
            "rollback that does not undo the action",
            Box::new(|c| {
                let undo = match c["action"].as_str().unwrap() {
                    "suspend_agent" => "none",
                    _ => "resume_agent",
                };
                c["rollback"]["action"] = json!(undo);
            }),
        ),
        (
            "grant to restore after a revoked session",
            Box::new(|c| {
                c["action"] = json!("revoke_session");
                c["rollback"] = json!({
                    "action": "none",
                    "grant": {"actions": ["s3:GetObject"], "resources": ["s3://b/*"]},
                });
            }),
        ),
        (
            "signature of another alg",
            Box::new(|c| c["signature"]["alg"] = json!("rsa-sha256")),
        ),
        (
            "key_id not 16 lowercase hex digits",
            Box::new(|c| c["signature"]["key_id"] = json!("7DEB9BDDCB77CA6E")),
        ),
        (
            "signature value of 32 bytes",
            Box::new(|c| {
                c["signature"]["value"] = json!("q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng=")
            }),
        ),
        (
            "signature value not base64",
            Box::new(|c| c["signature"]["value"] = json!("not base64!".repeat(8))),
        ),
        (
            "extra signature member",
            Box::new(|c| c["signature"]["nonce"] = json!("1")),
        ),
    ];
    assert_rejects("command.schema.json", &good, broken);

    let good = d
        .audit
        .iter()
        .find(|a| a["event"] == "suppression_created")
        .unwrap()
        .clone();
    let broken: Vec<Breakage> = vec![
        (
            "wrong id shape",
            Box::new(|a| a["audit_id"] = json!("audit-0123456789abcdef")),
        ),
        (
            "unknown event",
            Box::new(|a| a["event"] = json!("suppression_deleted")),
        ),
        (
            "time not RFC 3339",
            Box::new(|a| a["time"] = json!("2026-01-07")),
        ),
        ("missing details", Box::new(|a| without(a, "details"))),
        ("no agent", Box::new(|a| without(a, "agent_id"))),
        (
            "details of another event",
            Box::new(|a| a["event"] = json!("suppression_expired")),
        ),
        (
            "an agent on a fleet-wide event",
            Box::new(|a| {
                a["event"] = json!("breaker_closed");
                a["details"] = json!({"opened_count": 1});
            }),
        ),
        (
            "unknown detector",
            Box::new(|a| a["details"]["detectors"] = json!(["vibes"])),
        ),
        (
            "wrong suppression id shape",
            Box::new(|a| a["details"]["suppression_id"] = json!("sup-1")),
        ),
    ];
    assert_rejects("audit.schema.json", &good, broken);
    if let Some(good) = d.audit.iter().find(|a| a["event"] == "command_withheld") {
        let broken: Vec<Breakage> = vec![
            (
                "unknown withholding reason",
                Box::new(|a| a["details"]["reason"] = json!("tired")),
            ),
            (
                "bad action",
                Box::new(|a| a["details"]["action"] = json!("delete_agent")),
            ),
        ];
        assert_rejects("audit.schema.json", good, broken);
    }

    let good = d.feedback[0].clone();
    let broken: Vec<Breakage> = vec![
        ("missing verdict", Box::new(|f| without(f, "verdict"))),
        (
            "unknown verdict",
            Box::new(|f| f["verdict"] = json!("benign")),
        ),
        (
            "unknown member",
            Box::new(|f| f["ticket"] = json!("CHG-1234")),
        ),
        ("another kind", Box::new(|f| f["kind"] = json!("finding"))),
        ("empty analyst", Box::new(|f| f["analyst"] = json!(""))),
        (
            "expiry not RFC 3339",
            Box::new(|f| f["expires_at"] = json!("never")),
        ),
    ];
    assert_rejects("feedback.schema.json", &good, broken);
}

/// The schema `name` accepts `good` and rejects it broken in each of the named ways.
fn assert_rejects(name: &str, good: &Value, broken: Vec<Breakage>) {
    let v = validator(&schema(name));
    assert_valid(&format!("the unbroken record for {name}"), &v, good);
    for (what, breakit) in broken {
        let mut record = good.clone();
        breakit(&mut record);
        assert!(
            !errors(&v, &record).is_empty(),
            "{name} accepts a record with {what}:\n{record}"
        );
    }
}

fn cinch() -> assert_cmd::Command {
    assert_cmd::cargo::cargo_bin_cmd!("cinch")
}

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The decision records of replaying a simulated fleet with the binary.
struct Decided {
    findings: Vec<Value>,
    recommendations: Vec<Value>,
    commands: Vec<Value>,
    audit: Vec<Value>,
    /// The feedback lines given to the replay.
    feedback: Vec<Value>,
}

/// Replays `dir/events.jsonl` with the fleet's entitlements and the test signing key; returns
/// the `--out` records and the audit records.
fn replay_fleet(dir: &Path, pass: &str, feedback: Option<&Path>) -> (Vec<Value>, Vec<Value>) {
    let out = dir.join(format!("out-{pass}.jsonl"));
    let audit = dir.join(format!("audit-{pass}.jsonl"));
    let mut cmd = cinch();
    cmd.args(["replay", "--quiet"])
        .arg("--input")
        .arg(dir.join("events.jsonl"))
        .arg("--out")
        .arg(&out)
        .arg("--dead-letter")
        .arg(dir.join(format!("dead-{pass}.jsonl")))
        .arg("--audit")
        .arg(&audit)
        .arg("--entitlements")
        .arg(dir.join("entitlements.json"))
        .arg("--signing-key")
        .arg(root().join("fixtures/keys/cinch-signing.key"));
    if let Some(f) = feedback {
        cmd.arg("--feedback").arg(f);
    }
    cmd.assert().success();
    (read_lines(&out), read_lines(&audit))
}

/// A 14-day simulated fleet (long enough for recommendations), replayed once to learn a
/// finding, then again with feedback: that finding marked false positive when its last event
/// is seen, its suppression lapsing two days later, and a verdict on a finding nobody raised.
fn simulate_and_replay() -> Decided {
    let dir = tempfile::tempdir().unwrap();
    cinch()
        .args(["simulate", "--agents", "30", "--days", "14", "--seed", "11"])
        .arg("--out")
        .arg(dir.path())
        .assert()
        .success();
    let (first, _) = replay_fleet(dir.path(), "first", None);
    // Feedback applies when event time reaches it, before the event of that time: a finding
    // is known by then only when it has events before its last one.
    let f = first
        .iter()
        .find(|r| r["kind"] == "finding" && r["first_seen"].as_str() < r["last_seen"].as_str())
        .expect("a finding of several events");
    let last_seen = f["last_seen"].as_str().unwrap();
    let lapses = rfc3339_ms(parse_rfc3339_ms(last_seen).unwrap() + 2 * 86_400_000);
    let feedback = vec![
        json!({
            "kind": "feedback",
            "finding_id": f["finding_id"],
            "agent_id": f["agent_id"],
            "verdict": "false_positive",
            "analyst": "alice@example.com",
            "reason": "scheduled bulk export",
            "time": last_seen,
            "expires_at": lapses,
        }),
        json!({
            "finding_id": "fnd-0000000000000000",
            "agent_id": f["agent_id"],
            "verdict": "false_positive",
            "analyst": "alice@example.com",
            "reason": "no such finding",
            "time": last_seen,
        }),
    ];
    let path = dir.path().join("feedback.jsonl");
    let text: String = feedback.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(&path, text).unwrap();
    let (out, audit) = replay_fleet(dir.path(), "second", Some(&path));
    let of_kind =
        |k: &str| -> Vec<Value> { out.iter().filter(|r| r["kind"] == k).cloned().collect() };
    let decided = Decided {
        findings: of_kind("finding"),
        recommendations: of_kind("recommendation"),
        commands: of_kind("command"),
        audit,
        feedback,
    };
    let counted = decided.findings.len() + decided.recommendations.len() + decided.commands.len();
    assert_eq!(counted, out.len(), "--out holds records of another kind");
    assert!(decided.audit.iter().all(|a| a["kind"] == "audit"));
    eprintln!(
        "simulated fleet: {} findings, {} recommendations, {} commands, {} audit records",
        decided.findings.len(),
        decided.recommendations.len(),
        decided.commands.len(),
        decided.audit.len()
    );
    decided
}

fn decided() -> &'static Decided {
    static DECIDED: OnceLock<Decided> = OnceLock::new();
    DECIDED.get_or_init(simulate_and_replay)
}

/// The serialised names of `values`.
fn names<T: Serialize>(values: &[T]) -> BTreeSet<String> {
    values
        .iter()
        .map(|v| {
            serde_json::to_value(v)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn severities() -> BTreeSet<String> {
    let all = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];
    all.iter().map(|v| v.as_str().to_owned()).collect()
}

/// Every command action; the match fails to compile when one is added, until it is listed.
fn actions() -> BTreeSet<String> {
    let all = [
        Action::RevokeGrant,
        Action::RevokeSession,
        Action::SuspendAgent,
        Action::Narrow,
        Action::RequireApproval,
        Action::Quarantine,
    ];
    for a in all {
        match a {
            Action::RevokeGrant
            | Action::RevokeSession
            | Action::SuspendAgent
            | Action::Narrow
            | Action::RequireApproval
            | Action::Quarantine => {}
        }
    }
    assert_eq!(
        all.iter().copied().collect::<BTreeSet<_>>(),
        Action::LADDER.iter().copied().collect::<BTreeSet<_>>(),
        "the ladder holds every action"
    );
    let serialised = names(&all);
    let as_str: BTreeSet<String> = all.iter().map(|a| a.as_str().to_owned()).collect();
    assert_eq!(serialised, as_str, "serde and as_str agree");
    serialised
}

/// Every audit event; the match fails to compile when one is added, until it is listed.
fn audit_events() -> BTreeSet<String> {
    use AuditEvent::*;
    let all = [
        CommandWithheld,
        BreakerOpened,
        BreakerClosed,
        SuppressionCreated,
        SuppressionApplied,
        SuppressionExpired,
        FeedbackRejected,
        FeedbackConfirmed,
        RolloutAbsorbed,
    ];
    for e in all {
        match e {
            CommandWithheld | BreakerOpened | BreakerClosed | SuppressionCreated
            | SuppressionApplied | SuppressionExpired | FeedbackRejected | FeedbackConfirmed
            | RolloutAbsorbed => {}
        }
    }
    names(&all)
}

fn verdicts() -> BTreeSet<String> {
    let all = [
        FeedbackVerdict::FalsePositive,
        FeedbackVerdict::TruePositive,
    ];
    for v in all {
        match v {
            FeedbackVerdict::FalsePositive | FeedbackVerdict::TruePositive => {}
        }
    }
    names(&all)
}

/// The contract's members are required by `schema`.
fn assert_required(schema: &Value, members: &[&str]) {
    let required = strings(&schema["required"]);
    for k in members {
        assert!(
            required.contains(*k),
            "{}: {k} is not required",
            schema["$id"]
        );
    }
}

#[test]
fn recommendations_match_their_schema() {
    let s = schema("recommendation.schema.json");
    assert_required(
        &s,
        &[
            "recommendation_id",
            "agent_id",
            "grant",
            "change",
            "current",
            "proposed",
            "evidence",
            "reason",
        ],
    );
    assert_required(
        &s["$defs"]["evidence"],
        &["lookback_days", "uses", "last_use", "observed_resources"],
    );
    let changes = [Change::Remove, Change::Narrow];
    for c in changes {
        match c {
            Change::Remove | Change::Narrow => {}
        }
    }
    assert_eq!(strings(&s["properties"]["change"]["enum"]), names(&changes));
    let priorities = [Priority::Normal, Priority::High];
    for p in priorities {
        match p {
            Priority::Normal | Priority::High => {}
        }
    }
    assert_eq!(
        strings(&s["properties"]["priority"]["enum"]),
        names(&priorities)
    );

    let v = validator(&s);
    let d = decided();
    assert!(!d.recommendations.is_empty(), "no recommendation");
    let findings: BTreeSet<&str> = d
        .findings
        .iter()
        .map(|f| f["finding_id"].as_str().unwrap())
        .collect();
    let mut ids = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for r in &d.recommendations {
        let what = format!("recommendation {}", r["recommendation_id"]);
        assert_valid(&what, &v, r);
        assert_declared(&what, &s, r);
        assert_declared(&what, &s["$defs"]["evidence"], &r["evidence"]);
        for spec in ["current", "proposed"] {
            assert_declared(&what, &s["$defs"]["grant_spec"], &r[spec]);
        }
        assert!(ids.insert(r["recommendation_id"].as_str().unwrap().to_owned()));
        seen.insert(format!(
            "{} {}",
            r["change"].as_str().unwrap(),
            r["priority"].as_str().unwrap()
        ));
        // Agreement between members the schema cannot relate.
        let e = &r["evidence"];
        assert!(
            e["observed_days"].as_f64().unwrap() <= e["lookback_days"].as_f64().unwrap(),
            "{what}"
        );
        if let Some(last) = e["last_use"].as_str() {
            assert!(last <= r["time"].as_str().unwrap(), "{what}");
        }
        if e["uses"].as_u64().unwrap() > 0 {
            assert!(e["last_use"].is_string(), "{what}: uses but no last use");
        }
        if let Some(ids) = r.get("finding_ids") {
            for id in ids.as_array().unwrap() {
                assert!(findings.contains(id.as_str().unwrap()), "{what}: {id}");
            }
        }
    }
    eprintln!(
        "{} recommendations valid ({seen:?})",
        d.recommendations.len()
    );
    assert!(seen.len() >= 3, "{seen:?}");
}

#[test]
fn commands_match_their_schema_and_verify() {
    let s = schema("command.schema.json");
    assert_required(
        &s,
        &[
            "command_id",
            "agent_id",
            "action",
            "target",
            "reason",
            "finding_ids",
            "issued_at",
            "expires_at",
            "requires_approval",
            "dry_run",
            "signature",
        ],
    );
    assert_eq!(strings(&s["properties"]["action"]["enum"]), actions());
    assert_eq!(strings(&s["properties"]["severity"]["enum"]), severities());
    assert_eq!(
        s["$defs"]["signature"]["properties"]["alg"]["const"],
        cinch::output::sign::ALG
    );
    assert!(
        s["description"]
            .as_str()
            .unwrap()
            .contains("Ed25519 signature over the RFC 8785 (JCS) canonical JSON"),
        "the description says what is signed"
    );

    let v = validator(&s);
    let verifier =
        cinch::drive::files::verifier(&root().join("fixtures/keys/cinch-signing.pub")).unwrap();
    let d = decided();
    assert!(!d.commands.is_empty(), "no command");
    let findings: BTreeSet<&str> = d
        .findings
        .iter()
        .map(|f| f["finding_id"].as_str().unwrap())
        .collect();
    let mut ids = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for c in &d.commands {
        let what = format!("command {}", c["command_id"]);
        assert_valid(&what, &v, c);
        assert_declared(&what, &s, c);
        assert_declared(&what, &s["$defs"]["rollback"], &c["rollback"]);
        assert_declared(&what, &s["$defs"]["signature"], &c["signature"]);
        if let Some(g) = c["rollback"].get("grant") {
            assert_declared(&what, &s["$defs"]["grant_spec"], g);
        }
        if let Err(e) = verifier.verify(c) {
            panic!("{what}: {e}\n{c}");
        }
        assert_eq!(c["signature"]["key_id"], verifier.key_id(), "{what}");
        assert!(ids.insert(c["command_id"].as_str().unwrap().to_owned()));
        seen.insert(c["action"].as_str().unwrap().to_owned());
        // Agreement between members the schema cannot relate.
        assert!(c["issued_at"].as_str() < c["expires_at"].as_str(), "{what}");
        if c["action"] == "suspend_agent" {
            assert_eq!(c["target"], c["agent_id"], "{what}");
        }
        for id in c["finding_ids"].as_array().unwrap() {
            assert!(findings.contains(id.as_str().unwrap()), "{what}: {id}");
        }
    }
    // A changed command no longer verifies.
    let mut changed = d.commands[0].clone();
    changed["dry_run"] = json!(!changed["dry_run"].as_bool().unwrap());
    assert!(verifier.verify(&changed).is_err());
    eprintln!(
        "{} commands valid and verified ({seen:?})",
        d.commands.len()
    );
    assert!(seen.len() >= 2, "{seen:?}");
}

#[test]
fn audit_records_match_their_schema() {
    let s = schema("audit.schema.json");
    assert_eq!(strings(&s["properties"]["event"]["enum"]), audit_events());
    let defs = &s["$defs"];
    assert_eq!(
        strings(&defs["command_withheld"]["properties"]["action"]["enum"]),
        actions()
    );
    assert_eq!(
        strings(&defs["command_withheld"]["properties"]["severity"]["enum"]),
        severities()
    );
    assert_eq!(
        strings(&defs["feedback_rejected"]["properties"]["verdict"]["enum"]),
        verdicts()
    );
    let detectors: BTreeSet<String> = DetectorId::ALL
        .iter()
        .map(|d| d.as_str().to_owned())
        .collect();
    assert_eq!(strings(&defs["detector"]["enum"]), detectors);

    let v = validator(&s);
    let d = decided();
    let mut ids = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for a in &d.audit {
        let event = a["event"].as_str().unwrap();
        let what = format!("audit {} ({event})", a["audit_id"]);
        assert_valid(&what, &v, a);
        assert_declared(&what, &s, a);
        assert!(
            defs.get(event).is_some(),
            "{what}: the schema does not describe its details"
        );
        assert_declared(&what, &defs[event], &a["details"]);
        assert!(ids.insert(a["audit_id"].as_str().unwrap().to_owned()));
        seen.insert(event.to_owned());
    }
    eprintln!("{} audit records valid ({seen:?})", d.audit.len());
    for event in ["suppression_created", "feedback_rejected"] {
        assert!(seen.contains(event), "no {event} in {seen:?}");
    }
    // The feedback's finding, and only it, was suppressed; the other was unknown.
    let created: Vec<&Value> = d
        .audit
        .iter()
        .filter(|a| a["event"] == "suppression_created")
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0]["details"]["finding_id"],
        d.feedback[0]["finding_id"]
    );
    assert_eq!(
        created[0]["details"]["expires_at"],
        d.feedback[0]["expires_at"]
    );
    assert!(d.audit.iter().any(|a| a["event"] == "feedback_rejected"
        && a["details"]["finding_id"] == d.feedback[1]["finding_id"]));
}

/// Feedback lines and whether they are valid.
fn feedback_lines() -> Vec<(&'static str, bool, String)> {
    let line = |f: &dyn Fn(&mut Value)| -> String {
        let mut v = json!({
            "finding_id": "fnd-0123456789abcdef",
            "agent_id": "support-bot-003",
            "verdict": "false_positive",
            "analyst": "alice@example.com",
            "reason": "the weekly export, approved in CHG-1234",
        });
        f(&mut v);
        v.to_string()
    };
    let remove = |k: &'static str| move |v: &mut Value| without(v, k);
    vec![
        ("minimal", true, line(&|_| {})),
        (
            "with kind, time and expiry",
            true,
            line(&|v| {
                v["kind"] = json!("feedback");
                v["time"] = json!("2026-01-07T09:26:42.057Z");
                v["expires_at"] = json!("2026-02-06T09:26:42Z");
            }),
        ),
        (
            "time with an offset",
            true,
            line(&|v| v["time"] = json!("2026-01-07T11:26:42+02:00")),
        ),
        (
            "true positive",
            true,
            line(&|v| v["verdict"] = json!("true_positive")),
        ),
        (
            "null optional members",
            true,
            line(&|v| {
                v["kind"] = Value::Null;
                v["time"] = Value::Null;
                v["expires_at"] = Value::Null;
            }),
        ),
        ("missing analyst", false, line(&remove("analyst"))),
        ("missing finding_id", false, line(&remove("finding_id"))),
        ("missing verdict", false, line(&remove("verdict"))),
        (
            "unknown verdict",
            false,
            line(&|v| v["verdict"] = json!("benign")),
        ),
        (
            "unknown member",
            false,
            line(&|v| v["ticket"] = json!("CHG-1234")),
        ),
        (
            "another kind",
            false,
            line(&|v| v["kind"] = json!("finding")),
        ),
        ("empty reason", false, line(&|v| v["reason"] = json!(""))),
        (
            "blank agent",
            false,
            line(&|v| v["agent_id"] = json!("  \t")),
        ),
        (
            "time not RFC 3339",
            false,
            line(&|v| v["time"] = json!("yesterday")),
        ),
        (
            "time without offset",
            false,
            line(&|v| v["time"] = json!("2026-01-07T09:26:42")),
        ),
        (
            "time as epoch milliseconds",
            false,
            line(&|v| v["time"] = json!(1_767_778_002_057_i64)),
        ),
        (
            "expiry on a day that does not exist",
            false,
            line(&|v| v["expires_at"] = json!("2026-02-30T00:00:00Z")),
        ),
        (
            "finding id as a number",
            false,
            line(&|v| v["finding_id"] = json!(42)),
        ),
        (
            "not an object",
            false,
            "\"fnd-0123456789abcdef\"".to_owned(),
        ),
    ]
}

#[test]
fn feedback_schema_agrees_with_the_parser() {
    let s = schema("feedback.schema.json");
    assert_eq!(strings(&s["properties"]["verdict"]["enum"]), verdicts());
    assert_eq!(
        s["additionalProperties"], false,
        "unknown members are rejected"
    );
    let v = validator(&s);
    for (what, valid, line) in feedback_lines() {
        let instance: Value = serde_json::from_str(&line).unwrap();
        let schema_errors = errors(&v, &instance);
        let parsed = Feedback::parse(&line, what);
        assert_eq!(
            schema_errors.is_empty(),
            valid,
            "{what}: schema says {schema_errors:?}\n{line}"
        );
        assert_eq!(
            parsed.is_ok(),
            valid,
            "{what}: parser says {parsed:?}\n{line}"
        );
        if valid {
            assert_declared(what, &s, &instance);
        }
    }
    // The lines given to the simulated fleet's replay are valid too.
    for (i, line) in decided().feedback.iter().enumerate() {
        assert_valid(&format!("feedback line {}", i + 1), &v, line);
        Feedback::parse(&line.to_string(), "feedback").unwrap();
    }
}
