//! OpenTelemetry GenAI traces: tool call spans become events, other spans are skipped, and a
//! payment steered by text the agent read is a finding, in OTLP JSON and protobuf alike.

#[path = "common/otlp.rs"]
mod otlp_fixture;

use std::path::Path;

use cinch::config::Settings;
use cinch::drive::replay::{ReplayOptions, replay};
use cinch::event::{DecodeConfig, Decoder};

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/otlp/banking_agent.jsonl")
}

#[test]
fn tool_call_spans_are_events_and_other_spans_are_skipped() {
    let text = std::fs::read_to_string(fixture()).unwrap();
    let decoder = Decoder::new(DecodeConfig::default());
    let mut events = Vec::new();
    for line in text.lines() {
        decoder.decode_message(line.as_bytes(), &mut |d| {
            let ev = d.expect("every tool call span decodes");
            events.push((
                ev.event_id.to_string(),
                ev.agent_id.to_string(),
                ev.action.to_string(),
                ev.session_id.as_deref().map(str::to_string),
                ev.tool.is_some(),
            ));
        });
    }
    assert_eq!(
        events.len(),
        14,
        "two tool calls in each of seven conversations"
    );
    assert_eq!(
        decoder.skipped_spans(),
        14,
        "seven invoke_agent and seven chat spans"
    );
    assert_eq!(
        decoder.agent_from_resource(),
        0,
        "the agent comes from invoke_agent"
    );
    let (id, agent, action, session, tool) = &events[1];
    assert_eq!(id, "0101abababababab", "the span id in lowercase hex");
    assert_eq!(agent, "banking-assistant");
    assert_eq!(action, "send_money");
    assert_eq!(session.as_deref(), Some("conv-1"));
    assert!(tool, "arguments, result and request travel with the event");
}

#[test]
fn protobuf_and_json_give_the_same_events() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    let text = std::fs::read_to_string(fixture()).unwrap();
    let decoder = Decoder::new(DecodeConfig::default());
    for line in text.lines() {
        let req: ExportTraceServiceRequest = serde_json::from_str(line).unwrap();
        let bytes = req.encode_to_vec();
        let mut from_json = Vec::new();
        decoder.decode_message(line.as_bytes(), &mut |d| {
            let e = d.unwrap();
            from_json.push((e.event_id.to_string(), e.time_ms, e.action.to_string()));
        });
        let mut from_proto = Vec::new();
        decoder.decode_otlp_proto(&bytes, &mut |d| {
            let e = d.unwrap();
            from_proto.push((e.event_id.to_string(), e.time_ms, e.action.to_string()));
        });
        assert_eq!(from_json, from_proto);
        assert!(!from_json.is_empty());
    }
    let mut rejected = 0;
    decoder.decode_otlp_proto(b"\xff\xff not protobuf", &mut |d| {
        assert_eq!(d.unwrap_err().reason.code(), "invalid_field");
        rejected += 1;
    });
    assert_eq!(
        rejected, 1,
        "a message that is not an export request is dead-lettered"
    );
}

