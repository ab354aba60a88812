//! Each agent's effective policy as Cedar policies, and the decisions they give.
//!
//! An agent's policy is the permits of its grants (from the entitlements) and the forbids of the
//! commands applied to it. A forbid carries `@effect("deny")` or, for a command that needs an
//! approval, `@effect("requires_approval")`; a dry-run command's forbid is held apart and only
//! tells what would have been decided. The policies are held per agent, so a decision evaluates
//! only the requesting agent's few policies however large the fleet.

use std::str::FromStr as _;
use std::sync::Arc;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, EntityId, EntityTypeName, EntityUid,
    Policy, PolicyId, PolicySet, Request, RestrictedExpression,
};
use rustc_hash::FxHashMap;
use serde::Serialize;

use super::commands::AppliedCommand;
use super::text::{self, Forbid, Scope};
use crate::grants::{Entitlements, GrantSpec};
use crate::output::command::Action;
use crate::output::time::rfc3339_ms;

/// What to decide for an agent without entitlements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownAgents {
    /// Deny them: no grant allows anything (the default).
    #[default]
    Deny,
    /// Allow them, except what commands forbid.
    Allow,
}

/// A decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Allowed.
    Allow,
    /// Denied.
    Deny,
    /// Allowed only once a person approves it.
    RequiresApproval,
}

impl Decision {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::RequiresApproval => "requires_approval",
        }
    }
}

/// Why: one policy that decided, with the command and finding behind it when there is one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// The command that caused the policy (`null` for a grant's permit or no permit at all).
    pub command_id: Option<String>,
    /// The finding that caused the command.
    pub finding_id: Option<String>,
    /// One sentence.
    pub why: String,
    /// The Cedar policy (`null` when nothing permitted the request).
    pub policy_id: Option<String>,
}

/// A request to decide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query<'a> {
    /// The agent.
    pub principal: &'a str,
    /// What it wants to do.
    pub action: &'a str,
    /// What to.
    pub resource: &'a str,
    /// Its session, when known.
    pub session_id: Option<&'a str>,
    /// The grant it means to use, when known.
    pub grant: Option<&'a str>,
    /// "Now", epoch milliseconds: commands are in force from issue to expiry.
    pub now_ms: i64,
}

/// A decision and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The decision.
    pub decision: Decision,
    /// The policies that decided it.
    pub reasons: Vec<Reason>,
}

/// The answer to a query: what the enforced policies decide and, when dry-run commands apply to
/// the agent and would change it, what they would have decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// What the enforced policies decide.
    pub enforced: Verdict,
    /// What the policies including dry-run commands would decide, when that differs.
    pub dry_run: Option<Verdict>,
    /// Errors met evaluating policies (a policy that errs is skipped, as Cedar does).
    pub errors: Vec<String>,
}

/// Why the policy set could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A generated policy did not parse (a bug: every string is escaped).
    #[error("policy {id} does not parse: {detail}")]
    Parse {
        /// The policy id.
        id: String,
        /// Cedar's message.
        detail: String,
    },
    /// Two policies with one id.
    #[error("cannot add policy {id}: {detail}")]
    Add {
        /// The policy id.
        id: String,
        /// Cedar's message.
        detail: String,
    },
}

/// One policy: its parsed form, its text and what it is.
#[derive(Clone, Debug)]
struct Entry {
    policy: Policy,
    text: String,
    /// A forbid that asks for approval rather than denying.
    approval: bool,
    /// A dry-run command's forbid.
    dry_run: bool,
    /// A forbid (a command's), not a permit.
    forbid: bool,
    /// What a decision that this policy determines gives as its reason (the policy's
    /// annotations, kept apart: Cedar parses an annotation's key on every look-up).
    reason: Reason,
}

/// A set evaluated as one: every policy, and the same without the approval forbids (to tell
/// "denied unless approved" from "denied").
#[derive(Clone, Debug)]
struct Layer {
    all: PolicySet,
    without_approval: Option<PolicySet>,
}

