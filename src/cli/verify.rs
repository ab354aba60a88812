//! `cinch verify`: prove that command records are valid, unexpired and new.
//!
//! Reads JSON lines (optionally gzip) and judges each with the same intake the enforcement point
//! (`cinch authorize`) uses: strict JSON (a duplicate key at any depth fails), a `kind` that is
//! `command` or a kind cinch writes beside commands (findings, recommendations, audit records and
//! dead letters are skipped and counted; a missing or unknown `kind` fails), a signature by the
//! given key over the record's own bytes, every member the command schema requires, an
//! `expires_at` after `--at` (default: now), and a `command_id` not seen before (earlier in the
//! input, or in `--seen FILE`). Blank lines are skipped. Each failure is named on stderr by its
//! line number, `command_id` and reason code.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::authorize::{CommandIntake, Intake, RejectCode};
use crate::event::time::parse_rfc3339_ms;

/// Arguments of `cinch verify`.
#[derive(Clone, Debug, clap::Args)]
pub struct VerifyArgs {
    /// The signer's public key (SPKI PEM), e.g. `cinch-signing.pub` from `cinch keygen`.
    #[arg(long)]
    pub public_key: PathBuf,
    /// JSON lines to check (optionally gzip), or `-` for stdin; default stdin.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// The time at which expiry is judged (RFC 3339); default now. Use a past time to check a
    /// stored command file as it stood then, or `issued` to judge each command as of its own
    /// `issued_at` (an archive of commands issued over a long period).
    #[arg(long, value_name = "TIME|issued")]
    pub at: Option<String>,
    /// Command ids already seen, which fail as replayed: JSON lines with a `command_id` member
    /// (an earlier commands file, an audit log), or one bare id a line; optionally gzip.
    #[arg(long, value_name = "FILE")]
    pub seen: Option<PathBuf>,
}

/// Counts over an input.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Commands that passed every check.
    pub verified: u64,
    /// Lines that are not commands cinch could act on, each named with its reason code.
    pub failed: u64,
    /// Records of other kinds (findings, recommendations, dead letters).
    pub skipped: u64,
}

/// Checks every command of the input; exit 0 when none failed, 1 otherwise.
pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let verifier = crate::drive::files::verifier(&args.public_key)?;
    let now_ms = match args.at.as_deref() {
        Some("issued") => None,
        Some(at) => match parse_rfc3339_ms(at) {
            Some(ms) => Some(ms),
            None => bail!(
                "--at {at:?} is neither an RFC 3339 time (e.g. 2026-01-06T00:00:00Z) nor `issued`"
            ),
        },
        None => Some(crate::drive::authorize::wall_ms()),
    };
    let mut intake = CommandIntake::new(verifier);
    if let Some(seen) = &args.seen {
        let n = load_seen(seen, &mut intake)
            .with_context(|| format!("cannot read --seen {}", seen.display()))?;
        eprintln!(
            "cinch verify: {n} command ids seen before, from {}",
            seen.display()
        );
    }
    let path = args.input.filter(|p| p.as_os_str() != "-");
    let name = path
        .as_deref()
        .map_or_else(|| "stdin".to_owned(), |p| p.display().to_string());
    let reader = open(path.as_deref()).with_context(|| format!("cannot open input {name}"))?;
    let tally = check_lines(
        reader,
        &mut intake,
        now_ms,
        |line, command_id, code, reason| {
            eprintln!(
                "line {line}: command_id {}: {code}: {reason}",
                command_id.unwrap_or("?")
            );
        },
    )
    .with_context(|| format!("cannot read input {name}"))?;
    println!("{}", summary(&tally));
    Ok(if tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn summary(t: &Tally) -> String {
    let mut s = format!(
        "verified {} commands, {} failed, {} other records skipped",
        t.verified, t.failed, t.skipped
    );
    if t.verified == 0 && t.failed == 0 {
        s.push_str(" (the input held no command records: nothing was verified)");
    }
    s
}

/// Reads the ids of `path` into `intake` as seen before; returns how many.
fn load_seen(path: &Path, intake: &mut CommandIntake) -> anyhow::Result<u64> {
    let mut reader = open(Some(path))?;
    let mut buf = Vec::new();
    let (mut line, mut n) = (0u64, 0u64);
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line += 1;
        let text = std::str::from_utf8(&buf)
            .with_context(|| format!("line {line} is not UTF-8"))?
            .trim_start_matches('\u{feff}')
            .trim();
        if text.is_empty() {
            continue;
        }
        let id = if text.starts_with('{') {
            let record: Value = serde_json::from_str(text)
                .with_context(|| format!("line {line} is neither JSON nor a bare command id"))?;
            match record.get("command_id").and_then(Value::as_str) {
                Some(id) => id.to_owned(),
                None => continue,
            }
        } else {
            text.to_owned()
        };
        intake.remember_seen(id, format!("{} line {line}", path.display()));
        n += 1;
    }
    Ok(n)
}

/// The input as a buffered reader, decompressed when it starts with the gzip magic bytes.
fn open(path: Option<&Path>) -> io::Result<Box<dyn BufRead>> {
    let raw: Box<dyn Read> = match path {
        None => Box::new(io::stdin().lock()),
        Some(p) => {
            let file = File::open(p)?;
            if file.metadata()?.is_dir() {
                return Err(io::Error::other("is a directory"));
            }
            Box::new(file)
        }
    };
    let mut raw = raw;
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < head.len() {
        match raw.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let joined = Cursor::new(head[..got].to_vec()).chain(raw);
    Ok(if got == 2 && head == [0x1f, 0x8b] {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(joined)))
    } else {
        Box::new(BufReader::new(joined))
    })
}