#[test]
fn a_payment_to_an_account_named_only_by_data_the_agent_read_is_a_finding() {
    let dir = tempfile::tempdir().unwrap();
    let (out, scores) = (
        dir.path().join("out.jsonl"),
        dir.path().join("scores.jsonl"),
    );
    let summary = replay(
        Settings::default(),
        &ReplayOptions {
            input: fixture(),
            out: Some(out.clone()),
            scores_out: Some(scores.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(summary.input.events, 14);
    assert_eq!(summary.skipped_spans, 14);
    let findings: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r["kind"] == "finding")
        .collect();
    assert_eq!(findings.len(), 1, "{findings:?}");
    let f = &findings[0];
    assert_eq!(f["event_ids"], serde_json::json!(["0901abababababab"]));
    assert_eq!(
        f["ocsf"]["unmapped"]["ai_agent"]["uid"], "banking-assistant",
        "the OCSF finding names the AI agent"
    );
    let reasons = f["reasons"].as_array().unwrap();
    let provenance = reasons
        .iter()
        .find(|r| r["detector"] == "provenance")
        .expect("the provenance detector explains the finding");
    let text = provenance["explanation"].as_str().unwrap();
    assert!(
        text.contains("bank account") && text.contains("tool result"),
        "{text}"
    );
    // The rent paid to the landlord the user named, six times, is never a finding.
    let scores = std::fs::read_to_string(&scores).unwrap();
    for line in scores.lines() {
        let s: serde_json::Value = serde_json::from_str(line).unwrap();
        if s["event_id"].as_str().unwrap().starts_with("0") && s["event_id"] != "0901abababababab" {
            assert!(s["score"].as_f64().unwrap() < 0.6, "{line}");
        }
    }
}

/// The fixture as an exporter sends it (see [`otlp_fixture::split_requests`]), with or without
/// the agent runs.
fn split_fixture(dir: &Path, keep_invokes: bool) -> std::path::PathBuf {
    let mut lines = Vec::new();
    for (calls, run) in otlp_fixture::split_requests() {
        lines.push(calls);
        if keep_invokes {
            lines.push(run);
        }
    }
    let path = dir.join("split.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn findings_of(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r["kind"] == "finding")
        .collect()
}

fn agents_scored(scores: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_to_string(scores)
        .unwrap()
        .lines()
        .map(|l| {
            let s: serde_json::Value = serde_json::from_str(l).unwrap();
            s["agent_id"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn tool_calls_join_the_agent_run_that_arrives_in_a_later_request() {
    let dir = tempfile::tempdir().unwrap();
    let input = split_fixture(dir.path(), true);
    let (out, scores) = (dir.path().join("o.jsonl"), dir.path().join("s.jsonl"));
    let summary = replay(
        Settings::default(),
        &ReplayOptions {
            input,
            out: Some(out.clone()),
            scores_out: Some(scores.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(summary.input.records, 14);
    assert_eq!(summary.input.events, 14, "every tool call is scored once");
    assert_eq!(
        summary.joined_spans, 14,
        "each joined its invoke_agent span"
    );
    assert_eq!(summary.join_fallbacks, 0);
    assert_eq!(summary.agent_from_resource, 0);
    assert_eq!(
        agents_scored(&scores),
        ["banking-assistant".to_string()].into()
    );
    // The user's request travels in the later request: the steered payment is still found,
    // and only it.
    let findings = findings_of(&out);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(
        findings[0]["event_ids"],
        serde_json::json!(["0901abababababab"])
    );
}

#[test]
fn without_a_wait_or_an_ancestor_tool_calls_take_the_resource_as_their_agent() {
    let dir = tempfile::tempdir().unwrap();
    // No wait: each request is decoded on its own.
    let mut settings = Settings::default();
    settings.decode.otlp_join_wait_secs = 0;
    let scores = dir.path().join("s0.jsonl");
    let summary = replay(
        settings,
        &ReplayOptions {
            input: split_fixture(dir.path(), true),
            out: Some(dir.path().join("o0.jsonl")),
            scores_out: Some(scores.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(summary.input.events, 14);
    assert_eq!(summary.agent_from_resource, 14);
    assert_eq!((summary.joined_spans, summary.join_fallbacks), (0, 0));
    assert_eq!(
        agents_scored(&scores),
        ["banking-agent-svc".to_string()].into()
    );

    // The ancestors never come: the calls wait until the input ends, then are scored with the
    // resource's agent, and none is lost.
    let scores = dir.path().join("s1.jsonl");
    let summary = replay(
        Settings::default(),
        &ReplayOptions {
            input: split_fixture(dir.path(), false),
            out: Some(dir.path().join("o1.jsonl")),
            scores_out: Some(scores.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(summary.input.records, 14);
    assert_eq!(summary.input.events, 14);
    assert_eq!(summary.join_fallbacks, 14);
    assert_eq!(summary.agent_from_resource, 14);
    assert_eq!(
        std::fs::read_to_string(&scores).unwrap().lines().count(),
        14
    );
}
