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

/// The time the commands below are verified at: inside their hour of validity.
const AT: &str = "2026-03-01T12:30:00Z";

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
        "severity": "critical",
        "reason": "bulk s3:GetObject on 4,812 objects, 40x the agent's daily volume; peers never do this",
        "finding_ids": ["f-9b1c"],
        "trigger_event_id": "e-77",
        "issued_at": "2026-03-01T12:00:00Z",
        "expires_at": "2026-03-01T13:00:00Z",
        "requires_approval": false,
        "dry_run": true,
        "rollback": {"action": "resume_agent"}
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
        .args(["verify", "--at", AT])
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
        .args(["verify", "--at", AT, "--input", "-", "--public-key"])
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
        .args(["verify", "--at", AT])
        .arg("--public-key")
        .arg(&public)
        .arg("--input")
        .arg(&bad)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "line 2: command_id cmd-5: tampered: invalid signature",
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
        .args(["verify", "--at", AT])
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
        .args(["verify", "--at", AT])
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
        .args(["verify", "--at", AT])
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
        .args(["verify", "--at", AT])
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
        .args(["verify", "--at", AT])
        .arg("--public-key")
        .arg(&public)
        .arg("--input")
        .arg(&mixed)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "line 2: command_id ?: not_json: not JSON",
        ));
}

#[test]
fn a_command_relabelled_as_another_kind_fails() {
    let tmp = tempfile::tempdir().unwrap();
    keygen(tmp.path()).success();
    let signer = cinch::drive::files::signer(&tmp.path().join("cinch-signing.key")).unwrap();
    let public = tmp.path().join("cinch-signing.pub");
    // A genuine command whose kind, target and action an attacker rewrote so that a verifier
    // that skips findings passes over it, and a consumer keyed on `target` acts on it.
    let mut lines = Vec::new();
    for kind in ["finding", "recommendation", "audit", "dead_letter"] {
        let mut forged = signed_command(&signer, &format!("cmd-{kind}"));
        forged["kind"] = json!(kind);
        forged["target"] = json!("ceo-agent");
        forged["action"] = json!("revoke_grant");
        lines.push(forged.to_string());
    }
    let input = tmp.path().join("relabelled.jsonl");
    write_lines(&input, &lines);
    cinch()
        .args(["verify", "--at", AT])
        .arg("--public-key")
        .arg(&public)
        .arg("--input")
        .arg(&input)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "verified 0 commands, 4 failed, 0 other records skipped",
        ))
        .stderr(
            predicate::str::contains("line 1: command_id cmd-finding: wrong_kind").and(
                predicate::str::contains("line 4: command_id cmd-dead_letter: wrong_kind"),
            ),
        );
}

