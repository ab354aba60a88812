//! Rate: a burst of events against the agent's own peak for this time of day (4-hour blocks,
//! weekdays and weekends apart). A routine hourly job raises its own peak and is not a burst.

use super::{Ctx, ramp};

fn baseline(c: &Ctx<'_>) -> f32 {
    c.obs.rate_peak.max(4.0)
}

/// Score in 0..1.
pub fn score(c: &Ctx<'_>) -> f32 {
    let k = c.obs.window.events as f32;
    if k < 10.0 || c.obs.learned_weight < 20.0 || c.obs.rate_peak <= 0.0 {
        return 0.0;
    }
    ramp((k / baseline(c)).ln(), 1.5f32.ln(), 6.0f32.ln())
}

/// One sentence.
pub fn explain(c: &Ctx<'_>) -> String {
    format!(
        "{} events in {} minutes, {:.1}x this agent's usual peak of {:.0} per window at this time of day",
        c.obs.window.events,
        c.settings.window_secs / 60,
        c.obs.window.events as f32 / baseline(c),
        c.obs.rate_peak
    )
}
