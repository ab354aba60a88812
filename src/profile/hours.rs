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
#[derive(Clone, Debug)]
pub(crate) struct HourHistogram {
    week: Week,
    /// `week` folded onto the 24 hours of the day.
    day: [f32; 24],
    total: f32,
    /// The minute the weights are scaled from.
    base: Minute,
}

/// Hours of the week a histogram keeps in place before it lays the week out whole.
const FEW: usize = 6;

/// The weights per hour of the week: the few hours with a weight (a young or quiet agent's),
/// or the whole week. An hour not listed weighs 0, as in the whole week.
#[derive(Clone, Debug)]
enum Week {
    /// The first `len` hours, ascending, and their weights.
    Few {
        len: u8,
        hours: [u8; FEW],
        weights: [f32; FEW],
    },
    All(Box<[f32; WEEK]>),
}

impl Week {
    const EMPTY: Week = Week::Few {
        len: 0,
        hours: [0; FEW],
        weights: [0.0; FEW],
    };

    #[inline]
    fn get(&self, hour: usize) -> f32 {
        match self {
            Week::Few {
                len,
                hours,
                weights,
            } => hours[..*len as usize]
                .iter()
                .position(|h| *h as usize == hour)
                .map_or(0.0, |i| weights[i]),
            Week::All(w) => w[hour],
        }
    }

    /// Adds `v` to an hour's weight.
    fn add(&mut self, hour: usize, v: f32) {
        if let Week::Few {
            len,
            hours,
            weights,
        } = self
        {
            let n = *len as usize;
            let at = hours[..n].partition_point(|h| (*h as usize) < hour);
            if at < n && hours[at] as usize == hour {
                weights[at] += v;
                return;
            }
            if n < FEW {
                hours.copy_within(at..n, at + 1);
                weights.copy_within(at..n, at + 1);
                hours[at] = hour as u8;
                weights[at] = 0.0;
                weights[at] += v;
                *len += 1;
                return;
            }
            *self = Week::All(Box::new(self.whole()));
        }
        if let Week::All(w) = self {
            w[hour] += v;
        }
    }

    fn scale(&mut self, f: f32) {
        match self {
            Week::Few { len, weights, .. } => {
                for w in &mut weights[..*len as usize] {
                    *w *= f;
                }
            }
            Week::All(w) => {
                for h in w.iter_mut() {
                    *h *= f;
                }
            }
        }
    }

    /// The hours with a weight, ascending (the whole week once laid out).
    fn iter(&self) -> Box<dyn Iterator<Item = (usize, f32)> + '_> {
        match self {
            Week::Few {
                len,
                hours,
                weights,
            } => Box::new(
                hours[..*len as usize]
                    .iter()
                    .zip(weights)
                    .map(|(h, w)| (*h as usize, *w)),
            ),
            Week::All(w) => Box::new(w.iter().copied().enumerate()),
        }
    }

    fn whole(&self) -> [f32; WEEK] {
        let mut all = [0.0; WEEK];
        for (h, w) in self.iter() {
            all[h] = w;
        }
        all
    }
}

impl PartialEq for HourHistogram {
    fn eq(&self, other: &Self) -> bool {
        self.week.whole() == other.week.whole()
            && self.day == other.day
            && self.total == other.total
            && self.base == other.base
    }
}

// Serialised with the whole week (its first layout), so checkpoints read the same either way.
#[derive(Serialize, Deserialize)]
#[serde(rename = "HourHistogram")]
struct Stored {
    week: Vec<f32>,
    day: [f32; 24],
    total: f32,
    base: Minute,
}

impl Serialize for HourHistogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Stored {
            week: self.week.whole().to_vec(),
            day: self.day,
            total: self.total,
            base: self.base,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for HourHistogram {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Stored::deserialize(d)?;
        let week: [f32; WEEK] = s
            .week
            .as_slice()
            .try_into()
            .map_err(|_| serde::de::Error::invalid_length(s.week.len(), &"168 hours"))?;
        let mut few = Week::EMPTY;
        let used = week.iter().filter(|w| w.to_bits() != 0).count();
        let week = if used <= FEW {
            for (h, w) in week.iter().enumerate() {
                if w.to_bits() != 0 {
                    few.add(h, *w);
                }
            }
            few
        } else {
            Week::All(Box::new(week))
        };
        Ok(HourHistogram {
            week,
            day: s.day,
            total: s.total,
            base: s.base,
        })
    }
}

impl HourHistogram {
    /// Bytes held on the heap at most.
    pub const HEAP_BYTES: usize = WEEK * 4;

    /// An empty histogram whose weights are scaled from `base`.
    pub fn new(base: Minute) -> Self {
        HourHistogram {
            week: Week::EMPTY,
            day: [0.0; 24],
            total: 0.0,
            base,
        }
    }

    /// Bytes held on the heap now.
    pub fn allocated_bytes(&self) -> usize {
        match self.week {
            Week::Few { .. } => 0,
            Week::All(_) => Self::HEAP_BYTES,
        }
    }

    fn rebuild(&mut self) {
        self.day = [0.0; 24];
        for (i, v) in self.week.iter() {
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
            self.week.scale(f);
            self.base = now;
            self.week.add(how, 1.0);
            self.rebuild();
        } else {
            self.week.add(how, grow);
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
            .map(|(o, w)| w * self.week.get((h + o).rem_euclid(WEEK as isize) as usize))
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
            let (got, want) = (h.shares(how), shares_by_scan(&h.week.whole(), how));
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
