//! The checks behind cinch's fuzz targets: one function per target, each taking the fuzzer's
//! bytes.
//!
//! Every target drives the library code that `cinch replay`, the Kafka worker, `cinch verify`
//! and `cinch authorize` run, and checks the contract (CONTRACT.md): nothing panics, and every
//! record in is scored or dead-lettered; OpenTelemetry spans and gateway audit events that are
//! not tool calls are skipped and counted. Where the bytes say how many records they hold (one
//! JSON value on a line, a JSON array, a CloudTrail delivery `{"Records":[...]}`), the count
//! must be exact, and each element's result must be the one the element gets on its own;
//! otherwise every message must yield at least one result.
//!
//! The same file is compiled into the regression test `tests/fuzz_regressions.rs`, which runs
//! each target's check over the inputs that once failed it (`fixtures/fuzz/<target>/`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::io::{self, Read, Write};

use cinch::authorize::policy::{Decision, PolicyStore, Query, UnknownAgents};
use cinch::authorize::{CommandIntake, Intake, strict};
use cinch::config::{ConfigError, Settings};
use cinch::detect::Verdict;
use cinch::drive::counts::InputCounts;
use cinch::drive::input::{KEPT_BYTES, Layout, MessageKind, SourceStats, read_messages};
use cinch::drive::step::{Outputs, deliver, step};
use cinch::engine::Engine;
use cinch::event::otlp::JoinSettings;
use cinch::event::{AccessEvent, DecodeConfig, Decoded, Decoder, Rejected};
use cinch::output::OutputRecord;
use cinch::output::command::Action;
use cinch::output::dead_letter::DeadLetter;
use cinch::output::sign::{Signature, Signer, Verifier};
use cinch::vocab::{FindingFormat, FormatChoice};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde_json::Value;
use serde_json::value::RawValue;

/// A target's check of the fuzzer's bytes.
pub type Check = fn(&[u8]);

/// Every target: its name and its check.
pub const TARGETS: [(&str, Check); 11] = [
    ("native", native),
    ("ocsf", ocsf),
    ("cloudtrail", cloudtrail),
    ("gzip", gzip),
    ("k8s_audit", k8s_audit),
    ("otlp_json", otlp_json),
    ("otlp_proto", otlp_proto),
    ("mcp_audit", mcp_audit),
    ("framing", framing),
    ("config", config),
    ("verify", verify),
];

/// Native events, one a line: each line as a message, and the lines as a file.
pub fn native(data: &[u8]) {
    records(data, FormatChoice::Native);
}

/// OCSF events, one a line.
pub fn ocsf(data: &[u8]) {
    records(data, FormatChoice::Ocsf);
}

/// Kubernetes audit events, one a line.
pub fn k8s_audit(data: &[u8]) {
    records(data, FormatChoice::K8sAudit);
}

/// MCP gateway audit events, one a line.
pub fn mcp_audit(data: &[u8]) {
    records(data, FormatChoice::McpAudit);
}

/// CloudTrail records in its three framings: one a line, a JSON array of the lines and an S3
/// delivery `{"Records":[...]}` of them (each as one message, and the delivery pretty-printed
/// as a file).
pub fn cloudtrail(data: &[u8]) {
    records(data, FormatChoice::Cloudtrail);
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').filter(|l| !blank(l)).collect();
    let auto = kafka_decoder(FormatChoice::Auto, DEFAULT_RECORD);
    let small = kafka_decoder(FormatChoice::Auto, SMALL_RECORD);
    let forced = kafka_decoder(FormatChoice::Cloudtrail, DEFAULT_RECORD);
    for (open, close) in [(&b"["[..], &b"]"[..]), (b"{\"Records\":[", b"]}")] {
        let (message, spans) = container(open, &lines, b",", close);
        let detected = oracle(&message, FormatChoice::Auto);
        let cloudtrail = oracle(&message, FormatChoice::Cloudtrail);
        for (decoder, oracle) in [
            (&auto, &detected),
            (&small, &detected),
            (&forced, &cloudtrail),
        ] {
            let results = check_message(decoder, &message, oracle);
            check_coverage(decoder, &message, &spans, &results);
        }
    }
    let (pretty, _) = container(
        b"{\n  \"Records\": [\n    ",
        &lines,
        b",\n    ",
        b"\n  ]\n}\n",
    );
    let run = replay(&pretty, DEFAULT_MESSAGE, &Settings::default());
    check_layout(&run, &pretty, FormatChoice::Auto);
}

