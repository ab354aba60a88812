//! Rate: a burst of events against the agent's own peak for this time of day (4-hour blocks,
//! weekdays and weekends apart), over the short window and over the last hour (a sustained
//! drain at a few times the usual pace). A routine hourly job raises its own peaks and is not a
//! burst.

use super::{Ctx, ramp};

fn baseline(c: &Ctx<'_>) -> f32 {
    c.obs.rate_peak.max(4.0)
}

fn hour_baseline(c: &Ctx<'_>) -> f32 {
    c.obs.hour_peak.max(12.0)
}

fn short(c: &Ctx<'_>) -> f32 {
    let k = c.obs.window.events as f32;
    if k < 10.0 || c.obs.rate_peak <= 0.0 {
        return 0.0;
    }
    ramp((k / baseline(c)).ln(), 2.0f32.ln(), 8.0f32.ln())
}

fn hour(c: &Ctx<'_>) -> f32 {
    let k = c.obs.hour_events as f32;
    if k < 30.0 || c.obs.hour_peak <= 0.0 {
        return 0.0;
    }
    ramp((k / hour_baseline(c)).ln(), 2.0f32.ln(), 6.0f32.ln())
}

/// Score in 0..1.
pub fn score(c: &Ctx<'_>) -> f32 {
    if c.obs.learned_weight < 20.0 {
        return 0.0;
    }
    short(c).max(hour(c))
}

/// One sentence.
pub(crate) fn explain(c: &Ctx<'_>) -> String {
    if hour(c) > short(c) {
        format!(
            "{} events in the last hour, {:.1}x this agent's usual peak of {:.0} per hour at this time of day",
            c.obs.hour_events,
            c.obs.hour_events as f32 / hour_baseline(c),
            c.obs.hour_peak
        )
    } else {
        format!(
            "{} events in {} minutes, {:.1}x this agent's usual peak of {:.0} per window at this time of day",
            c.obs.window.events,
            c.settings.window_secs / 60,
            c.obs.window.events as f32 / baseline(c),
            c.obs.rate_peak
        )
    }
}
