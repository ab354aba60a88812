//! The JSON Schemas under `configs/schemas/` agree with what the code reads and writes.

use std::collections::BTreeSet;

use cinch::event::{Decoder, native};
use cinch::output::dead_letter::DeadLetter;
use serde_json::Value;

fn schema(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs/schemas")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{name}"
    );
    v
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn native_schema_matches_the_decoder() {
    let s = schema("native_event.schema.json");
    let want: BTreeSet<String> = native::FIELDS.iter().map(|f| f.to_string()).collect();
    assert_eq!(keys(&s["properties"]), want);
    let required: BTreeSet<String> = native::REQUIRED.iter().map(|f| f.to_string()).collect();
    assert_eq!(strings(&s["required"]), required);
    assert_eq!(s["properties"]["event_id"]["maxLength"], 256);
    assert_eq!(s["properties"]["agent_id"]["maxLength"], 512);
    assert_eq!(s["properties"]["action"]["maxLength"], 256);
    assert_eq!(s["properties"]["resource"]["maxLength"], 4096);
    // The schema's example decodes.
    let example = serde_json::to_string(&s["examples"][0]).unwrap();
    let out = Decoder::default().decode_to_vec(example.as_bytes());
    assert!(out.len() == 1 && out[0].is_ok(), "{out:?}");
}

/// Checks a dead letter against the parts of the schema it uses: required members, known
/// members, the reason-code and format enums, and exactly one of raw / raw_base64.
fn check_dead_letter(s: &Value, dl: &Value) {
    let props = keys(&s["properties"]);
    let obj = dl.as_object().unwrap();
    for r in strings(&s["required"]) {
        assert!(obj.contains_key(&r), "missing {r} in {dl}");
    }
    for k in obj.keys() {
        assert!(props.contains(k), "unknown member {k}");
    }
    assert_eq!(dl["kind"], s["properties"]["kind"]["const"]);
    assert!(
        strings(&s["properties"]["reason_code"]["enum"])
            .contains(dl["reason_code"].as_str().unwrap())
    );
    if let Some(f) = dl.get("format") {
        assert!(strings(&s["properties"]["format"]["enum"]).contains(f.as_str().unwrap()));
    }
    assert!(
        obj.contains_key("raw") ^ obj.contains_key("raw_base64"),
        "{dl}"
    );
    assert!(dl["raw_bytes"].as_u64().is_some() && dl["offset"].as_u64().is_some());
    if let Some(line) = dl.get("line") {
        assert!(line.as_u64().unwrap() >= 1);
    }
}

#[test]
fn dead_letters_match_their_schema() {
    let s = schema("dead_letter.schema.json");
    let decoder = Decoder::default();
    let inputs: Vec<Vec<u8>> = vec![
        b"not json".to_vec(),
        b"{\"a\":\"\xff\"}".to_vec(),
        br#"{"event_id":"e","time":"1969-01-01T00:00:00Z","agent_id":"a","action":"x","resource":""}"#.to_vec(),
        br#"{"event_id":"e","time":0,"action":"x","resource":""}"#.to_vec(),
        br#"{"event_id":"e","time":0,"agent_id":5,"action":"x","resource":""}"#.to_vec(),
        br#"[1, {"kind":"Pod"}]"#.to_vec(),
        "[".repeat(1000).into_bytes(),
        vec![b'x'; 2 << 20],
    ];
    let mut codes = BTreeSet::new();
    for input in &inputs {
        decoder.decode_message(input, &mut |d| {
            let rej = d.unwrap_err();
            let dl: Value =
                serde_json::from_str(&DeadLetter::new(&rej, "events.jsonl", Some(3)).to_json())
                    .unwrap();
            check_dead_letter(&s, &dl);
            codes.insert(dl["reason_code"].as_str().unwrap().to_owned());
        });
    }
    assert!(codes.len() >= 7, "{codes:?}");
    // Every code the schema lists is a code the decoder can produce, and vice versa.
    let listed = strings(&s["properties"]["reason_code"]["enum"]);
    for reason in [
        cinch::event::RejectReason::InvalidUtf8 { offset: 0 },
        cinch::event::RejectReason::NotJson(String::new()),
        cinch::event::RejectReason::TooDeep(String::new()),
        cinch::event::RejectReason::Oversize { size: 0, limit: 0 },
        cinch::event::RejectReason::UnknownFormat(String::new()),
        cinch::event::RejectReason::MissingField {
            format: "native",
            field: "x",
        },
        cinch::event::RejectReason::InvalidField {
            format: "native",
            field: "x",
            detail: String::new(),
        },
        cinch::event::RejectReason::TimeOutOfRange {
            detail: String::new(),
        },
        cinch::event::RejectReason::TrailingData(String::new()),
    ] {
        assert!(listed.contains(reason.code()), "{}", reason.code());
    }
    assert_eq!(listed.len(), 9);
}