/// gzip input through the replay input path. The first byte chooses how the text after it is
/// compressed: into how many members, and whether the compressed bytes are then cut or
/// damaged. Decompressed, the messages must be those of the plain text; damaged, the input must
/// end with one `Unreadable` message, never an error or a panic.
pub fn gzip(data: &[u8]) {
    let Some((&params, text)) = data.split_first() else {
        return;
    };
    let members = 1 + usize::from(params & 3);
    let mut gz = Vec::new();
    for k in 0..members {
        let part = &text[text.len() * k / members..text.len() * (k + 1) / members];
        gz.extend(gzip_member(part));
    }
    let plain = collect(text, DEFAULT_MESSAGE, WHOLE);
    if !text.starts_with(&GZIP_MAGIC) {
        let unzipped = collect(&gz, DEFAULT_MESSAGE, WHOLE);
        assert!(unzipped.stats.gzip);
        assert_eq!(
            unzipped.messages, plain.messages,
            "gzip changes the messages"
        );
        let run = replay(&gz, DEFAULT_MESSAGE, &Settings::default());
        check_layout(&run, text, FormatChoice::Auto);
    }
    // Cut short, or with a byte flipped.
    let mut damaged = gz.clone();
    let at = damaged.len() * usize::from(params >> 2) / 64;
    if params & 0x80 == 0 {
        damaged.truncate(at.max(2));
    } else if let Some(b) = damaged.get_mut(at.max(10)) {
        *b ^= 0x5a;
    }
    let got = collect(&damaged, DEFAULT_MESSAGE, WHOLE);
    let unreadable = got
        .messages
        .iter()
        .filter(|m| matches!(m.kind, MessageKind::Unreadable { .. }))
        .count();
    assert!(unreadable <= 1, "more than one unreadable message");
    if unreadable == 1 {
        assert!(matches!(
            got.messages.last().map(|m| &m.kind),
            Some(MessageKind::Unreadable { .. })
        ));
    }
    replay(&damaged, DEFAULT_MESSAGE, &Settings::default());
    // Bytes that claim to be gzip.
    let mut claimed = GZIP_MAGIC.to_vec();
    claimed.extend_from_slice(text);
    replay(&claimed, DEFAULT_MESSAGE, &Settings::default());
}

/// Any bytes as an input file: read whole, read in small chunks (the messages must not depend
/// on how the bytes arrive) and with a small message limit (long lines and documents streamed
/// in pieces), each message decoded and scored.
pub fn framing(data: &[u8]) {
    for max in [DEFAULT_MESSAGE, SMALL_MESSAGE] {
        let whole = collect(data, max, WHOLE);
        let chunked = collect(data, max, &chunk_sizes(data));
        assert_eq!(
            whole.messages, chunked.messages,
            "the messages depend on how the bytes arrive (limit {max})"
        );
        assert_eq!(whole.stats, chunked.stats);
        let run = replay(data, max, &Settings::default());
        assert_eq!(run.messages.len(), whole.messages.len());
        if !data.starts_with(&GZIP_MAGIC) {
            check_layout(&run, data, FormatChoice::Auto);
        }
    }
}

/// OTLP JSON export requests, one a line; a request that decodes must give the same events as
/// its protobuf encoding.
pub fn otlp_json(data: &[u8]) {
    records(data, FormatChoice::Otlp);
    let json = kafka_decoder(FormatChoice::Otlp, DEFAULT_RECORD);
    let proto = kafka_decoder(FormatChoice::Otlp, DEFAULT_RECORD);
    for line in data.split(|&b| b == b'\n') {
        let Ok(text) = std::str::from_utf8(line) else {
            continue;
        };
        let Ok(request) = serde_json::from_str::<ExportTraceServiceRequest>(text) else {
            continue;
        };
        if !matches!(strict::parse(line), Ok(Value::Object(m)) if m.contains_key("resourceSpans")) {
            continue;
        }
        let encoded = prost::Message::encode_to_vec(&request);
        let from_json = summary(&json.decode_to_vec(line));
        let mut from_proto = Vec::new();
        proto.decode_otlp_proto(&encoded, &mut |d| from_proto.push(d));
        assert_eq!(
            from_json,
            summary(&from_proto),
            "OTLP JSON and protobuf disagree"
        );
    }
}

/// An OTLP protobuf export request (a Kafka message with `otlp_proto`).
pub fn otlp_proto(data: &[u8]) {
    let decoder = kafka_decoder(FormatChoice::Otlp, DEFAULT_RECORD);
    let spans = <ExportTraceServiceRequest as prost::Message>::decode(data)
        .ok()
        .map(|r| span_count(&r));
    let before = decoder.skipped_spans();
    let mut results = Vec::new();
    decoder.decode_otlp_proto(data, &mut |d| {
        check_result(data, &d);
        results.push(d);
    });
    let skipped = decoder.skipped_spans() - before;
    check_count(
        &Expect::Otlp(spans),
        &results,
        skipped,
        "an OTLP protobuf message",
    );
    // A request prost reads decodes as its canonical encoding does: the message read in place
    // merges repeated members, skips unknown ones and reads every value as prost does.
    if let Ok(request) = <ExportTraceServiceRequest as prost::Message>::decode(data) {
        let canonical = prost::Message::encode_to_vec(&request);
        let mut again = Vec::new();
        kafka_decoder(FormatChoice::Otlp, DEFAULT_RECORD)
            .decode_otlp_proto(&canonical, &mut |d| again.push(d));
        let full = |results: &[Decoded<'_>]| -> Vec<String> {
            results
                .iter()
                .map(|r| match r {
                    Ok(ev) => serde_json::to_string(ev).expect("an event serialises"),
                    Err(rej) => rej.reason.code().to_string(),
                })
                .collect()
        };
        assert_eq!(
            full(&results),
            full(&again),
            "a protobuf request and its canonical encoding disagree"
        );
    }
    // Twice through a decoder that joins calls with their ancestors across requests, then
    // scored: every span is an event or skipped once the join is flushed.
    let settings = Settings::default();
    let decoder = Decoder::new(settings.decode.decoder());
    let mut driver = Driver::new(&settings);
    let mut rejected = 0;
    for _ in 0..2 {
        decoder.decode_otlp_proto(data, &mut |d| {
            check_result(data, &d);
            rejected += usize::from(d.is_err());
            driver.step(d);
        });
    }
    decoder.flush_spans(&mut |d| driver.step(d));
    let counts = driver.finish();
    match spans {
        Some(n) if rejected == 0 => assert_eq!(
            counts.events + decoder.skipped_spans(),
            2 * n as u64,
            "spans lost in the join"
        ),
        _ => assert_eq!(
            (counts.records, rejected),
            (2, 2),
            "a bad request is one dead letter"
        ),
    }
}