impl Layer {
    fn build(entries: &[&Entry]) -> Result<Layer, PolicyError> {
        let set = |keep: &dyn Fn(&Entry) -> bool| -> Result<PolicySet, PolicyError> {
            let mut s = PolicySet::new();
            for e in entries.iter().filter(|e| keep(e)) {
                s.add(e.policy.clone()).map_err(|err| PolicyError::Add {
                    id: e.policy.id().to_string(),
                    detail: err.to_string(),
                })?;
            }
            Ok(s)
        };
        let all = set(&|_| true)?;
        let without_approval = if entries.iter().any(|e| e.approval) {
            Some(set(&|e| !e.approval)?)
        } else {
            None
        };
        Ok(Layer {
            all,
            without_approval,
        })
    }
}

/// One agent's policies.
#[derive(Clone, Debug)]
struct AgentPolicies {
    /// Whether the agent has entitlements.
    known: bool,
    /// Its entries: permits first, then forbids in the order applied.
    entries: Vec<Entry>,
    /// The enforced policies (all but dry-run forbids).
    enforced: Layer,
    /// Every policy, dry-run forbids included, when there are any.
    shadow: Option<Layer>,
}

impl AgentPolicies {
    fn build(known: bool, entries: Vec<Entry>) -> Result<AgentPolicies, PolicyError> {
        let enforced: Vec<&Entry> = entries.iter().filter(|e| !e.dry_run).collect();
        let enforced = Layer::build(&enforced)?;
        let shadow = if entries.iter().any(|e| e.dry_run) {
            Some(Layer::build(&entries.iter().collect::<Vec<_>>())?)
        } else {
            None
        };
        Ok(AgentPolicies {
            known,
            entries,
            enforced,
            shadow,
        })
    }
}

/// Every agent's policies.
#[derive(Clone, Debug)]
pub struct PolicyStore {
    agents: FxHashMap<Box<str>, Arc<AgentPolicies>>,
    /// The policies of an agent with neither entitlements nor commands.
    unknown: Arc<AgentPolicies>,
    unknown_agents: UnknownAgents,
    /// The baseline of an agent without entitlements.
    unknown_baseline: Vec<Entry>,
    authorizer: Arc<Authorizer>,
    /// The entity types of principal, action and resource, parsed once.
    types: Arc<[EntityTypeName; 3]>,
}

fn parse(id: &str, text: String) -> Result<Policy, PolicyError> {
    Policy::parse(Some(PolicyId::new(id)), &text).map_err(|e| PolicyError::Parse {
        id: id.to_owned(),
        detail: format!("{e}: {text}"),
    })
}

fn permit_entry(agent: &str, grant: &str, spec: &GrantSpec) -> Result<Entry, PolicyError> {
    let id = text::permit_id(agent, grant);
    let text = text::permit(agent, grant, spec);
    Ok(Entry {
        policy: parse(&id, text.clone())?,
        text,
        approval: false,
        dry_run: false,
        forbid: false,
        reason: Reason {
            command_id: None,
            finding_id: None,
            why: text::permit_why(agent, grant, spec),
            policy_id: Some(id),
        },
    })
}

/// The sentence a command's forbid gives as its reason.
pub(crate) fn command_why(c: &AppliedCommand) -> String {
    let until = rfc3339_ms(c.expires_at_ms);
    let what = match c.action {
        Action::SuspendAgent => format!("agent {} is suspended", c.agent_id),
        Action::RevokeSession => format!("session {} of agent {} is revoked", c.target, c.agent_id),
        Action::RevokeGrant => format!("grant {} of agent {} is revoked", c.target, c.agent_id),
        Action::Narrow => format!(
            "resources {} are narrowed out of agent {}'s reach",
            c.target, c.agent_id
        ),
        Action::RequireApproval => format!(
            "agent {}'s actions other than reading and listing need a person's approval",
            c.agent_id
        ),
        Action::Quarantine => format!(
            "agent {} is quarantined: it may only read and list",
            c.agent_id
        ),
    };
    let approval = if c.requires_approval && c.action != Action::RequireApproval {
        " (pending a person's approval: each access needs one)"
    } else {
        ""
    };
    format!(
        "{what} until {until} by command {}{approval}: {}",
        c.command_id, c.reason
    )
}

