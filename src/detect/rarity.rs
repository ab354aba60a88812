//! The learned event model: how rare this event's combination of hour, volume, pace and
//! familiarity is among the history of the agent's learned peer group (see [`crate::ml`]).

use super::{Ctx, ramp};

/// Score in 0..1: 0 until at most `10^-from` of the group's training events were as unlikely,
/// 1 from `10^-full`.
pub fn score(c: &Ctx<'_>) -> f32 {
    match &c.model {
        Some(m) => ramp(-m.rarity.log10_p as f32, m.from, m.full),
        None => 0.0,
    }
}

/// One sentence.
pub(crate) fn explain(c: &Ctx<'_>) -> String {
    let Some(m) = &c.model else {
        return String::new();
    };
    let share = 10f64.powf(m.rarity.log10_p);
    // Decimals enough to show the share, truncated so that it never reads 100%.
    let decimals = ((-m.rarity.log10_p).ceil() as i32 - 2).clamp(0, 4);
    let unit = 10f64.powi(decimals);
    let rarer = ((1.0 - share) * 100.0 * unit).floor() / unit;
    let whose = match m.rarity.group {
        Some(g) => format!(
            "the history of learned peer group {} ({} agents in training)",
            g,
            m.model.group_size(g)
        ),
        None => {
            "the fleet's history (the agent is not yet assigned to a learned peer group)".into()
        }
    };
    let minute_of_day = c.ev.time_ms.rem_euclid(86_400_000) / 60_000;
    format!(
        "this combination of hour ({:02}:{:02} UTC), volume ({}), pace ({} events and {} distinct resources in {} min) and familiarity ({} used {:.0} times, pattern {:.0} times) is rarer than {:.*}% of {}",
        minute_of_day / 60,
        minute_of_day % 60,
        bytes(c.ev.bytes.unwrap_or(0)),
        c.obs.window.events,
        c.obs.distinct,
        c.settings.window_secs / 60,
        c.ev.action,
        c.obs.action.count,
        c.obs.pattern.count,
        decimals as usize,
        rarer,
        whose
    )
}

fn bytes(b: u64) -> String {
    match b {
        0..1_000 => format!("{b} B"),
        1_000..1_000_000 => format!("{:.1} kB", b as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        _ => format!("{:.1} GB", b as f64 / 1e9),
    }
}