/// A TOML config: parsed and validated without a panic; an error says what is wrong; a config
/// that is accepted builds a decoder and an engine that replay the native fixture, and reads
/// back the same after it is written out.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Settings::from_toml(&text) {
        Err(e) => {
            assert!(!e.to_string().is_empty());
            if let ConfigError::Invalid(errors) = &e {
                assert!(!errors.is_empty() && errors.iter().all(|m| !m.is_empty()));
            }
        }
        Ok(settings) => {
            assert!(settings.validate().is_ok(), "accepted, then invalid");
            let written = toml::to_string(&settings).expect("accepted settings serialise");
            let again = Settings::from_toml(&written).expect("written settings read back");
            assert_eq!(
                again, settings,
                "settings change when written and read back"
            );
            let run = replay(NATIVE_FIXTURE.as_bytes(), DEFAULT_MESSAGE, &settings);
            let lines = NATIVE_FIXTURE.lines().filter(|l| !blank(l.as_bytes()));
            assert_eq!(run.counts.records, lines.count() as u64);
        }
    }
}

/// Command records, one a line, checked as `cinch authorize` takes them in and as `cinch
/// verify` checks them, against the test key of `fixtures/keys`: each line as it is, and each
/// line that is a JSON object signed afresh (so that the fuzzer explores what a validly signed
/// command may hold). A command accepted by either must really verify (its signature is the
/// key's signature of the record without it, and two parsers cannot read it differently), and
/// an applied command must become a policy that forbids what it says.
pub fn verify(data: &[u8]) {
    let signer = Signer::from_pem(TEST_KEY).expect("the test key loads");
    let verifier = signer.verifier();
    let mut resigned = Vec::new();
    for line in data.split_inclusive(|&b| b == b'\n') {
        match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(mut m)) => {
                m.remove("signature");
                let mut v = Value::Object(m);
                let signature = signer.sign(&v);
                v["signature"] = serde_json::to_value(signature).expect("a signature serialises");
                resigned.extend(serde_json::to_vec(&v).expect("a value serialises"));
                resigned.push(b'\n');
            }
            _ => resigned.extend_from_slice(line),
        }
    }
    for input in [data, resigned.as_slice()] {
        check_intake(input, &signer);
        check_verify_cli(input, &signer, &verifier);
    }
}

/// Messages longer than this are oversize: the replay default.
const DEFAULT_MESSAGE: usize = cinch::drive::input::DEFAULT_MAX_MESSAGE_BYTES;
/// A small message limit, so that fuzz inputs reach the streaming of long messages.
const SMALL_MESSAGE: usize = 97;
/// The default record limit.
const DEFAULT_RECORD: usize = cinch::event::DEFAULT_MAX_RECORD_BYTES;
/// A small record limit, so that fuzz inputs reach oversize records in containers.
const SMALL_RECORD: usize = 512;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// "Now" for command expiry: within the validity of the command in the replay fixture.
const NOW_MS: i64 = 1_768_089_600_000; // 2026-01-11T00:00:00Z
/// The test key of `fixtures/keys` (public by design: it proves nothing).
const TEST_KEY: &str = include_str!("../../../fixtures/keys/cinch-signing.key");
/// Events replayed with every accepted config.
const NATIVE_FIXTURE: &str = include_str!("../../../fixtures/formats/native.jsonl");
/// Top-level members that make an object an event of its own rather than a delivery.
const EVENT_KEYS: [&str; 12] = [
    "agent_id",
    "action",
    "event_id",
    "class_uid",
    "kind",
    "auditID",
    "apiVersion",
    "eventVersion",
    "eventID",
    "userIdentity",
    "resourceSpans",
    "loggedAt",
];

