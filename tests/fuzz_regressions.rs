//! What fuzzing (`tests/fuzz/`) found, kept from coming back.
//!
//! Every input that once made a fuzz target fail is kept under `fixtures/fuzz/<target>/` and
//! run through that target's own checks again (the fuzz targets' checks are compiled in here);
//! each fix also has a plain test of what it changed.

use std::io::Read;

use cinch::drive::input::{Layout, MessageKind, read_messages};
use cinch::event::{DecodeConfig, Decoded, Decoder, RejectReason};
use cinch::vocab::FormatChoice;
use serde_json::{Value, json};

#[allow(dead_code)]
#[path = "fuzz/src/lib.rs"]
mod harness;

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fuzz")
}

#[test]
fn every_input_that_failed_a_fuzz_target_passes_it_now() {
    let mut checked = 0;
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let (_, check) = harness::TARGETS
            .iter()
            .find(|(t, _)| *t == name)
            .unwrap_or_else(|| panic!("fixtures/fuzz/{name} names no fuzz target"));
        for file in std::fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            eprintln!("checking {}", path.display());
            check(&std::fs::read(&path).unwrap());
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} inputs");
}

/// The seeds of every target pass its checks (a fuzz run starts from them).
#[test]
fn every_target_passes_on_the_fixtures() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read(root.join(p)).unwrap();
    harness::native(&read("fixtures/formats/native.jsonl"));
    harness::ocsf(&read("fixtures/formats/ocsf.jsonl"));
    harness::cloudtrail(&read("fixtures/formats/cloudtrail.jsonl"));
    harness::k8s_audit(&read("fixtures/formats/k8s_audit.jsonl"));
    harness::mcp_audit(&read("fixtures/mcp_audit/toolhive_audit.jsonl"));
    harness::otlp_json(&read("fixtures/otlp/banking_agent.jsonl"));
    harness::otlp_proto(&read("tests/fuzz/seeds/otlp_proto/banking_agent-7.bin"));
    harness::framing(&read("fixtures/formats/cloudtrail.jsonl"));
    let mut gz = vec![0x41];
    gz.extend(read("fixtures/formats/k8s_audit.jsonl"));
    harness::gzip(&gz);
    harness::config(&read("configs/cinch.toml"));
    harness::verify(&read("tests/fuzz/seeds/verify/mixed.jsonl"));
}

fn decoder(max_record_bytes: usize) -> Decoder {
    Decoder::new(DecodeConfig {
        format: FormatChoice::Auto,
        max_record_bytes,
        ..DecodeConfig::default()
    })
}

