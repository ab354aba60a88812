//! Every finding is a valid OCSF 1.8.0 Detection Finding (class_uid 2004).
//!
//! The schema is the official one, made offline from the compiled OCSF releases of the PyPI
//! package `ocsf-json-schema` by `configs/schemas/ocsf-generate.sh` and checked in as
//! `configs/schemas/ocsf-1.8.0-detection_finding.schema.json`. The `cinch` binary replays a
//! simulated fleet and the real CloudTrail files under `fixtures/cloudtrail` (vendored from `../shared/data/cloudtrail`) (each file
//! alone, then each folder as one stream), once with the native finding format and once with
//! `--finding-format ocsf`; every finding's `ocsf` member, and every whole record of the second
//! run, must validate, and the two must be equal.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use cinch::detect::Reason;
use cinch::output::finding::{Finding, OCSF_VERSION};
use cinch::vocab::DetectorId;
use cinch::vocab::Severity;
use jsonschema::{Draft, Validator};
use serde_json::{Value, json};

const SCHEMA: &str = "ocsf-1.8.0-detection_finding.schema.json";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn schema() -> Value {
    let path = root().join("configs/schemas").join(SCHEMA);
    let text = std::fs::read_to_string(&path).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(
        v["$id"],
        format!("https://schema.ocsf.io/schema/{OCSF_VERSION}/classes/detection_finding")
    );
    assert_eq!(v["properties"]["class_uid"]["const"], 2004);
    if let Err(e) = jsonschema::meta::validate(&v) {
        panic!("{SCHEMA} is not a valid schema: {e}");
    }
    v
}

fn validator() -> Validator {
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema())
        .unwrap()
}

/// The schema's complaints about one instance, each with its path.
fn errors(v: &Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!("at `{}`: {e}", if at.is_empty() { "/" } else { &at })
        })
        .collect()
}

fn assert_valid(what: &str, v: &Validator, instance: &Value) {
    let errs = errors(v, instance);
    if let Some(first) = errs.first() {
        panic!(
            "{what} is not a valid OCSF {OCSF_VERSION} Detection Finding ({} errors); first {first}\n{instance}",
            errs.len()
        );
    }
}

fn cinch() -> assert_cmd::Command {
    assert_cmd::cargo::cargo_bin_cmd!("cinch")
}

/// Replays `input` with the binary and returns its findings (dead letters go elsewhere).
fn replay(input: &Path, finding_format: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("findings.jsonl");
    cinch()
        .args(["replay", "--quiet", "--finding-format", finding_format])
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(&out)
        .arg("--dead-letter")
        .arg(dir.path().join("dead.jsonl"))
        .arg("--audit")
        .arg(dir.path().join("audit.jsonl"))
        .assert()
        .success();
    // Findings only: recommendations and commands share the output.
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["kind"] == "finding" || v.get("class_uid").is_some())
        .collect()
}

/// What the findings checked so far covered.
#[derive(Default)]
struct Checked {
    findings: usize,
    detectors: BTreeSet<String>,
    patterns: BTreeSet<String>,
    with_sessions: usize,
}

impl Checked {
    /// Replays `input` in both formats and checks every finding.
    fn replay(&mut self, v: &Validator, input: &Path) {
        let what = input.display().to_string();
        let native = replay(input, "native");
        let ocsf = replay(input, "ocsf");
        assert_eq!(native.len(), ocsf.len(), "{what}: findings in each format");
        for (f, o) in native.iter().zip(&ocsf) {
            self.check(v, &format!("{what}: {}", f["finding_id"]), f, o);
        }
    }

