//! Taking in command records: each line is checked (strict JSON, its `kind`, its signature, its
//! members, its expiry, its id not seen before) and either applied, ignored (another kind of
//! record) or rejected with a reason. Nothing is skipped silently.

use std::fmt;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::time::parse_rfc3339_ms;
use crate::grants::GrantSpec;
use crate::output::command::Action;
use crate::output::sign::{Verifier, VerifyError};

/// Record kinds that cinch writes beside commands and that are ignored (and counted).
pub(crate) const OTHER_KINDS: [&str; 4] = ["finding", "recommendation", "audit", "dead_letter"];

/// A verified command, ready to become a policy.
#[derive(Clone, Debug, PartialEq)]
pub struct AppliedCommand {
    /// The command's id (the policy's id).
    pub command_id: String,
    /// The agent it contains.
    pub agent_id: String,
    /// What it orders.
    pub action: Action,
    /// What it targets: the agent, a session or a grant.
    pub target: String,
    /// The findings that caused it.
    pub finding_ids: Vec<String>,
    /// Its reason.
    pub reason: String,
    /// Severity of its finding, when given.
    pub severity: Option<String>,
    /// In force from (its `issued_at`), epoch milliseconds.
    pub issued_at_ms: i64,
    /// In force until (its `expires_at`), epoch milliseconds.
    pub expires_at_ms: i64,
    /// Whether a person must approve what it targets.
    pub requires_approval: bool,
    /// Whether it is only to be logged.
    pub dry_run: bool,
    /// For `revoke_grant`: the grant as it was (`rollback.grant`), when the command carries it.
    pub grant: Option<GrantSpec>,
    /// The line of the input it came from.
    pub line: u64,
}

/// Why a record was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// Not JSON, or not a JSON object.
    NotJson,
    /// An object with the same key twice, at any depth.
    DuplicateKey,
    /// No `kind` member.
    MissingKind,
    /// A `kind` that is not a string, or not a kind cinch writes.
    WrongKind,
    /// A command without a signature.
    Unsigned,
    /// A signature that does not match the record: the record was changed after signing.
    Tampered,
    /// Signed with another key, or a malformed signature member.
    BadSignature,
    /// A signed command whose members are missing or mistyped.
    Malformed,
    /// A command whose `action` cinch cannot enforce.
    UnsupportedAction,
    /// A command whose `expires_at` has passed.
    Expired,
    /// A command whose `command_id` was applied before.
    Replayed,
}

impl RejectCode {
    /// Every code, in order.
    pub const ALL: [RejectCode; 11] = [
        RejectCode::NotJson,
        RejectCode::DuplicateKey,
        RejectCode::MissingKind,
        RejectCode::WrongKind,
        RejectCode::Unsigned,
        RejectCode::Tampered,
        RejectCode::BadSignature,
        RejectCode::Malformed,
        RejectCode::UnsupportedAction,
        RejectCode::Expired,
        RejectCode::Replayed,
    ];

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::NotJson => "not_json",
            RejectCode::DuplicateKey => "duplicate_key",
            RejectCode::MissingKind => "missing_kind",
            RejectCode::WrongKind => "wrong_kind",
            RejectCode::Unsigned => "unsigned",
            RejectCode::Tampered => "tampered",
            RejectCode::BadSignature => "bad_signature",
            RejectCode::Malformed => "malformed",
            RejectCode::UnsupportedAction => "unsupported_action",
            RejectCode::Expired => "expired",
            RejectCode::Replayed => "replayed",
        }
    }
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Why, as a code.
    pub code: RejectCode,
    /// Why, in words.
    pub detail: String,
    /// The record's `command_id`, when it has one.
    pub command_id: Option<String>,
    /// The record's `agent_id`, when it has one.
    pub agent_id: Option<String>,
}