fn codes(results: &[Decoded<'_>]) -> Vec<&'static str> {
    results
        .iter()
        .map(|r| r.as_ref().map_or_else(|rej| rej.reason.code(), |_| "ok"))
        .collect()
}

fn native(id: &str, padding: usize) -> String {
    json!({
        "event_id": id, "time": "2024-05-01T12:00:00Z", "agent_id": "a", "action": "s3:GetObject",
        "resource": "s3://b/k", "attributes": {"pad": "x".repeat(padding)}
    })
    .to_string()
}

/// Two records over the limit in one array are two dead letters, each with its own bytes: they
/// were taken for a broken element swallowing the next, and the array became one dead letter.
#[test]
fn oversize_records_in_an_array_are_a_dead_letter_each() {
    let (a, b) = (native("e-1", 300), native("e-2", 300));
    let d = decoder(256);
    for message in [
        format!("[{a}, {b}]"),
        format!("{{\"Records\": [{a},\n{b}]}}"),
    ] {
        let out = d.decode_to_vec(message.as_bytes());
        assert_eq!(codes(&out), ["oversize", "oversize"], "{message}");
        assert_eq!(out[0].as_ref().unwrap_err().raw, a.as_bytes());
        assert_eq!(out[1].as_ref().unwrap_err().raw, b.as_bytes());
    }
    let message = format!("[{a}, {b}, {}]", native("e-3", 0));
    assert_eq!(
        codes(&d.decode_to_vec(message.as_bytes())),
        ["oversize", "oversize", "ok"]
    );
}

/// An oversize record is never cut at a record nested inside it, which would make an event of
/// data the record merely carries.
#[test]
fn a_record_nested_in_an_oversize_one_is_no_event() {
    let inner = native("inner", 0);
    for copies in [
        inner.to_string(),
        format!("[{inner}]"),
        format!("[1, {inner}]"),
    ] {
        let outer = format!(
            r#"{{"event_id":"outer","time":0,"agent_id":"a","action":"x","resource":"r","attributes":{{"pad":"{}","copies":{copies}}}}}"#,
            "x".repeat(400)
        );
        let message = format!("[{}, {outer}]", native("first", 0));
        let out = decoder(300).decode_to_vec(message.as_bytes());
        assert_eq!(codes(&out), ["ok", "oversize"], "{copies}");
        assert_eq!(out[1].as_ref().unwrap_err().raw, outer.as_bytes());
    }
}

/// `[,]` is not JSON and holds no record: one dead letter, not nothing.
#[test]
fn an_array_of_nothing_but_commas_is_a_dead_letter() {
    let d = decoder(1 << 20);
    for message in ["[,]", "[ , ,\t]", "[,", "{\"Records\":[,]}"] {
        let out = d.decode_to_vec(message.as_bytes());
        assert_eq!(codes(&out), ["not_json"], "{message}");
    }
    assert!(d.decode_to_vec(b"[ ]").is_empty());
    assert!(d.decode_to_vec(br#"{"Records":[]}"#).is_empty());
}

/// A line holding records that are each too long to hold is streamed as one oversize message
/// per record, and nothing for the commas between them.
#[test]
fn records_too_long_to_hold_are_streamed_without_a_piece_for_their_commas() {
    let (a, b, c) = (native("e-1", 200), native("e-2", 200), native("e-3", 200));
    let d = decoder(1 << 20);
    for line in [
        format!("[{a}, {b},\n{c}]"),
        format!("{{\"Records\":[{a},{b} ,{c}]}}"),
    ] {
        let mut kinds = Vec::new();
        let mut results = 0;
        read_messages(line.as_bytes(), "test", 97, |m| {
            kinds.push(m.kind.clone());
            d.decode_input(&m, &mut |_| results += 1);
        })
        .unwrap();
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        assert!(
            kinds
                .iter()
                .all(|k| matches!(k, MessageKind::Oversize { .. }))
        );
        assert_eq!(results, 3);
    }
}

/// A delivery streamed in pieces ends where its `Records` array does, as it does decoded
/// whole: the members after the array hold no record (they were handed on as a piece of their
/// own, one dead letter too many, or with the last record, which then failed to decode), and a
/// document after the delivery is one of its own.
#[test]
fn members_after_the_records_of_a_streamed_delivery_hold_no_record() {
    // Streamed with a limit of 200 bytes: `long` is too long to hold, `short` is not.
    let (long, short) = (native("e-1", 300), native("e-2", 0));
    let d = decoder(1 << 20);
    let members = r#""src_endpoint": {"ip": "10.0.0.1"}, "more": [{"agent_id": "a"}]"#;
    for (line, streamed) in [
        (
            format!("{{\"Records\":[{long}],{members}}}"),
            vec!["oversize"],
        ),
        (
            format!("{{\"Records\":[{short},{short},{short}] ,{members}}}"),
            vec!["ok"; 3],
        ),
        (
            format!("{{\"Records\":[{long}]}} {short}"),
            vec!["oversize", "ok"],
        ),
    ] {
        let mut got = Vec::new();
        read_messages(line.as_bytes(), "test", 200, |m| {
            d.decode_input(&m, &mut |r| {
                got.push(r.map_or_else(|rej| rej.reason.code(), |_| "ok"));
            });
        })
        .unwrap();
        assert_eq!(got, streamed, "{line}");
        let whole = d.decode_to_vec(line.as_bytes());
        assert_eq!(whole.len(), streamed.len(), "{line}");
    }
}

/// A reader that hands its bytes on one line at a time.
struct ByLine<'a>(&'a [u8]);

impl Read for ByLine<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let line = self
            .0
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.0.len(), |i| i + 1);
        let n = line.min(buf.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// The layout of an input is told from its content, never from where a read happens to end.
/// A first line that opens a value which breaks on the next ones (here a `[` alone) makes JSON
/// lines when one of the next lines is an object on its own; when the bytes gathered so far
/// ended at a line break before that line, their end was taken for the end of the input and the
/// input for documents, in which the `[` swallowed every line after it into one dead letter.
#[test]
fn the_layout_does_not_depend_on_where_a_read_ends() {
    let junk = format!("  \"pad\": \"{}\",\n", "x".repeat(1500));
    let object = native("e-1", 0);
    let input = format!("[\n{}{object}\n{object}\n", junk.repeat(3));
    let read = |reader: &mut dyn Read| {
        let mut out = Vec::new();
        let stats = read_messages(reader, "test", 1 << 20, |m| {
            out.push((m.line, String::from_utf8_lossy(m.bytes).into_owned()));
        })
        .unwrap();
        (stats.layout, out)
    };
    let whole = read(&mut input.as_bytes());
    assert_eq!(whole.0, Layout::JsonLines);
    assert_eq!(whole.1.len(), 6);
    assert_eq!(whole.1[0], (1, "[".to_owned()));
    assert_eq!(whole.1[4], (5, object.clone()));
    assert_eq!(read(&mut ByLine(input.as_bytes())), whole);
    assert_eq!(read(&mut Trickle(input.as_bytes())), whole);
}

/// A document no longer than the message limit is a message of its own, whole, however the
/// bytes arrive: when a read ended after its close, the blanks read with it were counted toward
/// the limit, and a document of exactly the limit followed by a line break was streamed as an
/// oversize dead letter.
#[test]
fn a_document_of_exactly_the_limit_is_whole_however_the_bytes_arrive() {
    const LIMIT: usize = 97;
    let exact = format!("{{\"pad\": \"{}\"}}", "x".repeat(LIMIT - 11));
    assert_eq!(exact.len(), LIMIT);
    // Pretty-printed first (documents), and long enough that the rest comes in reads of its own.
    let input = format!(
        "{{\n  \"a\": 1\n}}\n{}{exact}\n  \n{{\"b\": 2}}\n{exact}\n",
        "{\"n\": 1}\n".repeat(500)
    );
    let read = |reader: &mut dyn Read| {
        let mut out = Vec::new();
        let stats = read_messages(reader, "test", LIMIT, |m| {
            out.push((m.line, m.bytes.to_vec(), m.kind.clone()));
        })
        .unwrap();
        (stats, out)
    };
    let whole = read(&mut input.as_bytes());
    assert_eq!(whole.0.layout, Layout::Documents);
    assert_eq!(whole.0.oversize, 0, "{:?}", whole.0);
    assert_eq!(whole.1.len(), 504);
    for m in [&whole.1[501], &whole.1[503]] {
        assert_eq!(
            (m.1.as_slice(), &m.2),
            (exact.as_bytes(), &MessageKind::Complete)
        );
    }
    assert_eq!(read(&mut ByLine(input.as_bytes())), whole);
    assert_eq!(read(&mut Trickle(input.as_bytes())), whole);
    // So is what follows a delivery streamed in pieces, in the same document.
    let after = format!("x{}", &exact[1..]);
    let delivery = format!("{{\"Records\":[{}]}} {after}", native("e-1", 200));
    let input = format!(
        "{{\n  \"a\": 1\n}}\n{}{delivery}\n{{\"b\": 2}}\n{delivery}\n",
        "{\"n\": 1}\n".repeat(500)
    );
    let whole = read(&mut input.as_bytes());
    assert_eq!(whole.0.layout, Layout::Documents);
    let afters: Vec<_> = whole.1.iter().filter(|m| m.1 == after.as_bytes()).collect();
    assert_eq!(afters.len(), 2, "{:?}", whole.1.get(501..));
    assert!(afters.iter().all(|m| m.2 == MessageKind::Complete));
    assert_eq!(read(&mut ByLine(input.as_bytes())), whole);
    assert_eq!(read(&mut Trickle(input.as_bytes())), whole);
}

fn otlp_request(tool_span: Value, resource: Value) -> String {
    json!({"resourceSpans": [{
        "resource": {"attributes": resource},
        "scopeSpans": [{"spans": [tool_span]}],
    }]})
    .to_string()
}

fn tool_span(span_id: &str, name: &str, attributes: Value) -> Value {
    let mut attrs =
        vec![json!({"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}})];
    attrs.extend(attributes.as_array().cloned().unwrap_or_default());
    json!({
        "traceId": "000000000000000000000000000000aa", "spanId": span_id, "name": name,
        "startTimeUnixNano": "1767571201000000000", "endTimeUnixNano": "1767571201500000000",
        "attributes": attrs,
    })
}

fn attr(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

/// A tool call that no event could carry (an empty tool name, a span id of more than 128
/// bytes, an agent of more than 512 characters) rejects its export request rather than making
/// an event out of bounds; an empty `service.name` is no name.
#[test]
fn otlp_tool_calls_keep_the_bounds_of_every_event() {
    let d = Decoder::new(DecodeConfig {
        format: FormatChoice::Auto,
        ..DecodeConfig::default()
    });
    let service = json!([attr("service.name", "svc")]);
    let reason = |text: String| {
        let out = d.decode_to_vec(text.as_bytes());
        assert_eq!(out.len(), 1, "{text}");
        match &out[0] {
            Err(rej) => Some(rej.reason.clone()),
            Ok(ev) => {
                assert!(!ev.agent_id.is_empty() && !ev.action.is_empty());
                None
            }
        }
    };
    let field = |r: Option<RejectReason>| match r {
        Some(RejectReason::InvalidField { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    let empty_name = tool_span("0102030405060708", "", json!([]));
    assert_eq!(
        field(reason(otlp_request(empty_name, service.clone()))),
        "name"
    );
    let empty_tool = tool_span(
        "0102030405060708",
        "x",
        json!([attr("gen_ai.tool.name", "")]),
    );
    assert_eq!(
        field(reason(otlp_request(empty_tool, service.clone()))),
        "gen_ai.tool.name"
    );
    let long_id = tool_span(&"ab".repeat(129), "search", json!([]));
    assert_eq!(
        field(reason(otlp_request(long_id, service.clone()))),
        "spanId"
    );
    let long_agent = tool_span(
        "0102030405060708",
        "search",
        json!([attr("gen_ai.agent.id", &"a".repeat(513))]),
    );
    assert_eq!(
        field(reason(otlp_request(long_agent, service.clone()))),
        "gen_ai.agent.id"
    );
    let long_service = json!([attr("service.name", &"s".repeat(513))]);
    let plain = tool_span("0102030405060708", "search", json!([]));
    assert_eq!(
        field(reason(otlp_request(plain.clone(), long_service))),
        "service.name"
    );
    // An empty service name is the unknown service, as a missing one is.
    let request = otlp_request(plain, json!([attr("service.name", "")]));
    let out = d.decode_to_vec(request.as_bytes());
    assert_eq!(out[0].as_ref().unwrap().agent_id, "unknown_service");
}

/// A reader that hands its bytes on one at a time, as a slow pipe does.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.len().min(buf.len()).min(1);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// What is read before damaged gzip data is the same whether the bytes come at once (a file)
/// or one at a time (a pipe). The decompressor drops what it decompressed in the call that meets
/// the damage, and it was handed as much as had arrived: from a file, the records before the
/// damage were lost with it.
#[test]
fn damaged_gzip_reads_the_same_however_the_bytes_arrive() {
    let text: String = (0..100)
        .map(|i| native(&format!("e-{i}"), 0) + "\n")
        .collect();
    // A gzip member whose first deflate block stores the text and whose next block is of the
    // reserved type: the decompressor meets the damage right after the text.
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let len = u16::try_from(text.len()).unwrap();
    gz.push(0);
    gz.extend(len.to_le_bytes());
    gz.extend((!len).to_le_bytes());
    gz.extend(text.as_bytes());
    gz.push(0b111);
    let messages = |reader: &mut dyn Read| {
        let mut out = Vec::new();
        read_messages(reader, "test", 1 << 20, |m| {
            out.push((m.line, m.bytes.to_vec(), m.kind.clone()))
        })
        .unwrap();
        out
    };
    let whole = messages(&mut gz.as_slice());
    let trickled = messages(&mut Trickle(&gz));
    assert_eq!(whole, trickled);
    assert!(whole.len() > 50, "{} messages", whole.len());
    assert!(matches!(
        whole.last().map(|m| &m.2),
        Some(MessageKind::Unreadable { .. })
    ));
}