impl PolicyStore {
    /// The policies of the entitlements, before any command.
    pub fn new(
        entitlements: Option<&Entitlements>,
        unknown_agents: UnknownAgents,
    ) -> Result<PolicyStore, PolicyError> {
        let unknown_baseline = match unknown_agents {
            UnknownAgents::Deny => Vec::new(),
            UnknownAgents::Allow => {
                let text = text::unknown_agents_permit();
                vec![Entry {
                    policy: parse(text::UNKNOWN_AGENTS_ID, text.clone())?,
                    text,
                    approval: false,
                    dry_run: false,
                    forbid: false,
                    reason: Reason {
                        command_id: None,
                        finding_id: None,
                        why: text::UNKNOWN_AGENTS_WHY.to_owned(),
                        policy_id: Some(text::UNKNOWN_AGENTS_ID.to_owned()),
                    },
                }]
            }
        };
        let mut agents = FxHashMap::default();
        if let Some(ents) = entitlements {
            for agent in ents.agent_ids() {
                let Some(grants) = ents.agent(agent) else {
                    continue;
                };
                let entries = grants
                    .iter()
                    .map(|(g, spec)| permit_entry(agent, g, spec))
                    .collect::<Result<Vec<_>, _>>()?;
                agents.insert(
                    Box::from(agent),
                    Arc::new(AgentPolicies::build(true, entries)?),
                );
            }
        }
        Ok(PolicyStore {
            agents,
            unknown: Arc::new(AgentPolicies::build(false, unknown_baseline.clone())?),
            unknown_agents,
            unknown_baseline,
            authorizer: Arc::new(Authorizer::new()),
            types: Arc::new(
                [text::AGENT_TYPE, text::ACTION_TYPE, text::RESOURCE_TYPE].map(|t| {
                    EntityTypeName::from_str(t).expect("the entity type names are identifiers")
                }),
            ),
        })
    }

    /// Adds the forbid of a command. `entitlements` gives the scope of a revoked grant when the
    /// command does not carry it. Returns the policy's text.
    pub fn apply(
        &mut self,
        c: &AppliedCommand,
        entitlements: Option<&Entitlements>,
    ) -> Result<String, PolicyError> {
        let spec = c.grant.as_ref().or_else(|| {
            entitlements
                .and_then(|e| e.agent(&c.agent_id))
                .and_then(|g| g.get(&c.target))
        });
        let scope = match c.action {
            Action::SuspendAgent => Scope::Agent,
            Action::RevokeSession => Scope::Session(&c.target),
            Action::RevokeGrant => Scope::Grant(&c.target, spec),
            Action::Narrow => Scope::Pattern(&c.target),
            Action::RequireApproval | Action::Quarantine => Scope::Outward,
        };
        let approval = c.requires_approval || c.action == Action::RequireApproval;
        let why = command_why(c);
        let finding_ids = c.finding_ids.join(",");
        let text = text::forbid(&Forbid {
            command_id: &c.command_id,
            finding_id: c.finding_ids.first().map_or("", String::as_str),
            finding_ids: &finding_ids,
            action: c.action.as_str(),
            agent: &c.agent_id,
            scope,
            why: &why,
            from_ms: c.issued_at_ms,
            until_ms: c.expires_at_ms,
            requires_approval: approval,
            dry_run: c.dry_run,
        });
        let entry = Entry {
            policy: parse(&c.command_id, text.clone())?,
            text: text.clone(),
            approval,
            dry_run: c.dry_run,
            forbid: true,
            reason: Reason {
                command_id: Some(c.command_id.clone()),
                finding_id: c.finding_ids.first().cloned(),
                why,
                policy_id: Some(c.command_id.clone()),
            },
        };
        let (known, mut entries) = match self.agents.get(c.agent_id.as_str()) {
            Some(a) => (a.known, a.entries.clone()),
            None => (false, self.unknown_baseline.clone()),
        };
        entries.push(entry);
        let built = AgentPolicies::build(known, entries)?;
        self.agents
            .insert(Box::from(c.agent_id.as_str()), Arc::new(built));
        Ok(text)
    }

