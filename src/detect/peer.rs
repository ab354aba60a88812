//! Peer group: behaviour that the agent's peers (agents of the same kind or family) never show,
//! and outside destinations that recently became new to several agents at once (an injection
//! campaign or an exfiltration endpoint).

use super::novelty::fresh;
use super::{Ctx, ramp};
use crate::fleet::UseKind;

fn rarity(c: &Ctx<'_>) -> f32 {
    // Peers know nothing yet while the whole fleet is new.
    if c.peers.fleet_days < 1.0 {
        return 0.0;
    }
    let common = c.settings.peer_common_share;
    let a = match c.peers.share(UseKind::Action, c.keys.action) {
        Some(s) => 0.7 * fresh(c.obs.action) * (1.0 - ramp(s, 0.0, common)),
        None => 0.0,
    };
    let p = match c.peers.share(UseKind::Prefix, c.keys.prefix_id) {
        // A destination the organisation's grants name is theirs to contact, rare or not.
        Some(_) if c.sanctioned => 0.0,
        Some(s) => 0.6 * fresh(c.obs.prefix) * (1.0 - ramp(s, 0.0, common)),
        None => 0.0,
    };
    a.max(p)
}

fn campaign(c: &Ctx<'_>) -> f32 {
    let Some((ever, recent_others)) = c.peers.destination else {
        return 0.0;
    };
    // Agents starting to contact a partner the organisation's grants name is no campaign.
    if c.sanctioned || fresh(c.obs.prefix) < 0.5 || c.peers.fleet_days < 1.0 {
        return 0.0;
    }
    // A destination a good share of the peer group has used is an established partner.
    let widespread = ever as f32 >= (c.settings.peer_common_share * c.peers.size() as f32).max(3.0);
    if widespread {
        return 0.0;
    }
    ramp(recent_others as f32, 0.0, 2.0) * 0.9
}

/// Score in 0..1.
pub fn score(c: &Ctx<'_>) -> f32 {
    rarity(c).max(campaign(c))
}

/// One sentence.
pub(crate) fn explain(c: &Ctx<'_>) -> String {
    if campaign(c) >= rarity(c) {
        // Only a reason is explained, and the campaign half scores 0 without a destination.
        let (ever, recent) = c.peers.destination.unwrap_or_default();
        format!(
            "outside destination {} is new to this agent and was first contacted by {recent} other agents in the last 7 days ({ever} ever)",
            c.keys.prefix()
        )
    } else {
        let sa = c.peers.share(UseKind::Action, c.keys.action).unwrap_or(0.0);
        let sp = c
            .peers
            .share(UseKind::Prefix, c.keys.prefix_id)
            .unwrap_or(0.0);
        format!(
            "{} on {} is rare among this agent's {} peers: {:.0}% use the action and {:.0}% the resource area",
            c.ev.action,
            c.keys.prefix(),
            c.peers.size(),
            sa * 100.0,
            sp * 100.0
        )
    }
}