fn blank(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// A decoder as the Kafka worker has it for one message at a time, with OTLP requests decoded
/// each on its own (so that a request's spans are all accounted for in its own results).
fn kafka_decoder(format: FormatChoice, max_record_bytes: usize) -> Decoder {
    Decoder::new(DecodeConfig {
        format,
        max_record_bytes,
        join: JoinSettings {
            wait_ms: 0,
            ..JoinSettings::default()
        },
    })
}

/// Records of one format, one a line: each line as a message (auto-detected, with a small
/// record limit, and with the format forced), then the lines as a file through the engine.
fn records(data: &[u8], format: FormatChoice) {
    let auto = kafka_decoder(FormatChoice::Auto, DEFAULT_RECORD);
    let small = kafka_decoder(FormatChoice::Auto, SMALL_RECORD);
    let forced = kafka_decoder(format, DEFAULT_RECORD);
    for line in data.split(|&b| b == b'\n') {
        let detected = oracle(line, FormatChoice::Auto);
        check_message(&auto, line, &detected);
        check_message(&small, line, &detected);
        check_message(&forced, line, &oracle(line, format));
    }
    let run = replay(data, DEFAULT_MESSAGE, &Settings::default());
    check_layout(&run, data, FormatChoice::Auto);
}

/// How many results a message (or a line) must yield, told from its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    /// Exactly this many (events and rejections).
    Exactly(usize),
    /// An OTLP export request, with its number of spans when they can be counted: its events
    /// and skipped spans are that many, or it is one rejection.
    Otlp(Option<usize>),
    /// An MCP gateway audit event: one result, or one skipped event.
    Mcp,
    /// Not one JSON value: at least one result, unless it is nothing but empty containers.
    Some,
}

/// What a message must yield, told from its bytes: how many results, and for a JSON array or a
/// delivery the text of each element.
struct Oracle<'a> {
    format: FormatChoice,
    expect: Expect,
    elements: Option<Vec<&'a str>>,
}

fn oracle(bytes: &[u8], format: FormatChoice) -> Oracle<'_> {
    let Ok(value) = strict::parse(bytes) else {
        return Oracle {
            format,
            expect: Expect::Some,
            elements: None,
        };
    };
    let expect = expect_value(&value, bytes, format);
    let elements = std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| match &value {
            Value::Array(_) => raw_elements(text),
            Value::Object(map) if is_delivery(map, format) => {
                let members = serde_json::from_str::<HashMap<String, &RawValue>>(text).ok()?;
                raw_elements(members.get("Records")?.get())
            }
            _ => None,
        });
    Oracle {
        format,
        expect,
        elements,
    }
}

/// The text of each element of the JSON array `text`.
fn raw_elements(text: &str) -> Option<Vec<&str>> {
    serde_json::from_str::<Vec<&RawValue>>(text)
        .ok()
        .map(|v| v.into_iter().map(RawValue::get).collect())
}

/// What `bytes` must yield with `format`.
fn expect(bytes: &[u8], format: FormatChoice) -> Expect {
    match strict::parse(bytes) {
        Ok(value) => expect_value(&value, bytes, format),
        Err(_) => Expect::Some,
    }
}

/// What the JSON value `value` (whose text is `bytes`) must yield with `format`.
fn expect_value(value: &Value, bytes: &[u8], format: FormatChoice) -> Expect {
    let auto = format == FormatChoice::Auto;
    match value {
        Value::Array(items) => Expect::Exactly(items.len()),
        Value::Object(map) => {
            if (auto || format == FormatChoice::Otlp) && map.contains_key("resourceSpans") {
                let spans = std::str::from_utf8(bytes)
                    .ok()
                    .and_then(|t| serde_json::from_str::<ExportTraceServiceRequest>(t).ok())
                    .map(|r| span_count(&r));
                return Expect::Otlp(spans);
            }
            if (auto || format == FormatChoice::McpAudit)
                && ["type", "loggedAt", "subjects"]
                    .iter()
                    .all(|k| map.contains_key(*k))
                && !map.contains_key("agent_id")
            {
                return Expect::Mcp;
            }
            if is_delivery(map, format)
                && let Some(Value::Array(records)) = map.get("Records")
            {
                return Expect::Exactly(records.len());
            }
            Expect::Exactly(1)
        }
        _ => Expect::Exactly(1),
    }
}

/// Whether an object is a CloudTrail delivery for a decoder of `format`: a `Records` array and
/// no member that names an event of its own.
fn is_delivery(map: &serde_json::Map<String, Value>, format: FormatChoice) -> bool {
    matches!(format, FormatChoice::Auto | FormatChoice::Cloudtrail)
        && matches!(map.get("Records"), Some(Value::Array(_)))
        && !map.keys().any(|k| EVENT_KEYS.contains(&k.as_str()))
}

fn span_count(r: &ExportTraceServiceRequest) -> usize {
    r.resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum()
}

/// Whether `bytes` are JSON values that hold no record: empty arrays and deliveries, export
/// requests without spans.
fn only_empty_containers(bytes: &[u8], format: FormatChoice) -> bool {
    let mut values = serde_json::Deserializer::from_slice(bytes).into_iter::<&RawValue>();
    let mut any = false;
    for v in values.by_ref() {
        let Ok(v) = v else { return false };
        any = true;
        // Read as `serde_json` reads it (the last of two equal keys), as the OTLP decoder does.
        let Ok(value) = serde_json::from_str::<Value>(v.get()) else {
            return false;
        };
        if !matches!(
            expect_value(&value, v.get().as_bytes(), format),
            Expect::Exactly(0) | Expect::Otlp(Some(0))
        ) {
            return false;
        }
    }
    any
}

/// What an element of a container must give: its event id, or a rejection.
fn element_result(decoder: &Decoder, element: &str) -> Option<String> {
    if element.len() > decoder.config().max_record_bytes || !element.starts_with('{') {
        return None;
    }
    decoder
        .decode_record(element)
        .ok()
        .map(|ev| ev.event_id.into_owned())
}

