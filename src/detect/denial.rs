//! Denial: a spike of denied or failed calls, the signature of permission probing, against the
//! agent's usual failure rate and peak.

use super::{Ctx, ramp};

/// Score in 0..1.
pub fn score(c: &Ctx<'_>) -> f32 {
    if !c.keys.failed {
        return 0.0;
    }
    let f = c.obs.window.failed as f32;
    let n = c.obs.window.events.max(1) as f32;
    let usual = c.obs.failed_peak.max(1.0);
    let excess = ramp(f - 1.5 * usual, 1.0, 8.0);
    let ratio =
        ramp(f / n, 0.3, 0.8) * ramp(f, 2.0, 5.0) * (1.0 - ramp(c.obs.failed_rate, 0.05, 0.3));
    excess.max(ratio)
}

/// One sentence.
pub(crate) fn explain(c: &Ctx<'_>) -> String {
    format!(
        "{} of {} calls in {} minutes were denied or failed; this agent's usual peak is {:.0} and {:.1}% of its calls fail",
        c.obs.window.failed,
        c.obs.window.events,
        c.settings.window_secs / 60,
        c.obs.failed_peak,
        c.obs.failed_rate * 100.0
    )
}
