//! Golden-file tests of the `cinch replay` command line.
//!
//! The fixture `fixtures/replay/fleet.jsonl` is a small simulated fleet (`cinch simulate
//! --agents 4 --days 6 --seed 5`, with its `labels.csv` and `attacks.csv` beside it) followed by
//! four bad records: not JSON, a missing `agent_id`, a time in year 9999 and invalid UTF-8.
//! The binary replays it with the fleet's entitlements (`fixtures/replay/entitlements.json`) and
//! the fixture signing key (`fixtures/keys/`, for tests only), and its outputs are compared byte
//! for byte with `fixtures/replay/expected/{findings,scores,dead_letters,audit}.jsonl` (findings
//! holds every `--out` record: findings, recommendations and signed commands) and `summary.txt`
//! (the stderr summary, its timing line normalised).
//!
//! When the engine's scoring or the output format changes on purpose, regenerate the expected
//! files and review their diff before committing:
//!
//! ```text
//! CINCH_BLESS=1 cargo test --test replay_cli
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The fixture's directory.
fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/replay")
}

/// The fixture's events file name, relative to [`fixture_dir`] (dead letters name it).
const FLEET: &str = "fleet.jsonl";

fn blessing() -> bool {
    std::env::var_os("CINCH_BLESS").is_some_and(|v| v == "1")
}

fn cinch() -> assert_cmd::Command {
    assert_cmd::cargo::cargo_bin_cmd!("cinch")
}

/// What one replay produced.
#[derive(Debug)]
struct Outputs {
    findings: Vec<u8>,
    scores: Vec<u8>,
    dead: Vec<u8>,
    audit: Vec<u8>,
    /// The stderr summary with its timing line normalised.
    summary: String,
}

/// How the input reaches the binary.
enum Input<'a> {
    /// `--input PATH`, relative to the working directory.
    Path(&'a str),
    /// `--input -`, these bytes on stdin.
    Stdin(Vec<u8>),
}

/// Adds the fixture's entitlements and signing key.
fn with_response(cmd: &mut assert_cmd::Command) -> &mut assert_cmd::Command {
    cmd.arg("--entitlements")
        .arg(fixture_dir().join("entitlements.json"))
        .arg("--signing-key")
        .arg(fixture_dir().join("../keys/cinch-signing.key"))
}

/// Replays `input` from the working directory `cwd`, every output to a file of a fresh temp dir.
fn replay(cwd: &Path, input: Input<'_>) -> Outputs {
    let out = tempfile::tempdir().unwrap();
    let (f, s, d, a) = (
        out.path().join("findings.jsonl"),
        out.path().join("scores.jsonl"),
        out.path().join("dead_letters.jsonl"),
        out.path().join("audit.jsonl"),
    );
    let mut cmd = cinch();
    cmd.current_dir(cwd).arg("replay").arg("--quiet");
    with_response(&mut cmd).arg("--audit").arg(&a);
    match input {
        Input::Path(p) => {
            cmd.args(["--input", p]);
        }
        Input::Stdin(bytes) => {
            cmd.args(["--input", "-"]).write_stdin(bytes);
        }
    }
    cmd.arg("--out")
        .arg(&f)
        .arg("--scores-out")
        .arg(&s)
        .arg("--dead-letter")
        .arg(&d);
    let output = cmd.output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "replay failed: {stderr}");
    assert!(
        output.stdout.is_empty(),
        "stdout should be empty with --out: {:?}",
        String::from_utf8_lossy(&output.stdout)
    );
    Outputs {
        findings: fs::read(&f).unwrap(),
        scores: fs::read(&s).unwrap(),
        dead: fs::read(&d).unwrap(),
        audit: fs::read(&a).unwrap(),
        summary: normalise_summary(&stderr),
    }
}