/// Checks one result of decoding `message`: an event within the contract's bounds, or a
/// rejection that carries exactly its own bytes and makes a dead letter.
fn check_result(message: &[u8], d: &Decoded<'_>) {
    match d {
        Ok(ev) => check_event(ev),
        Err(rej) => {
            let end = rej.offset + rej.raw.len();
            assert!(end <= message.len(), "rejection past the message");
            assert_eq!(&message[rej.offset..end], rej.raw, "rejection bytes");
            assert!(!rej.reason.to_string().is_empty());
            let dl = DeadLetter::new(rej, "fuzz", Some(1)).in_input(0);
            let v: Value = serde_json::from_str(&dl.to_json()).expect("a dead letter is JSON");
            assert_eq!(v["kind"], "dead_letter");
            assert_eq!(v["reason_code"], rej.reason.code());
        }
    }
}

/// The bounds every event keeps (CONTRACT.md, section 1).
fn check_event(ev: &AccessEvent<'_>) {
    let chars = |s: &str| s.chars().count();
    assert!(
        (1..=256).contains(&chars(&ev.event_id)),
        "event_id of {} chars",
        chars(&ev.event_id)
    );
    assert!(
        (1..=512).contains(&chars(&ev.agent_id)),
        "agent_id of {} chars",
        chars(&ev.agent_id)
    );
    assert!(
        (1..=256).contains(&chars(&ev.action)),
        "action of {} chars",
        chars(&ev.action)
    );
    assert!(
        chars(&ev.resource) <= 4096,
        "resource of {} chars",
        chars(&ev.resource)
    );
    assert!(
        (0..4_102_444_800_000).contains(&ev.time_ms),
        "time {} out of range",
        ev.time_ms
    );
    if let Some(a) = &ev.attributes {
        assert!(a.get().starts_with('{'), "attributes not an object");
    }
}

/// Decodes `bytes` as one message and checks its results against what its bytes say.
fn check_message<'a>(decoder: &Decoder, bytes: &'a [u8], oracle: &Oracle<'_>) -> Vec<Decoded<'a>> {
    let before = decoder.skipped_spans();
    let mut results = Vec::new();
    decoder.decode_message(bytes, &mut |d| {
        check_result(bytes, &d);
        results.push(d);
    });
    let skipped = decoder.skipped_spans() - before;
    let what = || {
        format!(
            "{:?} decoder (records of {} bytes at most), message {}",
            decoder.config().format,
            decoder.config().max_record_bytes,
            preview(bytes)
        )
    };
    check_count(&oracle.expect, &results, skipped, &what());
    if matches!(oracle.expect, Expect::Some) && results.is_empty() && skipped == 0 {
        assert!(
            only_empty_containers(bytes, oracle.format),
            "{}: yields nothing",
            what()
        );
    }
    if let Some(elements) = &oracle.elements {
        assert_eq!(results.len(), elements.len(), "one result per element");
        for (element, result) in elements.iter().zip(&results) {
            let want = element_result(decoder, element);
            match result {
                Ok(ev) => assert_eq!(
                    Some(ev.event_id.as_ref()),
                    want.as_deref(),
                    "an element gives another event than on its own"
                ),
                Err(rej) => {
                    assert_eq!(want, None, "an element that decodes on its own is rejected");
                    assert_eq!(
                        rej.raw,
                        element.as_bytes(),
                        "a rejected element carries other bytes"
                    );
                }
            }
        }
    }
    results
}

/// The start of `bytes`, for failure messages.
fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]);
    format!("{text:?} ({} bytes)", bytes.len())
}

/// Checks a message's count of results (and of skipped spans) against what it must yield.
fn check_count(expected: &Expect, results: &[Decoded<'_>], skipped: u64, what: &str) {
    let n = results.len();
    let rejected = results.iter().filter(|r| r.is_err()).count();
    match expected {
        Expect::Exactly(want) => {
            assert_eq!(n, *want, "{what}: records in != results out");
            assert_eq!(skipped, 0, "{what}: a record was skipped");
        }
        Expect::Otlp(spans) => {
            if rejected > 0 || spans.is_none() {
                assert_eq!(
                    (n, rejected),
                    (1, 1),
                    "{what}: a bad request is one rejection"
                );
            } else {
                assert_eq!(
                    n as u64 + skipped,
                    spans.unwrap_or(0) as u64,
                    "{what}: spans in != events + skipped"
                );
            }
        }
        Expect::Mcp => assert_eq!(
            n as u64 + skipped,
            1,
            "{what}: an audit event is one result or one skip"
        ),
        Expect::Some => {}
    }
}

/// Checks that every element of a container built by the harness (its byte range in
/// `message`) that decodes on its own is an event, or lies within a rejection: never dropped.
fn check_coverage(
    decoder: &Decoder,
    message: &[u8],
    spans: &[(usize, usize)],
    results: &[Decoded<'_>],
) {
    let ids: HashSet<&str> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|ev| ev.event_id.as_ref()))
        .collect();
    let rejected: Vec<(usize, usize)> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|r| (r.offset, r.offset + r.raw.len()))
        .collect();
    for &(start, end) in spans {
        let Ok(text) = std::str::from_utf8(&message[start..end]) else {
            continue;
        };
        let text = text.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
        if strict::parse(text.as_bytes()).is_err() {
            continue;
        }
        let Some(id) = element_result(decoder, text) else {
            continue;
        };
        let covered = rejected.iter().any(|&(s, e)| s < end && start < e);
        assert!(
            ids.contains(id.as_str()) || covered,
            "record {id:?} is neither scored nor dead-lettered"
        );
    }
}