    /// What to decide for agents without entitlements.
    pub fn unknown_agents(&self) -> UnknownAgents {
        self.unknown_agents
    }

    /// Number of policies held: permits, forbids and dry-run forbids.
    pub fn counts(&self) -> PolicyCounts {
        let mut c = PolicyCounts::default();
        for a in self.agents.values() {
            for e in &a.entries {
                match (e.forbid, e.dry_run) {
                    (false, _) => c.permits += 1,
                    (true, false) => c.forbids += 1,
                    (true, true) => c.dry_run_forbids += 1,
                }
            }
        }
        c.agents = self.agents.len();
        c
    }

    /// Decides a query.
    pub fn decide(&self, q: &Query<'_>) -> Outcome {
        let agent = self.agents.get(q.principal).unwrap_or(&self.unknown);
        let mut errors = Vec::new();
        let request = match self.request(q) {
            Ok(r) => r,
            Err(e) => {
                return Outcome {
                    enforced: Verdict {
                        decision: Decision::Deny,
                        reasons: vec![Reason {
                            command_id: None,
                            finding_id: None,
                            why: format!("the request cannot be evaluated: {e}"),
                            policy_id: None,
                        }],
                    },
                    dry_run: None,
                    errors: vec![e],
                };
            }
        };
        let enforced = self.evaluate(agent, &agent.enforced, q, &request, &mut errors);
        let dry_run = agent.shadow.as_ref().and_then(|layer| {
            let v = self.evaluate(agent, layer, q, &request, &mut errors);
            (v.decision != enforced.decision).then_some(v)
        });
        errors.sort();
        errors.dedup();
        Outcome {
            enforced,
            dry_run,
            errors,
        }
    }

    fn request(&self, q: &Query<'_>) -> Result<Request, String> {
        let uid = |t: usize, id: &str| -> Result<EntityUid, String> {
            Ok(EntityUid::from_type_name_and_id(
                self.types[t].clone(),
                EntityId::new(id),
            ))
        };
        let mut pairs = vec![
            (
                "action".to_owned(),
                RestrictedExpression::new_string(q.action.to_owned()),
            ),
            (
                "resource".to_owned(),
                RestrictedExpression::new_string(q.resource.to_owned()),
            ),
            (
                "now_ms".to_owned(),
                RestrictedExpression::new_long(q.now_ms),
            ),
            (
                "verb".to_owned(),
                RestrictedExpression::new_string(
                    crate::ml::features::verb_name(q.action).to_owned(),
                ),
            ),
        ];
        if let Some(s) = q.session_id {
            pairs.push((
                "session_id".to_owned(),
                RestrictedExpression::new_string(s.to_owned()),
            ));
        }
        if let Some(g) = q.grant {
            pairs.push((
                "grant".to_owned(),
                RestrictedExpression::new_string(g.to_owned()),
            ));
        }
        let context = Context::from_pairs(pairs).map_err(|e| e.to_string())?;
        Request::new(
            uid(0, q.principal)?,
            uid(1, q.action)?,
            uid(2, q.resource)?,
            context,
            None,
        )
        .map_err(|e| e.to_string())
    }

