//! Baseline poisoning: a slow ramp over days of another team's data, read through the agent's
//! usual action.
//!
//! On the first day of the ramp the attacker reads one or two objects of the target; every
//! following day it reads more (the daily count grows by a factor drawn from 1.6 to 2.2), for
//! up to [`RAMP_DAYS`] days. Every access lies in the agent's working hours, in a short session
//! that looks like one of its own, from its own addresses, and goes where its grants allow when
//! some target does. A baseline that learns from everything it sees takes each day's dose in,
//! so the next, larger one looks a little less new: the attacker teaches the detector its own
//! behaviour.

use rand::Rng;

use super::AttackPlan;
use super::scenarios::{access, own_session, within_day};
use crate::sim::archetypes;
use crate::sim::clock::DAY;
use crate::sim::fleet::{Agent, World};
use crate::sim::rng::{Domain, SimRng, gap_ms, stream, volume};
use crate::sim::sessions::{Emitter, working_time};

/// Longest ramp, in days.
pub(crate) const RAMP_DAYS: u32 = 7;

/// Candidate targets tried for one the agent's grants allow.
const TARGET_TRIES: u64 = 6;

/// Days of the ramp in a period of `days`: up to [`RAMP_DAYS`], after the clean baseline.
pub(crate) fn ramp_days(days: u32) -> u32 {
    days.saturating_sub(super::baseline_days(days))
        .clamp(1, RAMP_DAYS)
}

/// Accesses per day of the ramp: one or two on the first day, then growing geometrically.
fn daily_counts(rng: &mut SimRng, days: u32) -> Vec<usize> {
    let first = rng.gen_range(1..=2) as f64;
    let growth: f64 = rng.gen_range(1.6..2.2);
    (0..days)
        .map(|k| (first * growth.powi(k as i32)).round().max(1.0) as usize)
        .collect()
}

/// The random stream that draws the target (another team's area and the objects in it): the
/// first of a few candidates whose first object one of the agent's grants allows, else the
/// last. Each day continues the chosen stream, so the target stays the same for the ramp.
fn target(w: &World, a: &Agent, p: &AttackPlan, t: i64) -> SimRng {
    let candidate = |i: u64| stream(w.seed, Domain::Attack, p.idx as u64, (1 << 32) | i);
    for i in 0..TARGET_TRIES {
        let plan = archetypes::lateral(w, a, &mut candidate(i), 1, t);
        if plan
            .resources
            .iter()
            .any(|r| a.grant_for(plan.action, r).is_some())
        {
            return candidate(i);
        }
    }
    candidate(TARGET_TRIES - 1)
}

/// Emits the ramp: each day's accesses in sessions of one to four, spaced at the agent's
/// normal pace for that action.
pub(crate) fn ramp(w: &World, a: &Agent, rng: &mut SimRng, p: &AttackPlan, em: &mut Emitter) {
    let len = ramp_days(w.days);
    let first_day = p.day.min(w.days.saturating_sub(len));
    let counts = daily_counts(rng, len);
    let target = target(w, a, p, w.day_start(first_day));
    let mut done = 0;
    for (k, &n) in counts.iter().enumerate() {
        let ds = w.day_start(first_day + k as u32);
        let mut starts = Vec::new();
        let mut left = n;
        while left > 0 {
            let size = rng.gen_range(1..=4).min(left);
            let t = within_day(working_time(a, ds + rng.gen_range(0..DAY), rng), ds);
            starts.push((t, size));
            left -= size;
        }
        starts.sort_unstable();
        // The day's objects continue the target's sequence where the previous day stopped.
        let plan = archetypes::lateral(w, a, &mut target.clone(), done + n, starts[0].0);
        let mut objects = plan.resources.into_iter().skip(done);
        done += n;
        for (start, size) in starts {
            let mut s = own_session(a, rng, start);
            let mut t = start;
            for resource in objects.by_ref().take(size) {
                let bytes = volume(rng, plan.bytes_median, 0.7);
                access(em, rng, a, &mut s, t, plan.action, resource, bytes, 0.005);
                t += gap_ms(rng, plan.gap_ms, 0.8);
            }
        }
    }
}
