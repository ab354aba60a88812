//! `cinch replay --partitions N`: the agents spread over N engines as a Kafka producer keyed by
//! agent id spreads them, with fleet knowledge merged at every fleet tick.
//!
//! With the fleet merged, every event's score and every finding and command are those of one
//! engine holding the whole fleet, however many partitions there are; with `--split-fleet`, each
//! engine knows only its own partition's agents, and a destination reaching agents in several
//! partitions is no longer seen as a campaign.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use cinch::engine::partition_of;
use serde_json::{Value, json};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/replay")
}

/// What a replay wrote: `--out` records, score lines and dead letters.
struct Run {
    records: Vec<Value>,
    scores: Vec<String>,
    dead: String,
    summary: String,
}

fn replay(input: &Path, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (out, scores, dead) = (
        dir.path().join("out.jsonl"),
        dir.path().join("scores.jsonl"),
        dir.path().join("dead.jsonl"),
    );
    let output = assert_cmd::cargo::cargo_bin_cmd!("cinch")
        .arg("replay")
        .arg("--quiet")
        .arg("--input")
        .arg(input)
        .arg("--entitlements")
        .arg(fixture_dir().join("entitlements.json"))
        .arg("--signing-key")
        .arg(fixture_dir().join("../keys/cinch-signing.key"))
        .arg("--out")
        .arg(&out)
        .arg("--scores-out")
        .arg(&scores)
        .arg("--dead-letter")
        .arg(&dead)
        .args(extra)
        .output()
        .unwrap();
    let summary = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{summary}");
    Run {
        records: std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
        scores: std::fs::read_to_string(&scores)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect(),
        dead: std::fs::read_to_string(&dead).unwrap(),
        summary,
    }
}

fn of_kind(records: &[Value], kind: &str) -> BTreeSet<String> {
    records
        .iter()
        .filter(|r| r["kind"] == kind)
        .map(|r| r.to_string())
        .collect()
}

#[test]
fn merged_partitions_score_every_event_as_one_engine_does() {
    let input = fixture_dir().join("fleet.jsonl");
    let one = replay(&input, &[]);
    assert_eq!(
        replay(&input, &["--partitions", "1"]).scores,
        one.scores,
        "one partition is the plain replay"
    );
    for n in ["3", "7"] {
        let run = replay(&input, &["--partitions", n]);
        // Score lines come in input order, so they match line for line.
        assert_eq!(run.scores, one.scores, "{n} partitions: scores");
        for kind in ["finding", "command"] {
            let want = of_kind(&one.records, kind);
            assert!(!want.is_empty(), "the fixture has a {kind}");
            assert_eq!(of_kind(&run.records, kind), want, "{n} partitions: {kind}s");
        }
        assert!(run.summary.contains("events processed"), "{}", run.summary);
    }
}

const ATTACKER: &str = "DE89370400440532013000";
const LANDLORD: &str = "GB33BUKB20201555555555";
const DAY_MS: i64 = 86_400_000;
const START_MS: i64 = 1_767_571_200_000;

