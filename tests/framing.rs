//! Input framing: every record of an input is scored or dead-lettered, whatever its layout
//! (JSON lines, a JSON array, a CloudTrail delivery `{"Records":[...]}`, gzip of each), however
//! broken some records are, and whatever the channel (a file or standard input).
//!
//! The main input is a mix of 4,000 records in which every fourth one is broken in one of 14 ways
//! (cut half-way, invalid UTF-8, a missing field, a wrong type, an oversize record, deep nesting,
//! `null`, binary garbage, `{}`, a number, `NaN`, a time out of range, a string ending in a
//! backslash, a flipped quote). The records read must be the records written, each broken one
//! one dead letter and each valid one scored.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cinch::drive::input::{Layout, MessageKind, read_messages};
use cinch::event::{DecodeConfig, Decoder, RejectReason};
use serde_json::{Value, json};

/// Formats of the mixes: name, the path of the event id.
const FORMATS: [(&str, &[&str]); 4] = [
    ("native", &["event_id"]),
    ("ocsf", &["metadata", "uid"]),
    ("k8s_audit", &["auditID"]),
    ("cloudtrail", &["eventID"]),
];

/// Kinds of breakage.
const KINDS: usize = 14;

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path)
}

/// The records of a format fixture that decode.
fn valid_records(format: &str) -> Vec<Value> {
    let decoder = Decoder::default();
    let text = std::fs::read_to_string(fixture(&format!("formats/{format}.jsonl"))).unwrap();
    let out: Vec<Value> = text
        .lines()
        .filter(|l| {
            let got = decoder.decode_to_vec(l.as_bytes());
            got.len() == 1 && got[0].is_ok()
        })
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!out.is_empty(), "{format}");
    out
}

fn set_path(v: &mut Value, path: &[&str], to: Value) {
    let mut at = v;
    for key in &path[..path.len() - 1] {
        at = at.as_object_mut().unwrap().entry(*key).or_insert(json!({}));
    }
    at.as_object_mut()
        .unwrap()
        .insert(path[path.len() - 1].to_owned(), to);
}

fn compact(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// A small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Size of the first oversize record of a mix, and of the others.
struct Sizes {
    first_huge: usize,
    huge: usize,
}

/// A mix of records of one format: their bytes (none holds a line break) and the ids of the
/// valid ones.
struct Mix {
    records: Vec<Vec<u8>>,
    valid: Vec<String>,
}

/// Replaces the first `from` in `bytes` by `to`.
fn replace_once(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = memchr::memmem::find(bytes, from).expect("present");
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(to);
    out.extend_from_slice(&bytes[at + from.len()..]);
    out
}

/// Record `i` of a mix, broken in way `kind`.
fn broken(
    format: &str,
    base: &Value,
    id_path: &[&str],
    id: &str,
    kind: usize,
    sizes: &Sizes,
    first_huge: bool,
) -> Vec<u8> {
    let mut v = base.clone();
    set_path(&mut v, id_path, json!(id));
    let text = compact(&v);
    let quoted = format!("\"{id}\"");
    let (time_field, required) = match format {
        "native" => ("time", "agent_id"),
        "ocsf" => ("time", "class_uid"),
        "k8s_audit" => ("stageTimestamp", "verb"),
        _ => ("eventTime", "eventName"),
    };
    match kind {
        // Cut half-way.
        0 => {
            let mut cut = text.len() / 2;
            while std::str::from_utf8(&text[..cut]).is_err() {
                cut -= 1;
            }
            text[..cut].to_vec()
        }
        // Invalid UTF-8 inside the id.
        1 => replace_once(
            &text,
            quoted.as_bytes(),
            format!("\"\u{1}{id}\"").as_bytes(),
        )
        .into_iter()
        .map(|b| if b == 1 { 0xff } else { b })
        .collect(),
        // A missing required field.
        2 => {
            v.as_object_mut().unwrap().remove(required);
            compact(&v)
        }
        // A wrong type.
        3 => {
            set_path(&mut v, &[time_field], json!({"when": "soon"}));
            compact(&v)
        }
        // Too long.
        4 => {
            let size = if first_huge {
                sizes.first_huge
            } else {
                sizes.huge
            };
            set_path(&mut v, &["padding"], json!("x".repeat(size)));
            compact(&v)
        }
        // Nested deeper than accepted.
        5 => format!("{}1{}", "{\"a\":".repeat(600), "}".repeat(600)).into_bytes(),
        6 => b"null".to_vec(),
        // Binary garbage (no line break).
        7 => {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15
                ^ (id.len() as u64 * 7919)
                ^ id.bytes().map(u64::from).sum::<u64>());
            (0..200)
                .map(|_| (rng.next() >> 24) as u8)
                .map(|b| if b == b'\n' { b'.' } else { b })
                .collect()
        }
        8 => b"{}".to_vec(),
        9 => b"42".to_vec(),
        // NaN for the id.
        10 => replace_once(&text, quoted.as_bytes(), b"NaN"),
        // A time out of range.
        11 => {
            let time = match format {
                "ocsf" => json!(253_402_300_800_000u64),
                _ => json!("9999-01-01T00:00:00Z"),
            };
            set_path(&mut v, &[time_field], time.clone());
            if format == "k8s_audit" {
                set_path(&mut v, &["requestReceivedTimestamp"], time);
            }
            compact(&v)
        }
        // A string that ends in a backslash, cut there.
        12 => {
            let at = memchr::memmem::find(&text, quoted.as_bytes()).unwrap() + 4;
            let mut out = text[..at].to_vec();
            out.push(b'\\');
            out
        }
        // A flipped quote: the one that opens the id.
        _ => replace_once(&text, quoted.as_bytes(), format!("x{id}\"").as_bytes()),
    }
}

