//! Quality of the response side on a labelled dataset: which attacks drew which commands, the
//! commands benign agents received, how much of the granted access the recommendations would
//! remove, and whether any recommended change would have blocked a later benign event.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::metrics::{Attack, Label};
use crate::event::AccessEvent;
use crate::grants::{AgentGrants, Entitlements, GrantSpec};
use crate::output::OutputRecord;
use crate::output::command::Action;
use crate::output::recommendation::Change;

/// Commands drawn by the attacks of one scenario.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ScenarioResponse {
    /// Attacks.
    pub attacks: u32,
    /// Attacks with at least one command on a finding holding their events.
    pub contained: u32,
    /// Attacks whose events used a grant the agent's benign traffic never used.
    pub fresh_grant_attacks: u32,
    /// Of those, attacks that drew a `revoke_grant` of such a grant.
    pub revoke_grant_on_fresh: u32,
    /// Commands by action.
    pub actions: BTreeMap<String, u32>,
}

/// The response report.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ResponseReport {
    /// Commands issued.
    pub commands: u64,
    /// Commands whose findings hold no attack event.
    pub benign_commands: u64,
    /// Agents that suffered no attack.
    pub benign_agents: u64,
    /// Commands for agents that suffered no attack.
    pub commands_on_benign_agents: u64,
    /// Those by action (the step of the response ladder).
    pub benign_agent_actions: BTreeMap<String, u64>,
    /// Agents that suffered no attack and got a command above `narrow`.
    pub benign_agents_above_narrow: u64,
    /// Those per agent-day of benign agents.
    pub benign_agent_commands_per_agent_day: f64,
    /// Per scenario.
    pub scenarios: BTreeMap<String, ScenarioResponse>,
    /// Grants in the entitlements.
    pub grants: u64,
    /// Granted permissions: (action pattern, resource pattern) pairs over all grants.
    pub permissions: u64,
    /// Grants recommended for removal.
    pub grants_removed: u64,
    /// Grants recommended for narrowing.
    pub grants_narrowed: u64,
    /// Permissions the recommendations would remove (all of a removed grant's; the replaced
    /// patterns of a narrowed one).
    pub permissions_removed: u64,
    /// Share of permissions the recommendations would remove.
    pub permissions_removed_share: f64,
    /// Recommendations that would have blocked at least one later benign event (that no
    /// other grant of the agent covered).
    pub recommendations_blocking_benign: u64,
    /// Benign events they would have blocked.
    pub benign_events_blocked: u64,
}

fn pairs(g: &GrantSpec) -> HashSet<(String, String)> {
    g.actions
        .iter()
        .flat_map(|a| g.resources.iter().map(move |r| (a.clone(), r.clone())))
        .collect()
}

fn allowed(grants: &AgentGrants, changed: &str, with: &GrantSpec, a: &str, r: &str) -> bool {
    grants.iter().any(|(id, g)| {
        if id == changed {
            with.covers(a, r)
        } else {
            g.covers(a, r)
        }
    })
}

