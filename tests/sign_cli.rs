//! `cinch keygen` and `cinch verify` through the binary, with commands signed by the library
//! using the key file that `keygen` wrote.

use std::fs;
use std::io::Write as _;
use std::path::Path;

use cinch::output::sign::Signer;
use predicates::prelude::*;
use serde_json::{Value, json};

fn cinch() -> assert_cmd::Command {
    assert_cmd::cargo::cargo_bin_cmd!("cinch")
}

fn keygen(dir: &Path) -> assert_cmd::assert::Assert {
    cinch().arg("keygen").arg("--out").arg(dir).assert()
}

/// A command record as the contract describes it, signed with `signer`.
fn signed_command(signer: &Signer, id: &str) -> Value {
    let mut record = json!({
        "kind": "command",
        "command_id": id,
        "agent_id": "agent-7",
        "action": "suspend_agent",
        "target": "agent-7",
        "reason": "bulk s3:GetObject on 4,812 objects, 40x the agent's daily volume; peers never do this",
        "finding_ids": ["f-9b1c"],
        "issued_at": "2026-03-01T12:00:00Z",
        "expires_at": "2026-03-01T13:00:00Z",
        "requires_approval": false,
        "dry_run": true
    });
    record["signature"] = serde_json::to_value(signer.sign(&record)).unwrap();
    record
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(path, text).unwrap();
}

#[test]
fn keygen_writes_both_files_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys/nested");
    let out = keygen(&dir).success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();

    let private = dir.join("cinch-signing.key");
    let public = dir.join("cinch-signing.pub");
    let signer = cinch::drive::files::signer(&private).unwrap();
    let verifier = cinch::drive::files::verifier(&public).unwrap();
    assert_eq!(signer.key_id(), verifier.key_id());
    assert!(stdout.contains(signer.key_id()), "{stdout}");
    assert!(stdout.contains(&private.display().to_string()), "{stdout}");
    assert!(stdout.contains(&public.display().to_string()), "{stdout}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(&private).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "private key mode {mode:o}");
    }

    // A second run refuses, names the file and leaves the keys alone.
    keygen(&dir).code(2).stderr(
        predicate::str::contains("cinch-signing.key").and(predicate::str::contains("--force")),
    );
    assert_eq!(
        cinch::drive::files::signer(&private).unwrap().key_id(),
        signer.key_id()
    );
    // Only the public key left over: still refused, naming that file.
    fs::remove_file(&private).unwrap();
    keygen(&dir)
        .code(2)
        .stderr(predicate::str::contains("cinch-signing.pub"));

    // --force replaces the pair.
    cinch()
        .arg("keygen")
        .arg("--out")
        .arg(&dir)
        .arg("--force")
        .assert()
        .success();
    let replaced = cinch::drive::files::signer(&private).unwrap();
    assert_ne!(replaced.key_id(), signer.key_id());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(&private).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "private key mode {mode:o}");
    }
}

