//! Volume: bytes moved by one event against the agent's history for that action, and bytes moved
//! over the short window against its usual peak.

use super::{Ctx, ramp};

fn per_event(c: &Ctx<'_>) -> (f32, f32) {
    let (Some(b), Some(v)) = (c.ev.bytes, c.obs.volume) else {
        return (0.0, 0.0);
    };
    if v.n < 30.0 {
        return (0.0, 0.0);
    }
    // Volumes are heavy-tailed: a spread below a factor of two is not trusted.
    let z = ((b as f32).ln_1p() - v.mean) / v.std().max(0.7);
    (ramp(z, 5.0, 10.0), z)
}

fn per_window(c: &Ctx<'_>) -> f32 {
    let w = c.obs.window.bytes as f32;
    let p = c.obs.bytes_peak.max(1024.0);
    if c.obs.learned_weight < 20.0 || c.obs.bytes_peak <= 0.0 || w <= p {
        return 0.0;
    }
    ramp((w / p).ln(), 3.0f32.ln(), 30.0f32.ln())
}

/// Score in 0..1.
pub fn score(c: &Ctx<'_>) -> f32 {
    per_event(c).0.max(per_window(c))
}

/// One sentence.
pub(crate) fn explain(c: &Ctx<'_>) -> String {
    let (s1, z) = per_event(c);
    if s1 >= per_window(c) {
        // The per-event score is 0 without the agent's volume baseline, so it is never the
        // reason then.
        let v = c.obs.volume.unwrap_or_default();
        format!(
            "{} bytes in one {} call, {z:.1} standard deviations above this agent's typical {:.0} bytes for it",
            c.ev.bytes.unwrap_or(0),
            c.ev.action,
            v.mean.exp_m1()
        )
    } else {
        format!(
            "{} bytes moved in {} minutes, {:.1}x this agent's usual peak of {:.0} bytes per window",
            c.obs.window.bytes,
            c.settings.window_secs / 60,
            c.obs.window.bytes as f32 / c.obs.bytes_peak.max(1024.0),
            c.obs.bytes_peak
        )
    }
}