    fn evaluate(
        &self,
        agent: &AgentPolicies,
        layer: &Layer,
        q: &Query<'_>,
        request: &Request,
        errors: &mut Vec<String>,
    ) -> Verdict {
        let entities = Entities::empty();
        let first = self
            .authorizer
            .is_authorized(request, &layer.all, &entities);
        errors.extend(first.diagnostics().errors().map(|e| e.to_string()));
        // The entries that determined a response, in the agent's order.
        let determined = |r: &cedar_policy::Response| -> Vec<&Entry> {
            agent
                .entries
                .iter()
                .filter(|e| r.diagnostics().reason().any(|id| id == e.policy.id()))
                .collect()
        };
        let reasons = |entries: &[&Entry]| -> Vec<Reason> {
            entries.iter().map(|e| e.reason.clone()).collect()
        };
        let first_entries = determined(&first);
        if first.decision() == CedarDecision::Allow {
            return Verdict {
                decision: Decision::Allow,
                reasons: reasons(&first_entries),
            };
        }
        let only_approval = !first_entries.is_empty() && first_entries.iter().all(|e| e.approval);
        if only_approval && let Some(without) = &layer.without_approval {
            let second = self.authorizer.is_authorized(request, without, &entities);
            errors.extend(second.diagnostics().errors().map(|e| e.to_string()));
            if second.decision() == CedarDecision::Allow {
                return Verdict {
                    decision: Decision::RequiresApproval,
                    reasons: reasons(&first_entries),
                };
            }
            let second_entries = determined(&second);
            return Verdict {
                decision: Decision::Deny,
                reasons: if second_entries.is_empty() {
                    vec![self.no_permit(agent.known, q)]
                } else {
                    reasons(&second_entries)
                },
            };
        }
        Verdict {
            decision: Decision::Deny,
            reasons: if first_entries.is_empty() {
                vec![self.no_permit(agent.known, q)]
            } else {
                reasons(&first_entries)
            },
        }
    }

    fn no_permit(&self, known: bool, q: &Query<'_>) -> Reason {
        let why = if known {
            format!(
                "no grant of agent {} allows {} on {}",
                q.principal, q.action, q.resource
            )
        } else {
            format!(
                "agent {} has no entitlements, and agents without entitlements are denied",
                q.principal
            )
        };
        Reason {
            command_id: None,
            finding_id: None,
            why,
            policy_id: None,
        }
    }

    /// The policy set as Cedar text: the enforced policies, then the dry-run commands' forbids
    /// commented out (shown, never enforced). Agents in id order; within an agent, permits in
    /// grant order, then forbids in the order applied.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "// cinch policy set. Requests: principal Agent::\"<agent_id>\", action Action::\"<action>\",\n\
             // resource Resource::\"<resource>\", context {action, resource, now_ms: epoch milliseconds, session_id?, grant?}.\n",
        );
        for (_, text) in self.policies() {
            out.push('\n');
            out.push_str(&text);
        }
        out
    }

    /// Every policy as `(id, text)`, in the order of [`render`](Self::render); dry-run forbids
    /// are commented out.
    pub fn policies(&self) -> Vec<(String, String)> {
        let mut ids: Vec<&str> = self.agents.keys().map(|k| k.as_ref()).collect();
        ids.sort_unstable();
        let mut out = Vec::new();
        if self.unknown_agents == UnknownAgents::Allow {
            let known: Vec<&str> = ids
                .iter()
                .copied()
                .filter(|a| self.agents[*a].known)
                .collect();
            out.push((
                text::UNKNOWN_AGENTS_ID.to_owned(),
                text::unknown_agents_permit_export(&known),
            ));
        }
        for a in ids {
            for e in &self.agents[a].entries {
                if AsRef::<str>::as_ref(e.policy.id()) == text::UNKNOWN_AGENTS_ID {
                    continue;
                }
                let text = if e.dry_run {
                    format!(
                        "// dry run: logged, never enforced\n{}",
                        text::commented(&e.text)
                    )
                } else {
                    e.text.clone()
                };
                out.push((e.policy.id().to_string(), text));
            }
        }
        out
    }

    /// The enforced policies as `(id, text)`, without the dry-run ones: what an external engine
    /// should load.
    pub fn enforced_policies(&self) -> Vec<(String, String)> {
        self.policies()
            .into_iter()
            .filter(|(_, t)| !t.starts_with("//"))
            .collect()
    }
}

