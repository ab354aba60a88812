//! MCP gateway audit events (ToolHive): tool calls are events, other events are skipped.

use std::path::Path;

use cinch::event::{DecodeConfig, Decoder, Format, Outcome};

#[test]
fn tool_calls_become_events_with_their_arguments_and_other_events_are_skipped() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mcp_audit/toolhive_audit.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    let decoder = Decoder::new(DecodeConfig::default());
    let mut events = Vec::new();
    for line in text.lines() {
        decoder.decode_message(line.as_bytes(), &mut |d| {
            let ev = d.expect("every audit event decodes");
            events.push((
                ev.format,
                ev.event_id.to_string(),
                ev.agent_id.to_string(),
                ev.action.to_string(),
                ev.resource.to_string(),
                ev.outcome,
                ev.session_id.as_deref().map(str::to_string),
                ev.source_ip.as_deref().map(str::to_string),
                ev.tool
                    .as_ref()
                    .and_then(|t| t.arguments.as_deref())
                    .map(|a| cinch::profile::entities::extract(a.get()).len()),
            ));
        });
    }
    assert_eq!(
        decoder.skipped_spans(),
        2,
        "initialize and tools/list are not tool calls"
    );
    assert_eq!(events.len(), 4);
    let send = &events[1];
    assert_eq!(send.0, Format::McpAudit);
    assert_eq!(send.1, "a1b2c3d4-0000-4000-8000-000000000004");
    assert_eq!(send.2, "support-agent", "the MCP client is the agent");
    assert_eq!(send.3, "send_email");
    assert_eq!(send.4, "mcp://crm-mcp/send_email");
    assert_eq!(send.5, Outcome::Success);
    assert_eq!(send.6.as_deref(), Some("sess-77"));
    assert_eq!(send.7.as_deref(), Some("10.20.0.7"));
    assert_eq!(
        send.8,
        Some(1),
        "the recipient's mail address is an entity of the call"
    );
    assert_eq!(events[2].5, Outcome::Denied);
    assert_eq!(events[3].5, Outcome::Error, "a JSON-RPC error is an error");
}

#[test]
fn an_audit_event_without_its_id_is_dead_lettered() {
    let decoder = Decoder::new(DecodeConfig::default());
    let line = r#"{"type":"mcp_tool_call","loggedAt":"2026-01-05T10:00:00Z","subjects":{"user":"a"},"target":{"name":"t"},"metadata":{}}"#;
    let mut codes = Vec::new();
    decoder.decode_message(line.as_bytes(), &mut |d| {
        codes.push(d.unwrap_err().reason.code())
    });
    assert_eq!(codes, ["missing_field"]);
}
