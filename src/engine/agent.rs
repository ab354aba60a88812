//! One agent's state in the engine: its profile, grant ledger, behaviour profile and learned
//! peer group, and how it is checkpointed.

use super::tools::ToolMemory;
use crate::event::AccessEvent;
use crate::fleet::{Delta, Fleet};
use crate::grants::Ledger;
use crate::ml::settings::MlSettings;
use crate::ml::{Behaviour, Model};
use crate::profile::counter::Minute;
use crate::profile::generalise::generalise;
use crate::profile::keys::{EventKeys, key, ns};
use crate::profile::{AgentProfile, Capacity};

/// One agent's state.
#[derive(Debug)]
pub(super) struct Agent {
    pub(super) key: u64,
    /// Peer groups: the agent's family (its id with numbers collapsed) and its declared kind.
    pub(super) groups: [u64; 2],
    /// The declared kind, as first seen (kept for checkpoints).
    pub(super) kind: Option<Box<str>>,
    pub(super) profile: AgentProfile,
    /// What it did with its grants.
    pub(super) ledger: Ledger,
    /// Its behaviour profile, accumulated until it is assigned to a learned peer group.
    pub(super) behaviour: Behaviour,
    /// The learned peer group it was assigned to.
    pub(super) learned: Option<Learned>,
    /// What its tool calls reached (AI agents whose events carry tool calls).
    pub(super) tools: Option<Box<ToolMemory>>,
    /// Its state changed since the last [`super::Engine::take_touched`].
    pub(super) touched: bool,
}

/// An agent's learned peer group.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct Learned {
    /// The model that assigned it ([`Model::id`]).
    pub(super) model: u64,
    /// The group.
    pub(super) group: u16,
    /// The group's fleet key.
    pub(super) key: u64,
}

/// An agent's checkpointed state.
#[derive(serde::Serialize, serde::Deserialize)]
struct AgentState {
    profile: Vec<u8>,
    ledger: Ledger,
    behaviour: Behaviour,
    learned: Option<Learned>,
    tools: Option<Box<ToolMemory>>,
}

impl Agent {
    /// A new agent, first seen at `now`.
    pub(super) fn new(ev: &AccessEvent<'_>, cap: &Capacity, now: Minute) -> Box<Agent> {
        let (agent_key, groups) = identity(&ev.agent_id, ev.agent_kind.as_deref());
        Box::new(Agent {
            key: agent_key,
            groups,
            kind: ev.agent_kind.as_deref().map(Into::into),
            profile: AgentProfile::new(cap, now),
            ledger: Ledger::default(),
            behaviour: Behaviour::default(),
            learned: None,
            tools: None,
            touched: false,
        })
    }

    /// The agent's checkpoint.
    pub(super) fn export(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_stdvec(&AgentState {
            profile: self.profile.to_bytes()?,
            ledger: self.ledger.clone(),
            behaviour: self.behaviour.clone(),
            learned: self.learned,
            tools: self.tools.clone(),
        })
    }

    /// An agent restored from its checkpoint; its peer groups are recomputed from the id and
    /// kind.
    pub(super) fn import(
        agent_id: &str,
        kind: Option<&str>,
        bytes: &[u8],
    ) -> Result<Box<Agent>, postcard::Error> {
        let state: AgentState = postcard::from_bytes(bytes)?;
        let profile = AgentProfile::from_bytes(&state.profile)?;
        let (agent_key, groups) = identity(agent_id, kind);
        Ok(Box::new(Agent {
            key: agent_key,
            groups,
            kind: kind.map(Into::into),
            profile,
            ledger: state.ledger,
            behaviour: state.behaviour,
            learned: state.learned,
            tools: state.tools,
            touched: false,
        }))
    }

    /// The agent's learned peer group under `model`: kept while the model that assigned it is
    /// in force; otherwise its behaviour is accumulated until it has enough history, and it
    /// then joins the nearest group, bringing what it is known to use into the group's
    /// statistics.
    pub(super) fn learned_group(
        &mut self,
        model: &Model,
        ev: &AccessEvent<'_>,
        keys: &EventKeys<'_>,
        settings: &MlSettings,
        fleet: &mut Fleet,
    ) -> Option<Learned> {
        if let Some(l) = self.learned
            && l.model == model.id()
        {
            return Some(l);
        }
        if !self.behaviour.ready(settings) {
            self.behaviour.add(ev, keys);
            if !self.behaviour.ready(settings) {
                return None;
            }
        }
        let group = model.assign(&self.behaviour.vector());
        let l = Learned {
            model: model.id(),
            group,
            key: model.group_key(group),
        };
        self.learned = Some(l);
        fleet.join(l.key);
        for (kind, key) in self.profile.known_uses() {
            fleet.record(Delta::FirstUse {
                group: l.key,
                kind,
                key,
            });
        }
        Some(l)
    }
}

/// An agent's key and peer groups: its family (its id with numbers collapsed) and its kind.
fn identity(agent_id: &str, kind: Option<&str>) -> (u64, [u64; 2]) {
    let family = generalise(agent_id);
    let kind = kind.unwrap_or("unknown");
    (
        key(ns::GROUP, agent_id),
        [
            key(ns::GROUP, &format!("family:{family}")),
            key(ns::GROUP, &format!("kind:{kind}")),
        ],
    )
}