    /// Checks one native finding and the same finding written with `--finding-format ocsf`.
    fn check(&mut self, v: &Validator, what: &str, f: &Value, whole: &Value) {
        assert_eq!(f["kind"], "finding", "{what}");
        let ocsf = &f["ocsf"];
        assert_valid(&format!("{what}: its `ocsf` member"), v, ocsf);
        assert_valid(
            &format!("{what}: the --finding-format ocsf record"),
            v,
            whole,
        );
        assert_eq!(ocsf, whole, "{what}: the two formats disagree");

        // The mapping carries the finding.
        assert_eq!(ocsf["metadata"]["version"], OCSF_VERSION, "{what}");
        assert_eq!(ocsf["finding_info"]["uid"], f["finding_id"], "{what}");
        assert_eq!(ocsf["count"], f["event_count"], "{what}");
        let reasons = f["reasons"].as_array().unwrap();
        let analyses = ocsf["anomaly_analyses"].as_array().unwrap();
        assert_eq!(
            analyses.len(),
            reasons.len(),
            "{what}: one analysis per reason"
        );
        for (r, a) in reasons.iter().zip(analyses) {
            let detector: DetectorId = serde_json::from_value(r["detector"].clone()).unwrap();
            let anomaly = &a["anomalies"][0];
            let pattern = anomaly["observed_pattern"].as_str().unwrap();
            assert_eq!(pattern, detector.observed_pattern().as_str(), "{what}");
            assert_eq!(
                anomaly["observations"][0]["value"], r["explanation"],
                "{what}"
            );
            assert_eq!(a["analysis_targets"][0]["name"], f["agent_id"], "{what}");
            self.detectors.insert(detector.as_str().to_owned());
            self.patterns.insert(pattern.to_owned());
        }
        let evidences = ocsf["evidences"].as_array().unwrap();
        let actors: Vec<&Value> = evidences.iter().filter_map(|e| e.get("actor")).collect();
        assert!(!actors.is_empty(), "{what}: no actor");
        for a in &actors {
            assert_eq!(a["user"]["uid"], f["agent_id"], "{what}");
        }
        let sessions: Vec<&Value> = actors.iter().filter_map(|a| a.get("session")).collect();
        assert_eq!(
            sessions.len(),
            f["sessions"].as_array().unwrap().len(),
            "{what}"
        );
        self.with_sessions += usize::from(!sessions.is_empty());
        let operations = evidences
            .iter()
            .filter_map(|e| e.get("api"))
            .map(|a| a["operation"].clone())
            .collect::<Vec<_>>();
        assert_eq!(json!(operations), f["actions"], "{what}");
        self.findings += 1;
    }
}

#[test]
fn simulated_fleet_findings_are_valid_ocsf() {
    let v = validator();
    let dir = tempfile::tempdir().unwrap();
    cinch()
        .args(["simulate", "--agents", "40", "--days", "14", "--seed", "3"])
        .arg("--out")
        .arg(dir.path())
        .assert()
        .success();
    let mut checked = Checked::default();
    checked.replay(&v, &dir.path().join("events.jsonl"));
    eprintln!(
        "simulated fleet: {} findings valid; detectors {:?}; patterns {:?}",
        checked.findings, checked.detectors, checked.patterns
    );
    assert!(checked.findings >= 50, "only {} findings", checked.findings);
    assert!(checked.detectors.len() >= 6, "{:?}", checked.detectors);
    assert_eq!(checked.patterns.len(), 3, "{:?}", checked.patterns);
    assert!(checked.with_sessions > 0);
}

mod common;
use common::{cloudtrail_dir as data_dir, data_files};

/// The text of a file, decompressed when it is gzip.
fn text_of(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return bytes;
    }
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .read_to_end(&mut text)
        .unwrap();
    text
}

#[test]
fn real_cloudtrail_findings_are_valid_ocsf() {
    let dir = data_dir();
    assert!(
        dir.is_dir(),
        "the real CloudTrail data folder {} is missing",
        dir.display()
    );
    let files = data_files(&dir);
    assert!(files.len() >= 90, "only {} data files found", files.len());
    let v = validator();
    let mut checked = Checked::default();
    // Each file alone.
    for path in &files {
        checked.replay(&v, path);
    }
    let alone = checked.findings;
    // Each folder as one stream: its files, in name order.
    let streams = tempfile::tempdir().unwrap();
    let mut folders: BTreeSet<PathBuf> = BTreeSet::new();
    for path in &files {
        folders.insert(path.parent().unwrap().to_path_buf());
    }
    for folder in &folders {
        let mut text = Vec::new();
        for path in files.iter().filter(|p| p.parent() == Some(folder)) {
            text.extend(text_of(path));
            text.push(b'\n');
        }
        let name = folder.file_name().unwrap().to_string_lossy().to_string();
        let stream = streams.path().join(format!("{name}.json"));
        std::fs::write(&stream, text).unwrap();
        checked.replay(&v, &stream);
    }
    eprintln!(
        "real CloudTrail: {} findings valid ({alone} from single files, {} from {} folder streams); detectors {:?}",
        checked.findings,
        checked.findings - alone,
        folders.len(),
        checked.detectors
    );
    assert!(alone >= 10, "only {alone} findings from single files");
    assert!(
        checked.findings - alone >= 10,
        "only {} findings from folder streams",
        checked.findings - alone
    );
    assert!(checked.with_sessions > 0);
}

