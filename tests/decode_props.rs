//! Robustness of the decoder and the source reader: whatever the bytes, no panic, and every
//! record becomes an event or a rejection that points at its own bytes. Plus explicit cases,
//! each with its precise reason.

use cinch::drive::input::read_messages;
use cinch::event::{DecodeConfig, Decoded, Decoder, MessageKind, RejectReason};
use cinch::vocab::FormatChoice;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const NATIVE: &str = r#"{"event_id":"evt-1","time":"2024-05-01T12:00:00Z","agent_id":"agent-7","agent_kind":"ai_agent","action":"s3:GetObject","resource":"s3://bucket/key","outcome":"success","session_id":"run-1","source_ip":"10.0.0.1","bytes":10,"grant":"g","intent":"i","attributes":{"k":"v"}}"#;

const CLOUDTRAIL: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROA:i-1","arn":"arn:aws:sts::1:assumed-role/r/i-1","accountId":"1","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::1:role/r"}}},"eventTime":"2023-07-10T12:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","sourceIPAddress":"192.168.10.20","userAgent":"aws-cli","requestParameters":{"bucketName":"b","key":"k"},"additionalEventData":{"bytesTransferredOut":5},"eventID":"e-1","eventType":"AwsApiCall","recipientAccountId":"1"}"#;

const OCSF: &str = r#"{"class_uid":6003,"activity_id":2,"time":1714564800000,"status_id":1,"metadata":{"uid":"o-1"},"actor":{"user":{"uid":"agent-1"},"session":{"uid":"s"}},"api":{"operation":"GetObject"},"resources":[{"uid":"arn:aws:s3:::b/k"}],"src_endpoint":{"ip":"10.0.0.1"}}"#;

const K8S: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"k-1","stage":"ResponseComplete","verb":"get","user":{"username":"system:serviceaccount:ns:sa"},"sourceIPs":["10.0.0.1"],"objectRef":{"resource":"secrets","namespace":"ns","name":"s"},"responseStatus":{"code":200},"stageTimestamp":"2024-05-01T12:00:00.000001Z"}"#;

const NATIVE_REQUIRED: [&str; 5] = ["event_id", "time", "agent_id", "action", "resource"];

