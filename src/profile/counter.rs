//! Bounded, decaying frequency tables: exact counts for the top entries and a membership sketch
//! for everything that was ever evicted, so "seen before" stays answerable at a fixed size.

use serde::{Deserialize, Serialize};

/// Event time in whole minutes since the epoch (fits in `u32` until the year 10,000).
pub type Minute = u32;

/// Converts epoch milliseconds to [`Minute`]s.
pub fn minute_of(time_ms: i64) -> Minute {
    (time_ms.max(0) / 60_000) as Minute
}

/// How counts fade with event time.
#[derive(Clone, Copy, Debug)]
pub struct Decay {
    /// `1 / half-life` in minutes.
    inv_half_life_min: f32,
}

impl Decay {
    /// A decay with the given half-life in days (0 or less disables decay).
    pub fn with_half_life_days(days: f64) -> Self {
        let inv = if days > 0.0 {
            1.0 / (days * 1440.0)
        } else {
            0.0
        };
        Decay {
            inv_half_life_min: inv as f32,
        }
    }

    /// The factor by which a count made at `then` has faded by `now`.
    #[inline]
    pub fn factor(&self, then: Minute, now: Minute) -> f32 {
        if now <= then || self.inv_half_life_min == 0.0 {
            1.0
        } else {
            (-((now - then) as f32) * self.inv_half_life_min).exp2()
        }
    }
}

/// One entry: a key, its decayed count as of `at`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// Hashed key.
    pub key: u64,
    /// Count as of `at`.
    pub count: f32,
    /// When the count was last updated.
    pub at: Minute,
}

/// A bounded table of decaying counts with a sketch of evicted keys.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BoundedCounter {
    entries: Vec<Entry>,
    cap: u16,
    /// Bloom filter (two probes) of keys evicted from `entries`.
    sketch: Vec<u64>,
    /// How many distinct keys were ever inserted.
    distinct: u32,
}

/// What the table knows about a key.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Lookup {
    /// Decayed count (0 when absent or only in the sketch).
    pub count: f32,
    /// The key was seen before (in the table or, approximately, in the sketch).
    pub seen: bool,
}

impl BoundedCounter {
    /// A table holding at most `cap` exact entries and a sketch of `sketch_bits` bits.
    pub fn new(cap: usize, sketch_bits: usize) -> Self {
        BoundedCounter {
            entries: Vec::new(),
            cap: cap.clamp(1, u16::MAX as usize) as u16,
            sketch: vec![0; sketch_bits.div_ceil(64).max(1)],
            distinct: 0,
        }
    }

    /// Bytes of memory this table uses at most.
    pub fn max_bytes(&self) -> usize {
        self.cap as usize * std::mem::size_of::<Entry>()
            + self.sketch.len() * 8
            + std::mem::size_of::<Self>()
    }

    /// Number of distinct keys ever inserted.
    pub fn distinct(&self) -> u32 {
        self.distinct
    }

    /// Number of exact entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key was ever inserted.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.distinct == 0
    }

    /// The exact entries.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Looks a key up, decaying its count to `now`.
    #[inline]
    pub fn get(&self, key: u64, now: Minute, decay: Decay) -> Lookup {
        match self.entries.iter().find(|e| e.key == key) {
            Some(e) => Lookup {
                count: e.count * decay.factor(e.at, now),
                seen: true,
            },
            None => Lookup {
                count: 0.0,
                seen: self.sketch_has(key),
            },
        }
    }

    /// Adds `weight` to `key` at `now`. When the table is full the entry with the smallest
    /// decayed count is evicted into the sketch. With `once_per_day`, a key already credited on
    /// the same day is not credited again (slow, poisoning-resistant learning).
    pub fn add(&mut self, key: u64, weight: f32, now: Minute, decay: Decay, once_per_day: bool) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.key == key) {
            if once_per_day && e.at / 1440 == now / 1440 {
                return;
            }
            e.count = e.count * decay.factor(e.at, now) + weight;
            e.at = e.at.max(now);
            return;
        }
        if !self.sketch_has(key) {
            self.distinct = self.distinct.saturating_add(1);
        }
        let entry = Entry {
            key,
            count: weight,
            at: now,
        };
        if self.entries.len() < self.cap as usize {
            self.entries.push(entry);
            return;
        }
        let (idx, _) = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (i, e.count * decay.factor(e.at, now)))
            .fold(
                (0, f32::INFINITY),
                |best, cur| if cur.1 < best.1 { cur } else { best },
            );
        let evicted = std::mem::replace(&mut self.entries[idx], entry);
        self.sketch_insert(evicted.key);
    }

    /// Sum of all exact counts, decayed to `now`.
    pub fn total(&self, now: Minute, decay: Decay) -> f32 {
        self.entries
            .iter()
            .map(|e| e.count * decay.factor(e.at, now))
            .sum()
    }

    fn probes(&self, key: u64) -> (usize, usize) {
        let bits = self.sketch.len() * 64;
        let h2 = key.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15;
        ((key % bits as u64) as usize, (h2 % bits as u64) as usize)
    }

    fn sketch_has(&self, key: u64) -> bool {
        let (a, b) = self.probes(key);
        self.sketch[a / 64] & (1 << (a % 64)) != 0 && self.sketch[b / 64] & (1 << (b % 64)) != 0
    }

    fn sketch_insert(&mut self, key: u64) {
        let (a, b) = self.probes(key);
        self.sketch[a / 64] |= 1 << (a % 64);
        self.sketch[b / 64] |= 1 << (b % 64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_decay_by_half_life() {
        let d = Decay::with_half_life_days(1.0);
        let mut c = BoundedCounter::new(4, 256);
        c.add(1, 4.0, 0, d, false);
        let l = c.get(1, 1440, d);
        assert!((l.count - 2.0).abs() < 1e-4);
        assert!(l.seen);
        assert!(!c.get(2, 1440, d).seen);
    }

    #[test]
    fn full_table_evicts_smallest_into_sketch() {
        let d = Decay::with_half_life_days(0.0);
        let mut c = BoundedCounter::new(2, 1024);
        c.add(1, 5.0, 0, d, false);
        c.add(2, 1.0, 0, d, false);
        c.add(3, 3.0, 0, d, false);
        assert_eq!(c.len(), 2);
        let evicted = c.get(2, 0, d);
        assert_eq!(evicted.count, 0.0);
        assert!(evicted.seen, "evicted keys are remembered as seen");
        assert_eq!(c.get(3, 0, d).count, 3.0);
        assert_eq!(c.distinct(), 3);
    }

    #[test]
    fn once_per_day_credits_a_key_once_a_day() {
        let d = Decay::with_half_life_days(0.0);
        let mut c = BoundedCounter::new(4, 64);
        c.add(7, 0.25, 10, d, true);
        c.add(7, 0.25, 20, d, true);
        assert_eq!(c.get(7, 20, d).count, 0.25);
        c.add(7, 0.25, 1440 + 5, d, true);
        assert_eq!(c.get(7, 1440 + 5, d).count, 0.5);
    }
}