/// A mix of `n` records of `format`, every fourth broken.
fn mix(format: &str, id_path: &[&str], n: usize, sizes: &Sizes) -> Mix {
    let bases = valid_records(format);
    let decoder = Decoder::default();
    let mut records = Vec::with_capacity(n);
    let mut valid = Vec::new();
    let mut seen_huge = false;
    for i in 0..n {
        let id = format!("{format}-{i:05}");
        let base = &bases[i % bases.len()];
        if i % 4 == 0 {
            let kind = (i / 4) % KINDS;
            let bytes = broken(
                format,
                base,
                id_path,
                &id,
                kind,
                sizes,
                kind == 4 && !seen_huge,
            );
            seen_huge |= kind == 4;
            // Each broken record is rejected on its own, as one record.
            if kind != 4 {
                let got = decoder.decode_to_vec(&bytes);
                assert_eq!(
                    got.len(),
                    1,
                    "{format} kind {kind}: {}",
                    String::from_utf8_lossy(&bytes)
                );
                assert!(got[0].is_err(), "{format} kind {kind} decodes");
            }
            assert!(!bytes.contains(&b'\n'));
            records.push(bytes);
        } else {
            let mut v = base.clone();
            set_path(&mut v, id_path, json!(id));
            records.push(compact(&v));
            valid.push(id);
        }
    }
    Mix { records, valid }
}

/// The ways a mix is laid out in a file.
#[derive(Clone, Copy, Debug)]
enum Framing {
    Lines,
    ArrayLines,
    ArrayCompact,
    DeliveryLines,
    DeliveryCompact,
}

fn frame(records: &[Vec<u8>], framing: Framing) -> Vec<u8> {
    let join = |sep: &[u8]| {
        let mut out = Vec::new();
        for (i, r) in records.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(sep);
            }
            out.extend_from_slice(r);
        }
        out
    };
    let (open, sep, close): (&[u8], &[u8], &[u8]) = match framing {
        Framing::Lines => (b"", b"\n", b"\n"),
        Framing::ArrayLines => (b"[\n", b",\n", b"\n]\n"),
        Framing::ArrayCompact => (b"[", b",", b"]"),
        Framing::DeliveryLines => (b"{\"Records\": [\n", b",\n", b"\n]}\n"),
        Framing::DeliveryCompact => (b"{\"Records\":[", b",", b"]}"),
    };
    let mut out = open.to_vec();
    out.extend(join(sep));
    out.extend_from_slice(close);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// What decoding an input gave: the ids of the decoded events, and the rejections' codes.
