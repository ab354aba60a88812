//! Sequence: an action that the session's previous action is rarely or never followed by, in this
//! agent's sessions.

use super::{Ctx, ramp};

/// Transitions seen from the previous action before the estimate is trusted.
const MIN_FROM: f32 = 30.0;
/// Strength of the back-off to the action's overall frequency.
const PRIOR: f32 = 5.0;

fn prob(c: &Ctx<'_>) -> Option<(f32, f32)> {
    let (from, this) = c.obs.transition?;
    // A new action is novelty's business; this judges known actions in an unusual order.
    if from < MIN_FROM || c.obs.action.count < 30.0 {
        return None;
    }
    // Back off to how common the action is overall, so a transition merely not yet seen from
    // a rarely used action is not called impossible.
    let overall =
        (c.obs.action.count + 0.5) / (c.obs.learned_weight + c.obs.actions_known as f32 + 1.0);
    Some(((this + PRIOR * overall) / (from + PRIOR), from))
}

/// Score in 0..1.
pub fn score(c: &Ctx<'_>) -> f32 {
    match prob(c) {
        // Unusual orderings happen in legitimate sessions too: this corroborates, alone it
        // stays below a finding.
        Some((p, _)) => 0.55 * ramp(-p.ln(), 20.0f32.ln(), 500.0f32.ln()),
        None => 0.0,
    }
}

/// One sentence.
pub(crate) fn explain(c: &Ctx<'_>) -> String {
    let (p, from) = prob(c).unwrap_or((1.0, 0.0));
    format!(
        "{} follows the session's previous action with probability {:.3} in {:.0} transitions seen from it in this agent's sessions",
        c.ev.action, p, from
    )
}
