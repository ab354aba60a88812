//! The learned models through the binary: `cinch train` on a simulated history, the model file it
//! writes, `cinch replay --model` using it, and the errors a wrong model file gives.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use predicates::prelude::*;
use serde_json::Value;

fn cinch() -> assert_cmd::Command {
    assert_cmd::cargo::cargo_bin_cmd!("cinch")
}

/// A small simulated fleet and a model trained on it (made once for the whole file).
struct Trained {
    _dir: tempfile::TempDir,
    fleet: PathBuf,
    model: PathBuf,
}

fn trained() -> &'static Trained {
    static T: OnceLock<Trained> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let fleet = dir.path().join("fleet");
        cinch()
            .args(["simulate", "--agents", "40", "--days", "6", "--seed", "77"])
            .arg("--out")
            .arg(&fleet)
            .assert()
            .success();
        let model = dir.path().join("models").join("test.json");
        cinch()
            .arg("train")
            .arg("--input")
            .arg(fleet.join("events.jsonl"))
            .arg("--out")
            .arg(&model)
            .assert()
            .success()
            .stderr(predicate::str::contains("peer groups"))
            .stderr(predicate::str::contains("wrote"));
        Trained {
            _dir: dir,
            fleet,
            model,
        }
    })
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Orders two JSON objects by a numeric field.
fn by(a: &Value, b: &Value, field: &str) -> std::cmp::Ordering {
    a[field]
        .as_f64()
        .unwrap()
        .total_cmp(&b[field].as_f64().unwrap())
}

