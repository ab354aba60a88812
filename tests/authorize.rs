//! `cinch authorize` end to end: `cinch replay` writes signed, enforced commands for the shipped
//! fleet (whose support bot is attacked), and the decision point, a real process on an ephemeral
//! loopback port, answers over HTTP as a tool gateway would see it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

const AT: &str = "2026-01-10T20:00:00Z";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(rel: &str) -> PathBuf {
    root().join(rel)
}

fn cinch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cinch"))
}

/// Runs `cinch replay` over the shipped fleet with commands enforced (`dry_run = false`) and
/// signed with the fixture key; returns the `--out` lines.
fn replay_enforced(dir: &Path) -> Vec<String> {
    let config = dir.join("enforce.toml");
    std::fs::write(&config, "[commands]\ndry_run = false\n").unwrap();
    let out = dir.join("out.jsonl");
    let status = cinch()
        .args(["replay", "--input"])
        .arg(fixture("fixtures/replay/fleet.jsonl"))
        .arg("--entitlements")
        .arg(fixture("fixtures/replay/entitlements.json"))
        .arg("--signing-key")
        .arg(fixture("fixtures/keys/cinch-signing.key"))
        .arg("--config")
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .arg("--audit")
        .arg(dir.join("replay-audit.jsonl"))
        .arg("--dead-letter")
        .arg(dir.join("dead.jsonl"))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "replay failed: {status}");
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn commands_of(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["kind"] == "command")
        .collect()
}

/// `record` with its members changed by `change` and signed again with the fixture key.
fn resigned(record: &Value, change: impl FnOnce(&mut Value)) -> String {
    let signer = cinch::drive::files::signer(&fixture("fixtures/keys/cinch-signing.key")).unwrap();
    let mut v = record.clone();
    v.as_object_mut().unwrap().remove("signature");
    change(&mut v);
    v["signature"] = serde_json::to_value(signer.sign(&v)).unwrap();
    v.to_string()
}

/// A running `cinch authorize`.
struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Server {
    fn start(commands: &Path, extra: &[&str]) -> Server {
        let mut child = cinch()
            .args(["authorize", "--commands"])
            .arg(commands)
            .arg("--public-key")
            .arg(fixture("fixtures/keys/cinch-signing.pub"))
            .arg("--entitlements")
            .arg(fixture("fixtures/replay/entitlements.json"))
            .args(["--listen", "127.0.0.1:0", "--at", AT])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        loop {
            let line = match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => line,
                Err(e) => {
                    // Not left running: it never said where it listens.
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("no `listening` line ({e}); stderr: {seen:#?}");
                }
            };
            seen.push(line.clone());
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
                return Server {
                    child,
                    addr,
                    stderr: rx,
                    seen,
                };
            }
        }
    }

    fn startup(&self) -> String {
        self.seen.join("\n")
    }

    /// SIGTERM, then everything it printed on stderr.
    fn stop(mut self) -> String {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let code = self.child.wait().unwrap();
        assert!(code.success(), "authorize exited with {code}");
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }

    fn post(&self, body: &str) -> (u16, Value) {
        let (status, text) = http(self.addr, "POST", "/v1/authorize", body.as_bytes());
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text}"));
        (status, value)
    }

    fn decide(&self, request: Value) -> Value {
        let (status, answer) = self.post(&request.to_string());
        assert_eq!(status, 200, "{answer}");
        answer
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request; returns the status and the body.
fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // A server may answer (413) before reading the whole of a large body and close.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response: {raw:?}"));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        },
    )
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

fn request(principal: &str, action: &str, resource: &str, context: Value) -> Value {
    json!({"principal": principal, "action": action, "resource": resource, "context": context})
}