/// What one line held.
#[derive(Clone, Debug, PartialEq)]
pub enum Intake {
    /// Nothing but whitespace.
    Blank,
    /// A record of another kind, ignored.
    Ignored {
        /// Its kind.
        kind: String,
    },
    /// A command, verified and applied.
    Applied(Box<AppliedCommand>),
    /// A record refused.
    Rejected(Rejection),
}

/// Counts over an input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IntakeCounts {
    /// Commands applied.
    pub applied: u64,
    /// Of which dry runs (logged, never enforced).
    pub dry_run: u64,
    /// Of which need an approval.
    pub requires_approval: u64,
    /// Records of other kinds ignored.
    pub ignored: u64,
    /// Records rejected, by reason.
    pub rejected: std::collections::BTreeMap<RejectCode, u64>,
}

impl IntakeCounts {
    /// Rejected records over all reasons.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// Rejections of one reason.
    pub fn rejected(&self, code: RejectCode) -> u64 {
        self.rejected.get(&code).copied().unwrap_or(0)
    }
}

/// The members of a command: every member the command schema requires must be present with its
/// type (`configs/schemas/command.schema.json`); a command missing one is malformed even when its
/// signature checks.
#[derive(Deserialize)]
struct Wire {
    command_id: String,
    agent_id: String,
    action: String,
    target: String,
    reason: String,
    finding_ids: Vec<String>,
    #[allow(
        dead_code,
        reason = "required by the schema; checked present, not used"
    )]
    trigger_event_id: String,
    issued_at: String,
    expires_at: String,
    requires_approval: bool,
    dry_run: bool,
    severity: String,
    rollback: WireRollback,
}

#[derive(Deserialize)]
struct WireRollback {
    #[allow(
        dead_code,
        reason = "required by the schema; checked present, not used"
    )]
    action: String,
    #[serde(default)]
    grant: Option<GrantSpec>,
}

/// Checks command records against one public key and remembers the ids applied.
#[derive(Debug)]
pub struct CommandIntake {
    verifier: Verifier,
    applied: FxHashMap<String, u64>,
    /// Ids seen before this intake began (`cinch verify --seen`), with where they were seen.
    seen: FxHashMap<String, String>,
    counts: IntakeCounts,
}

impl CommandIntake {
    /// An intake that trusts commands signed by `verifier`'s key.
    pub fn new(verifier: Verifier) -> CommandIntake {
        CommandIntake {
            verifier,
            applied: FxHashMap::default(),
            seen: FxHashMap::default(),
            counts: IntakeCounts::default(),
        }
    }

    /// Marks `command_id` as seen before (at `place`, e.g. a file and line), so that a command
    /// carrying it is rejected as replayed.
    pub fn remember_seen(&mut self, command_id: impl Into<String>, place: impl Into<String>) {
        self.seen.insert(command_id.into(), place.into());
    }

    /// The counts so far.
    pub fn counts(&self) -> &IntakeCounts {
        &self.counts
    }

    /// Takes one line (`line` is its number, from 1), judging expiry at `now_ms`.
    pub fn take(&mut self, line: u64, bytes: &[u8], now_ms: i64) -> Intake {
        self.take_judged_at(line, bytes, Some(now_ms))
    }

    /// Takes one line of an archive: a command is judged as of its own `issued_at` (it must
    /// still be signed, complete and new; it is expired only when it expires as it is issued).
    pub fn take_as_issued(&mut self, line: u64, bytes: &[u8]) -> Intake {
        self.take_judged_at(line, bytes, None)
    }

    fn take_judged_at(&mut self, line: u64, bytes: &[u8], now_ms: Option<i64>) -> Intake {
        let intake = self.judge(line, bytes, now_ms);
        match &intake {
            Intake::Blank => {}
            Intake::Ignored { .. } => self.counts.ignored += 1,
            Intake::Applied(c) => {
                self.counts.applied += 1;
                self.counts.dry_run += u64::from(c.dry_run);
                self.counts.requires_approval += u64::from(c.requires_approval);
                self.applied.insert(c.command_id.clone(), line);
            }
            Intake::Rejected(r) => *self.counts.rejected.entry(r.code).or_default() += 1,
        }
        intake
    }

