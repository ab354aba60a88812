//! Trend: a place the agent took up recently (see [`crate::profile::probation`]) whose use has
//! grown day after day, faster than the agent's other activity.
//!
//! Baseline poisoning starts small (an access or two to a place the agent never used, scored
//! as mildly unusual and learned a little) and grows each day, so that every day's dose is only
//! a little more than what the baseline has just learned. The other detectors compare each
//! event with that moving baseline; this one compares the place's daily use with its own first
//! days, which learning does not move. A place taken up for good is used at a steady rate from
//! its first full day; one whose use keeps rising is being ramped up.

use super::{Ctx, ramp};
use crate::profile::probation::{Place, Uptake};

/// Least rise of a day's use (see [`growth`]) over the highest before it that makes a new
/// high.
const STEP: f32 = 1.25;

/// Least rise in uses over the highest day before it that makes a new high: one more use than
/// the day before says nothing at counts this small.
const MIN_RISE: u16 = 2;

/// A finished day whose use falls below this share of the high ends a run: the use stopped
/// rising.
const FALL: f32 = 0.5;

/// A run of rising use ending today: days that set a new high, with pauses between them (days
/// that neither set a high nor fall far below it, such as a busy day of other work).
struct Growth {
    /// New highs in the run, today the last of them.
    steps: usize,
    /// Rise of the use per other event from the run's first day to today.
    factor: f32,
    /// Uses on the days of the run, today (so far) last.
    uses: Vec<u16>,
}

/// The run of rising use of the place ending today, if today sets a new high.
///
/// A day's use is measured per event of the agent's other activity that day, or of its usual
/// day when it did less (a weekend, or today so far): only a busier day than usual explains
/// more use. One use is added to every day, so that one or two uses more on a quiet day do
/// not count as a rise. The first day of use is left out: a place taken up for good is
/// usually taken up part-way through a day, so its first full day would always look like one.
fn growth(u: &Uptake) -> Option<Growth> {
    let other = |i: usize| u.events[i].saturating_sub(u32::from(u.uses[i]));
    let days: Vec<(u16, f32)> = (0..=u.age_days)
        .filter(|&i| u.uses[i] > 0)
        .skip(1)
        .map(|i| {
            let n = u.uses[i];
            let per = other(i).max(u.usual_events).max(1) as f32;
            (n, (f32::from(n) + 1.0) / per)
        })
        .collect();
    let last = days.len().checked_sub(1)?;
    let (mut start, mut steps, mut rising) = (0, 0, false);
    let (mut high_uses, mut high) = days[0];
    for (i, &(n, rate)) in days.iter().enumerate().skip(1) {
        rising = rate >= STEP * high && n >= high_uses.saturating_add(MIN_RISE);
        if rising {
            steps += 1;
            (high_uses, high) = (n, rate);
        } else if i < last && rate < FALL * high {
            (start, steps, high_uses, high) = (i, 0, n, rate);
        }
    }
    if !rising || steps < 2 {
        return None;
    }
    Some(Growth {
        steps,
        factor: high / days[start].1,
        uses: days[start..].iter().map(|d| d.0).collect(),
    })
}

/// Score in 0..1, for an event that makes today a new high: three new highs that multiply the
/// use eightfold score 0.95; two, or a fourfold rise, at most half as much (a finding takes
/// three highs and a rise of about 4.8 times when nothing else is unusual).
pub fn score(c: &Ctx<'_>) -> f32 {
    let Some(g) = c.obs.uptake.as_ref().and_then(growth) else {
        return 0.0;
    };
    0.95 * ramp(g.steps as f32, 1.0, 3.0) * ramp(g.factor.log2(), 1.0, 3.0)
}

