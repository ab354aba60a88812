//! Time of day: activity at an hour of the day or week at which the agent is not normally active.
//! Agents active around the clock are never flagged.

use super::{Ctx, ramp};

fn relative(c: &Ctx<'_>) -> f32 {
    // Share relative to a uniform spread: 1 means as busy as an average hour.
    0.3 * c.obs.hour_share * 168.0 + 0.7 * c.obs.day_hour_share * 24.0
}

/// Score in 0..1.
pub fn score(c: &Ctx<'_>) -> f32 {
    // Five days of history, so the daily rhythm is known.
    if c.obs.learned_weight < 100.0 || c.obs.history_days < 5.0 {
        return 0.0;
    }
    // Schedules shift; an unusual hour corroborates other evidence and alone stays below a
    // finding.
    0.55 * (1.0 - ramp(relative(c), 0.01, 0.15))
}

/// One sentence.
pub(crate) fn explain(c: &Ctx<'_>) -> String {
    let how = c.keys.hour_of_week as usize;
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    format!(
        "activity on {} at {:02}:00 UTC, an hour that holds {:.2}% of this agent's activity ({:.0}% of an average hour)",
        DAYS[how / 24],
        how % 24,
        c.obs.hour_share * 100.0,
        relative(c) * 100.0
    )
}