/// Findings at the edges of the mapping: no reasons, sessions, actions or sources; sources that
/// are service names, IPv6 or too long for an address; an empty resource; every detector and
/// severity.
#[test]
fn edge_case_findings_are_valid_ocsf() {
    let v = validator();
    let base = Finding {
        kind: "finding",
        finding_id: "fnd-0123456789abcdef".into(),
        agent_id: "arn:aws:iam::123456789012:role/agent".into(),
        agent_kind: None,
        time: "2026-01-05T09:30:00.000Z".into(),
        first_seen: "2026-01-05T09:30:00.000Z".into(),
        last_seen: "2026-01-05T09:40:00.000Z".into(),
        score: 0.0,
        severity: Severity::Low,
        event_count: 0,
        event_ids: vec![],
        reasons: vec![],
        actions: vec![],
        resources: vec![],
        resource_patterns: vec![],
        sessions: vec![],
        source_ips: vec![],
        grants: vec![],
        intents: vec![],
        denied_events: 0,
        bytes: 0,
        first_ms: 1_767_605_400_000,
        last_ms: 1_767_606_000_000,
        ocsf: None,
    };
    assert_valid("a finding with nothing listed", &v, &base.to_ocsf());

    let mut full = base.clone();
    full.agent_kind = Some("k8s_service_account".into());
    full.score = 0.97;
    full.event_count = 600;
    full.event_ids = (0..500).map(|i| format!("e-{i}")).collect();
    full.reasons = DetectorId::ALL
        .iter()
        .map(|&d| Reason {
            detector: d,
            score: 0.5,
            explanation: format!("{} explanation", d.as_str()),
        })
        .collect();
    full.actions = vec!["s3:GetObject".into(), "iam:PassRole".into()];
    full.resources = vec!["".into(), "s3://bucket/key".into()];
    full.resource_patterns = vec!["".into(), "s3://bucket/{id}".into()];
    full.sessions = vec!["s-1".into(), "s-2".into()];
    full.source_ips = vec![
        "AWS Internal".into(),
        "lambda.amazonaws.com".into(),
        "192.168.10.20".into(),
        "2001:db8::1".into(),
        "::ffff:10.0.0.1".into(),
        "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255".into(),
        "".into(),
    ];
    full.grants = vec!["g".into()];
    full.intents = vec!["triage".into()];
    for severity in [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ] {
        full.severity = severity;
        let o = full.to_ocsf();
        assert_valid(&format!("a full {severity:?} finding"), &v, &o);
        let patterns: BTreeSet<&str> = o["anomaly_analyses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["anomalies"][0]["observed_pattern"].as_str().unwrap())
            .collect();
        assert_eq!(patterns, BTreeSet::from(["FREQUENT", "RARE", "UNSEEN"]));
        assert_eq!(o["resources"].as_array().unwrap().len(), 1);
    }
}

/// The schema is not vacuous: a valid finding broken in typical ways fails it.
#[test]
fn the_schema_rejects_broken_findings() {
    let v = validator();
    let findings = replay(&root().join("fixtures/replay/fleet.jsonl"), "ocsf");
    assert!(!findings.is_empty());
    for f in &findings {
        assert_valid("fixture finding", &v, f);
    }
    let good = findings
        .iter()
        .find(|f| {
            f["evidences"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e.get("src_endpoint").is_some())
        })
        .expect("a finding with a source address")
        .clone();
    type Breakage = (&'static str, Box<dyn Fn(&mut Value)>);
    let src = good["evidences"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e.get("src_endpoint").is_some())
        .unwrap();
    let broken: Vec<Breakage> = vec![
        (
            "no finding_info",
            Box::new(|f| {
                f.as_object_mut().unwrap().remove("finding_info");
            }),
        ),
        ("another class", Box::new(|f| f["class_uid"] = json!(2001))),
        (
            "unknown severity",
            Box::new(|f| f["severity_id"] = json!(7)),
        ),
        ("time as text", Box::new(|f| f["time"] = json!("yesterday"))),
        (
            "a member the class lacks",
            Box::new(|f| f["actor"] = json!({"user": {"uid": "a"}})),
        ),
        (
            "metadata without version",
            Box::new(|f| {
                f["metadata"].as_object_mut().unwrap().remove("version");
            }),
        ),
        (
            "an anomaly without observations",
            Box::new(|f| {
                f["anomaly_analyses"][0]["anomalies"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("observations");
            }),
        ),
        (
            "an empty evidence",
            Box::new(|f| f["evidences"][0] = json!({})),
        ),
        (
            "a name as source address",
            Box::new(move |f| f["evidences"][src]["src_endpoint"] = json!({"ip": "AWS Internal"})),
        ),
        (
            "a resource without id or name",
            Box::new(|f| f["resources"] = json!([{"role_id": 1}])),
        ),
    ];
    for (what, breakit) in broken {
        let mut f = good.clone();
        breakit(&mut f);
        assert!(
            !errors(&v, &f).is_empty(),
            "the schema accepts a finding with {what}"
        );
    }
}
