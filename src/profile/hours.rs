//! The hour-of-week histogram of learned events, with its hour-of-day folding and total kept up
//! to date, so reading an hour's share costs a handful of lookups instead of a pass over the week.

use serde::{Deserialize, Serialize};

use super::counter::{Decay, Minute};

/// Hours in a week.
const WEEK: usize = 168;

/// Weights of the neighbouring hours that count towards an hour (schedules shift).
const KERNEL: [(isize, f32); 5] = [(-2, 0.25), (-1, 0.5), (0, 1.0), (1, 0.5), (2, 0.25)];
/// Sum of the kernel's weights.
const KERNEL_SUM: f32 = 2.5;

/// Forward-decayed counts per hour of the week, with their folding onto the hours of the day
/// and their total, all updated together (and serialised together, so a restored histogram
/// reads exactly as the one that was saved).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HourHistogram {
    week: Vec<f32>,
    /// `week` folded onto the 24 hours of the day.
    day: [f32; 24],
    total: f32,
    /// The minute the weights are scaled from.
    base: Minute,
}

impl HourHistogram {
    /// Bytes held on the heap at most.
    pub const HEAP_BYTES: usize = WEEK * 4;

    /// An empty histogram whose weights are scaled from `base`.
    pub fn new(base: Minute) -> Self {
        HourHistogram {
            week: vec![0.0; WEEK],
            day: [0.0; 24],
            total: 0.0,
            base,
        }
    }

    /// Bytes held on the heap now.
    pub fn allocated_bytes(&self) -> usize {
        self.week.capacity() * 4
    }

    fn rebuild(&mut self) {
        self.day = [0.0; 24];
        for (i, v) in self.week.iter().enumerate() {
            self.day[i % 24] += v;
        }
        self.total = self.day.iter().sum();
    }

    /// Adds one learned event at `hour_of_week`, forward-decayed: weights grow with time
    /// instead of old ones shrinking, and are rescaled (moving the base to `now`) when the growth
    /// gets large. Shares are unaffected by the scale.
    pub fn add(&mut self, hour_of_week: u8, now: Minute, decay: Decay) {
        let grow = 1.0 / decay.factor(self.base, now);
        let how = hour_of_week as usize % WEEK;
        if grow > 1e6 || !grow.is_finite() {
            let f = 1.0 / grow;
            for h in &mut self.week {
                *h *= f;
            }
            self.base = now;
            self.week[how] += 1.0;
            self.rebuild();
        } else {
            self.week[how] += grow;
            self.day[how % 24] += grow;
            self.total += grow;
        }
    }

    /// Shares of learned activity around this hour of the week and this hour of the day (0, 0
    /// before anything was learned). Neighbouring hours count too, and a small uniform prior
    /// keeps a short history from calling an hour impossible.
    pub fn shares(&self, hour_of_week: u8) -> (f32, f32) {
        if self.total <= 0.0 {
            return (0.0, 0.0);
        }
        let h = hour_of_week as isize;
        let prior = self.total * 0.02;
        let week: f32 = KERNEL
            .iter()
            .map(|(o, w)| w * self.week[(h + o).rem_euclid(WEEK as isize) as usize])
            .sum::<f32>()
            / KERNEL_SUM;
        let hod = h % 24;
        let day: f32 = KERNEL
            .iter()
            .map(|(o, w)| w * self.day[(hod + o).rem_euclid(24) as usize])
            .sum::<f32>()
            / KERNEL_SUM;
        (
            (week + prior / WEEK as f32) / (self.total + prior),
            (day + prior / 24.0) / (self.total + prior),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shares as a pass over the whole week computes them.
    fn shares_by_scan(week: &[f32], how: u8) -> (f32, f32) {
        let total: f32 = week.iter().sum();
        let h = how as isize;
        let at = |i: isize| week[i.rem_euclid(168) as usize];
        let prior = total * 0.02;
        let w: f32 = KERNEL.iter().map(|(o, k)| k * at(h + o)).sum::<f32>() / 2.5;
        let d: f32 = (0..7)
            .map(|d| {
                KERNEL
                    .iter()
                    .map(|(o, k)| k * at(d * 24 + h % 24 + o))
                    .sum::<f32>()
            })
            .sum::<f32>()
            / 2.5;
        (
            (w + prior / 168.0) / (total + prior),
            (d + prior / 24.0) / (total + prior),
        )
    }

    #[test]
    fn shares_match_a_full_scan_through_rescaling() {
        let decay = Decay::with_half_life_days(2.0);
        let mut h = HourHistogram::new(0);
        assert_eq!(h.shares(10), (0.0, 0.0));
        // Sixty days of a weekday 09:00-17:00 rhythm with some night work: long enough that
        // the forward weights are rescaled several times.
        for minute in (0..60 * 1440).step_by(37) {
            let how = ((minute / 60) % 168) as u8;
            if (9..17).contains(&(how % 24)) || minute % 5 == 0 {
                h.add(how, minute, decay);
            }
        }
        assert!(h.base > 0, "the weights were rescaled");
        for how in 0..168u8 {
            let (got, want) = (h.shares(how), shares_by_scan(&h.week, how));
            assert!(
                (got.0 - want.0).abs() <= 1e-4 * want.0.max(1e-3)
                    && (got.1 - want.1).abs() <= 1e-4 * want.1.max(1e-3),
                "hour {how}: {got:?} vs {want:?}"
            );
        }
        let (office, night) = (h.shares(24 + 12), h.shares(24 + 3));
        assert!(office.0 > 5.0 * night.0 && office.1 > 5.0 * night.1);
    }
}