#[test]
fn a_model_file_records_its_format_schema_and_training() {
    let t = trained();
    let m = json(&t.model);
    assert_eq!(m["format"], "cinch-model");
    assert_eq!(m["format_version"], cinch::ml::model::FORMAT_VERSION);
    assert_eq!(m["cinch_version"], env!("CARGO_PKG_VERSION"));
    let schema = cinch::ml::model::FeatureSchema::current();
    assert_eq!(
        m["feature_schema"]["event"],
        serde_json::to_value(&schema.event).unwrap()
    );
    assert_eq!(
        m["feature_schema"]["profile"],
        serde_json::to_value(&schema.profile).unwrap()
    );
    let events = std::fs::read_to_string(t.fleet.join("events.jsonl"))
        .unwrap()
        .lines()
        .count() as u64;
    let tr = &m["training"];
    assert_eq!(tr["events"], events);
    assert_eq!(tr["records"], events);
    assert_eq!(tr["dead_letters"], 0);
    assert_eq!(tr["agents"], 40);
    assert!(
        tr["first_event"]
            .as_str()
            .unwrap()
            .starts_with("2026-01-05T")
    );
    // Normal events of agents past their learning period (three days of the six).
    let modelled = tr["modelled_events"].as_u64().unwrap();
    assert!(
        modelled >= 1000 && modelled < events,
        "{modelled} of {events}"
    );

    // The number of groups was chosen among several by silhouette, not fixed.
    let g = &m["peer_groups"];
    assert_eq!(g["criterion"], "silhouette");
    let candidates = g["candidates"].as_array().unwrap();
    assert!(candidates.len() >= 2, "{candidates:?}");
    let k = g["centroids"].as_array().unwrap().len();
    let eligible = candidates
        .iter()
        .filter(|c| c["smallest"].as_u64().unwrap() >= 3);
    let best = eligible.max_by(|a, b| by(a, b, "silhouette")).unwrap();
    assert_eq!(best["k"].as_u64().unwrap() as usize, k);
    let sizes: u64 = g["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .sum();
    assert_eq!(sizes, 40);

    // One event model per group and one for the fleet, components chosen by BIC.
    let models = m["event_model"]["groups"].as_array().unwrap();
    assert_eq!(models.len(), k + 1);
    for gm in models {
        let c = gm["candidates"].as_array().unwrap();
        let chosen = gm["mixture"]["components"].as_array().unwrap().len();
        if c.len() > 1 {
            let best = c.iter().min_by(|a, b| by(a, b, "bic")).unwrap();
            assert_eq!(best["components"].as_u64().unwrap() as usize, chosen);
        }
    }
    assert!(cinch::drive::files::model(&t.model).is_ok());
}

#[test]
fn training_is_deterministic() {
    let t = trained();
    let again = t.model.with_file_name("again.json");
    cinch()
        .arg("train")
        .arg("--input")
        .arg(t.fleet.join("events.jsonl"))
        .arg("--out")
        .arg(&again)
        .arg("--quiet")
        .assert()
        .success()
        .stderr(predicate::str::is_empty());
    let (mut a, mut b) = (json(&t.model), json(&again));
    for v in [&mut a, &mut b] {
        v["training"]["seconds"] = 0.into();
    }
    assert_eq!(a, b);
}

fn replay(
    model: Option<&Path>,
    extra: &[&str],
    dir: &Path,
    name: &str,
) -> (Vec<Value>, Vec<Value>) {
    let t = trained();
    let out = dir.join(format!("{name}-out.jsonl"));
    let scores = dir.join(format!("{name}-scores.jsonl"));
    let mut cmd = cinch();
    cmd.arg("replay")
        .arg("--input")
        .arg(t.fleet.join("events.jsonl"))
        .arg("--out")
        .arg(&out)
        .arg("--scores-out")
        .arg(&scores)
        .arg("--quiet")
        .args(extra);
    if let Some(m) = model {
        cmd.arg("--model").arg(m);
    }
    cmd.assert().success();
    (lines(&out), lines(&scores))
}

fn reported_events(records: &[Value]) -> BTreeSet<String> {
    records
        .iter()
        .filter(|r| r["kind"] == "finding")
        .flat_map(|r| r["event_ids"].as_array().unwrap().clone())
        .map(|e| e.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_model_scores_and_explains_but_never_opens_a_finding_by_itself() {
    let t = trained();
    let dir = tempfile::tempdir().unwrap();
    let off = dir.path().join("off.toml");
    std::fs::write(&off, "[ml]\nenabled = false\n").unwrap();
    let (with, with_scores) = replay(Some(&t.model), &[], dir.path(), "with");
    let (without, without_scores) = replay(
        None,
        &["--config", off.to_str().unwrap()],
        dir.path(),
        "without",
    );
    assert_eq!(with_scores.len(), without_scores.len());

    // The model's reasons appear, name the learned group or the fleet, and say how rare.
    let model_reasons: Vec<&Value> = with_scores
        .iter()
        .flat_map(|s| s["reasons"].as_array().unwrap())
        .filter(|r| r["detector"] == "model")
        .collect();
    assert!(!model_reasons.is_empty());
    assert!(model_reasons.iter().any(|r| {
        let e = r["explanation"].as_str().unwrap();
        e.contains("of the history of learned peer group") && e.contains("is rarer than")
    }));
    assert!(
        without_scores
            .iter()
            .flat_map(|s| s["reasons"].as_array().unwrap())
            .all(|r| r["detector"] != "model")
    );
    // Scores change...
    assert!(
        with_scores
            .iter()
            .zip(&without_scores)
            .any(|(a, b)| a["score"] != b["score"])
    );
    // ...but exactly the same events are reported.
    assert_eq!(reported_events(&with), reported_events(&without));
}

#[test]
fn a_model_of_another_schema_is_refused_with_a_clear_error() {
    let t = trained();
    let dir = tempfile::tempdir().unwrap();
    let mut m = json(&t.model);
    m["feature_schema"]["event"][0] = "hour_of_week".into();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, m.to_string()).unwrap();
    cinch()
        .arg("replay")
        .arg("--input")
        .arg(t.fleet.join("events.jsonl"))
        .arg("--model")
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.json"))
        .stderr(predicate::str::contains(
            "model feature schema does not match this build",
        ))
        .stderr(predicate::str::contains(
            "missing from the model: [hour_sin]",
        ))
        .stderr(predicate::str::contains("retrain it with `cinch train`"));

    m["feature_schema"]["event"][0] = "hour_sin".into();
    m["format_version"] = 7.into();
    std::fs::write(&bad, m.to_string()).unwrap();
    cinch()
        .arg("eval")
        .arg("--dataset")
        .arg(&t.fleet)
        .arg("--model")
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("format version 7"));
}

#[test]
fn training_needs_files_and_enough_history() {
    let dir = tempfile::tempdir().unwrap();
    cinch()
        .args(["train", "--input", "-", "--out"])
        .arg(dir.path().join("m.json"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("needs files, not standard input"));
    let tiny = dir.path().join("tiny.jsonl");
    std::fs::write(
        &tiny,
        r#"{"event_id":"e1","time":"2026-01-05T00:00:00Z","agent_id":"a1","action":"s3:GetObject","resource":"s3://b/k","outcome":"success"}
"#,
    )
    .unwrap();
    cinch()
        .args(["train", "--input"])
        .arg(&tiny)
        .arg("--out")
        .arg(dir.path().join("m.json"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("1 agents in the history"));
    assert!(!dir.path().join("m.json").exists());
}