fn audit_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn enforce_denies_the_contained_agent_and_allows_a_benign_one() {
    let tmp = tempfile::tempdir().unwrap();
    let lines = replay_enforced(tmp.path());
    let commands = commands_of(&lines);
    assert!(!commands.is_empty(), "the attacked fleet draws no command");
    assert!(commands.iter().all(|c| c["dry_run"] == false));
    let cmd = commands
        .iter()
        .find(|c| c["agent_id"] == "support-bot-001")
        .expect("a command contains the attacked support bot");
    assert_eq!(cmd["action"], "suspend_agent", "{cmd}");
    let cmd_id = cmd["command_id"].as_str().unwrap();
    let finding_id = cmd["finding_ids"][0].as_str().unwrap();
    let original = lines
        .iter()
        .find(|l| l.contains(cmd_id) && l.contains("\"kind\":\"command\""))
        .unwrap()
        .clone();

    // The replay's output, then bad records of every kind.
    let tampered = original.replacen(
        "\"target\":\"support-bot-001\"",
        "\"target\":\"support-bot-002\"",
        1,
    );
    assert_eq!(tampered.len(), original.len(), "one byte changed");
    let expired = resigned(cmd, |v| {
        v["command_id"] = json!("cmd-00000000000000e1");
        v["agent_id"] = json!("code-agent-001");
        v["target"] = json!("code-agent-001");
        v["expires_at"] = json!("2026-01-10T19:59:59.000Z");
    });
    let dry_revoke = resigned(cmd, |v| {
        v["command_id"] = json!("cmd-00000000000000d1");
        v["agent_id"] = json!("analyst-sales-01");
        v["action"] = json!("revoke_grant");
        v["target"] = json!("mail-outbound");
        v["dry_run"] = json!(true);
        v["rollback"] = json!({"action": "restore_grant"});
    });
    let duplicate_key = original.replacen("{", "{\"dry_run\":true,", 1);
    let mut all = lines.clone();
    all.extend([
        tampered,
        original.clone(),
        expired,
        dry_revoke,
        duplicate_key,
        r#"{"command_id":"cmd-00000000000000f1","agent_id":"support-bot-001"}"#.to_owned(),
    ]);
    let commands_file = tmp.path().join("commands.jsonl");
    std::fs::write(&commands_file, all.join("\n") + "\n").unwrap();
    let others = lines.len() - commands.len();

    let audit = tmp.path().join("audit.jsonl");
    let export = tmp.path().join("export");
    let server = Server::start(
        &commands_file,
        &[
            "--mode",
            "enforce",
            "--audit",
            audit.to_str().unwrap(),
            "--export",
            export.to_str().unwrap(),
        ],
    );
    let startup = server.startup();
    let applied = commands.len() + 1;
    assert!(
        startup.contains(&format!(
            "{applied} commands applied (1 dry run, 0 requiring approval), 5 rejected (1 duplicate_key, 1 missing_kind, 1 tampered, 1 expired, 1 replayed), {others} other records ignored"
        )),
        "{startup}"
    );

    // The attacked agent's usual call, named by its suspension, is denied, with the command
    // and finding that caused it.
    let usual = request(
        "support-bot-001",
        "tickets:Read",
        "tickets://support/T-3525154",
        json!({"session_id": "s-274dc2c592c4050f"}),
    );
    let answer = server.decide(usual.clone());
    assert_eq!(answer["decision"], "deny", "{answer}");
    assert_eq!(answer["enforced"], true);
    assert_eq!(answer["would_be"], "deny");
    assert_eq!(answer["reasons"][0]["command_id"], cmd_id, "{answer}");
    assert_eq!(answer["reasons"][0]["finding_id"], finding_id, "{answer}");
    assert!(
        answer["reasons"][0]["why"]
            .as_str()
            .unwrap()
            .contains("agent support-bot-001 is suspended"),
        "{answer}"
    );

    // The same call before the command was issued, and after it lapsed, is allowed by its grant.
    for time in ["2026-01-09T12:00:00Z", "2026-01-12T00:00:00Z"] {
        let mut past = usual.clone();
        past["context"]["time"] = json!(time);
        let answer = server.decide(past);
        assert_eq!(answer["decision"], "allow", "{time}: {answer}");
        assert_eq!(
            answer["reasons"][0]["policy_id"],
            "grant:support-bot-001:tickets-rw"
        );
    }

    // A benign agent's usual call is allowed; so is the agent whose command had expired.
    let benign = server.decide(request(
        "analyst-sales-01",
        "db:Select",
        "postgres://marketing/spend",
        json!({}),
    ));
    assert_eq!(benign["decision"], "allow", "{benign}");
    assert_eq!(benign["reasons"][0]["command_id"], Value::Null);
    let ci = server.decide(request(
        "code-agent-001",
        "artifact:Get",
        "artifact://org/x",
        json!({}),
    ));
    assert_eq!(ci["decision"], "allow", "{ci}");
    // Beyond its grants, a benign agent is denied.
    let beyond = server.decide(request(
        "analyst-sales-01",
        "db:Drop",
        "postgres://sales/orders",
        json!({}),
    ));
    assert_eq!(beyond["decision"], "deny", "{beyond}");
    assert!(
        beyond["reasons"][0]["why"]
            .as_str()
            .unwrap()
            .contains("no grant")
    );

    // A dry-run command is never enforced, only reported.
    let mail = server.decide(request(
        "analyst-sales-01",
        "mail:Send",
        "mailto:ceo@corp.example",
        json!({}),
    ));
    assert_eq!(mail["decision"], "allow", "{mail}");
    assert_eq!(mail["dry_run"]["would_be"], "deny", "{mail}");
    assert_eq!(
        mail["dry_run"]["reasons"][0]["command_id"],
        "cmd-00000000000000d1"
    );

    // Bad requests: 400 with a reason; an oversize body: 413.
    for (body, want) in [
        ("not json", "not JSON"),
        (
            r#"{"principal": 5, "action": "a", "resource": "r"}"#,
            "principal must be a string",
        ),
        (
            r#"{"action": "a", "resource": "r"}"#,
            "principal is missing",
        ),
        (
            r#"{"principal": "a", "action": "a", "resource": "r", "context": {"time": "soon"}}"#,
            "RFC 3339",
        ),
    ] {
        let (status, answer) = server.post(body);
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains(want), "{answer}");
    }
    let huge = format!(
        r#"{{"principal": "a", "action": "a", "resource": "{}"}}"#,
        "r".repeat(70 * 1024)
    );
    let (status, _) = http(server.addr, "POST", "/v1/authorize", huge.as_bytes());
    assert_eq!(status, 413);
    assert_eq!(http(server.addr, "GET", "/healthz", b"").0, 200);
    assert_eq!(http(server.addr, "GET", "/nope", b"").0, 404);

    // The policy set, served and exported.
    let (status, cedar) = http(server.addr, "GET", "/v1/policies", b"");
    assert_eq!(status, 200);
    assert!(
        cedar.contains(&format!("@command_id(\"{cmd_id}\")")),
        "{cedar}"
    );
    assert!(cedar.contains(&format!("@finding_id(\"{finding_id}\")")));
    assert!(cedar.contains("principal == Agent::\"support-bot-001\""));
    assert!(cedar.contains("permit ("));
    assert!(cedar.contains("// dry run: logged, never enforced\n// @id(\"cmd-00000000000000d1\")"));
    assert!(
        !cedar.contains("cmd-00000000000000e1"),
        "an expired command is not a policy"
    );
    assert_eq!(
        std::fs::read_to_string(export.join("policies.cedar")).unwrap(),
        cedar
    );
    let listed: Value =
        serde_json::from_str(&std::fs::read_to_string(export.join("policies.json")).unwrap())
            .unwrap();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&cmd_id));
    assert!(ids.contains(&"grant:analyst-sales-01:db-read"));
    assert!(
        !ids.contains(&"cmd-00000000000000d1"),
        "dry runs are not exported for enforcement"
    );

    let stderr = server.stop();
    assert!(
        stderr.contains(
            "7 decisions (would be: 5 allow, 2 deny, 0 requires_approval), 5 bad requests"
        ),
        "{stderr}"
    );

    // Every decision and every command taken in is an audit record.
    let records = audit_lines(&audit);
    let decisions: Vec<&Value> = records
        .iter()
        .filter(|r| r["event"] == "decision")
        .collect();
    assert_eq!(decisions.len(), 7, "{records:#?}");
    assert!(decisions.iter().all(|d| d["kind"] == "authorization"));
    let denied = decisions
        .iter()
        .find(|d| d["principal"] == "support-bot-001" && d["decision"] == "deny")
        .unwrap();
    assert_eq!(denied["reasons"][0]["command_id"], cmd_id);
    assert_eq!(denied["session_id"], "s-274dc2c592c4050f");
    let mut rejected: Vec<&str> = records
        .iter()
        .filter(|r| r["event"] == "command_rejected")
        .map(|r| r["reason_code"].as_str().unwrap())
        .collect();
    rejected.sort_unstable();
    assert_eq!(
        rejected,
        [
            "duplicate_key",
            "expired",
            "missing_kind",
            "replayed",
            "tampered"
        ]
    );
    let applied_ids: Vec<&str> = records
        .iter()
        .filter(|r| r["event"] == "command_applied")
        .map(|r| r["command_id"].as_str().unwrap())
        .collect();
    assert!(applied_ids.contains(&cmd_id));
    assert_eq!(applied_ids.len(), applied);
}