#[derive(Debug, Default)]
struct Outcome {
    ids: Vec<String>,
    rejected: Vec<&'static str>,
    /// The first bytes and the length of each rejected record.
    raws: Vec<(String, usize)>,
}

fn decode(input: &[u8], decoder: &Decoder, max_message: usize) -> Outcome {
    let mut out = Outcome::default();
    read_messages(input, "test", max_message, |m| {
        if let MessageKind::Oversize { size, .. } = m.kind {
            assert!(m.bytes.len() <= 64 << 10 && size > m.bytes.len() as u64);
        }
        decoder.decode_input(&m, &mut |d| match d {
            Ok(ev) => out.ids.push(ev.event_id.into_owned()),
            Err(r) => {
                out.rejected.push(r.reason.code());
                let raw = String::from_utf8_lossy(&r.raw[..r.raw.len().min(60)]).into_owned()
                    + " ... "
                    + &String::from_utf8_lossy(&r.raw[r.raw.len().saturating_sub(60)..]);
                out.raws.push((raw, r.raw.len()));
            }
        });
    })
    .unwrap();
    out
}

/// Checks that `got` holds every record of `mix` once: each valid one decoded, each broken one
/// rejected.
fn check(mix: &Mix, got: &Outcome, what: &str) {
    let n = mix.records.len();
    if got.ids.len() + got.rejected.len() != n {
        // Show the rejections that are not one broken record.
        let lengths: HashSet<usize> = mix.records.iter().map(Vec::len).collect();
        for (code, (raw, len)) in got.rejected.iter().zip(&got.raws) {
            if !lengths.contains(len) {
                eprintln!("{what}: {code} {len} {raw:?}");
            }
        }
    }
    assert_eq!(
        got.ids.len() + got.rejected.len(),
        n,
        "{what}: {} decoded + {} rejected, {n} written",
        got.ids.len(),
        got.rejected.len()
    );
    let ids: HashSet<&str> = got.ids.iter().map(String::as_str).collect();
    let missing: Vec<&String> = mix
        .valid
        .iter()
        .filter(|id| !ids.contains(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: {} valid records lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(
        got.ids.len(),
        mix.valid.len(),
        "{what}: broken records decoded"
    );
}

/// A small record limit keeps the oversize records of the mixes small.
fn small_limit_decoder() -> Decoder {
    Decoder::new(DecodeConfig {
        max_record_bytes: 64 << 10,
        ..DecodeConfig::default()
    })
}

const SMALL: Sizes = Sizes {
    first_huge: 2 << 20,
    huge: 80 << 10,
};

#[test]
fn every_record_is_read_in_every_framing() {
    let decoder = small_limit_decoder();
    for (format, id_path) in FORMATS {
        let mix = mix(format, id_path, 4000, &SMALL);
        for framing in [
            Framing::Lines,
            Framing::ArrayLines,
            Framing::ArrayCompact,
            Framing::DeliveryLines,
            Framing::DeliveryCompact,
        ] {
            let text = frame(&mix.records, framing);
            let what = format!("{format} {framing:?}");
            check(&mix, &decode(&text, &decoder, 256 << 20), &what);
            check(
                &mix,
                &decode(&gzip(&text), &decoder, 256 << 20),
                &format!("{what} gzip"),
            );
        }
    }
}

#[test]
fn containers_longer_than_the_message_limit_are_streamed() {
    // The same mixes with a message limit far below the size of the container: it is handed on
    // in pieces, and nothing is lost to its size.
    let decoder = small_limit_decoder();
    let (format, id_path) = FORMATS[3];
    let mix = mix(
        format,
        id_path,
        1200,
        &Sizes {
            first_huge: 600 << 10,
            huge: 80 << 10,
        },
    );
    for framing in [
        Framing::ArrayLines,
        Framing::ArrayCompact,
        Framing::DeliveryLines,
        Framing::DeliveryCompact,
    ] {
        let text = frame(&mix.records, framing);
        assert!(text.len() > 2 << 20);
        for limit in [256 << 10, 512 << 10] {
            let what = format!("{framing:?} limit {limit}");
            check(&mix, &decode(&text, &decoder, limit), &what);
            check(
                &mix,
                &decode(&gzip(&text), &decoder, limit),
                &format!("{what} gzip"),
            );
        }
    }
    // Oversize lines stay one message each, with a bounded prefix.
    let mix2 = self::mix("native", &["event_id"], 400, &SMALL);
    let text = frame(&mix2.records, Framing::Lines);
    check(
        &mix2,
        &decode(&text, &decoder, 1 << 20),
        "lines limit 1 MiB",
    );
}

#[test]
fn a_truncated_first_line_costs_one_record() {
    let decoder = Decoder::default();
    for (format, id_path) in FORMATS {
        let bases = valid_records(format);
        let mut records: Vec<Vec<u8>> = (0..400)
            .map(|i| {
                let mut v = bases[i % bases.len()].clone();
                set_path(&mut v, id_path, json!(format!("{format}-{i:05}")));
                compact(&v)
            })
            .collect();
        let half = records[0].len() / 2;
        records[0].truncate(half);
        let text = frame(&records, Framing::Lines);
        let got = decode(&text, &decoder, 256 << 20);
        assert_eq!(got.ids.len() + got.rejected.len(), 400, "{format}");
        assert_eq!(got.rejected[0], "not_json", "{format}");
        let ids: HashSet<&str> = got.ids.iter().map(String::as_str).collect();
        for i in 1..400 {
            assert!(
                ids.contains(format!("{format}-{i:05}").as_str()) || got.rejected.len() > 1,
                "{format} {i}"
            );
        }
    }
}

fn cloudtrail_records(n: usize) -> Vec<Value> {
    let bases = valid_records("cloudtrail");
    (0..n)
        .map(|i| {
            let mut v = bases[i % bases.len()].clone();
            set_path(&mut v, &["eventID"], json!(format!("ct-{i:04}")));
            v
        })
        .collect()
}

/// Decodes one message, checking that it yields `n` records of which all but the one at `bad`
/// decode with their ids.
fn one_bad_element(decoder: &Decoder, msg: &[u8], n: usize, bad: usize, what: &str) {
    let got = decoder.decode_to_vec(msg);
    if got.len() != n {
        for d in &got {
            if let Err(r) = d {
                eprintln!(
                    "{} at {}: {:?}",
                    r.reason.code(),
                    r.offset,
                    String::from_utf8_lossy(&r.raw[..r.raw.len().min(80)])
                );
            }
        }
    }
    assert_eq!(got.len(), n, "{what}: {} records", got.len());
    let ids: HashSet<String> = got
        .iter()
        .filter_map(|d| d.as_ref().ok().map(|e| e.event_id.to_string()))
        .collect();
    for i in (0..n).filter(|&i| i != bad) {
        assert!(
            ids.contains(&format!("ct-{i:04}")),
            "{what}: record {i} lost"
        );
    }
}

#[test]
fn one_bad_element_costs_one_record() {
    let decoder = Decoder::default();
    let records = cloudtrail_records(200);
    let texts: Vec<Vec<u8>> = records.iter().map(compact).collect();
    let bad = 117;
    let build = |bad_text: &[u8], pretty: bool| {
        let mut all = texts.clone();
        all[bad] = bad_text.to_vec();
        let (open, sep, close): (&[u8], &[u8], &[u8]) = if pretty {
            (b"{\n  \"Records\": [\n    ", b",\n    ", b"\n  ]\n}\n")
        } else {
            (b"{\"Records\":[", b",", b"]}")
        };
        let mut out = open.to_vec();
        for (i, r) in all.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(sep);
            }
            out.extend_from_slice(r);
        }
        out.extend_from_slice(close);
        out
    };
    let original = &texts[bad];
    let named = [
        ("NaN", replace_once(original, b"\"1.08\"", b"NaN")),
        (
            "missing comma",
            replace_once(original, b",\"userIdentity\"", b"\"userIdentity\""),
        ),
        (
            "flipped quote",
            replace_once(original, b"\"eventSource\"", b"xeventSource\""),
        ),
        (
            "lost closing brace",
            original[..original.len() - 1].to_vec(),
        ),
        (
            "extra closing bracket",
            replace_once(original, b"\"eventSource\"", b"]]\"eventSource\""),
        ),
    ];
    for pretty in [false, true] {
        for (what, text) in &named {
            one_bad_element(
                &decoder,
                &build(text, pretty),
                200,
                bad,
                &format!("{what} pretty={pretty}"),
            );
            // The same as an array.
            let msg = build(text, pretty);
            let array =
                &msg[memchr::memchr(b'[', &msg).unwrap()..msg.len() - if pretty { 3 } else { 1 }];
            one_bad_element(
                &decoder,
                array,
                200,
                bad,
                &format!("{what} array pretty={pretty}"),
            );
        }
    }
    // Every single byte of the record flipped, in several ways.
    for at in 0..original.len() {
        for flip in [0x01u8, 0x20, 0x80] {
            let mut text = original.clone();
            text[at] ^= flip;
            if text[at] == b'\n' {
                continue;
            }
            one_bad_element(
                &decoder,
                &build(&text, false),
                200,
                bad,
                &format!(
                    "byte {at} ^ {flip:#x}: {:?}",
                    String::from_utf8_lossy(
                        &text[at.saturating_sub(10)..(at + 10).min(text.len())]
                    )
                ),
            );
        }
    }
}