/// Replaces the summary's timing line (`  0.01 s, 294620 records/s`) with a fixed one, and the
/// fixture directory with `fixtures/replay`.
fn normalise_summary(stderr: &str) -> String {
    let mut out = String::new();
    let stderr = stderr.replace(&fixture_dir().display().to_string(), "fixtures/replay");
    for line in stderr.lines() {
        let t = line.trim_start();
        let timing = t.ends_with(" records/s")
            && t.split_once(" s, ").is_some_and(|(secs, _)| {
                !secs.is_empty() && secs.chars().all(|c| c.is_ascii_digit() || c == '.')
            });
        if timing {
            out.push_str(&line[..line.len() - t.len()]);
            out.push_str("<elapsed> s, <rate> records/s");
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Dead letters with their `source` member renamed from `from` to `to`.
fn with_source(dead: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = std::str::from_utf8(dead).unwrap();
    text.replace(
        &format!(r#""source":"{from}""#),
        &format!(r#""source":"{to}""#),
    )
    .into_bytes()
}

fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect()
}

fn json_lines(bytes: &[u8]) -> Vec<Value> {
    lines(bytes)
        .into_iter()
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

/// Asserts two outputs are equal, reporting the first differing line rather than megabytes.
fn assert_same(what: &str, got: &[u8], want: &[u8]) {
    if got == want {
        return;
    }
    let (g, w) = (lines(got), lines(want));
    let i = g
        .iter()
        .zip(&w)
        .position(|(a, b)| a != b)
        .unwrap_or(g.len().min(w.len()));
    panic!(
        "{what} differs (got {} lines, want {}); first difference at line {}:\n  got:  {}\n  want: {}\n\
         (if the change is intended: CINCH_BLESS=1 cargo test --test replay_cli)",
        g.len(),
        w.len(),
        i + 1,
        g.get(i)
            .map_or("<none>".into(), |l| String::from_utf8_lossy(l)),
        w.get(i)
            .map_or("<none>".into(), |l| String::from_utf8_lossy(l)),
    );
}

#[test]
fn golden_outputs() {
    let got = replay(&fixture_dir(), Input::Path(FLEET));
    let expected = fixture_dir().join("expected");
    let files: [(&str, &[u8]); 5] = [
        ("findings.jsonl", &got.findings),
        ("scores.jsonl", &got.scores),
        ("dead_letters.jsonl", &got.dead),
        ("audit.jsonl", &got.audit),
        ("summary.txt", got.summary.as_bytes()),
    ];
    if blessing() {
        fs::create_dir_all(&expected).unwrap();
        for (name, bytes) in files {
            fs::write(expected.join(name), bytes).unwrap();
        }
        eprintln!("blessed {}", expected.display());
        return;
    }
    for (name, bytes) in files {
        let path = expected.join(name);
        let want = fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (create it with CINCH_BLESS=1 cargo test --test replay_cli)",
                path.display()
            )
        });
        assert_same(name, bytes, &want);
    }
}

/// The golden files themselves hold what the contract promises, whatever the scores are.
#[test]
fn golden_outputs_are_well_formed() {
    let got = replay(&fixture_dir(), Input::Path(FLEET));
    let findings = json_lines(&got.findings);
    assert!(
        !findings.is_empty(),
        "the fixture's attack raises no finding"
    );
    let kind = |k: &str| -> Vec<&Value> { findings.iter().filter(|r| r["kind"] == k).collect() };
    assert!(
        findings.iter().all(
            |r| ["finding", "recommendation", "command"].contains(&r["kind"].as_str().unwrap())
        ),
        "--out holds findings, recommendations and commands"
    );
    let verifier =
        cinch::drive::files::verifier(&fixture_dir().join("../keys/cinch-signing.pub")).unwrap();
    let ids: Vec<&Value> = kind("finding").iter().map(|f| &f["finding_id"]).collect();
    assert!(
        !kind("command").is_empty(),
        "the fixture's attack draws no command"
    );
    for c in kind("command") {
        verifier.verify(c).unwrap();
        assert_eq!(c["dry_run"], true, "dry run is the default: {c}");
        for f in c["finding_ids"].as_array().unwrap() {
            assert!(ids.contains(&f), "command names an unknown finding: {c}");
        }
    }
    for f in kind("finding") {
        let score = f["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&score), "{f}");
        assert!(!f["event_ids"].as_array().unwrap().is_empty(), "{f}");
        assert!(!f["reasons"].as_array().unwrap().is_empty(), "{f}");
    }
    let dead = json_lines(&got.dead);
    let codes: Vec<&str> = dead
        .iter()
        .map(|d| d["reason_code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "not_json",
            "missing_field",
            "time_out_of_range",
            "invalid_utf8"
        ]
    );
    for d in &dead {
        assert_eq!(d["source"], FLEET);
    }
    assert!(got.summary.starts_with("cinch replay: "), "{}", got.summary);
    assert!(got.summary.contains("<elapsed> s, <rate> records/s"));
}

/// One line per input record, counted without the engine: blank lines are not records.
fn input_records(input: &[u8]) -> Vec<&[u8]> {
    lines(input)
        .into_iter()
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .collect()
}

/// The id of a record that is a valid native event, judged independently of the decoder:
/// UTF-8 JSON object with the required members and a time before 2100.
fn valid_event_id(record: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(record).ok()?;
    let o = v.as_object()?;
    for k in ["event_id", "agent_id", "action"] {
        if o.get(k)?.as_str()?.is_empty() {
            return None;
        }
    }
    o.get("resource")?.as_str()?;
    let year: u32 = o.get("time")?.as_str()?.get(..4)?.parse().ok()?;
    if !(1970..2100).contains(&year) {
        return None;
    }
    Some(o["event_id"].as_str()?.to_owned())
}

#[test]
fn every_record_is_scored_or_dead_lettered() {
    let input = fs::read(fixture_dir().join(FLEET)).unwrap();
    let records = input_records(&input);
    let valid: Vec<String> = records.iter().filter_map(|r| valid_event_id(r)).collect();
    assert_eq!(
        records.len() - valid.len(),
        4,
        "the fixture has 4 bad records"
    );

    let got = replay(&fixture_dir(), Input::Path(FLEET));
    let scores = json_lines(&got.scores);
    let dead = json_lines(&got.dead);
    assert_eq!(scores.len(), valid.len(), "one score line per valid event");
    assert_eq!(dead.len() + scores.len(), records.len());
    let scored: Vec<&str> = scores
        .iter()
        .map(|s| s["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(scored, valid, "score lines follow input order");
    for s in &scores {
        let score = s["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&score), "{s}");
    }
    let first = got
        .summary
        .lines()
        .find(|l| l.contains(" records read: "))
        .unwrap();
    assert_eq!(
        first.split(" (").next().unwrap(),
        format!(
            "cinch replay: {} records read: {} events processed, {} dead-lettered",
            records.len(),
            valid.len(),
            dead.len()
        )
    );
}

#[test]
fn stdin_gives_the_same_outputs_as_the_file() {
    let file = replay(&fixture_dir(), Input::Path(FLEET));
    let input = fs::read(fixture_dir().join(FLEET)).unwrap();
    let stdin = replay(&fixture_dir(), Input::Stdin(input));
    assert_same("findings", &stdin.findings, &file.findings);
    assert_same("scores", &stdin.scores, &file.scores);
    assert_same(
        "dead letters",
        &with_source(&stdin.dead, "stdin", FLEET),
        &file.dead,
    );
    assert_eq!(stdin.summary, file.summary);
}

#[test]
fn gzip_gives_the_same_outputs_as_the_file() {
    let file = replay(&fixture_dir(), Input::Path(FLEET));
    let dir = tempfile::tempdir().unwrap();
    let gz = "fleet.jsonl.gz";
    let mut enc = flate2::write::GzEncoder::new(
        fs::File::create(dir.path().join(gz)).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(&fs::read(fixture_dir().join(FLEET)).unwrap())
        .unwrap();
    enc.finish().unwrap();
    let zipped = replay(dir.path(), Input::Path(gz));
    assert_same("findings", &zipped.findings, &file.findings);
    assert_same("scores", &zipped.scores, &file.scores);
    assert_same(
        "dead letters",
        &with_source(&zipped.dead, gz, FLEET),
        &file.dead,
    );
    assert_eq!(zipped.summary, file.summary);
}

#[test]
fn replay_is_deterministic() {
    let a = replay(&fixture_dir(), Input::Path(FLEET));
    let b = replay(&fixture_dir(), Input::Path(FLEET));
    assert_same("findings", &a.findings, &b.findings);
    assert_same("scores", &a.scores, &b.scores);
    assert_same("dead letters", &a.dead, &b.dead);
    assert_eq!(a.summary, b.summary);
}

#[test]
fn findings_and_dead_letters_go_to_stdout_without_out() {
    let file = replay(&fixture_dir(), Input::Path(FLEET));
    let dir = tempfile::tempdir().unwrap();
    let scores = dir.path().join("scores.jsonl");
    let dead = dir.path().join("dead.jsonl");
    let audit = dir.path().join("audit.jsonl");
    let mut cmd = cinch();
    cmd.current_dir(fixture_dir())
        .args(["replay", "--quiet", "--input", FLEET]);
    let output = with_response(&mut cmd)
        .arg("--scores-out")
        .arg(&scores)
        .arg("--dead-letter")
        .arg(&dead)
        .arg("--audit")
        .arg(&audit)
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_same("stdout", &output.stdout, &file.findings);
    assert_same("scores", &fs::read(&scores).unwrap(), &file.scores);
    assert_same("dead letters", &fs::read(&dead).unwrap(), &file.dead);

    // Without --dead-letter and --audit either, dead letters and audit records join the
    // findings on stdout.
    let mut cmd = cinch();
    cmd.current_dir(fixture_dir())
        .args(["replay", "--quiet", "--input", FLEET]);
    let output = with_response(&mut cmd).output().unwrap();
    assert!(output.status.success());
    let all = json_lines(&output.stdout);
    let kinds = |k: &str| all.iter().filter(|r| r["kind"] == k).count();
    assert_eq!(
        all.len() - kinds("dead_letter") - kinds("audit"),
        json_lines(&file.findings).len()
    );
    assert_eq!(kinds("dead_letter"), 4);
    assert_eq!(kinds("audit"), json_lines(&file.audit).len());
}

#[test]
fn missing_input_fails_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-events.jsonl");
    let output = cinch()
        .args(["replay", "--quiet", "--input"])
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&missing.display().to_string()),
        "stderr does not name the input: {stderr}"
    );
    assert!(stderr.starts_with("cinch: error: "), "{stderr}");
    // The cause is stated once.
    assert_eq!(
        stderr.matches("No such file").count(),
        1,
        "cause repeated: {stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn invalid_config_fails_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cinch.toml");
    fs::write(&config, "[decide]\nfinding_treshold = 0.5\n").unwrap();
    let output = cinch()
        .current_dir(fixture_dir())
        .args(["replay", "--quiet", "--input", FLEET, "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("finding_treshold"), "{stderr}");
    assert!(stderr.contains(&config.display().to_string()), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "no output before the config is valid"
    );

    // An out-of-range value names its key too.
    fs::write(&config, "[decide]\nfinding_threshold = 7.0\n").unwrap();
    let output = cinch()
        .current_dir(fixture_dir())
        .args(["replay", "--quiet", "--input", FLEET, "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("finding_threshold"), "{stderr}");
}

#[test]
fn garbage_input_exits_zero() {
    // Deterministic junk: binary noise, truncated JSON, wrong shapes, a last line without a
    // line break.
    let mut junk = Vec::new();
    let mut x: u32 = 0x9e37_79b9;
    for _ in 0..20 {
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let b = (x >> 24) as u8;
            junk.push(if b == b'\n' { b'?' } else { b });
        }
        junk.push(b'\n');
    }
    junk.extend_from_slice(b"{\"event_id\":\"e1\",\"time\":\n");
    junk.extend_from_slice(b"[1,2,3]\n");
    junk.extend_from_slice(b"{\"kind\":\"Event\"}\n");
    junk.extend_from_slice(b"\"just a string\"\n");
    junk.extend_from_slice(b"{\"event_id\":\"e2\"");
    let records = input_records(&junk).len();
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("junk.bin"), &junk).unwrap();
    let got = replay(dir.path(), Input::Path("junk.bin"));
    assert!(got.findings.is_empty());
    assert!(got.scores.is_empty());
    let dead = json_lines(&got.dead);
    assert!(!dead.is_empty());
    // A line may hold more than one record (a JSON array), never fewer.
    assert!(dead.len() >= records, "{} < {records}", dead.len());
    assert!(
        got.summary.contains(" 0 events processed"),
        "{}",
        got.summary
    );
}
