//! Breadth: many distinct resources in a short window (enumeration, scraping), against the
//! agent's usual peak for this time of day.

use super::{Ctx, ramp};

fn baseline(c: &Ctx<'_>) -> f32 {
    c.obs.breadth_peak.max(5.0)
}

/// Score in 0..1.
pub fn score(c: &Ctx<'_>) -> f32 {
    let d = c.obs.distinct as f32;
    if d < 10.0 || c.obs.learned_weight < 20.0 || c.obs.breadth_peak <= 0.0 {
        return 0.0;
    }
    ramp((d / baseline(c)).ln(), 2.0f32.ln(), 8.0f32.ln())
}

/// One sentence.
pub(crate) fn explain(c: &Ctx<'_>) -> String {
    format!(
        "{} distinct resources in {} minutes, {:.1}x this agent's usual peak of {:.0}",
        c.obs.distinct,
        c.settings.window_secs / 60,
        c.obs.distinct as f32 / baseline(c),
        c.obs.breadth_peak
    )
}