/// How many policies a store holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PolicyCounts {
    /// Agents with policies of their own.
    pub agents: usize,
    /// Permits from grants.
    pub permits: usize,
    /// Forbids from enforced commands.
    pub forbids: usize,
    /// Forbids from dry-run commands.
    pub dry_run_forbids: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    const HOUR: i64 = 3_600_000;

    fn ents() -> Entitlements {
        Entitlements::parse(
            r#"{"etl-1": {
                "lake": {"actions": ["s3:Get*", "s3:List*"], "resources": ["s3://lake/*"]},
                "mail": {"actions": ["mail:Send"], "resources": ["mailto:*@corp.example"]}},
              "bot \"2\"": {"all": {"actions": ["*"], "resources": ["*"]}}}"#,
            "test",
        )
        .unwrap()
    }

    fn command(id: &str, action: Action, target: &str) -> AppliedCommand {
        AppliedCommand {
            command_id: id.to_owned(),
            agent_id: "etl-1".to_owned(),
            action,
            target: target.to_owned(),
            finding_ids: vec![format!("fnd-{id}")],
            reason: "finding (high; novelty)".to_owned(),
            severity: Some("high".to_owned()),
            issued_at_ms: T0,
            expires_at_ms: T0 + HOUR,
            requires_approval: false,
            dry_run: false,
            grant: None,
            line: 1,
        }
    }

    fn q<'a>(agent: &'a str, action: &'a str, resource: &'a str, now_ms: i64) -> Query<'a> {
        Query {
            principal: agent,
            action,
            resource,
            session_id: None,
            grant: None,
            now_ms,
        }
    }

    fn decision(store: &PolicyStore, q: &Query<'_>) -> Decision {
        let o = store.decide(q);
        assert!(o.errors.is_empty(), "{:?}", o.errors);
        o.enforced.decision
    }

    #[test]
    fn grants_permit_their_scope_only() {
        let store = PolicyStore::new(Some(&ents()), UnknownAgents::Deny).unwrap();
        let get = q("etl-1", "s3:GetObject", "s3://lake/a/b.json", T0);
        let o = store.decide(&get);
        assert_eq!(o.enforced.decision, Decision::Allow);
        assert_eq!(
            o.enforced.reasons[0].policy_id.as_deref(),
            Some("grant:etl-1:lake")
        );
        assert_eq!(o.enforced.reasons[0].command_id, None);
        assert_eq!(
            decision(&store, &q("etl-1", "s3:PutObject", "s3://lake/a", T0)),
            Decision::Deny
        );
        assert_eq!(
            decision(
                &store,
                &q("etl-1", "mail:Send", "mailto:x@evil.example", T0)
            ),
            Decision::Deny
        );
        let o = store.decide(&q("etl-1", "mail:Send", "mailto:x@evil.example", T0));
        assert!(
            o.enforced.reasons[0]
                .why
                .starts_with("no grant of agent etl-1")
        );
        // Quotes in ids and everything-globs.
        assert_eq!(
            decision(&store, &q("bot \"2\"", "x", "anything \\ \"", T0)),
            Decision::Allow
        );
        // Unknown agents: denied by default, allowed on request.
        let o = store.decide(&q("ghost", "s3:GetObject", "s3://lake/a", T0));
        assert_eq!(o.enforced.decision, Decision::Deny);
        assert!(o.enforced.reasons[0].why.contains("no entitlements"));
        let open = PolicyStore::new(Some(&ents()), UnknownAgents::Allow).unwrap();
        assert_eq!(
            decision(&open, &q("ghost", "s3:GetObject", "s3://lake/a", T0)),
            Decision::Allow
        );
    }

    #[test]
    fn the_milder_steps_deny_a_pattern_ask_for_approval_or_leave_reading() {
        let e = ents();
        let get = |r: &'static str| q("etl-1", "s3:GetObject", r, T0 + 1);
        // narrow: only the pattern (its placeholders standing for any text) is denied.
        let mut store = PolicyStore::new(Some(&e), UnknownAgents::Deny).unwrap();
        store
            .apply(
                &command("cmd-n", Action::Narrow, "s3://lake/hr/{id}.csv"),
                Some(&e),
            )
            .unwrap();
        let o = store.decide(&get("s3://lake/hr/payroll-7.csv"));
        assert_eq!(o.enforced.decision, Decision::Deny);
        assert_eq!(o.enforced.reasons[0].command_id.as_deref(), Some("cmd-n"));
        assert!(o.enforced.reasons[0].why.contains("narrowed"), "{o:?}");
        assert_eq!(
            decision(&store, &get("s3://lake/sales/a.csv")),
            Decision::Allow
        );
        assert_eq!(
            decision(
                &store,
                &q("etl-1", "s3:GetObject", "s3://lake/hr/x.csv", T0 + HOUR)
            ),
            Decision::Allow,
            "it lapses"
        );
        // require_approval: reading and listing go on; anything else needs a person.
        let mut store = PolicyStore::new(Some(&e), UnknownAgents::Deny).unwrap();
        store
            .apply(
                &command("cmd-a", Action::RequireApproval, "etl-1"),
                Some(&e),
            )
            .unwrap();
        assert_eq!(decision(&store, &get("s3://lake/a")), Decision::Allow);
        assert_eq!(
            decision(&store, &q("etl-1", "s3:ListObjects", "s3://lake/", T0 + 1)),
            Decision::Allow
        );
        let send = q("etl-1", "mail:Send", "mailto:a@corp.example", T0 + 1);
        let o = store.decide(&send);
        assert_eq!(o.enforced.decision, Decision::RequiresApproval, "{o:?}");
        assert_eq!(o.enforced.reasons[0].command_id.as_deref(), Some("cmd-a"));
        // quarantine: reading and listing go on; anything else is denied.
        let mut store = PolicyStore::new(Some(&e), UnknownAgents::Deny).unwrap();
        store
            .apply(&command("cmd-q", Action::Quarantine, "etl-1"), Some(&e))
            .unwrap();
        assert_eq!(decision(&store, &get("s3://lake/a")), Decision::Allow);
        let o = store.decide(&send);
        assert_eq!(o.enforced.decision, Decision::Deny);
        assert!(o.enforced.reasons[0].why.contains("quarantined"), "{o:?}");
    }

    #[test]
    fn commands_forbid_what_they_target_while_in_force() {
        let e = ents();
        let mut store = PolicyStore::new(Some(&e), UnknownAgents::Deny).unwrap();
        store
            .apply(&command("cmd-g", Action::RevokeGrant, "mail"), Some(&e))
            .unwrap();
        let send = q("etl-1", "mail:Send", "mailto:a@corp.example", T0 + 1);
        let o = store.decide(&send);
        assert_eq!(o.enforced.decision, Decision::Deny);
        assert_eq!(o.enforced.reasons[0].command_id.as_deref(), Some("cmd-g"));
        assert_eq!(
            o.enforced.reasons[0].finding_id.as_deref(),
            Some("fnd-cmd-g")
        );
        assert!(
            o.enforced.reasons[0]
                .why
                .contains("grant mail of agent etl-1 is revoked")
        );
        // Other grants still work; before issue and after expiry the grant works again.
        assert_eq!(
            decision(&store, &q("etl-1", "s3:GetObject", "s3://lake/x", T0 + 1)),
            Decision::Allow
        );
        assert_eq!(
            decision(
                &store,
                &q("etl-1", "mail:Send", "mailto:a@corp.example", T0 - 1)
            ),
            Decision::Allow
        );
        assert_eq!(
            decision(
                &store,
                &q("etl-1", "mail:Send", "mailto:a@corp.example", T0 + HOUR)
            ),
            Decision::Allow
        );
        // A request that names the revoked grant is denied even outside its patterns.
        let mut named = q("etl-1", "s3:GetObject", "s3://lake/x", T0 + 1);
        named.grant = Some("mail");
        assert_eq!(decision(&store, &named), Decision::Deny);

        store
            .apply(&command("cmd-s", Action::RevokeSession, "sess-9"), Some(&e))
            .unwrap();
        let mut in_session = q("etl-1", "s3:GetObject", "s3://lake/x", T0 + 1);
        in_session.session_id = Some("sess-9");
        assert_eq!(decision(&store, &in_session), Decision::Deny);
        in_session.session_id = Some("sess-10");
        assert_eq!(decision(&store, &in_session), Decision::Allow);

        let mut suspend = command("cmd-a", Action::SuspendAgent, "etl-1");
        suspend.requires_approval = true;
        store.apply(&suspend, Some(&e)).unwrap();
        let o = store.decide(&q("etl-1", "s3:GetObject", "s3://lake/x", T0 + 1));
        assert_eq!(o.enforced.decision, Decision::RequiresApproval);
        assert_eq!(o.enforced.reasons[0].command_id.as_deref(), Some("cmd-a"));
        // Approval never turns a request no grant allows into one a person may approve.
        assert_eq!(
            decision(&store, &q("etl-1", "s3:PutObject", "s3://lake/x", T0 + 1)),
            Decision::Deny
        );
        // A deny beats an approval; both are named.
        let o = store.decide(&q("etl-1", "mail:Send", "mailto:a@corp.example", T0 + 1));
        assert_eq!(o.enforced.decision, Decision::Deny);
        let ids: Vec<_> = o
            .enforced
            .reasons
            .iter()
            .map(|r| r.command_id.clone().unwrap())
            .collect();
        assert_eq!(ids, ["cmd-g", "cmd-a"]);
    }

    #[test]
    fn dry_runs_only_say_what_they_would_do() {
        let e = ents();
        let mut store = PolicyStore::new(Some(&e), UnknownAgents::Deny).unwrap();
        let mut c = command("cmd-d", Action::SuspendAgent, "etl-1");
        c.dry_run = true;
        store.apply(&c, Some(&e)).unwrap();
        let o = store.decide(&q("etl-1", "s3:GetObject", "s3://lake/x", T0 + 1));
        assert_eq!(o.enforced.decision, Decision::Allow);
        let dry = o.dry_run.unwrap();
        assert_eq!(dry.decision, Decision::Deny);
        assert_eq!(dry.reasons[0].command_id.as_deref(), Some("cmd-d"));
        let text = store.render();
        assert!(
            text.contains("// dry run: logged, never enforced\n// @id(\"cmd-d\")"),
            "{text}"
        );
        assert!(
            store
                .enforced_policies()
                .iter()
                .all(|(id, _)| id != "cmd-d")
        );
    }

    #[test]
    fn the_rendered_set_parses_and_decides_the_same() {
        let e = ents();
        let mut store = PolicyStore::new(Some(&e), UnknownAgents::Allow).unwrap();
        let mut g = command("cmd-g", Action::RevokeGrant, "lake");
        g.grant = Some(GrantSpec {
            actions: vec!["s3:*".into()],
            resources: vec!["s3://lake/*".into()],
        });
        store.apply(&g, Some(&e)).unwrap();
        let mut ghost = command("cmd-x", Action::SuspendAgent, "ghost");
        ghost.agent_id = "ghost".into();
        store.apply(&ghost, Some(&e)).unwrap();
        let text = store.render();
        let set = PolicySet::from_str(&text).unwrap_or_else(|err| panic!("{err}\n{text}"));
        let enforced: String = store
            .enforced_policies()
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(
            PolicySet::from_str(&enforced).unwrap().policies().count(),
            set.policies().count()
        );
        let authorizer = Authorizer::new();
        for (agent, action, resource, now) in [
            ("etl-1", "s3:GetObject", "s3://lake/a", T0 + 1),
            ("etl-1", "s3:GetObject", "s3://lake/a", T0 + HOUR),
            ("etl-1", "mail:Send", "mailto:a@corp.example", T0 + 1),
            ("bot \"2\"", "x", "y", T0),
            ("ghost", "x", "y", T0 + 1),
            ("ghost", "x", "y", T0 + 2 * HOUR),
            ("other", "x", "y", T0),
        ] {
            let query = q(agent, action, resource, now);
            let ours = store.decide(&query).enforced.decision;
            let request = store.request(&query).unwrap();
            let theirs = authorizer.is_authorized(&request, &set, &Entities::empty());
            let theirs = match theirs.decision() {
                CedarDecision::Allow => Decision::Allow,
                CedarDecision::Deny => Decision::Deny,
            };
            assert_eq!(ours, theirs, "{agent} {action} {resource} {now}");
        }
    }
}