/// Decodes and checks the invariants every result must hold; returns the reason codes.
fn decode_checked(decoder: &Decoder, bytes: &[u8]) -> Vec<&'static str> {
    let mut out: Vec<Decoded<'_>> = Vec::new();
    decoder.decode_message(bytes, &mut |d| out.push(d));
    let mut codes = Vec::new();
    for d in &out {
        match d {
            Ok(ev) => {
                assert!(!ev.event_id.is_empty() && ev.event_id.chars().count() <= 256);
                assert!(!ev.agent_id.is_empty() && ev.agent_id.chars().count() <= 512);
                assert!(!ev.action.is_empty() && ev.action.chars().count() <= 256);
                assert!(ev.resource.chars().count() <= 4096);
                assert!((0..4_102_444_800_000).contains(&ev.time_ms));
                if let Some(a) = &ev.attributes {
                    assert!(a.get().starts_with('{'));
                }
                codes.push("ok");
            }
            Err(rej) => {
                // The rejection carries exactly its own bytes, at its offset.
                let end = rej.offset + rej.raw.len();
                assert!(end <= bytes.len(), "offset out of range");
                assert_eq!(&bytes[rej.offset..end], rej.raw);
                assert!(!rej.reason.to_string().is_empty());
                codes.push(rej.reason.code());
            }
        }
    }
    if out.is_empty() {
        // Only empty containers yield nothing.
        let all_empty = serde_json::Deserializer::from_slice(bytes)
            .into_iter::<Value>()
            .all(|v| match v {
                Ok(Value::Array(a)) => a.is_empty(),
                Ok(Value::Object(m)) => m.get("Records") == Some(&Value::Array(vec![])),
                _ => false,
            });
        assert!(
            all_empty,
            "no result for {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    codes
}

fn auto() -> Decoder {
    Decoder::default()
}

fn one(decoder: &Decoder, text: &str) -> Result<(), RejectReason> {
    let mut out = decoder.decode_to_vec(text.as_bytes());
    assert_eq!(out.len(), 1, "{text}");
    out.pop().unwrap().map(|_| ()).map_err(|r| r.reason)
}

fn map_of(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap()
}

fn type_variants() -> Vec<Value> {
    vec![
        json!(null),
        json!(true),
        json!(-3),
        json!(7),
        json!(1.5),
        json!("text"),
        json!([1, "a"]),
        json!({"x": {"y": []}}),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        decode_checked(&auto(), &bytes);
    }

    #[test]
    fn json_like_text_never_panics(text in "[\\[\\]{}\":,0-9a-zA-Z_ .\\\\-]{0,300}") {
        decode_checked(&auto(), text.as_bytes());
    }

    #[test]
    fn every_forced_format_is_robust(
        text in "[\\[\\]{}\":,0-9a-z_ ]{0,200}",
        format in prop_oneof![
            Just(FormatChoice::Native),
            Just(FormatChoice::Ocsf),
            Just(FormatChoice::Cloudtrail),
            Just(FormatChoice::K8sAudit),
        ],
    ) {
        let d = Decoder::new(DecodeConfig { format, ..DecodeConfig::default() });
        decode_checked(&d, text.as_bytes());
    }

    #[test]
    fn byte_flips_never_panic(
        base in prop_oneof![Just(NATIVE), Just(CLOUDTRAIL), Just(OCSF), Just(K8S)],
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = base.as_bytes().to_vec();
        for (i, v) in flips {
            let at = i.index(bytes.len());
            bytes[at] = v;
        }
        let codes = decode_checked(&auto(), &bytes);
        prop_assert!(!codes.is_empty());
    }

    #[test]
    fn truncation_is_rejected(
        base in prop_oneof![Just(NATIVE), Just(CLOUDTRAIL), Just(OCSF), Just(K8S)],
        cut in any::<prop::sample::Index>(),
    ) {
        let at = cut.index(base.len());
        let codes = decode_checked(&auto(), &base.as_bytes()[..at]);
        // A strict prefix of an object is never a complete document.
        prop_assert_eq!(codes.len(), 1);
        prop_assert!(codes[0] == "not_json", "prefix of {} bytes gave {:?}", at, codes);
    }

    #[test]
    fn auto_detection_agrees_with_the_detected_format(
        base in prop_oneof![Just(NATIVE), Just(CLOUDTRAIL), Just(OCSF), Just(K8S)],
        extra in prop::sample::select(vec![
            "agent_id", "action", "event_id", "class_uid", "eventVersion", "userIdentity",
            "kind", "apiVersion", "Records",
        ]),
        value in prop::sample::select(vec![
            json!(null), json!("Event"), json!("audit.k8s.io/v1"), json!(6003), json!("x"),
            json!({"agent_id": "nested", "class_uid": 1}),
        ]),
        remove in prop::option::of(prop::sample::select(vec![
            "agent_id", "action", "class_uid", "eventVersion", "userIdentity", "kind",
        ])),
    ) {
        let mut m = map_of(base);
        m.insert(extra.to_owned(), value);
        if let Some(r) = remove {
            m.remove(r);
        }
        let text = serde_json::to_string(&m).unwrap();
        let auto = auto().decode_record(&text);
        match cinch::event::sniff::detect(&text) {
            Ok(format) => {
                let choice = match format {
                    cinch::event::Format::Native => FormatChoice::Native,
                    cinch::event::Format::Ocsf => FormatChoice::Ocsf,
                    cinch::event::Format::Cloudtrail => FormatChoice::Cloudtrail,
                    cinch::event::Format::K8sAudit => FormatChoice::K8sAudit,
                    cinch::event::Format::Otlp => FormatChoice::Otlp,
                    cinch::event::Format::McpAudit => FormatChoice::McpAudit,
                };
                let forced = Decoder::new(DecodeConfig { format: choice, ..DecodeConfig::default() })
                    .decode_record(&text);
                match (&auto, &forced) {
                    (Ok(a), Ok(f)) => {
                        prop_assert_eq!(a.format, f.format);
                        prop_assert_eq!(&a.event_id, &f.event_id);
                        prop_assert_eq!(&a.agent_id, &f.agent_id);
                    }
                    (Err(a), Err(f)) => prop_assert_eq!(a, f),
                    _ => prop_assert!(false, "auto {:?} vs {:?} for {}", auto, forced, text),
                }
            }
            Err(reason) => prop_assert_eq!(auto.unwrap_err(), reason),
        }
    }

    #[test]
    fn native_field_deletion_names_the_field(field in prop::sample::select(NATIVE_REQUIRED.to_vec())) {
        let mut m = map_of(NATIVE);
        m.remove(field);
        let reason = one(&auto(), &serde_json::to_string(&m).unwrap()).unwrap_err();
        match reason {
            RejectReason::MissingField { format, field: f } => {
                prop_assert_eq!(format, "native");
                prop_assert_eq!(f, field);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn native_type_changes_are_rejected_by_name(
        field in prop::sample::select(vec![
            "event_id", "time", "agent_id", "action", "resource", "outcome", "agent_kind",
            "session_id", "source_ip", "bytes", "grant", "intent", "attributes",
        ]),
        value in prop::sample::select(type_variants()),
    ) {
        let mut m = map_of(NATIVE);
        let original = m[field].clone();
        m.insert(field.to_owned(), value.clone());
        let text = serde_json::to_string(&m).unwrap();
        let result = one(&auto(), &text);
        let same_kind = std::mem::discriminant(&original) == std::mem::discriminant(&value);
        let optional = !NATIVE_REQUIRED.contains(&field);
        match result {
            Ok(()) => {
                // Only same-typed values, or null on an optional field, or an integer time or
                // byte count, may be accepted.
                let integer_ok = matches!(field, "time" | "bytes") && value.as_u64().is_some();
                prop_assert!(
                    (same_kind && field != "outcome") || (optional && value.is_null()) || integer_ok,
                    "{} = {} accepted", field, value
                );
            }
            Err(RejectReason::MissingField { field: f, .. }) => {
                prop_assert!(value.is_null());
                prop_assert_eq!(f, field);
            }
            Err(RejectReason::InvalidField { field: f, .. }) => prop_assert_eq!(f, field),
            Err(RejectReason::TimeOutOfRange { .. }) => prop_assert_eq!(field, "time"),
            Err(other) => prop_assert!(false, "{} = {}: {:?}", field, value, other),
        }
    }

    #[test]
    fn cloudtrail_mutations_never_panic(
        field in prop::sample::select(vec![
            "eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "eventID",
            "sourceIPAddress", "requestParameters", "additionalEventData", "resources",
            "errorCode", "userAgent",
        ]),
        value in prop::option::of(prop::sample::select(type_variants())),
    ) {
        let mut m = map_of(CLOUDTRAIL);
        match &value {
            None => { m.remove(field); }
            Some(v) => { m.insert(field.to_owned(), v.clone()); }
        }
        let text = serde_json::to_string(&m).unwrap();
        let codes = decode_checked(&auto(), text.as_bytes());
        prop_assert_eq!(codes.len(), 1);
        let required = ["eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "eventID"];
        if value.is_none() && required.contains(&field) {
            prop_assert_eq!(codes[0], "missing_field");
        }
    }

    #[test]
    fn source_reader_never_fails_on_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        gzip in any::<bool>(),
        max in 1usize..512,
    ) {
        let input = if gzip {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&bytes).unwrap();
            let mut z = e.finish().unwrap();
            // Damage the tail now and then.
            if bytes.len() % 3 == 0 && z.len() > 4 {
                let n = z.len();
                z[n - 3] ^= 0x55;
            }
            z
        } else {
            bytes.clone()
        };
        let decoder = auto();
        let mut total = 0u64;
        let stats = read_messages(&input[..], "prop", max, |m| {
            total += 1;
            prop_assert_eq_in(m.line >= 1);
            if let MessageKind::Oversize { size, limit } = m.kind {
                prop_assert_eq_in(size > limit as u64 && m.bytes.len() <= 64 << 10);
            }
            decoder.decode_input(&m, &mut |_| {});
        })
        .unwrap();
        prop_assert_eq!(stats.messages, total);
    }
}

/// An assertion usable inside the reader's callback.
fn prop_assert_eq_in(cond: bool) {
    assert!(cond);
}

fn reason_of(text: &[u8]) -> RejectReason {
    let out = auto().decode_to_vec(text);
    assert_eq!(out.len(), 1);
    out.into_iter().next().unwrap().unwrap_err().reason
}

#[test]
fn explicit_invalid_utf8() {
    let mut bytes = NATIVE.as_bytes().to_vec();
    let at = NATIVE.find("agent-7").unwrap();
    bytes[at] = 0xc3; // a lead byte followed by ASCII
    assert_eq!(reason_of(&bytes), RejectReason::InvalidUtf8 { offset: at });
}

#[test]
fn explicit_truncated_json() {
    let r = reason_of(&NATIVE.as_bytes()[..NATIVE.len() - 10]);
    match r {
        RejectReason::NotJson(m) => assert!(m.contains("EOF"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn explicit_wrong_types() {
    for (field, value, want) in [
        ("event_id", json!(5), "event_id"),
        ("time", json!("next tuesday"), "time"),
        ("time", json!(1.7e12), "time"),
        ("agent_id", json!(["a"]), "agent_id"),
        ("action", json!({"a": 1}), "action"),
        ("resource", json!(false), "resource"),
        ("bytes", json!("100"), "bytes"),
        ("bytes", json!(-1), "bytes"),
        ("outcome", json!("ok"), "outcome"),
        ("attributes", json!("x"), "attributes"),
    ] {
        let mut m = map_of(NATIVE);
        m.insert(field.to_owned(), value.clone());
        match reason_of(serde_json::to_string(&m).unwrap().as_bytes()) {
            RejectReason::InvalidField {
                format, field: f, ..
            } => {
                assert_eq!((format, f), ("native", want), "{field} = {value}")
            }
            other => panic!("{field} = {value}: {other:?}"),
        }
    }
}

#[test]
fn explicit_missing_each_required_field() {
    for field in NATIVE_REQUIRED {
        let mut m = map_of(NATIVE);
        m.remove(field);
        assert_eq!(
            reason_of(serde_json::to_string(&m).unwrap().as_bytes()),
            RejectReason::MissingField {
                format: "native",
                field: NATIVE_REQUIRED
                    .iter()
                    .copied()
                    .find(|f| *f == field)
                    .unwrap(),
            }
        );
    }
}

#[test]
fn explicit_ten_mib_line() {
    let big = format!(
        r#"{{"event_id":"e","time":0,"agent_id":"a","action":"x","resource":"{}"}}"#,
        "r".repeat(10 << 20)
    );
    assert_eq!(
        reason_of(big.as_bytes()),
        RejectReason::Oversize {
            size: big.len(),
            limit: 1 << 20
        }
    );
    // Through the file reader: the line is one message, rejected as oversize by the decoder.
    let mut file = big.clone().into_bytes();
    file.extend_from_slice(b"\n");
    file.extend_from_slice(NATIVE.as_bytes());
    let decoder = auto();
    let mut got = Vec::new();
    read_messages(&file[..], "big", 256 << 20, |m| {
        decoder.decode_input(&m, &mut |d| {
            got.push((m.line, d.map(|_| ()).map_err(|r| r.reason.code())))
        })
    })
    .unwrap();
    assert_eq!(got, [(1, Err("oversize")), (2, Ok(()))]);
    // With a message limit below the line: the reader keeps only a 64 KiB prefix.
    let mut got = Vec::new();
    read_messages(&file[..], "big", 1 << 20, |m| {
        if let MessageKind::Oversize { size, .. } = m.kind {
            assert_eq!(m.bytes.len(), 64 << 10);
            assert_eq!(size, big.len() as u64);
        }
        decoder.decode_input(&m, &mut |d| got.push(d.map(|_| ()).map_err(|r| r.reason)))
    })
    .unwrap();
    assert_eq!(
        got,
        [
            Err(RejectReason::Oversize {
                size: big.len(),
                limit: 1 << 20
            }),
            Ok(())
        ]
    );
}

#[test]
fn explicit_years_out_of_range() {
    for (time, ok) in [
        (json!("9999-12-31T23:59:59Z"), false),
        (json!("2100-01-01T00:00:00Z"), false),
        (json!("1969-12-31T23:59:59Z"), false),
        (json!("1969-07-20T20:17:40Z"), false),
        (json!(-1), false),
        (json!(4_102_444_800_000u64), false),
        (json!(253_402_300_799_000u64), false),
        (json!("1970-01-01T00:00:00Z"), true),
        (json!("2099-12-31T23:59:59Z"), true),
    ] {
        let mut m = map_of(NATIVE);
        m.insert("time".to_owned(), time.clone());
        let text = serde_json::to_string(&m).unwrap();
        let out = auto().decode_to_vec(text.as_bytes());
        match (&out[0], ok) {
            (Ok(_), true) => {}
            (Err(r), false) => assert!(
                matches!(r.reason, RejectReason::TimeOutOfRange { .. }),
                "{time}: {:?}",
                r.reason
            ),
            (other, _) => panic!("{time}: {other:?}"),
        }
    }
}

#[test]
fn explicit_deep_nesting() {
    let open = "[".repeat(100_000);
    assert!(matches!(
        reason_of(open.as_bytes()),
        RejectReason::TooDeep(_)
    ));
    let objects = "{\"a\":".repeat(100_000);
    assert!(matches!(
        reason_of(objects.as_bytes()),
        RejectReason::TooDeep(_)
    ));
    // Deep attributes of an otherwise valid native record.
    let mut m = map_of(NATIVE);
    m.insert("attributes".into(), json!({}));
    let text = serde_json::to_string(&m).unwrap().replace(
        "\"attributes\":{}",
        &format!(
            "\"attributes\":{{\"x\":{}1{}}}",
            "[".repeat(500),
            "]".repeat(500)
        ),
    );
    assert!(matches!(
        reason_of(text.as_bytes()),
        RejectReason::TooDeep(_)
    ));
}

#[test]
fn explicit_container_cases() {
    let d = auto();
    let delivery =
        format!(r#"{{"Records":[{CLOUDTRAIL},{CLOUDTRAIL},{{"eventVersion":"1.08"}}]}}"#);
    assert_eq!(
        decode_checked(&d, delivery.as_bytes()),
        ["ok", "ok", "missing_field"]
    );
    let array = format!("[{NATIVE},{OCSF},{CLOUDTRAIL},{K8S}]");
    assert_eq!(
        decode_checked(&d, array.as_bytes()),
        ["ok", "ok", "ok", "ok"]
    );
    let concatenated = format!("{delivery}{delivery}");
    assert_eq!(decode_checked(&d, concatenated.as_bytes()).len(), 6);
    assert!(decode_checked(&d, br#"{"Records":[]}"#).is_empty());
    assert!(decode_checked(&d, b"[]").is_empty());
}
