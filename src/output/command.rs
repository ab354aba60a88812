//! The command record: a signed containment order for SOAR tooling.

use serde::Serialize;

use crate::grants::GrantSpec;
use crate::output::sign::Signature;
use crate::vocab::Severity;

/// What the command orders.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Withdraw the grant the anomalous events used.
    RevokeGrant,
    /// End the agent's session (its task or run).
    RevokeSession,
    /// Suspend the agent.
    SuspendAgent,
    /// Deny only the new resource pattern the finding reached; leave the rest.
    Narrow,
    /// The agent's outward and privileged actions (anything but reading and listing) need a
    /// person's approval.
    RequireApproval,
    /// The agent may only read and list.
    Quarantine,
}

impl Action {
    /// Every action, from least to most disruptive.
    pub const LADDER: [Action; 6] = [
        Action::Narrow,
        Action::RequireApproval,
        Action::Quarantine,
        Action::RevokeSession,
        Action::RevokeGrant,
        Action::SuspendAgent,
    ];

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::RevokeGrant => "revoke_grant",
            Action::RevokeSession => "revoke_session",
            Action::SuspendAgent => "suspend_agent",
            Action::Narrow => "narrow",
            Action::RequireApproval => "require_approval",
            Action::Quarantine => "quarantine",
        }
    }

    /// The action named `s`.
    pub fn parse(s: &str) -> Option<Action> {
        Action::LADDER.into_iter().find(|a| a.as_str() == s)
    }

    /// Its step on the response ladder: 1 (`narrow`) to 4 (`suspend_agent`). The three
    /// revocations of one step differ in what they revoke, not in how disruptive they are:
    /// `revoke_session` and `revoke_grant` share step 3.
    pub fn level(self) -> u8 {
        match self {
            Action::Narrow => 1,
            Action::RequireApproval => 2,
            Action::Quarantine | Action::RevokeSession | Action::RevokeGrant => 3,
            Action::SuspendAgent => 4,
        }
    }

    /// The action that undoes it (`rollback.action`).
    pub fn rollback(self) -> &'static str {
        match self {
            Action::RevokeGrant => "restore_grant",
            Action::RevokeSession => "none",
            Action::SuspendAgent => "resume_agent",
            Action::Narrow => "lift_narrowing",
            Action::RequireApproval => "lift_approval",
            Action::Quarantine => "lift_quarantine",
        }
    }
}

/// How to undo the command.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rollback {
    /// The action that undoes it: `restore_grant`, `none` (a revoked session stays ended) or
    /// `resume_agent`.
    pub action: &'static str,
    /// For `revoke_grant`: the grant as it was, when the agent's entitlements are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantSpec>,
}

/// A containment order (CONTRACT.md section 3).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Command {
    /// Always `command`.
    pub kind: &'static str,
    /// Stable id: the same decision gives the same id.
    pub command_id: String,
    /// The agent.
    pub agent_id: String,
    /// What to do.
    pub action: Action,
    /// What to do it to: a grant id, a session id, a resource pattern (`narrow`), or the agent
    /// id.
    pub target: String,
    /// Severity of the finding that caused it.
    pub severity: Severity,
    /// One sentence: why.
    pub reason: String,
    /// The findings that caused it.
    pub finding_ids: Vec<String>,
    /// The event whose arrival completed the decision.
    pub trigger_event_id: String,
    /// Event time of the decision (RFC 3339).
    pub issued_at: String,
    /// When the measure lapses (RFC 3339).
    pub expires_at: String,
    /// Whether a person must approve it before it is carried out.
    pub requires_approval: bool,
    /// Whether it is only to be recorded, not carried out.
    pub dry_run: bool,
    /// How to undo it.
    pub rollback: Rollback,
    /// Ed25519 signature over the canonical encoding of the rest of the record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

impl Command {
    /// Signs the record (over everything but `signature`). A record that cannot be encoded
    /// is left unsigned and the error returned: a signature covers the record's own encoding
    /// or nothing.
    pub fn sign(&mut self, signer: &crate::output::sign::Signer) -> Result<(), serde_json::Error> {
        self.signature = None;
        let v = serde_json::to_value(&*self)?;
        self.signature = Some(signer.sign(&v));
        Ok(())
    }
}