#[test]
fn signed_commands_verify_and_tampered_ones_fail() {
    let tmp = tempfile::tempdir().unwrap();
    keygen(tmp.path()).success();
    let signer = cinch::drive::files::signer(&tmp.path().join("cinch-signing.key")).unwrap();
    let public = tmp.path().join("cinch-signing.pub");

    let good = tmp.path().join("good.jsonl");
    write_lines(
        &good,
        &[
            signed_command(&signer, "cmd-1").to_string(),
            signed_command(&signer, "cmd-2").to_string(),
        ],
    );
    cinch()
        .arg("verify")
        .arg("--public-key")
        .arg(&public)
        .arg("--input")
        .arg(&good)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "verified 2 commands, 0 failed, 0 other records skipped",
        ));

    // On stdin, written again with the keys in reverse order and spaces, as another JSON
    // serialiser might: the signature covers the content, not the bytes.
    let record = signed_command(&signer, "cmd-3");
    let members: Vec<String> = record
        .as_object()
        .unwrap()
        .iter()
        .rev()
        .map(|(k, v)| format!("{}: {v}", json!(k)))
        .collect();
    let rewritten = format!("{{ {} }}\n", members.join(", "));
    assert!(
        rewritten.find("\"target\"") < rewritten.find("\"agent_id\""),
        "{rewritten}"
    );
    cinch()
        .args(["verify", "--input", "-", "--public-key"])
        .arg(&public)
        .write_stdin(rewritten)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("verified 1 commands"));

    let mut tampered = signed_command(&signer, "cmd-5");
    tampered["target"] = json!("agent-8");
    let bad = tmp.path().join("bad.jsonl");
    write_lines(
        &bad,
        &[
            signed_command(&signer, "cmd-4").to_string(),
            tampered.to_string(),
        ],
    );
    cinch()
        .arg("verify")
        .arg("--public-key")
        .arg(&public)
        .arg("--input")
        .arg(&bad)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "line 2: command_id cmd-5: invalid signature",
        ))
        .stdout(predicate::str::contains("verified 1 commands, 1 failed"));

    // Another key pair: every command fails with a key_id mismatch naming both ids.
    let other = tempfile::tempdir().unwrap();
    keygen(other.path()).success();
    let other_id = cinch::drive::files::signer(&other.path().join("cinch-signing.key"))
        .unwrap()
        .key_id()
        .to_owned();
    cinch()
        .arg("verify")
        .arg("--public-key")
        .arg(other.path().join("cinch-signing.pub"))
        .arg("--input")
        .arg(&good)
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("line 1: command_id cmd-1:")
                .and(predicate::str::contains(signer.key_id()))
                .and(predicate::str::contains(other_id)),
        );
}

#[test]
fn mixed_output_skips_other_kinds_and_reads_gzip() {
    let tmp = tempfile::tempdir().unwrap();
    keygen(tmp.path()).success();
    let signer = cinch::drive::files::signer(&tmp.path().join("cinch-signing.key")).unwrap();
    let public = tmp.path().join("cinch-signing.pub");
    let lines = [
        json!({"kind": "finding", "finding_id": "f-9b1c", "agent_id": "agent-7", "score": 0.93})
            .to_string(),
        String::new(),
        signed_command(&signer, "cmd-1").to_string(),
        json!({"kind": "recommendation", "recommendation_id": "r-1"}).to_string(),
    ];
    let mixed = tmp.path().join("mixed.jsonl");
    write_lines(&mixed, &lines);
    cinch()
        .arg("verify")
        .arg("--public-key")
        .arg(&public)
        .arg("--input")
        .arg(&mixed)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "verified 1 commands, 0 failed, 2 other records skipped",
        ));

    let gz = tmp.path().join("mixed.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(
        fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(fs::read(&mixed).unwrap().as_slice()).unwrap();
    enc.finish().unwrap();
    cinch()
        .arg("verify")
        .arg("--public-key")
        .arg(&public)
        .arg("--input")
        .arg(&gz)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("verified 1 commands"));

    // Findings only: nothing to verify is a success, and the summary says so.
    write_lines(&mixed, &lines[..1]);
    cinch()
        .arg("verify")
        .arg("--public-key")
        .arg(&public)
        .arg("--input")
        .arg(&mixed)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("no command records"));

    // A line that is not JSON fails.
    fs::write(&mixed, format!("{}\n{{oops\n", lines[2])).unwrap();
    cinch()
        .arg("verify")
        .arg("--public-key")
        .arg(&public)
        .arg("--input")
        .arg(&mixed)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("line 2: command_id ?: not JSON"));
}

#[test]
fn unreadable_key_or_input_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    keygen(tmp.path()).success();
    let input = tmp.path().join("in.jsonl");
    fs::write(&input, "").unwrap();
    // The private key where the public one is expected.
    cinch()
        .arg("verify")
        .arg("--public-key")
        .arg(tmp.path().join("cinch-signing.key"))
        .arg("--input")
        .arg(&input)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("expected an Ed25519 public key"));
    cinch()
        .arg("verify")
        .arg("--public-key")
        .arg(tmp.path().join("missing.pub"))
        .arg("--input")
        .arg(&input)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.pub"));
    cinch()
        .arg("verify")
        .arg("--public-key")
        .arg(tmp.path().join("cinch-signing.pub"))
        .arg("--input")
        .arg(tmp.path().join("missing.jsonl"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.jsonl"));
}