#[test]
fn unreadable_key_or_input_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    keygen(tmp.path()).success();
    let input = tmp.path().join("in.jsonl");
    fs::write(&input, "").unwrap();
    // The private key where the public one is expected.
    cinch()
        .args(["verify", "--at", AT])
        .arg("--public-key")
        .arg(tmp.path().join("cinch-signing.key"))
        .arg("--input")
        .arg(&input)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("expected an Ed25519 public key"));
    cinch()
        .args(["verify", "--at", AT])
        .arg("--public-key")
        .arg(tmp.path().join("missing.pub"))
        .arg("--input")
        .arg(&input)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.pub"));
    cinch()
        .args(["verify", "--at", AT])
        .arg("--public-key")
        .arg(tmp.path().join("cinch-signing.pub"))
        .arg("--input")
        .arg(tmp.path().join("missing.jsonl"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.jsonl"));
}

#[test]
fn expired_replayed_and_incomplete_commands_fail() {
    let tmp = tempfile::tempdir().unwrap();
    keygen(tmp.path()).success();
    let signer = cinch::drive::files::signer(&tmp.path().join("cinch-signing.key")).unwrap();
    let public = tmp.path().join("cinch-signing.pub");
    let commands = tmp.path().join("commands.jsonl");
    write_lines(
        &commands,
        &[
            signed_command(&signer, "cmd-1").to_string(),
            signed_command(&signer, "cmd-2").to_string(),
        ],
    );
    // Valid at AT; both expired an hour later, and now (the default).
    for at in [None, Some("2026-03-01T13:00:00Z")] {
        let mut cmd = cinch();
        cmd.arg("verify");
        if let Some(at) = at {
            cmd.args(["--at", at]);
        }
        cmd.arg("--public-key")
            .arg(&public)
            .arg("--input")
            .arg(&commands)
            .assert()
            .code(1)
            .stderr(
                predicate::str::contains("line 1: command_id cmd-1: expired").and(
                    predicate::str::contains("line 2: command_id cmd-2: expired"),
                ),
            )
            .stdout(predicate::str::contains("verified 0 commands, 2 failed"));
    }
    // An archive: each command judged as of its own issue.
    cinch()
        .args(["verify", "--at", "issued", "--public-key"])
        .arg(&public)
        .arg("--input")
        .arg(&commands)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("verified 2 commands, 0 failed"));
    cinch()
        .args(["verify", "--at", "yesterday", "--public-key"])
        .arg(&public)
        .arg("--input")
        .arg(&commands)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--at \"yesterday\" is neither an RFC 3339 time",
        ));

    // Seen before (an earlier file), or twice in the input: replayed.
    let seen = tmp.path().join("seen.jsonl");
    write_lines(&seen, &[signed_command(&signer, "cmd-1").to_string()]);
    let twice = tmp.path().join("twice.jsonl");
    write_lines(
        &twice,
        &[
            signed_command(&signer, "cmd-1").to_string(),
            signed_command(&signer, "cmd-3").to_string(),
            signed_command(&signer, "cmd-3").to_string(),
        ],
    );
    cinch()
        .args(["verify", "--at", AT, "--public-key"])
        .arg(&public)
        .arg("--input")
        .arg(&twice)
        .arg("--seen")
        .arg(&seen)
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("line 1: command_id cmd-1: replayed")
                .and(predicate::str::contains(
                    "line 3: command_id cmd-3: replayed",
                ))
                .and(predicate::str::contains("line 2:").not()),
        )
        .stdout(predicate::str::contains("verified 1 commands, 2 failed"));

    // Signed without a member the contract requires, or with a member twice: refused even
    // though the signature checks.
    let mut incomplete = signed_command(&signer, "cmd-4");
    incomplete.as_object_mut().unwrap().remove("rollback");
    incomplete.as_object_mut().unwrap().remove("signature");
    incomplete["signature"] = serde_json::to_value(signer.sign(&incomplete)).unwrap();
    let duplicated =
        signed_command(&signer, "cmd-5")
            .to_string()
            .replacen('{', "{\"dry_run\":false,", 1);
    let mut unkinded = signed_command(&signer, "cmd-6");
    unkinded.as_object_mut().unwrap().remove("kind");
    unkinded.as_object_mut().unwrap().remove("signature");
    unkinded["signature"] = serde_json::to_value(signer.sign(&unkinded)).unwrap();
    let forged = tmp.path().join("forged.jsonl");
    write_lines(
        &forged,
        &[incomplete.to_string(), duplicated, unkinded.to_string()],
    );
    cinch()
        .args(["verify", "--at", AT, "--public-key"])
        .arg(&public)
        .arg("--input")
        .arg(&forged)
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains(
                "line 1: command_id cmd-4: malformed: missing field `rollback`",
            )
            .and(predicate::str::contains(
                "line 2: command_id cmd-5: duplicate_key",
            ))
            .and(predicate::str::contains(
                "line 3: command_id cmd-6: missing_kind",
            )),
        )
        .stdout(predicate::str::contains("verified 0 commands, 3 failed"));
}
