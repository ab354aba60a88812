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

fn decode_all(decoder: &Decoder, line: &str) -> Vec<Result<String, String>> {
    let mut out = Vec::new();
    decoder.decode_message(line.as_bytes(), &mut |d| {
        out.push(
            d.map(|ev| format!("{:?} {} {}", ev.format, ev.agent_id, ev.action))
                .map_err(|rej| rej.reason.to_string()),
        );
    });
    out
}

#[test]
fn a_tool_call_whose_arguments_name_an_agent_id_is_still_an_audit_event() {
    // The arguments are the tool's business: an `agent_id` in them does not make the record a
    // native event.
    let line = r#"{"type":"mcp_tool_call","loggedAt":"2026-01-05T10:00:00Z","metadata":{"auditId":"x-1"},"subjects":{"client_name":"ops-agent"},"component":"crm","target":{"name":"assign_ticket"},"data":{"request":{"params":{"arguments":{"agent_id":"human-7"}}}}}"#;
    let decoder = Decoder::new(DecodeConfig::default());
    assert_eq!(
        decode_all(&decoder, line),
        vec![Ok("McpAudit ops-agent assign_ticket".to_string())]
    );
}

#[test]
fn a_record_with_the_audit_members_only_deeper_down_is_not_an_audit_event() {
    // `subjects` sits inside `source`, not at the top: not an audit event, so it is not
    // skipped as one; it is dead-lettered, as any record of no known format is.
    let line = r#"{"type":"mcp_tools_list","loggedAt":"2026-01-05T10:00:00Z","source":{"subjects":{"user":"a"}}}"#;
    let decoder = Decoder::new(DecodeConfig::default());
    let results = decode_all(&decoder, line);
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(results[0].is_err(), "{results:?}");
    assert_eq!(decoder.skipped_spans(), 0);
    // Told the input is audit events, the decoder names the member that is missing.
    let forced = Decoder::new(DecodeConfig {
        format: cinch::vocab::FormatChoice::McpAudit,
        ..DecodeConfig::default()
    });
    let results = decode_all(&forced, line);
    assert_eq!(results.len(), 1);
    let err = results[0].as_ref().unwrap_err();
    assert!(err.contains("subjects"), "{err}");
}

#[test]
fn an_audit_event_with_an_empty_or_oversized_name_is_dead_lettered() {
    // The same bounds as every other format: a tool call must name a tool (1 to 256
    // characters), and the event id and the agent are bounded too.
    let line = |id: &str, agent: &str, name: &str| {
        format!(
            r#"{{"type":"mcp_tool_call","loggedAt":"2026-01-05T10:00:00Z","metadata":{{"auditId":"{id}"}},"subjects":{{"client_name":"{agent}"}},"component":"crm","target":{{"name":"{name}"}}}}"#
        )
    };
    let decoder = Decoder::new(DecodeConfig::default());
    let long = "x".repeat(600);
    for (l, field) in [
        (line("x-1", "ops-agent", ""), "target.name"),
        (line("x-1", "ops-agent", &long), "target.name"),
        (line("", "ops-agent", "assign_ticket"), "metadata.auditId"),
        (line("x-1", &long, "assign_ticket"), "subjects"),
    ] {
        let results = decode_all(&decoder, &l);
        assert_eq!(results.len(), 1, "{results:?}");
        let err = results[0].as_ref().unwrap_err();
        assert!(err.contains(field), "{field}: {err}");
    }
    assert_eq!(
        decode_all(&decoder, &line("x-1", "ops-agent", "assign_ticket")),
        vec![Ok("McpAudit ops-agent assign_ticket".to_string())]
    );
}