/// `open`, the parts joined by `sep`, and `close`; with each part's byte range.
fn container(
    open: &[u8],
    parts: &[&[u8]],
    sep: &[u8],
    close: &[u8],
) -> (Vec<u8>, Vec<(usize, usize)>) {
    let mut out = open.to_vec();
    let mut spans = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(sep);
        }
        spans.push((out.len(), out.len() + p.len()));
        out.extend_from_slice(p);
    }
    out.extend_from_slice(close);
    (out, spans)
}

/// An event (its id, agent, action and time) or a rejection (its reason code).
type Gist = Result<(String, String, String, i64), &'static str>;

/// What a list of results says, for comparing two decodings.
fn summary(results: &[Decoded<'_>]) -> Vec<Gist> {
    results
        .iter()
        .map(|r| match r {
            Ok(ev) => Ok((
                ev.event_id.to_string(),
                ev.agent_id.to_string(),
                ev.action.to_string(),
                ev.time_ms,
            )),
            Err(rej) => Err(rej.reason.code()),
        })
        .collect()
}

/// One message as the framing handed it on.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Msg {
    line: u64,
    offset: u64,
    bytes: Vec<u8>,
    kind: MessageKind,
}

/// The messages of an input.
struct Messages {
    messages: Vec<Msg>,
    stats: SourceStats,
}

/// Reads `input` with the replay input path, `max` bytes a message at most.
fn collect(input: &[u8], max: usize, sizes: &[usize]) -> Messages {
    let reader = Chunks {
        data: input,
        sizes,
        next: 0,
    };
    let mut messages = Vec::new();
    let stats = read_messages(reader, "fuzz", max, |m| {
        messages.push(Msg {
            line: m.line,
            offset: m.offset,
            bytes: m.bytes.to_vec(),
            kind: m.kind.clone(),
        });
    })
    .expect("reading from memory never fails");
    assert_eq!(stats.messages, messages.len() as u64);
    Messages { messages, stats }
}

/// A reader that hands its bytes on in chunks of the given sizes, in turn (all at once when
/// there are none).
struct Chunks<'a> {
    data: &'a [u8],
    sizes: &'a [usize],
    next: usize,
}

/// Read all at once.
const WHOLE: &[usize] = &[];

/// Chunk sizes of 1 to 16 bytes, taken from the input itself.
fn chunk_sizes(data: &[u8]) -> Vec<usize> {
    data.iter()
        .take(64)
        .map(|b| 1 + usize::from(b % 16))
        .chain([1, 3, 7])
        .collect()
}

impl Read for Chunks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = if self.sizes.is_empty() {
            usize::MAX
        } else {
            self.next = (self.next + 1) % self.sizes.len();
            self.sizes[self.next]
        };
        let n = buf.len().min(size).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn gzip_member(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("writing to memory");
    e.finish().expect("writing to memory")
}

/// The engine and what it was given, as a replay drives them.
struct Driver {
    engine: Engine,
    counts: InputCounts,
    records: Vec<OutputRecord>,
    sink: Sink,
}

impl Driver {
    fn new(settings: &Settings) -> Driver {
        let signer = Signer::from_seed(&[7; 32]);
        let mut engine = Engine::new(settings.clone());
        engine.set_signer(std::sync::Arc::new(signer.clone()));
        Driver {
            engine,
            counts: InputCounts::default(),
            records: Vec::new(),
            sink: Sink {
                scored: 0,
                dead: 0,
                verifier: signer.verifier(),
                findings: settings.output.finding_format,
            },
        }
    }

    fn step(&mut self, d: Decoded<'_>) {
        let Ok(()) = step(
            &mut self.engine,
            d,
            &mut self.counts,
            &mut self.records,
            &mut self.sink,
        );
    }

    /// Ends the input; the counts, checked.
    fn finish(mut self) -> InputCounts {
        self.engine.finish(&mut self.records);
        let Ok(()) = deliver(&mut self.records, &mut self.sink);
        let c = self.counts;
        assert_eq!(
            c.records,
            c.events + c.dead_letters,
            "records != events + dead letters"
        );
        assert_eq!(c.events, self.sink.scored, "events != scored");
        assert_eq!(c.dead_letters, self.sink.dead, "dead letters != delivered");
        c
    }
}

/// Counts what the engine hands on, and checks it.
struct Sink {
    scored: u64,
    dead: u64,
    verifier: Verifier,
    findings: FindingFormat,
}

impl Outputs for Sink {
    type Error = Infallible;

    fn scored(&mut self, ev: &AccessEvent<'_>, verdict: &Verdict) -> Result<(), Infallible> {
        assert!(
            (0.0..=1.0).contains(&verdict.score),
            "score {} of {}",
            verdict.score,
            ev.event_id
        );
        self.scored += 1;
        Ok(())
    }

