//! `cinch verify`: check the signatures of command records.
//!
//! Reads JSON lines (optionally gzip). A record whose `kind` is `command` is verified; so is a
//! record without a `kind` that carries a `command_id`, so that removing `kind` cannot hide a
//! command. Records of other kinds (findings, recommendations, dead letters in a mixed `--out`
//! file) are skipped and counted; blank lines are skipped. A line that is not a JSON object, or a
//! command whose signature does not check, is a failure, named on stderr by its line number and
//! `command_id`. So is a command with the same key twice in an object: `serde_json` reads the
//! last of them, another program may read the first, so its signature proves nothing about what
//! that program acts on (`cinch authorize` refuses such records too).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use crate::output::sign::Verifier;

/// Arguments of `cinch verify`.
#[derive(Clone, Debug, clap::Args)]
pub struct VerifyArgs {
    /// The signer's public key (SPKI PEM), e.g. `cinch-signing.pub` from `cinch keygen`.
    #[arg(long)]
    pub public_key: PathBuf,
    /// JSON lines to check (optionally gzip), or `-` for stdin; default stdin.
    #[arg(long)]
    pub input: Option<PathBuf>,
}

/// What one line held.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Nothing but whitespace.
    Blank,
    /// A command with a valid signature.
    Verified,
    /// A record of another kind.
    Skipped,
    /// Not a JSON object, or a command whose signature does not check.
    Failed {
        /// The record's `command_id`, when it has one.
        command_id: Option<String>,
        /// Why.
        reason: String,
    },
}

/// Counts over an input.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Commands whose signature checks.
    pub verified: u64,
    /// Lines that are not JSON objects, and commands whose signature does not check.
    pub failed: u64,
    /// Records of other kinds.
    pub skipped: u64,
}

/// Checks every command of the input; exit 0 when none failed, 1 otherwise.
pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let verifier = crate::drive::files::verifier(&args.public_key)?;
    let path = args.input.filter(|p| p.as_os_str() != "-");
    let name = path
        .as_deref()
        .map_or_else(|| "stdin".to_owned(), |p| p.display().to_string());
    let reader = open(path.as_deref()).with_context(|| format!("cannot open input {name}"))?;
    let tally = check_lines(reader, &verifier, |line, command_id, reason| {
        eprintln!(
            "line {line}: command_id {}: {reason}",
            command_id.unwrap_or("?")
        );
    })
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

/// Checks every line of `reader`, calling `fail(line, command_id, reason)` for each failure.
pub fn check_lines(
    mut reader: impl BufRead,
    verifier: &Verifier,
    mut fail: impl FnMut(u64, Option<&str>, &str),
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
        match check_line(bytes, verifier) {
            Outcome::Blank => {}
            Outcome::Verified => tally.verified += 1,
            Outcome::Skipped => tally.skipped += 1,
            Outcome::Failed { command_id, reason } => {
                tally.failed += 1;
                fail(line, command_id.as_deref(), &reason);
            }
        }
    }
    Ok(tally)
}

fn check_line(bytes: &[u8], verifier: &Verifier) -> Outcome {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Outcome::Blank;
    }
    let record: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            return Outcome::Failed {
                command_id: None,
                reason: format!("not JSON: {e}"),
            };
        }
    };
    let Some(object) = record.as_object() else {
        return Outcome::Failed {
            command_id: None,
            reason: "not a JSON object".to_owned(),
        };
    };
    let is_command = match object.get("kind") {
        Some(Value::String(kind)) => kind == "command",
        _ => object.contains_key("command_id"),
    };
    if !is_command {
        return Outcome::Skipped;
    }
    if let Err(e) = crate::authorize::strict::parse(bytes) {
        return Outcome::Failed {
            command_id: object
                .get("command_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            reason: format!("{e}: a record two programs could read differently proves nothing"),
        };
    }
    match verifier.verify(&record) {
        Ok(()) => Outcome::Verified,
        Err(e) => Outcome::Failed {
            command_id: object
                .get("command_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            reason: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::output::sign::Signer;

    fn signed_line(signer: &Signer, id: &str) -> String {
        let mut record = json!({"kind": "command", "command_id": id, "agent_id": "a"});
        record["signature"] = serde_json::to_value(signer.sign(&record)).unwrap();
        record.to_string()
    }

    #[test]
    fn counts_and_names_failures() {
        let signer = crate::drive::files::fresh_signer();
        let good = signed_line(&signer, "c1");
        let bad = signed_line(&signer, "c2").replace("\"a\"", "\"b\"");
        let unkinded = {
            let mut v: Value = serde_json::from_str(&signed_line(&signer, "c3")).unwrap();
            v.as_object_mut().unwrap().remove("kind");
            v.to_string()
        };
        let input = format!(
            "{good}\r\n\n{{\"kind\":\"finding\",\"finding_id\":\"f\"}}\n{bad}\nnot json\n[1]\n{unkinded}"
        );
        let mut failures = Vec::new();
        let tally = check_lines(input.as_bytes(), &signer.verifier(), |l, id, r| {
            failures.push((l, id.map(str::to_owned), r.to_owned()))
        })
        .unwrap();
        assert_eq!(
            tally,
            Tally {
                verified: 1,
                failed: 4,
                skipped: 1
            }
        );
        let lines: Vec<_> = failures.iter().map(|(l, id, _)| (*l, id.clone())).collect();
        assert_eq!(
            lines,
            [
                (4, Some("c2".to_owned())),
                (5, None),
                (6, None),
                (7, Some("c3".to_owned()))
            ]
        );
        assert!(failures[0].2.contains("invalid signature"));
        assert!(failures[1].2.starts_with("not JSON"));
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
