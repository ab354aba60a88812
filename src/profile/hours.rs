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

/// Hours of the week a histogram keeps in place before it moves its weights to the heap.
const FEW: usize = 6;

/// The weights per hour of the week: the few hours with a weight (a young or quiet agent's),
/// or every hour with a weight, marked in a bit set and their weights in hour order (an agent
/// that works office hours holds those, not the whole week). An hour not listed weighs 0.
#[derive(Clone, Debug)]
enum Week {
    /// The first `len` hours, ascending, and their weights.
    Few {
        len: u8,
        hours: [u8; FEW],
        weights: [f32; FEW],
    },
    /// The hours with a weight (bit `h % 64` of word `h / 64`) and their weights, ascending by
    /// hour, with no room to spare (an hour is added a few hundred times in an agent's life).
    Many { hours: [u64; 3], weights: Vec<f32> },
}

impl Week {
    const EMPTY: Week = Week::Few {
        len: 0,
        hours: [0; FEW],
        weights: [0.0; FEW],
    };

    /// Where `hour`'s weight is (or would go) in a `Many` list: the hours below it with a weight.
    #[inline]
    fn rank(hours: &[u64; 3], hour: usize) -> usize {
        let (word, bit) = (hour / 64, hour % 64);
        hours[..word]
            .iter()
            .map(|w| w.count_ones() as usize)
            .sum::<usize>()
            + (hours[word] & ((1u64 << bit) - 1)).count_ones() as usize
    }

    #[inline]
    fn has(hours: &[u64; 3], hour: usize) -> bool {
        hours[hour / 64] & (1 << (hour % 64)) != 0
    }

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
            Week::Many { hours, weights } => {
                if Self::has(hours, hour) {
                    weights[Self::rank(hours, hour)]
                } else {
                    0.0
                }
            }
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
            let mut many = Week::Many {
                hours: [0; 3],
                weights: Vec::with_capacity(FEW + 1),
            };
            for (h, w) in self.iter() {
                many.add(h, w);
            }
            *self = many;
        }
        if let Week::Many { hours, weights } = self {
            let at = Self::rank(hours, hour);
            if Self::has(hours, hour) {
                weights[at] += v;
            } else {
                hours[hour / 64] |= 1 << (hour % 64);
                weights.reserve_exact(1);
                weights.insert(at, 0.0);
                weights[at] += v;
            }
        }
    }

    fn scale(&mut self, f: f32) {
        let weights = match self {
            Week::Few { len, weights, .. } => &mut weights[..*len as usize],
            Week::Many { weights, .. } => &mut weights[..],
        };
        for w in weights {
            *w *= f;
        }
    }

    /// The hours with a weight and their weights, ascending.
    fn iter(&self) -> impl Iterator<Item = (usize, f32)> + '_ {
        let (few, many) = match self {
            Week::Few {
                len,
                hours,
                weights,
            } => (
                Some((&hours[..*len as usize], &weights[..*len as usize])),
                None,
            ),
            Week::Many { hours, weights } => (None, Some((hours, weights))),
        };
        let few = few
            .into_iter()
            .flat_map(|(h, w)| h.iter().zip(w).map(|(h, w)| (*h as usize, *w)));
        let many = many.into_iter().flat_map(|(hours, weights)| {
            (0..WEEK)
                .filter(|h| Self::has(hours, *h))
                .zip(weights.iter().copied())
        });
        few.chain(many)
    }

    fn whole(&self) -> [f32; WEEK] {
        let mut all = [0.0; WEEK];
        for (h, w) in self.iter() {
            all[h] = w;
        }
        all
    }

    /// Bytes held on the heap.
    fn heap_bytes(&self) -> usize {
        match self {
            Week::Few { .. } => 0,
            Week::Many { weights, .. } => weights.capacity() * std::mem::size_of::<f32>(),
        }
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
        let mut week_ = Week::EMPTY;
        for (h, w) in week.iter().enumerate() {
            if w.to_bits() != 0 {
                week_.add(h, *w);
            }
        }
        let week = week_;
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
    #[cfg(test)]
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
        self.week.heap_bytes()
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
    fn the_hours_an_agent_uses_are_kept_as_a_whole_week_would_keep_them() {
        // Every layout (a few hours in place, the hours used on the heap) against a plain
        // array of 168 weights, through adds on scattered hours, rescaling and a checkpoint
        // round trip: the same weights bit for bit, and the heap holds the hours used only.
        let mut week = Week::EMPTY;
        let mut plain = [0.0f32; WEEK];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..5_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Office hours on weekdays, most of the time; any hour now and then.
            let hour = if !x.is_multiple_of(100) {
                (x as usize / 100 % 5) * 24 + 9 + x as usize / 1000 % 9
            } else {
                x as usize / 100 % WEEK
            };
            let v = 1.0 + (x % 1000) as f32 / 7.0;
            week.add(hour, v);
            plain[hour] += v;
            if i % 700 == 0 {
                week.scale(0.37);
                plain.iter_mut().for_each(|w| *w *= 0.37);
            }
            if i == 3 {
                assert!(
                    matches!(week, Week::Few { .. }),
                    "a few hours are held in place"
                );
            }
            for h in [hour, (hour + 1) % WEEK, (hour + 97) % WEEK] {
                assert_eq!(week.get(h).to_bits(), plain[h].to_bits(), "hour {h}");
            }
        }
        let whole = week.whole();
        assert!(
            whole
                .iter()
                .zip(&plain)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        let used = plain.iter().filter(|w| **w != 0.0).count();
        assert!(used < WEEK, "some hours were never used");
        assert_eq!(week.heap_bytes(), used * 4);

        let mut h = HourHistogram::new(0);
        h.week = week;
        h.rebuild();
        let bytes = postcard::to_stdvec(&h).unwrap();
        let back: HourHistogram = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.allocated_bytes(), used * 4);
        for how in 0..168u8 {
            assert_eq!(back.shares(how), h.shares(how));
        }
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