/// Three agents, each in a partition of its own out of `partitions`, pay their landlord for 25
/// days; then each, two hours apart, reads a note and pays the account it names.
fn campaign(dir: &Path) -> (PathBuf, usize, [&'static str; 3]) {
    let agents = ["billing-alpha", "billing-beta", "billing-gamma"];
    let partitions = (3..64)
        .find(|&n| {
            let p: BTreeSet<usize> = agents
                .iter()
                .map(|a| partition_of(a.as_bytes(), n))
                .collect();
            p.len() == 3
        })
        .unwrap();
    let call =
        |id: String, t: i64, agent: &str, tool: &str, args: Value, result: &str, req: &str| {
            json!({
                "event_id": id, "time": t, "agent_id": agent, "agent_kind": "ai_agent",
                "action": tool, "resource": format!("tool:{tool}"), "session_id": id,
                "arguments": args, "result": result, "request": req,
            })
        };
    let mut evs = Vec::new();
    for day in 0..25 {
        for (a, agent) in agents.iter().enumerate() {
            let t = START_MS + day * DAY_MS + a as i64 * 60_000;
            let req = format!("pay the rent to {LANDLORD}");
            let args = json!({"recipient": LANDLORD, "amount": 1200});
            evs.push(call(
                format!("{agent}-{day}.1"),
                t,
                agent,
                "get_balance",
                json!({}),
                "5000",
                &req,
            ));
            evs.push(call(
                format!("{agent}-{day}.2"),
                t + 5_000,
                agent,
                "send_money",
                args,
                "ok",
                &req,
            ));
        }
    }
    for (a, agent) in agents.iter().enumerate() {
        let t = START_MS + 26 * DAY_MS + a as i64 * 2 * 3_600_000;
        let req = "read the latest note from the landlord and settle it";
        let note = format!("Note from the landlord: the new account for the rent is {ATTACKER}.");
        let args = json!({"recipient": ATTACKER, "amount": 1200});
        evs.push(call(
            format!("{agent}-note.1"),
            t,
            agent,
            "read_file",
            json!({"path": "note.txt"}),
            &note,
            req,
        ));
        evs.push(call(
            format!("{agent}-note.2"),
            t + 5_000,
            agent,
            "send_money",
            args,
            "ok",
            req,
        ));
    }
    let path = dir.join("events.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    for e in evs {
        writeln!(f, "{e}").unwrap();
    }
    (path, partitions, agents)
}

fn reasons_of(run: &Run, event_id: &str) -> String {
    run.scores
        .iter()
        .find(|l| l.contains(&format!("\"event_id\":\"{event_id}\"")))
        .unwrap()
        .clone()
}

#[test]
fn a_destination_reaching_agents_in_several_partitions_is_a_campaign_in_each() {
    let dir = tempfile::tempdir().unwrap();
    let (input, partitions, agents) = campaign(dir.path());
    let n = partitions.to_string();
    let merged = replay(&input, &["--partitions", &n]);
    let split = replay(&input, &["--partitions", &n, "--split-fleet"]);
    let campaign = "other agents first reached it within the last 7 days";
    // The first agent to pay the attacker is alone; the later ones are a campaign, though each
    // is in a partition of its own.
    for agent in &agents[1..] {
        let line = reasons_of(&merged, &format!("{agent}-note.2"));
        assert!(line.contains(campaign), "{agent}, merged fleet: {line}");
        let line = reasons_of(&split, &format!("{agent}-note.2"));
        assert!(!line.contains(campaign), "{agent}, split fleet: {line}");
    }
    for agent in agents {
        assert!(
            merged
                .records
                .iter()
                .any(|r| r["kind"] == "finding" && r["agent_id"] == agent),
            "{agent} has a finding"
        );
    }
    assert_eq!(
        merged.scores,
        replay(&input, &[]).scores,
        "as one engine scores"
    );
}

/// The summary without its timing line.
fn counts(summary: &str) -> String {
    summary
        .lines()
        .filter(|l| !l.ends_with(" records/s"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn threads_write_what_as_many_partitions_on_one_thread_write() {
    let input = fixture_dir().join("fleet.jsonl");
    for (threads, partitions) in [("2", "2"), ("3", "7")] {
        for split in [&[][..], &["--split-fleet"][..]] {
            let mut alone = vec!["--partitions", partitions];
            alone.extend_from_slice(split);
            let mut args = alone.clone();
            args.extend_from_slice(&["--threads", threads]);
            let one = replay(&input, &alone);
            let many = replay(&input, &args);
            assert!(one.records.iter().any(|r| r["kind"] == "command"));
            assert!(!one.dead.is_empty(), "the fixture has bad records");
            assert_eq!(many.scores, one.scores, "{args:?}: scores");
            assert_eq!(many.records, one.records, "{args:?}: records, in order");
            assert_eq!(many.dead, one.dead, "{args:?}: dead letters");
            assert_eq!(
                counts(&many.summary),
                counts(&one.summary),
                "{args:?}: summary"
            );
        }
    }
}

#[test]
fn partitions_are_counted_from_one() {
    let out = assert_cmd::cargo::cargo_bin_cmd!("cinch")
        .args(["replay", "--input", "-", "--partitions", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--partitions"), "{err}");
}

const HOUR_MS: i64 = 3_600_000;
const MIN_MS: i64 = 60_000;

/// Ten support agents on a weekday routine for 16 days. On day 14 `support-0` takes up a new
/// tool at 09:37 (a finding held for a roll-out, due at 15:56); the routine ends at 15:26, one
/// agent works again at 16:30, and two others take the tool up at 18:00 and 18:40, after the
/// finding came due; the next day starts at 09:00. Returns the input, a partition count that
/// puts the two followers and the agent working at 16:30 outside `support-0`'s partition, and
/// the tool.
fn late_followers(dir: &Path) -> (PathBuf, usize, &'static str) {
    const TOOL: &str = "kb:SemanticSearch";
    let agents: Vec<String> = (0..10).map(|a| format!("support-{a}")).collect();
    let (adopter, first, second) = ("support-0", "support-1", "support-2");
    let partitions = (2..64)
        .find(|&n| {
            let p = |a: &str| partition_of(a.as_bytes(), n);
            p(adopter) != p(first) && p(adopter) != p(second)
        })
        .unwrap();
    let ev = |id: String, t: i64, agent: &str, action: &str, resource: String, session: String| {
        json!({
            "event_id": id, "time": t, "agent_id": agent, "action": action,
            "resource": resource, "session_id": session, "intent": "answer customer ticket",
            "bytes": 1500 + (t / 1000) % 900,
        })
    };
    let mut evs = Vec::new();
    for d in (0..16).filter(|d| d % 7 < 5) {
        for agent in &agents {
            for s in 0..12 {
                let t = START_MS + d * DAY_MS + 9 * HOUR_MS + s * 35 * MIN_MS;
                let cust = 1000 + d * 100 + s;
                let sess = format!("{agent}-s{d}-{s}");
                for (i, (action, resource)) in [
                    ("kb:Search", "kb://articles".to_string()),
                    ("crm:GetCustomer", format!("crm://customers/{cust}")),
                    ("tickets:Read", format!("tickets://queue/{}", cust * 7)),
                    ("tickets:Update", format!("tickets://queue/{}", cust * 7)),
                ]
                .into_iter()
                .enumerate()
                {
                    let id = format!("{sess}-{i}");
                    evs.push(ev(
                        id,
                        t + i as i64 * 20_000,
                        agent,
                        action,
                        resource,
                        sess.clone(),
                    ));
                }
            }
        }
    }
    let day14 = START_MS + 14 * DAY_MS;
    let mut take_up = |agent: &str, at: i64| {
        for s in 0..3 {
            let sess = format!("{agent}-new-{s}");
            let t = at + s * 2 * MIN_MS;
            evs.push(ev(
                sess.clone(),
                t,
                agent,
                TOOL,
                "kb://articles".into(),
                sess,
            ));
        }
    };
    take_up(adopter, day14 + 9 * HOUR_MS + 37 * MIN_MS);
    take_up(first, day14 + 18 * HOUR_MS);
    take_up(second, day14 + 18 * HOUR_MS + 40 * MIN_MS);
    let t = day14 + 16 * HOUR_MS + 30 * MIN_MS;
    evs.push(ev(
        "late-1".into(),
        t,
        first,
        "kb:Search",
        "kb://articles".into(),
        "late".into(),
    ));
    evs.sort_by_key(|e| e["time"].as_i64().unwrap());
    let path = dir.join("events.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    for e in evs {
        writeln!(f, "{e}").unwrap();
    }
    (path, partitions, TOOL)
}

#[test]
fn a_held_finding_is_judged_as_of_its_due_time_whatever_the_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let (input, partitions, tool) = late_followers(dir.path());
    let one = replay(&input, &[]);
    // One engine judges the held finding at 16:30, before anyone followed: it is emitted.
    let adopted = |run: &Run| {
        run.records
            .iter()
            .filter(|r| {
                r["kind"] == "finding"
                    && r["agent_id"] == "support-0"
                    && r["actions"].as_array().unwrap().iter().any(|a| a == tool)
            })
            .count()
    };
    assert_eq!(adopted(&one), 1, "{:#?}", of_kind(&one.records, "finding"));
    // The adopter's partition sees its next event the day after, when two peers have
    // followed; the finding is still judged against the fleet as it stood at its due time.
    let n = partitions.to_string();
    let run = replay(&input, &["--partitions", &n]);
    assert_eq!(adopted(&run), 1, "{n} partitions");
    assert_eq!(run.scores, one.scores, "{n} partitions: scores");
    assert_eq!(
        of_kind(&run.records, "finding"),
        of_kind(&one.records, "finding"),
        "{n} partitions: findings"
    );
    // Threads holding a share of the partitions each judge it alike.
    let threads = replay(&input, &["--partitions", &n, "--threads", "2"]);
    assert_eq!(
        of_kind(&threads.records, "finding"),
        of_kind(&one.records, "finding"),
        "{n} partitions on 2 threads: findings"
    );
}