/// Judges every line of `reader` at `now_ms` (each command at its own `issued_at` when `None`),
/// calling `fail(line, command_id, code, reason)` for each failure.
pub fn check_lines(
    mut reader: impl BufRead,
    intake: &mut CommandIntake,
    now_ms: Option<i64>,
    mut fail: impl FnMut(u64, Option<&str>, RejectCode, &str),
) -> io::Result<Tally> {
    let mut tally = Tally::default();
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line += 1;
        let mut bytes = buf.as_slice();
        if line == 1 {
            bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        }
        let judged = match now_ms {
            Some(now) => intake.take(line, bytes, now),
            None => intake.take_as_issued(line, bytes),
        };
        match judged {
            Intake::Blank => {}
            Intake::Applied(_) => tally.verified += 1,
            Intake::Ignored { .. } => tally.skipped += 1,
            Intake::Rejected(r) => {
                tally.failed += 1;
                fail(line, r.command_id.as_deref(), r.code, &r.detail);
            }
        }
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::output::sign::Signer;

    const NOW: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    fn command(id: &str) -> Value {
        json!({
            "kind": "command", "command_id": id, "agent_id": "a", "action": "revoke_session",
            "target": "s-1", "severity": "high", "reason": "r", "finding_ids": ["fnd-1"],
            "trigger_event_id": "e-1", "issued_at": "2025-12-31T23:00:00.000Z",
            "expires_at": "2026-01-01T01:00:00.000Z", "requires_approval": false, "dry_run": false,
            "rollback": {"action": "restore_session"}
        })
    }

    fn signed(signer: &Signer, mut record: Value) -> String {
        record["signature"] = serde_json::to_value(signer.sign(&record)).unwrap();
        record.to_string()
    }

    fn judge(
        input: &str,
        intake: &mut CommandIntake,
    ) -> (Tally, Vec<(u64, Option<String>, RejectCode)>) {
        let mut failures = Vec::new();
        let tally = check_lines(input.as_bytes(), intake, Some(NOW), |l, id, code, _| {
            failures.push((l, id.map(str::to_owned), code))
        })
        .unwrap();
        (tally, failures)
    }

    #[test]
    fn counts_and_names_every_forgery() {
        let signer = Signer::from_seed(&[7; 32]);
        let good = signed(&signer, command("c1"));
        let tampered = signed(&signer, command("c2")).replace("\"a\"", "\"b\"");
        let without = |member: &str, id: &str| {
            let mut v = command(id);
            v.as_object_mut().unwrap().remove(member);
            signed(&signer, v)
        };
        let mut expired = command("c5");
        expired["expires_at"] = json!("2025-12-31T23:30:00.000Z");
        let duplicate = signed(&signer, command("c6")).replacen('{', "{\"dry_run\":true,", 1);
        let mut wrong_kind = command("c7");
        wrong_kind["kind"] = json!("Command");
        let input = [
            good.clone(),
            String::new(),
            r#"{"kind":"finding","finding_id":"f"}"#.to_owned(),
            tampered,
            "not json".to_owned(),
            "[1]".to_owned(),
            without("kind", "c3"),
            without("trigger_event_id", "c4"),
            signed(&signer, expired),
            duplicate,
            signed(&signer, wrong_kind),
            good,
        ]
        .join("\r\n");
        let (tally, failures) = judge(&input, &mut CommandIntake::new(signer.verifier()));
        assert_eq!(
            tally,
            Tally {
                verified: 1,
                failed: 9,
                skipped: 1
            }
        );
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            failures,
            [
                (4, some("c2"), RejectCode::Tampered),
                (5, None, RejectCode::NotJson),
                (6, None, RejectCode::NotJson),
                (7, some("c3"), RejectCode::MissingKind),
                (8, some("c4"), RejectCode::Malformed),
                (9, some("c5"), RejectCode::Expired),
                (10, some("c6"), RejectCode::DuplicateKey),
                (11, some("c7"), RejectCode::WrongKind),
                (12, some("c1"), RejectCode::Replayed),
            ]
        );
    }

    #[test]
    fn ids_seen_before_fail_as_replayed() {
        let signer = Signer::from_seed(&[8; 32]);
        let dir = tempfile::tempdir().unwrap();
        let seen = dir.path().join("seen.jsonl");
        std::fs::write(
            &seen,
            "{\"kind\":\"finding\"}\n{\"command_id\":\"c1\"}\n\n  c2  \n",
        )
        .unwrap();
        let mut intake = CommandIntake::new(signer.verifier());
        assert_eq!(load_seen(&seen, &mut intake).unwrap(), 2);
        let input = [
            signed(&signer, command("c1")),
            signed(&signer, command("c2")),
            signed(&signer, command("c3")),
        ]
        .join("\n");
        let (tally, failures) = judge(&input, &mut intake);
        assert_eq!((tally.verified, tally.failed), (1, 2));
        assert!(failures.iter().all(|f| f.2 == RejectCode::Replayed));
    }

    #[test]
    fn summary_says_when_nothing_was_verified() {
        let t = Tally {
            verified: 0,
            failed: 0,
            skipped: 2,
        };
        assert!(summary(&t).starts_with("verified 0 commands, 0 failed, 2 other records skipped"));
        assert!(summary(&t).contains("no command records"));
    }
}