#[test]
fn log_only_allows_but_reports_the_would_be_deny() {
    let tmp = tempfile::tempdir().unwrap();
    let lines = replay_enforced(tmp.path());
    let commands_file = tmp.path().join("out.jsonl");
    let cmd_id = commands_of(&lines)
        .iter()
        .find(|c| c["agent_id"] == "support-bot-001")
        .map(|c| c["command_id"].as_str().unwrap().to_owned())
        .unwrap();
    let audit = tmp.path().join("audit.jsonl");
    // log_only is the default mode.
    let server = Server::start(&commands_file, &["--audit", audit.to_str().unwrap()]);
    assert!(
        server.startup().contains("(mode log_only)"),
        "{}",
        server.startup()
    );
    let answer = server.decide(request(
        "support-bot-001",
        "kb:Search",
        "kb://support-articles",
        json!({}),
    ));
    assert_eq!(answer["decision"], "allow", "{answer}");
    assert_eq!(answer["enforced"], false);
    assert_eq!(answer["mode"], "log_only");
    assert_eq!(answer["would_be"], "deny");
    assert_eq!(answer["reasons"][0]["command_id"], cmd_id.as_str());
    server.stop();
    let records = audit_lines(&audit);
    let d = records.iter().find(|r| r["event"] == "decision").unwrap();
    assert_eq!(
        (d["decision"].as_str(), d["would_be"].as_str()),
        (Some("allow"), Some("deny"))
    );

    // Offline, over a file of requests: the audit records are the answers.
    let requests = tmp.path().join("requests.jsonl");
    std::fs::write(
        &requests,
        [
            request("support-bot-001", "kb:Search", "kb://x", json!({})).to_string(),
            "{\"principal\": 1}".to_owned(),
            request(
                "support-bot-001",
                "kb:Search",
                "kb://x",
                json!({"time": "2026-01-12T00:00:00Z"}),
            )
            .to_string(),
        ]
        .join("\n"),
    )
    .unwrap();
    let out = cinch()
        .args(["authorize", "--mode", "enforce", "--commands"])
        .arg(&commands_file)
        .arg("--public-key")
        .arg(fixture("fixtures/keys/cinch-signing.pub"))
        .arg("--entitlements")
        .arg(fixture("fixtures/replay/entitlements.json"))
        .args(["--at", AT, "--requests"])
        .arg(&requests)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let decisions: Vec<&str> = records
        .iter()
        .filter(|r| r["event"] == "decision" || r["event"] == "bad_request")
        .map(|r| r["decision"].as_str().unwrap_or("bad_request"))
        .collect();
    assert_eq!(decisions, ["deny", "bad_request", "allow"]);
}