/// One sentence.
pub(crate) fn explain(c: &Ctx<'_>) -> String {
    let (Some(u), Some(g)) = (
        c.obs.uptake.as_ref(),
        c.obs.uptake.as_ref().and_then(growth),
    ) else {
        return String::new();
    };
    let place = match (u.place, u.places) {
        (Place::Area, _) => format!("resource area {}", c.keys.prefix()),
        (Place::Pattern, 1) => format!("resource pattern {}", c.keys.pattern),
        (Place::Pattern, n) => format!("{n} resource patterns new in {}", c.keys.prefix()),
        (Place::Resource, 1) => format!("resource {}", c.ev.resource),
        (Place::Resource, n) => format!("{n} resources new behind {}", c.keys.pattern),
    };
    let (today, before) = g.uses.split_last().unwrap_or((&0, &[]));
    let before: Vec<String> = before.iter().map(u16::to_string).collect();
    format!(
        "{place}, first used {} days ago, reached a new high of daily use {} times: {today} times today after {} on the days before, {:.1}x as often relative to the agent's other activity",
        u.age_days,
        g.steps,
        before.join(", "),
        g.factor
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::probation::PROBATION_DAYS;

    fn uptake(uses: &[u16], events: &[u32], usual_events: u32) -> Uptake {
        let mut u = Uptake {
            place: Place::Area,
            places: 1,
            usual_events,
            age_days: uses.len() - 1,
            uses: [0; PROBATION_DAYS],
            events: [0; PROBATION_DAYS],
        };
        u.uses[..uses.len()].copy_from_slice(uses);
        u.events[..events.len()].copy_from_slice(events);
        u
    }

    #[test]
    fn a_doubling_use_is_a_trend_and_a_steady_one_is_not() {
        let u = uptake(&[1, 2, 4, 8, 16], &[101, 102, 104, 108, 116], 100);
        let g = growth(&u).expect("rising");
        assert_eq!(g.steps, 3);
        assert!((g.factor - 17.0 / 3.0).abs() < 1e-4, "{}", g.factor);
        assert_eq!(g.uses, [2, 4, 8, 16]);
        // Taken up part-way through its first day, then used steadily.
        assert!(growth(&uptake(&[1, 6, 8], &[101, 106, 108], 100)).is_none());
        let steady = uptake(&[1, 6, 5, 7, 6], &[101, 106, 105, 107, 106], 100);
        assert!(growth(&steady).is_none());
        // Used more only because the agent did more of everything (a Monday after a weekend).
        assert!(growth(&uptake(&[1, 2, 4, 16], &[21, 22, 44, 176], 20)).is_none());
        // One use more each day is not a rise at these counts.
        assert!(growth(&uptake(&[1, 1, 2, 3, 4], &[100; 5], 100)).is_none());
    }

    #[test]
    fn quiet_days_count_as_usual_ones() {
        // Early today: 12 uses among 20 events so far, after 8 among 100 yesterday.
        let u = uptake(&[1, 2, 4, 8, 12], &[100, 100, 100, 100, 20], 100);
        let g = growth(&u).expect("rising");
        assert_eq!(g.steps, 3);
        assert!((g.factor - 13.0 / 3.0).abs() < 1e-4, "{}", g.factor);
        // Days without use are skipped, not counted as a fall.
        let u = uptake(&[1, 2, 0, 4, 0, 8], &[100, 100, 50, 100, 50, 100], 100);
        assert_eq!(growth(&u).expect("rising").steps, 2);
    }

    #[test]
    fn a_pause_keeps_the_run_a_fall_ends_it_and_today_must_be_a_high() {
        // A busy day of other work (200 events) between rising days.
        let u = uptake(&[1, 2, 4, 8, 10, 16], &[100, 100, 100, 100, 200, 100], 100);
        let g = growth(&u).expect("rising");
        assert_eq!((g.steps, g.uses.len()), (3, 5));
        // The use fell by more than half: the run starts again from there.
        assert!(growth(&uptake(&[1, 2, 4, 8, 2, 4], &[100; 6], 100)).is_none());
        // Not (yet) a new high today.
        let u = uptake(&[1, 2, 4, 8, 16, 3], &[100, 100, 100, 100, 100, 30], 100);
        assert!(growth(&u).is_none());
    }
}