#[test]
fn a_records_member_does_not_hijack_an_event() {
    let decoder = Decoder::default();
    let inner: Vec<Value> = cloudtrail_records(2);
    for (format, id_path) in FORMATS.iter().take(3) {
        let mut event = valid_records(format)[0].clone();
        set_path(&mut event, id_path, json!("outer"));
        for records in [json!([]), json!(inner)] {
            for first in [false, true] {
                let mut v = event.clone();
                let text = if first {
                    // `Records` first, before the members that make it an event.
                    let mut m = serde_json::Map::new();
                    m.insert("Records".into(), records.clone());
                    m.extend(v.as_object().unwrap().clone());
                    serde_json::to_vec(&m).unwrap()
                } else {
                    v.as_object_mut()
                        .unwrap()
                        .insert("Records".into(), records.clone());
                    compact(&v)
                };
                let got = decoder.decode_to_vec(&text);
                assert_eq!(got.len(), 1, "{format} first={first} {records}");
                let ev = got[0]
                    .as_ref()
                    .unwrap_or_else(|r| panic!("{format}: {r:?}"));
                assert_eq!(ev.event_id, "outer", "{format}");
            }
        }
    }
    // A delivery is still a delivery.
    let delivery = serde_json::to_vec(&json!({"Records": inner})).unwrap();
    assert_eq!(decoder.decode_to_vec(&delivery).len(), 2);
    assert!(decoder.decode_to_vec(br#"{"Records":[]}"#).is_empty());
}

#[test]
fn layouts_are_told_from_content() {
    let records = cloudtrail_records(50);
    let decoder = Decoder::default();
    let pretty = serde_json::to_vec_pretty(&json!({ "Records": records })).unwrap();
    let array = serde_json::to_vec_pretty(&json!(records)).unwrap();
    let lines: Vec<u8> = records
        .iter()
        .flat_map(|r| [compact(r), b"\n".to_vec()].concat())
        .collect();
    let cases: [(&str, Vec<u8>, Layout); 5] = [
        ("pretty delivery", pretty.clone(), Layout::Documents),
        ("pretty array", array, Layout::Documents),
        (
            "bom and blank lines",
            [b"\xef\xbb\xbf\n\n \n".to_vec(), lines.clone()].concat(),
            Layout::JsonLines,
        ),
        (
            "two pretty deliveries",
            [pretty.clone(), pretty.clone()].concat(),
            Layout::Documents,
        ),
        (
            "bom and a pretty delivery",
            [b"\xef\xbb\xbf".to_vec(), pretty].concat(),
            Layout::Documents,
        ),
    ];
    for (what, text, layout) in cases {
        let n = if what.starts_with("two") { 100 } else { 50 };
        for input in [text.clone(), gzip(&text)] {
            // Read whole, and fed a few bytes at a time as a pipe would.
            let whole = read_messages(&input[..], "t", 256 << 20, |_| {}).unwrap();
            assert_eq!(whole.layout, layout, "{what}");
            let trickle = read_messages(Trickle(&input[..], 0), "t", 256 << 20, |_| {}).unwrap();
            assert_eq!(trickle.layout, layout, "{what} trickled");
            let got = decode(&input, &decoder, 256 << 20);
            assert_eq!((got.ids.len(), got.rejected.len()), (n, 0), "{what}");
        }
    }
}

/// A reader that hands out 1 to 7 bytes at a time.
struct Trickle<'a>(&'a [u8], usize);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.1 += 1;
        let n = (1 + self.1 % 7).min(self.0.len()).min(buf.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// Runs `cinch replay` on `input` (a path, or `-` with `stdin` written to it a few bytes at a
/// time); returns (findings, scores, dead letters, stderr).
fn replay(
    dir: &Path,
    input: &str,
    stdin: Option<&[u8]>,
    tag: &str,
) -> (Vec<u8>, Vec<u8>, Vec<u8>, String) {
    let out = dir.join(format!("{tag}.out"));
    let scores = dir.join(format!("{tag}.scores"));
    let dead = dir.join(format!("{tag}.dead"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_cinch"))
        .args(["replay", "--input", input, "--signing-key"])
        .arg(fixture("keys/cinch-signing.key"))
        .arg("--out")
        .arg(&out)
        .arg("--scores-out")
        .arg(&scores)
        .arg("--dead-letter")
        .arg(&dead)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let data = stdin.map(<[u8]>::to_vec);
    let writer = std::thread::spawn(move || {
        if let Some(data) = data {
            // Small writes, so that the reader sees short reads.
            for (i, chunk) in data.chunks(3 + data.len() / 4000).enumerate() {
                if pipe.write_all(chunk).is_err() {
                    break;
                }
                if i % 97 == 0 {
                    let _ = pipe.flush();
                    std::thread::sleep(std::time::Duration::from_micros(50));
                }
            }
        }
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        std::fs::read(out).unwrap(),
        std::fs::read(scores).unwrap(),
        std::fs::read(dead).unwrap(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn stdin_and_file_give_the_same_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let records = cloudtrail_records(50);
    let pretty = serde_json::to_vec_pretty(&json!({ "Records": records })).unwrap();
    let lines: Vec<u8> = records
        .iter()
        .flat_map(|r| [compact(r), b"\n".to_vec()].concat())
        .collect();
    let mut native = mix("native", &["event_id"], 400, &SMALL).records;
    native.truncate(120);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("bom", [b"\xef\xbb\xbf".to_vec(), lines.clone()].concat()),
        (
            "blank lines",
            [b"\n\n  \n".to_vec(), lines.clone()].concat(),
        ),
        ("pretty delivery", pretty.clone()),
        (
            "pretty array",
            serde_json::to_vec_pretty(&json!(records)).unwrap(),
        ),
        ("gzip pretty delivery", gzip(&pretty)),
        ("gzip lines", gzip(&lines)),
        ("broken lines", frame(&native, Framing::Lines)),
        ("broken array", frame(&native, Framing::ArrayLines)),
    ];
    for (what, bytes) in cases {
        let path = dir.path().join("input");
        std::fs::write(&path, &bytes).unwrap();
        let file = replay(dir.path(), path.to_str().unwrap(), None, "file");
        let stdin = replay(dir.path(), "-", Some(&bytes), "stdin");
        assert_eq!(file.0, stdin.0, "{what}: findings differ");
        assert_eq!(file.1, stdin.1, "{what}: scores differ");
        let path_json = serde_json::to_string(path.to_str().unwrap()).unwrap();
        let dead = String::from_utf8(file.2)
            .unwrap()
            .replace(&path_json, "\"stdin\"");
        assert_eq!(
            dead,
            String::from_utf8(stdin.2).unwrap(),
            "{what}: dead letters differ"
        );
        let read = |stderr: &str| {
            stderr
                .lines()
                .find(|l| l.contains("records read"))
                .map(str::to_owned)
        };
        assert_eq!(read(&file.3), read(&stdin.3), "{what}");
        if !what.starts_with("broken") {
            assert_eq!(
                file.1.iter().filter(|&&b| b == b'\n').count(),
                50,
                "{what}: scored"
            );
        }
    }
}

#[test]
fn replay_reads_every_line_of_a_broken_file() {
    // Default limits: the oversize line is 2 MiB, over the 1 MiB record limit.
    let dir = tempfile::tempdir().unwrap();
    let mix = mix(
        "native",
        &["event_id"],
        4000,
        &Sizes {
            first_huge: 2 << 20,
            huge: (1 << 20) + 100,
        },
    );
    let mut first = mix;
    // One 2 MiB line is enough here; the other oversize slots hold small broken records.
    let limit = 1 << 20;
    let mut huge_seen = 0;
    for r in &mut first.records {
        if r.len() > limit {
            huge_seen += 1;
            if huge_seen > 1 {
                *r = b"{\"event_id\":".to_vec();
            }
        }
    }
    let text = frame(&first.records, Framing::Lines);
    let path = dir.path().join("mix.jsonl");
    std::fs::write(&path, &text).unwrap();
    let (_, scores, dead, stderr) = replay(dir.path(), path.to_str().unwrap(), None, "mix");
    assert!(stderr.contains("4000 records read"), "{stderr}");
    let scored: HashSet<String> = scores
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice::<Value>(l).unwrap()["event_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let dead: Vec<Value> = dead
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(scored.len() + dead.len(), 4000);
    for id in &first.valid {
        assert!(scored.contains(id), "{id} not scored");
    }
    // The oversize line: one dead letter, a bounded prefix, its full length and where it is.
    let over: Vec<&Value> = dead
        .iter()
        .filter(|d| d["reason_code"] == "oversize")
        .collect();
    assert_eq!(over.len(), 1);
    let huge = first.records.iter().position(|r| r.len() > limit).unwrap();
    let offset: usize = first.records[..huge].iter().map(|r| r.len() + 1).sum();
    assert_eq!(over[0]["raw_bytes"], first.records[huge].len());
    assert_eq!(over[0]["raw_truncated"], true);
    assert_eq!(over[0]["raw"].as_str().unwrap().len(), 64 << 10);
    assert_eq!(over[0]["line"], huge + 1);
    assert_eq!(over[0]["input_offset"], offset);
    // Every dead letter says where its record is.
    for d in &dead {
        let at = d["input_offset"].as_u64().unwrap() as usize;
        let line = d["line"].as_u64().unwrap() as usize;
        let start: usize = first.records[..line - 1].iter().map(|r| r.len() + 1).sum();
        assert_eq!(at, start, "{d}");
    }
}

#[test]
fn rejected_records_keep_their_reasons() {
    // The reasons of the broken kinds, as JSON lines.
    let decoder = small_limit_decoder();
    let mix = mix("native", &["event_id"], 4 * KINDS, &SMALL);
    let text = frame(&mix.records, Framing::Lines);
    let got = decode(&text, &decoder, 256 << 20);
    assert_eq!(
        got.rejected,
        [
            "not_json",
            "invalid_utf8",
            "missing_field",
            "invalid_field",
            "oversize",
            "too_deep",
            "unknown_format",
            "invalid_utf8",
            "unknown_format",
            "unknown_format",
            "not_json",
            "time_out_of_range",
            "not_json",
            "not_json"
        ]
    );
    let _ = RejectReason::NotJson(String::new());
}
