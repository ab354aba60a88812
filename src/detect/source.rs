//! Source: a source address, or a whole network, that the agent has not used before. Damped for
//! agents that come from many networks as a matter of course.

use super::novelty::fresh;
use super::{Ctx, days, ramp};

/// Score in 0..1.
pub fn score(c: &Ctx<'_>) -> f32 {
    let (Some(ip), Some(net)) = (c.obs.ip, c.obs.net) else { return 0.0 };
    if c.obs.learned_weight < 1.0 {
        return 0.0;
    }
    let spread = c.obs.nets_known as f32 / (c.obs.learned_weight + 10.0);
    let damp = 1.0 - 0.9 * ramp(spread, 0.005, 0.1);
    (0.3 * fresh(ip)).max(0.85 * fresh(net)) * damp
}

/// One sentence.
pub fn explain(c: &Ctx<'_>) -> String {
    let ip = c.ev.source_ip.as_deref().unwrap_or("");
    let new_net = c.obs.net.is_some_and(|n| fresh(n) > 0.5);
    format!(
        "source address {ip} is {} for this agent, which used {} addresses in {} networks over {} of history",
        if new_net { "on a network never seen" } else { "new (on a known network)" },
        c.obs.ips_known,
        c.obs.nets_known,
        days(c.obs.history_days)
    )
}