    fn judge(&self, line: u64, bytes: &[u8], now_ms: Option<i64>) -> Intake {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Intake::Blank;
        }
        let reject = |code, detail: String, record: Option<&Value>| {
            let member = |k: &str| {
                record
                    .and_then(|r| r.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            Intake::Rejected(Rejection {
                code,
                detail,
                command_id: member("command_id"),
                agent_id: member("agent_id"),
            })
        };
        let record = match super::strict::parse(bytes) {
            Ok(v) => v,
            Err(e) if e.to_string().starts_with("duplicate key") => {
                return reject(
                    RejectCode::DuplicateKey,
                    format!("{e}: a record two programs could read differently is refused"),
                    // Read leniently only to name the command in the rejection; the rejection
                    // stands either way.
                    serde_json::from_slice::<Value>(bytes).ok().as_ref(),
                );
            }
            Err(e) => return reject(RejectCode::NotJson, format!("not JSON: {e}"), None),
        };
        if !record.is_object() {
            return reject(RejectCode::NotJson, "not a JSON object".to_owned(), None);
        }
        let r = Some(&record);
        match record.get("kind") {
            None => {
                return reject(
                    RejectCode::MissingKind,
                    "no `kind` member: a command must say `\"kind\": \"command\"`".to_owned(),
                    r,
                );
            }
            Some(Value::String(k)) if k == "command" => {}
            Some(Value::String(k)) if OTHER_KINDS.contains(&k.as_str()) => {
                // Only commands are signed: a signed record of another kind is a command whose
                // `kind` was changed so that a reader would pass over it.
                if record.get("signature").is_some() {
                    return reject(
                        RejectCode::WrongKind,
                        format!("kind \"{k}\" on a signed record: only commands carry a signature"),
                        r,
                    );
                }
                return Intake::Ignored { kind: k.clone() };
            }
            Some(other) => {
                return reject(RejectCode::WrongKind, format!("unknown kind {other}"), r);
            }
        }
        if let Err(e) = self.verifier.verify(&record) {
            let code = match e {
                VerifyError::MissingSignature => RejectCode::Unsigned,
                VerifyError::Invalid => RejectCode::Tampered,
                _ => RejectCode::BadSignature,
            };
            return reject(code, e.to_string(), r);
        }
        let wire = match Wire::deserialize(&record) {
            Ok(w) => w,
            Err(e) => return reject(RejectCode::Malformed, e.to_string(), r),
        };
        let Some(action) = Action::parse(&wire.action) else {
            let known: Vec<&str> = Action::LADDER.iter().map(|a| a.as_str()).collect();
            return reject(
                RejectCode::UnsupportedAction,
                format!(
                    "action {:?} is not enforced here ({} are)",
                    wire.action,
                    known.join(", ")
                ),
                r,
            );
        };
        let mut problems = Vec::new();
        if wire.command_id.trim().is_empty() {
            problems.push("command_id is empty".to_owned());
        }
        if wire.agent_id.trim().is_empty() {
            problems.push("agent_id is empty".to_owned());
        }
        if wire.target.trim().is_empty() {
            problems.push("target is empty".to_owned());
        }
        if wire.finding_ids.is_empty() {
            problems.push("finding_ids is empty".to_owned());
        }
        if matches!(
            action,
            Action::SuspendAgent | Action::RequireApproval | Action::Quarantine
        ) && wire.target != wire.agent_id
        {
            problems.push(format!(
                "{} targets {:?}, not its agent {:?}",
                action.as_str(),
                wire.target,
                wire.agent_id
            ));
        }
        let issued = parse_rfc3339_ms(&wire.issued_at);
        let expires = parse_rfc3339_ms(&wire.expires_at);
        if issued.is_none() {
            problems.push(format!("issued_at {:?} is not RFC 3339", wire.issued_at));
        }
        if expires.is_none() {
            problems.push(format!("expires_at {:?} is not RFC 3339", wire.expires_at));
        }
        let (Some(issued_at_ms), Some(expires_at_ms), true) =
            (issued, expires, problems.is_empty())
        else {
            return reject(RejectCode::Malformed, problems.join("; "), r);
        };
        // A command in force for no time at all is none cinch issues (every duration is at
        // least a second): it would be applied and lapse at the same instant.
        if expires_at_ms <= issued_at_ms {
            return reject(
                RejectCode::Malformed,
                format!(
                    "expires_at {} is not after issued_at {}",
                    wire.expires_at, wire.issued_at
                ),
                r,
            );
        }
        let now_ms = now_ms.unwrap_or(issued_at_ms);
        if expires_at_ms <= now_ms {
            return reject(
                RejectCode::Expired,
                format!(
                    "expired at {}, before now ({})",
                    wire.expires_at,
                    crate::output::time::rfc3339_ms(now_ms)
                ),
                r,
            );
        }
        if let Some(place) = self.seen.get(&wire.command_id) {
            return reject(
                RejectCode::Replayed,
                format!("command_id {} was seen before, at {place}", wire.command_id),
                r,
            );
        }
        if let Some(first) = self.applied.get(&wire.command_id) {
            return reject(
                RejectCode::Replayed,
                format!(
                    "command_id {} was already applied from line {first}",
                    wire.command_id
                ),
                r,
            );
        }
        Intake::Applied(Box::new(AppliedCommand {
            command_id: wire.command_id,
            agent_id: wire.agent_id,
            action,
            target: wire.target,
            finding_ids: wire.finding_ids,
            reason: wire.reason,
            severity: Some(wire.severity),
            issued_at_ms,
            expires_at_ms,
            requires_approval: wire.requires_approval,
            dry_run: wire.dry_run,
            grant: wire.rollback.grant,
            line,
        }))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::output::sign::Signer;

    const NOW: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    fn command(id: &str) -> Value {
        json!({
            "kind": "command", "command_id": id, "agent_id": "a-1", "action": "revoke_grant",
            "target": "g-1", "severity": "high", "reason": "r", "finding_ids": ["fnd-1"],
            "trigger_event_id": "e-1", "issued_at": "2025-12-31T23:00:00.000Z",
            "expires_at": "2026-01-01T01:00:00.000Z", "requires_approval": false, "dry_run": false,
            "rollback": {"action": "restore_grant", "grant": {"actions": ["s3:*"], "resources": ["s3://b/*"]}}
        })
    }

    fn signed(signer: &Signer, mut v: Value) -> String {
        v.as_object_mut().unwrap().remove("signature");
        v["signature"] = serde_json::to_value(signer.sign(&v)).unwrap();
        v.to_string()
    }

    fn code(i: Intake) -> RejectCode {
        match i {
            Intake::Rejected(r) => r.code,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn a_command_in_force_for_no_time_is_malformed() {
        let signer = Signer::from_seed(&[1; 32]);
        let mut intake = CommandIntake::new(signer.verifier());
        let mut empty = command("cmd-empty");
        empty["issued_at"] = json!("2026-01-01T01:00:00.000Z");
        assert_eq!(
            code(intake.take(1, signed(&signer, empty).as_bytes(), NOW)),
            RejectCode::Malformed
        );
    }

    #[test]
    fn applies_a_good_command_and_rejects_each_kind_of_bad_one() {
        let signer = Signer::from_seed(&[1; 32]);
        let mut intake = CommandIntake::new(signer.verifier());
        let good = signed(&signer, command("cmd-1"));
        match intake.take(1, good.as_bytes(), NOW) {
            Intake::Applied(c) => {
                assert_eq!(c.agent_id, "a-1");
                assert_eq!(c.action, Action::RevokeGrant);
                assert_eq!(c.grant.as_ref().unwrap().actions, ["s3:*"]);
                assert_eq!(c.line, 1);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            code(intake.take(2, good.as_bytes(), NOW)),
            RejectCode::Replayed
        );
        let tampered = good.replace("\"target\":\"g-1\"", "\"target\":\"g-2\"");
        assert_ne!(tampered, good);
        assert_eq!(
            code(intake.take(3, tampered.as_bytes(), NOW)),
            RejectCode::Tampered
        );
        let mut expired = command("cmd-2");
        expired["expires_at"] = json!("2025-12-31T23:30:00.000Z");
        assert_eq!(
            code(intake.take(4, signed(&signer, expired).as_bytes(), NOW)),
            RejectCode::Expired
        );
        assert_eq!(
            code(intake.take(5, command("cmd-3").to_string().as_bytes(), NOW)),
            RejectCode::Unsigned
        );
        let other = Signer::from_seed(&[2; 32]);
        assert_eq!(
            code(intake.take(6, signed(&other, command("cmd-4")).as_bytes(), NOW)),
            RejectCode::BadSignature
        );
        let dup = signed(&signer, command("cmd-5")).replacen('{', "{\"dry_run\":true,", 1);
        assert_eq!(
            code(intake.take(7, dup.as_bytes(), NOW)),
            RejectCode::DuplicateKey
        );
        let mut unkinded = command("cmd-6");
        unkinded.as_object_mut().unwrap().remove("kind");
        assert_eq!(
            code(intake.take(8, signed(&signer, unkinded).as_bytes(), NOW)),
            RejectCode::MissingKind
        );
        let mut wrong = command("cmd-7");
        wrong["kind"] = json!("comand");
        assert_eq!(
            code(intake.take(9, signed(&signer, wrong).as_bytes(), NOW)),
            RejectCode::WrongKind
        );
        let mut unknown = command("cmd-8");
        unknown["action"] = json!("delete_everything");
        assert_eq!(
            code(intake.take(10, signed(&signer, unknown).as_bytes(), NOW)),
            RejectCode::UnsupportedAction
        );
        let mut bad = command("cmd-9");
        bad["dry_run"] = json!("no");
        assert_eq!(
            code(intake.take(11, signed(&signer, bad).as_bytes(), NOW)),
            RejectCode::Malformed
        );
        assert_eq!(code(intake.take(12, b"not json", NOW)), RejectCode::NotJson);
        assert_eq!(code(intake.take(13, b"[1]", NOW)), RejectCode::NotJson);
        assert_eq!(intake.take(14, b"  \r\n", NOW), Intake::Blank);
        assert_eq!(
            intake.take(15, br#"{"kind":"finding","finding_id":"f"}"#, NOW),
            Intake::Ignored {
                kind: "finding".into()
            }
        );
        for (line, kind) in [(16, "finding"), (17, "recommendation"), (18, "dead_letter")] {
            let mut disguised = command("cmd-10");
            disguised["kind"] = json!(kind);
            assert_eq!(
                code(intake.take(line, signed(&signer, disguised).as_bytes(), NOW)),
                RejectCode::WrongKind,
                "a signed command disguised as a {kind}"
            );
        }
        let c = intake.counts();
        assert_eq!((c.applied, c.ignored, c.rejected_total()), (1, 1, 15));
        assert_eq!(c.rejected(RejectCode::NotJson), 2);
        assert_eq!(c.rejected(RejectCode::Tampered), 1);
    }

    #[test]
    fn a_rejected_id_can_still_be_applied_later() {
        let signer = Signer::from_seed(&[3; 32]);
        let mut intake = CommandIntake::new(signer.verifier());
        let good = signed(&signer, command("cmd-1"));
        let tampered = good.replace("\"a-1\"", "\"a-2\"");
        assert_eq!(
            code(intake.take(1, tampered.as_bytes(), NOW)),
            RejectCode::Tampered
        );
        assert!(matches!(
            intake.take(2, good.as_bytes(), NOW),
            Intake::Applied(_)
        ));
    }
}
