//! The policy decision point behind `cinch authorize`: the enforcement side of cinch's signed
//! commands.
//!
//! Commands are taken in ([`commands`]): strict JSON, their kind, their Ed25519 signature, their
//! members, their expiry and their id (a replayed id is refused). Each agent's effective policy
//! ([`policy`]) is a set of Cedar policies: a permit per grant of its entitlements and a forbid
//! per command applied to it, each annotated with the command and finding that caused it
//! ([`text`]). A request ([`request`]) is decided against the agent's policies at a "now" that
//! the request may give; the answer and its audit record are built here. No I/O: the HTTP server
//! and the files are the drivers' (`drive::authorize`).

pub(crate) mod commands;
pub mod policy;
pub(crate) mod request;
pub mod strict;
pub(crate) mod text;

use serde::Serialize;

pub use commands::{AppliedCommand, CommandIntake, Intake, IntakeCounts, RejectCode, Rejection};
pub use policy::{Decision, Outcome, PolicyCounts, PolicyStore, Query, Reason, UnknownAgents};
pub use request::AuthzRequest;

use crate::output::time::rfc3339_ms;

/// Whether decisions are enforced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Always answer allow, and say (and audit) what would have been decided.
    #[default]
    #[value(name = "log_only")]
    LogOnly,
    /// Answer what the policies decide.
    Enforce,
}

impl Mode {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::LogOnly => "log_only",
            Mode::Enforce => "enforce",
        }
    }
}

/// What dry-run commands would have changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DryRunNote {
    /// The decision with dry-run commands enforced.
    pub would_be: Decision,
    /// Why.
    pub reasons: Vec<Reason>,
}

/// The answer to `POST /v1/authorize`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Answer {
    /// The decision to act on: in `log_only` mode always `allow`.
    pub decision: Decision,
    /// Why the policies decide `would_be`.
    pub reasons: Vec<Reason>,
    /// Whether `decision` is the policies' (`enforce`) or a pass (`log_only`).
    pub enforced: bool,
    /// What the policies decide.
    pub would_be: Decision,
    /// The mode.
    pub mode: Mode,
    /// Present when dry-run commands apply to the agent and would have decided otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<DryRunNote>,
    /// The time the commands' validity was judged at (RFC 3339).
    pub now: String,
    /// The id of this decision's audit record.
    pub decision_id: String,
}

/// Decides `req` in `mode`. `default_now_ms` stands for "now" unless the request gives
/// `context.time`; `seq` and `wall_ms` only make the decision id unique.
pub fn answer(
    store: &PolicyStore,
    mode: Mode,
    req: &AuthzRequest,
    default_now_ms: i64,
    (seq, wall_ms): (u64, i64),
) -> (Answer, Vec<String>) {
    let now_ms = req.time_ms.unwrap_or(default_now_ms);
    let outcome = store.decide(&Query {
        principal: &req.principal,
        action: &req.action,
        resource: &req.resource,
        session_id: req.session_id.as_deref(),
        grant: req.grant.as_deref(),
        now_ms,
    });
    let would_be = outcome.enforced.decision;
    let decision = match mode {
        Mode::Enforce => would_be,
        Mode::LogOnly => Decision::Allow,
    };
    let key = format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{now_ms}\u{1f}{wall_ms}\u{1f}{seq}",
        req.principal, req.action, req.resource
    );
    let h = xxhash_rust::xxh3::xxh3_64(key.as_bytes());
    (
        Answer {
            decision,
            reasons: outcome.enforced.reasons,
            enforced: mode == Mode::Enforce,
            would_be,
            mode,
            dry_run: outcome.dry_run.map(|v| DryRunNote {
                would_be: v.decision,
                reasons: v.reasons,
            }),
            now: rfc3339_ms(now_ms),
            decision_id: format!("dec-{h:016x}"),
        },
        outcome.errors,
    )
}