#[test]
fn an_unreadable_key_or_commands_file_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = cinch()
        .args(["authorize", "--commands"])
        .arg(tmp.path().join("missing.jsonl"))
        .arg("--public-key")
        .arg(fixture("fixtures/keys/cinch-signing.pub"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read commands"));
    let out = cinch()
        .args(["authorize", "--commands"])
        .arg(fixture("fixtures/replay/fleet.jsonl"))
        .arg("--public-key")
        .arg(fixture("fixtures/keys/cinch-signing.key"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn follow_applies_commands_appended_while_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let lines = replay_enforced(tmp.path());
    let (commands, others): (Vec<&String>, Vec<&String>) = lines
        .iter()
        .partition(|l| l.contains("\"kind\":\"command\""));
    let file = tmp.path().join("live.jsonl");
    std::fs::write(
        &file,
        others.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let server = Server::start(&file, &["--mode", "enforce", "--follow"]);
    assert!(
        server.startup().contains("0 commands applied"),
        "{}",
        server.startup()
    );
    let call = request(
        "support-bot-001",
        "kb:Search",
        "kb://support-articles",
        json!({}),
    );
    assert_eq!(server.decide(call.clone())["decision"], "allow");

    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    // Half a line is not read until its newline arrives.
    let (head, tail) = commands[0].split_at(40);
    f.write_all(head.as_bytes()).unwrap();
    f.flush().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(server.decide(call.clone())["decision"], "allow");
    f.write_all(format!("{tail}\n").as_bytes()).unwrap();
    f.flush().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let answer = server.decide(call.clone());
        if answer["decision"] == "deny" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the appended command was never applied: {answer}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let stderr = server.stop();
    assert!(stderr.contains("1 commands applied"), "{stderr}");
}
