//! Source: a source address, or a whole network, that the agent has not used before. Damped for
//! agents that come from many networks as a matter of course.

use super::novelty::fresh;
use super::{Ctx, days, ramp};

/// Score in 0..1.
pub fn score(c: &Ctx<'_>) -> f32 {
    let (Some(ip), Some(net)) = (c.obs.ip, c.obs.net) else {
        return 0.0;
    };
    if c.obs.learned_weight < 1.0 {
        return 0.0;
    }
    // How many networks the agent spreads over, judged once it has some history.
    let spread = c.obs.nets_known.saturating_sub(1) as f32 / c.obs.learned_weight.max(50.0);
    let damp = 1.0 - 0.9 * ramp(spread, 0.005, 0.1);
    // An agent that moved wholesale to a new network (a redeploy) is not an intruder beside it.
    let moved = if c.obs.migrated { 0.1 } else { 1.0 };
    // A new network while the agent is still active from its usual one: two places at once,
    // the signature of stolen credentials. Otherwise a new address alone stays below a
    // finding and corroborates other evidence.
    // Likewise an address of a kind the agent never came from (the internet, for a workload
    // that only ever called from private networks).
    let net_weight = if concurrent(c) || c.obs.new_ip_class {
        0.8
    } else {
        0.55
    };
    (0.25 * fresh(ip)).max(net_weight * fresh(net)) * damp * moved
}

/// Whether the event comes from where the agent's own use would not: a new network of an
/// address class the agent never came from (the internet, for a workload that only ever called
/// from private networks), or a new network while the agent is still active from its usual one
/// (two places at once, the signature of stolen credentials). A new address of a class the
/// agent uses, or a move of the whole agent to a new network (a redeploy), is change, not harm.
pub(crate) fn foreign(c: &Ctx<'_>) -> bool {
    outside_class(c) || (new_network(c) && concurrent(c))
}

/// Whether the event comes from a new network of an address class the agent never came from
/// (the internet, for a workload that only ever called from private networks): credentials
/// used outside the places the agent runs, whatever else the agent is doing at the time.
pub(crate) fn outside_class(c: &Ctx<'_>) -> bool {
    new_network(c) && c.obs.new_ip_class
}

/// A network new to the agent, not one it moved to wholesale.
fn new_network(c: &Ctx<'_>) -> bool {
    c.obs.net.is_some_and(|n| fresh(n) > 0.5) && !c.obs.migrated
}

/// Acting from a new network while still active from the usual one needs no mature baseline to
/// be telling: this part of the score is not damped during the learning period.
pub(crate) fn self_evident(c: &Ctx<'_>) -> bool {
    concurrent(c) && c.obs.net.is_some_and(|n| fresh(n) > 0.5) && c.obs.learned_weight >= 2.0
}

/// The agent acted from a known network within the last hour.
fn concurrent(c: &Ctx<'_>) -> bool {
    c.keys.ip_class & 3 != 0 && c.obs.since_known_net.is_some_and(|m| m <= 60)
}

/// One sentence.
pub(crate) fn explain(c: &Ctx<'_>) -> String {
    let ip = c.ev.source_ip.as_deref().unwrap_or("");
    let new_net = c.obs.net.is_some_and(|n| fresh(n) > 0.5);
    let mut active = match c.obs.since_known_net {
        Some(m) if m <= 60 && new_net && !c.obs.migrated => {
            format!(" and was active from a known network {m} minutes earlier")
        }
        _ => String::new(),
    };
    if c.obs.new_ip_class {
        let kind = match c.keys.ip_class {
            1 => "a private",
            2 => "a public",
            _ => "a non-IP",
        };
        active.push_str(&format!(
            "; it is {kind} address and the agent never acted from one"
        ));
    }
    format!(
        "source address {ip} is {} for this agent, which used {} addresses in {} networks over {} of history{active}",
        if c.obs.migrated {
            "on a network the agent moved to wholesale"
        } else if new_net {
            "on a network never seen"
        } else {
            "new (on a known network)"
        },
        c.obs.ips_known,
        c.obs.nets_known,
        days(c.obs.history_days)
    )
}
