//! Every finding, score line and dead letter that replaying the shipped fixture
//! (`fixtures/replay/fleet.jsonl`) writes is valid against its JSON Schema under
//! `configs/schemas/`, and the schemas list exactly what the code writes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cinch::config::Settings;
use cinch::decide::finding::Severity;
use cinch::detect::DetectorId;
use cinch::drive::replay::{ReplayOptions, replay};
use jsonschema::{Draft, Validator};
use serde_json::{Value, json};

/// A named way to break a valid record.
type Breakage = (&'static str, Box<dyn Fn(&mut Value)>);

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
    let read = |n: &str| -> Vec<Value> {
        std::fs::read_to_string(path(n))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    Replayed {
        findings: read("findings.jsonl"),
        scores: read("scores.jsonl"),
        dead: read("dead.jsonl"),
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
    let severities: BTreeSet<String> = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ]
    .iter()
    .map(|v| v.as_str().to_owned())
    .collect();
    assert_eq!(strings(&s["properties"]["severity"]["enum"]), severities);
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
    let findings = validator(&schema("finding.schema.json"));
    let good = out.findings[0].clone();
    let broken: Vec<Breakage> = vec![
        ("score above 1", Box::new(|f| f["score"] = json!(1.5))),
        (
            "unknown severity",
            Box::new(|f| f["severity"] = json!("severe")),
        ),
        ("no reasons", Box::new(|f| f["reasons"] = json!([]))),
        (
            "missing event_ids",
            Box::new(|f| {
                f.as_object_mut().unwrap().remove("event_ids");
            }),
        ),
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
            Box::new(|f| {
                f["ocsf"].as_object_mut().unwrap().remove("finding_info");
            }),
        ),
    ];
    for (what, breakit) in broken {
        let mut f = good.clone();
        breakit(&mut f);
        assert!(
            !errors(&findings, &f).is_empty(),
            "finding schema accepts a finding with {what}"
        );
    }

    let scores = validator(&schema("score_line.schema.json"));
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
        (
            "no agent",
            Box::new(|l| {
                l.as_object_mut().unwrap().remove("agent_id");
            }),
        ),
        (
            "extra reason member",
            Box::new(|l| l["reasons"][0]["weight"] = json!(1)),
        ),
    ];
    for (what, breakit) in broken {
        let mut l = good.clone();
        breakit(&mut l);
        assert!(
            !errors(&scores, &l).is_empty(),
            "score line schema accepts a line with {what}"
        );
    }
}
