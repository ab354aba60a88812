//! Sequence: an action that the session's previous action is rarely or never followed by, in this
//! agent's sessions.

use super::{Ctx, ramp};

fn prob(c: &Ctx<'_>) -> Option<(f32, f32)> {
    let (from, this) = c.obs.transition?;
    if from < 10.0 {
        return None;
    }
    Some(((this + 0.1) / (from + 1.0), from))
}

/// Score in 0..1.
pub fn score(c: &Ctx<'_>) -> f32 {
    match prob(c) {
        Some((p, _)) => ramp(-p.ln(), 10.0f32.ln(), 300.0f32.ln()),
        None => 0.0,
    }
}

/// One sentence.
pub fn explain(c: &Ctx<'_>) -> String {
    let (p, from) = prob(c).unwrap_or((1.0, 0.0));
    format!(
        "{} follows the session's previous action with probability {:.3} in {:.0} transitions seen from it in this agent's sessions",
        c.ev.action, p, from
    )
}