    fn record(&mut self, rec: &OutputRecord) -> Result<(), Infallible> {
        let mut out = Vec::new();
        rec.write_json(&mut out, self.findings)
            .expect("an output record serialises");
        let v: Value = serde_json::from_slice(&out).expect("an output record is JSON");
        if let OutputRecord::Command(_) = rec {
            assert!(
                self.verifier.verify(&v).is_ok(),
                "a command does not verify"
            );
        }
        Ok(())
    }

    fn dead_letter(&mut self, rej: &Rejected<'_>) -> Result<(), Infallible> {
        let dl = DeadLetter::new(rej, "fuzz", Some(1));
        assert!(dl.to_json().starts_with('{'));
        self.dead += 1;
        Ok(())
    }
}

/// One message of a replay and what it gave.
struct Decoding {
    line: u64,
    bytes: Vec<u8>,
    /// What it must yield, when it is whole.
    expect: Option<Expect>,
    results: usize,
    /// Spans skipped in it.
    skipped: u64,
}

/// What a replay of an input gave, message by message.
struct Run {
    layout: Layout,
    messages: Vec<Decoding>,
    counts: InputCounts,
    /// Whether OTLP calls waited across messages (their results then do not add up per
    /// message).
    joined: bool,
}

/// Replays `input` as `cinch replay` does: framing, decoding with the settings' decoder, the
/// engine, the outputs; and checks each message's results and the counts.
fn replay(input: &[u8], max: usize, settings: &Settings) -> Run {
    let decoder = Decoder::new(settings.decode.decoder());
    let format = settings.decode.format;
    let mut driver = Driver::new(settings);
    let mut messages = Vec::new();
    let mut joined = false;
    let stats = read_messages(input, "fuzz", max, |m| {
        assert!(m.line >= 1);
        let before = decoder.skipped_spans();
        let mut results = 0;
        let mut rejected = 0;
        decoder.decode_input(&m, &mut |d| {
            check_result(m.bytes, &d);
            results += 1;
            rejected += usize::from(d.is_err());
            driver.step(d);
        });
        let skipped = decoder.skipped_spans() - before;
        let expected = match m.kind {
            MessageKind::Complete => expect(m.bytes, format),
            MessageKind::Oversize { size, limit } => {
                assert!(size > limit as u64 && m.bytes.len() <= KEPT_BYTES);
                Expect::Exactly(1)
            }
            MessageKind::Unreadable { .. } => Expect::Exactly(1),
        };
        match &expected {
            Expect::Otlp(_) => {
                joined = true;
                if rejected > 0 {
                    assert_eq!(
                        (results, rejected),
                        (1, 1),
                        "a bad request is one rejection"
                    );
                }
            }
            Expect::Some if results == 0 && skipped == 0 => {
                assert!(
                    only_empty_containers(m.bytes, format),
                    "a message yields nothing: {}",
                    preview(m.bytes)
                );
                joined |= memchr_find(m.bytes, b"resourceSpans");
            }
            Expect::Some => joined |= memchr_find(m.bytes, b"resourceSpans"),
            e => check_count_n(e, results, skipped, || preview(m.bytes)),
        }
        let complete = m.kind == MessageKind::Complete;
        messages.push(Decoding {
            line: m.line,
            bytes: m.bytes.to_vec(),
            expect: complete.then_some(expected),
            results,
            skipped,
        });
    })
    .expect("reading from memory never fails");
    assert_eq!(stats.messages, messages.len() as u64);
    let mut flushed = 0u64;
    decoder.flush_spans(&mut |d| {
        flushed += 1;
        driver.step(d);
    });
    if !joined {
        assert_eq!(flushed, 0, "calls released without a request");
    }
    let counts = driver.finish();
    let delivered: u64 = messages.iter().map(|m| m.results as u64).sum::<u64>() + flushed;
    assert_eq!(counts.records, delivered);
    Run {
        layout: stats.layout,
        messages,
        counts,
        joined,
    }
}

fn memchr_find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn check_count_n(expected: &Expect, results: usize, skipped: u64, what: impl Fn() -> String) {
    match expected {
        Expect::Exactly(n) => {
            assert_eq!(results, *n, "records in != results out: {}", what());
            assert_eq!(skipped, 0, "a record was skipped: {}", what());
        }
        Expect::Mcp => assert_eq!(
            results as u64 + skipped,
            1,
            "an audit event is not one result or one skip: {}",
            what()
        ),
        Expect::Otlp(_) | Expect::Some => {}
    }
}

