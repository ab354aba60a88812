//! Intent: access that sessions with the same stated intent never needed. Answers the auditor's
//! question of an autonomous agent: why did it need that?

use super::novelty::SANCTIONED;
use super::{Ctx, ramp};
use crate::fleet::UseKind;
use crate::profile::keys::pair;

/// Score in 0..1.
pub fn score(c: &Ctx<'_>) -> f32 {
    let Some((n, on_prefix, with_action)) = c.obs.intent else {
        return 0.0;
    };
    let trust = ramp(n, 40.0, 150.0);
    if trust == 0.0 {
        return 0.0;
    }
    let routine = 1.0 - 0.7 * ramp(c.obs.novel_rate, 0.01, 0.15);
    // Peers whose sessions state the same intent and commonly need the same access excuse it.
    let excuse = |kind: UseKind, k: u64| match (c.keys.intent, c.peers.fleet_days >= 1.0) {
        (Some(i), true) => {
            1.0 - 0.85
                * ramp(
                    c.peers.share(kind, pair(i, k)).unwrap_or(0.0),
                    0.0,
                    c.settings.peer_common_share,
                )
        }
        _ => 1.0,
    };
    // A destination the organisation's grants name is one its sessions may come to need.
    let sanctioned = if c.sanctioned { SANCTIONED } else { 1.0 };
    let p = 0.8
        * (1.0 - on_prefix.min(1.0))
        * excuse(UseKind::IntentPrefix, c.keys.prefix_id)
        * sanctioned;
    let a = 0.7 * (1.0 - with_action.min(1.0)) * excuse(UseKind::IntentAction, c.keys.action);
    trust * p.max(a) * routine
}

/// One sentence.
pub(crate) fn explain(c: &Ctx<'_>) -> String {
    // Only a reason is explained, and this detector scores 0 without the observation.
    let (n, on_prefix, with_action) = c.obs.intent.unwrap_or_default();
    let intent = c.ev.intent.as_deref().unwrap_or("");
    if on_prefix < 1.0 {
        format!(
            "sessions with intent '{intent}' never accessed {} in {n:.0} prior events; this one called {} on {}",
            c.keys.prefix(),
            c.ev.action,
            c.ev.resource
        )
    } else {
        format!(
            "sessions with intent '{intent}' never used {} in {n:.0} prior events ({with_action:.1} uses)",
            c.ev.action
        )
    }
}