/// Evaluates the records of an engine run over a labelled dataset.
pub(crate) fn evaluate(
    events: &[AccessEvent<'_>],
    labels: &HashMap<String, Label>,
    attacks: &[Attack],
    ents: Option<&Entitlements>,
    out: &[OutputRecord],
    days: f64,
) -> ResponseReport {
    let mut r = ResponseReport::default();
    let is_attack = |id: &str| labels.get(id).is_some_and(|l| l.attack);
    let attack_of = |id: &str| labels.get(id).and_then(|l| l.attack_id.clone());
    let scenario: HashMap<&str, &str> = attacks
        .iter()
        .map(|a| (a.attack_id.as_str(), a.scenario.as_str()))
        .collect();
    let attacked: HashSet<&str> = attacks.iter().map(|a| a.agent_id.as_str()).collect();
    let agents: HashSet<&str> = events.iter().map(|e| e.agent_id.as_ref()).collect();
    r.benign_agents = agents.iter().filter(|a| !attacked.contains(*a)).count() as u64;

    // The grant of each event, and the grants each agent's benign traffic used.
    let grant_of = |e: &AccessEvent<'_>| -> Option<String> {
        match ents.and_then(|x| x.agent(&e.agent_id)) {
            Some(g) => g
                .attribute(e.grant.as_deref(), &e.action, &e.resource)
                .map(str::to_string),
            None => e.grant.as_deref().map(str::to_string),
        }
    };
    let mut benign_used: HashSet<(String, String)> = HashSet::new();
    let mut fresh_by_attack: HashMap<String, HashSet<String>> = HashMap::new();
    for e in events {
        let Some(g) = grant_of(e) else { continue };
        if !is_attack(&e.event_id) {
            benign_used.insert((e.agent_id.to_string(), g));
        }
    }
    for e in events {
        if let (Some(a), Some(g)) = (attack_of(&e.event_id), grant_of(e))
            && !benign_used.contains(&(e.agent_id.to_string(), g.clone()))
        {
            fresh_by_attack.entry(a).or_default().insert(g);
        }
    }

    let finding_events: HashMap<&str, &[String]> = out
        .iter()
        .filter_map(|o| match o {
            OutputRecord::Finding(f) => Some((f.finding_id.as_str(), f.event_ids.as_slice())),
            _ => None,
        })
        .collect();
    for a in attacks {
        let s = r.scenarios.entry(a.scenario.clone()).or_default();
        s.attacks += 1;
        if fresh_by_attack.contains_key(&a.attack_id) {
            s.fresh_grant_attacks += 1;
        }
    }
    let mut contained: HashSet<String> = HashSet::new();
    let mut revoked_fresh: HashSet<String> = HashSet::new();
    let mut above_narrow: HashSet<&str> = HashSet::new();
    for o in out {
        let OutputRecord::Command(c) = o else {
            continue;
        };
        r.commands += 1;
        if !attacked.contains(c.agent_id.as_str()) {
            r.commands_on_benign_agents += 1;
            *r.benign_agent_actions
                .entry(c.action.as_str().to_owned())
                .or_default() += 1;
            if c.action.level() > Action::Narrow.level() {
                above_narrow.insert(c.agent_id.as_str());
            }
        }
        let hit: HashSet<String> = c
            .finding_ids
            .iter()
            .filter_map(|f| finding_events.get(f.as_str()))
            .flat_map(|ids| ids.iter())
            .filter_map(|id| attack_of(id))
            .collect();
        if hit.is_empty() {
            r.benign_commands += 1;
        }
        for a in hit {
            if let Some(sc) = scenario.get(a.as_str()) {
                let s = r.scenarios.entry(sc.to_string()).or_default();
                *s.actions.entry(c.action.as_str().to_string()).or_default() += 1;
            }
            if c.action == Action::RevokeGrant
                && fresh_by_attack
                    .get(&a)
                    .is_some_and(|g| g.contains(&c.target))
            {
                revoked_fresh.insert(a.clone());
            }
            contained.insert(a);
        }
    }
    for a in attacks {
        let s = r.scenarios.entry(a.scenario.clone()).or_default();
        if contained.contains(&a.attack_id) {
            s.contained += 1;
        }
        if revoked_fresh.contains(&a.attack_id) {
            s.revoke_grant_on_fresh += 1;
        }
    }
    r.benign_agents_above_narrow = above_narrow.len() as u64;
    let agent_days = r.benign_agents as f64 * days;
    r.benign_agent_commands_per_agent_day = if agent_days > 0.0 {
        r.commands_on_benign_agents as f64 / agent_days
    } else {
        0.0
    };

    // Recommendations: what they would remove, and whether a later benign event needed it.
    let Some(ents) = ents else {
        return r;
    };
    for id in ents.agent_ids() {
        if let Some(g) = ents.agent(id) {
            r.grants += g.len() as u64;
            r.permissions += g.iter().map(|(_, s)| pairs(s).len() as u64).sum::<u64>();
        }
    }
    let mut by_agent: HashMap<&str, Vec<&AccessEvent<'_>>> = HashMap::new();
    for e in events {
        if !is_attack(&e.event_id) {
            by_agent.entry(e.agent_id.as_ref()).or_default().push(e);
        }
    }
    // The latest recommendation per agent and grant is the one in force.
    let mut latest: BTreeMap<(&str, &str), &crate::output::recommendation::Recommendation> =
        BTreeMap::new();
    for o in out {
        if let OutputRecord::Recommendation(rec) = o {
            latest.insert((rec.agent_id.as_str(), rec.grant.as_str()), rec);
            let Some(grants) = ents.agent(&rec.agent_id) else {
                continue;
            };
            let since = crate::event::time::parse_rfc3339_ms(&rec.time).unwrap_or(i64::MIN);
            let blocked = by_agent.get(rec.agent_id.as_str()).map_or(0, |evs| {
                evs.iter()
                    .filter(|e| e.time_ms > since)
                    .filter(|e| {
                        grants
                            .get(&rec.grant)
                            .is_some_and(|g| g.covers(&e.action, &e.resource))
                            && !allowed(grants, &rec.grant, &rec.proposed, &e.action, &e.resource)
                    })
                    .count() as u64
            });
            if blocked > 0 {
                r.recommendations_blocking_benign += 1;
                r.benign_events_blocked += blocked;
            }
        }
    }
    for rec in latest.values() {
        let before = pairs(&rec.current);
        let after = pairs(&rec.proposed);
        r.permissions_removed += before.difference(&after).count() as u64;
        match rec.change {
            Change::Remove => r.grants_removed += 1,
            Change::Narrow => r.grants_narrowed += 1,
        }
    }
    r.permissions_removed_share = if r.permissions > 0 {
        r.permissions_removed as f64 / r.permissions as f64
    } else {
        0.0
    };
    r
}