/// Checks a replay's messages against the lines (or documents) of the plain `text`: as JSON
/// lines, every line that is not blank yields what its bytes say, across however many pieces
/// it was handed on in; as documents, the results add up to what the values say.
fn check_layout(run: &Run, text: &[u8], format: FormatChoice) {
    let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
    // Per line: its results, its skipped spans, and its one message when it was handed on
    // whole.
    let mut by_line: BTreeMap<u64, (usize, u64, Option<usize>, usize)> = BTreeMap::new();
    for (i, m) in run.messages.iter().enumerate() {
        let e = by_line.entry(m.line).or_default();
        e.0 += m.results;
        e.1 += m.skipped;
        e.2 = Some(i);
        e.3 += 1;
    }
    match run.layout {
        Layout::JsonLines => {
            let mut lines = HashSet::new();
            for (i, line) in text.split(|&b| b == b'\n').enumerate() {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if blank(line) {
                    continue;
                }
                let n = i as u64 + 1;
                lines.insert(n);
                let (results, skipped, last, pieces) = by_line.get(&n).copied().unwrap_or_default();
                // The line's message, when it is the line itself, was judged already.
                let expected = match last.map(|i| &run.messages[i]) {
                    Some(Decoding {
                        bytes,
                        expect: Some(e),
                        ..
                    }) if pieces == 1 && bytes.as_slice() == line => e.clone(),
                    _ => expect(line, format),
                };
                match expected {
                    Expect::Some if results == 0 && skipped == 0 => assert!(
                        only_empty_containers(line, format),
                        "line {n} yields nothing: {}",
                        preview(line)
                    ),
                    Expect::Otlp(_) | Expect::Some => {}
                    ref e => {
                        if !run.joined {
                            check_count_n(e, results, skipped, || {
                                format!("line {n}: {}", preview(line))
                            });
                        }
                    }
                }
            }
            for line in by_line.keys() {
                assert!(lines.contains(line), "a message from blank line {line}");
            }
        }
        Layout::Documents => {
            let mut want = 0u64;
            for v in serde_json::Deserializer::from_slice(text).into_iter::<&RawValue>() {
                let Ok(v) = v else { return };
                match expect(v.get().as_bytes(), format) {
                    Expect::Exactly(n) => want += n as u64,
                    Expect::Mcp => want += 1,
                    Expect::Otlp(_) | Expect::Some => return,
                }
            }
            let got: u64 = by_line.values().map(|(r, s, _, _)| *r as u64 + s).sum();
            assert_eq!(got, want, "documents: records in != results out");
        }
    }
}

/// Takes the lines of `input` in as `cinch authorize` does, and checks every command applied.
fn check_intake(input: &[u8], signer: &Signer) {
    let mut intake = CommandIntake::new(signer.verifier());
    let mut store =
        PolicyStore::new(None, UnknownAgents::Allow).expect("an empty policy store builds");
    let mut applied = HashSet::new();
    for (i, raw) in input.split_inclusive(|&b| b == b'\n').enumerate() {
        let mut line = raw;
        if i == 0 {
            line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
        }
        let Intake::Applied(c) = intake.take(i as u64 + 1, line, NOW_MS) else {
            continue;
        };
        let record = really_verifies(line, signer).expect("an applied command does not verify");
        assert_eq!(record["kind"], "command");
        assert_eq!(record["command_id"], c.command_id.as_str());
        assert_eq!(record["agent_id"], c.agent_id.as_str());
        assert_eq!(record["target"], c.target.as_str());
        assert!(c.issued_at_ms < c.expires_at_ms && c.expires_at_ms > NOW_MS);
        assert!(
            applied.insert(c.command_id.clone()),
            "a command id applied twice"
        );
        store
            .apply(&c, None)
            .expect("an applied command becomes a policy");
        if c.action == Action::SuspendAgent && !c.dry_run {
            let outcome = store.decide(&Query {
                principal: &c.agent_id,
                action: "s3:GetObject",
                resource: "s3://bucket/key",
                session_id: None,
                grant: None,
                now_ms: NOW_MS.max(c.issued_at_ms),
            });
            assert_ne!(
                outcome.enforced.decision,
                Decision::Allow,
                "a suspended agent is allowed: {:?}",
                outcome.errors
            );
        }
    }
}

/// The record on `line` when it really verifies with `signer`'s key: one reading only (no
/// duplicate key), and its signature is the key's signature of it.
fn really_verifies(line: &[u8], signer: &Signer) -> Option<Value> {
    let record = strict::parse(line).ok()?;
    let given: Signature = serde_json::from_value(record.get("signature")?.clone()).ok()?;
    (signer.sign(&record) == given).then_some(record)
}

/// Checks the lines of `input` as `cinch verify` does (each command judged as of its own
/// issue): every non-blank line is counted once, what it counts as verified must really verify,
/// and a command id is verified at most once.
fn check_verify_cli(input: &[u8], signer: &Signer, verifier: &Verifier) {
    let mut lines = 0u64;
    let mut really = 0u64;
    for (i, raw) in input.split_inclusive(|&b| b == b'\n').enumerate() {
        let mut line = raw;
        if i == 0 {
            line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        lines += 1;
        if really_verifies(line, signer).is_some() {
            really += 1;
        }
    }
    let mut intake = CommandIntake::new(verifier.clone());
    let tally = cinch::cli::verify::check_lines(input, &mut intake, None, |_, _, _, reason| {
        assert!(!reason.is_empty());
    })
    .expect("reading from memory never fails");
    assert_eq!(
        tally.verified + tally.skipped + tally.failed,
        lines,
        "cinch verify counts every line once"
    );
    assert!(
        tally.verified <= really,
        "cinch verify accepted {} commands, {really} really verify",
        tally.verified
    );
}
