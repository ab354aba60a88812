//! The naive baseline of the ablation: per-agent frequency rarity of the exact action and the
//! exact resource, learned from every event. What a first attempt at "flag what is rare" gives.

use rustc_hash::FxHashMap;

use crate::detect::Verdict;
use crate::event::AccessEvent;

/// Per-agent counts of actions and resources.
#[derive(Debug, Default)]
pub struct Naive {
    counts: FxHashMap<String, (u64, FxHashMap<String, u64>)>,
}

impl Naive {
    /// Scores an event by how rare its action and resource are for its agent, then learns it.
    pub fn score(&mut self, ev: &AccessEvent<'_>) -> Verdict {
        let (total, seen) = self.counts.entry(ev.agent_id.to_string()).or_default();
        let a_key = format!("a\u{1f}{}", ev.action);
        let r_key = format!("r\u{1f}{}", ev.resource);
        let a = *seen.get(&a_key).unwrap_or(&0);
        let r = *seen.get(&r_key).unwrap_or(&0);
        let score = if *total < 20 {
            0.0
        } else {
            (1.0 / (1.0 + a as f32)).max(0.7 / (1.0 + r as f32))
        };
        *total += 1;
        *seen.entry(a_key).or_default() += 1;
        *seen.entry(r_key).or_default() += 1;
        Verdict {
            score,
            reasons: Vec::new(),
            strong: 1,
            without_model: score,
            reach: false,
            foreign: false,
            instructed: false,
            new_action: false,
            outside_class: false,
        }
    }
}