/// The audit record of one decision: the request, the answer and when (wall clock).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct DecisionAudit<'a> {
    /// Always `authorization`.
    pub kind: &'static str,
    /// Always `decision`.
    pub event: &'static str,
    /// When it was decided (wall clock, RFC 3339).
    pub time: String,
    /// The agent.
    pub principal: &'a str,
    /// The action.
    pub action: &'a str,
    /// The resource.
    pub resource: &'a str,
    /// The session, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<&'a str>,
    /// The grant, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<&'a str>,
    /// The answer.
    #[serde(flatten)]
    pub answer: &'a Answer,
    /// Errors met evaluating policies.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub errors: &'a [String],
}

impl<'a> DecisionAudit<'a> {
    /// The record of `answer` to `req`, decided at `wall_ms`.
    pub fn new(
        req: &'a AuthzRequest,
        answer: &'a Answer,
        errors: &'a [String],
        wall_ms: i64,
    ) -> DecisionAudit<'a> {
        DecisionAudit {
            kind: "authorization",
            event: "decision",
            time: rfc3339_ms(wall_ms),
            principal: &req.principal,
            action: &req.action,
            resource: &req.resource,
            session_id: req.session_id.as_deref(),
            grant: req.grant.as_deref(),
            answer,
            errors,
        }
    }
}

/// The audit record of a command taken in: applied or rejected.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct CommandAudit {
    /// Always `authorization`.
    pub kind: &'static str,
    /// `command_applied` or `command_rejected`.
    pub event: &'static str,
    /// When (wall clock, RFC 3339).
    pub time: String,
    /// Where the record came from.
    pub source: String,
    /// Its line.
    pub line: u64,
    /// The command id, when the record has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    /// The agent, when the record names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// For an applied command: its action, target, findings, validity and flags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<serde_json::Value>,
    /// For a rejected record: why, as a code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<RejectCode>,
    /// One sentence.
    pub message: String,
}

impl CommandAudit {
    /// The record of an applied command.
    pub fn applied(c: &AppliedCommand, source: &str, wall_ms: i64) -> CommandAudit {
        let enforced = if c.dry_run {
            "dry run: logged, never enforced"
        } else if c.requires_approval {
            "enforced as requires_approval"
        } else {
            "enforced as deny"
        };
        CommandAudit {
            kind: "authorization",
            event: "command_applied",
            time: rfc3339_ms(wall_ms),
            source: source.to_owned(),
            line: c.line,
            command_id: Some(c.command_id.clone()),
            agent_id: Some(c.agent_id.clone()),
            command: Some(serde_json::json!({
                "action": c.action.as_str(),
                "target": c.target,
                "finding_ids": c.finding_ids,
                "issued_at": rfc3339_ms(c.issued_at_ms),
                "expires_at": rfc3339_ms(c.expires_at_ms),
                "requires_approval": c.requires_approval,
                "dry_run": c.dry_run,
            })),
            reason_code: None,
            message: format!(
                "{} of {} applied ({enforced}): {}",
                c.action.as_str(),
                c.target,
                policy::command_why(c)
            ),
        }
    }

    /// The record of a rejected line.
    pub fn rejected(r: &Rejection, line: u64, source: &str, wall_ms: i64) -> CommandAudit {
        CommandAudit {
            kind: "authorization",
            event: "command_rejected",
            time: rfc3339_ms(wall_ms),
            source: source.to_owned(),
            line,
            command_id: r.command_id.clone(),
            agent_id: r.agent_id.clone(),
            command: None,
            reason_code: Some(r.code),
            message: format!("rejected ({}): {}", r.code, r.detail),
        }
    }
}

/// One line summing up what was taken in.
pub(crate) fn intake_summary(c: &IntakeCounts) -> String {
    let mut s = format!(
        "{} commands applied ({} dry run, {} requiring approval), {} rejected",
        c.applied,
        c.dry_run,
        c.requires_approval,
        c.rejected_total()
    );
    if c.rejected_total() > 0 {
        let parts: Vec<String> = c
            .rejected
            .iter()
            .map(|(code, n)| format!("{n} {code}"))
            .collect();
        s.push_str(&format!(" ({})", parts.join(", ")));
    }
    s.push_str(&format!(", {} other records ignored", c.ignored));
    s
}
