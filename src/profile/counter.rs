//! Bounded, decaying frequency tables: exact counts for the top entries and a membership sketch
//! for everything that was ever evicted, so "seen before" stays answerable at a fixed size.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// Event time in whole minutes since the epoch (fits in `u32` until the year 10,000).
pub type Minute = u32;

/// Converts epoch milliseconds to [`Minute`]s.
pub fn minute_of(time_ms: i64) -> Minute {
    (time_ms.max(0) / 60_000) as Minute
}

/// `2^x` for `x <= 0`, to a relative error below 2e-4: the exponent goes straight into the
/// float's bits and a polynomial covers the fraction. Pure arithmetic, so it gives the same bits
/// on every platform (unlike the C library's `exp2f`), and it is several times faster.
#[inline]
pub fn exp2_neg(x: f32) -> f32 {
    if x < -126.0 {
        return 0.0;
    }
    let t = x as i32;
    let fl = if (t as f32) > x { t - 1 } else { t };
    let f = x - fl as f32;
    // Minimax-style cubic for 2^f on [0, 1).
    let p = 1.0 + f * (0.695_555_8 + f * (0.226_173_6 + f * 0.078_024_5));
    let scale = f32::from_bits(((fl + 127) as u32) << 23);
    p * scale
}

/// How counts fade with event time.
#[derive(Clone, Copy, Debug)]
pub struct Decay {
    /// `1 / half-life` in minutes.
    inv_half_life_min: f32,
}

impl Decay {
    /// No fading.
    pub const NONE: Decay = Decay {
        inv_half_life_min: 0.0,
    };

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
            exp2_neg(-((now - then) as f32) * self.inv_half_life_min)
        }
    }
}

/// A bounded table of decaying counts with a sketch of evicted keys.
///
/// Lookups are O(1) (a hash index over the keys, which are already hashes); eviction, which only
/// happens when a new key arrives at a full table, scans for the smallest decayed count and
/// breaks ties by key, so the result never depends on iteration order.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BoundedCounter {
    entries: FxHashMap<u64, Slot>,
    cap: u16,
    /// Bloom filter (two probes) of keys evicted from `entries`.
    sketch: Vec<u64>,
    /// How many distinct keys were ever inserted.
    distinct: u32,
}

/// A count as of a minute.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
struct Slot {
    count: f32,
    at: Minute,
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
            entries: FxHashMap::default(),
            cap: cap.clamp(1, u16::MAX as usize) as u16,
            sketch: vec![0; sketch_bits.div_ceil(64).max(1)],
            distinct: 0,
        }
    }

    /// Bytes of memory this table uses at most.
    pub fn max_bytes(&self) -> usize {
        // The hash index keeps one slot in eight free and one control byte per slot. It grows by
        // doubling, and it rehashes in place instead of growing only while it is at most half
        // full; since evictions leave tombstones, a table of `cap` entries settles at the first
        // power of two with room for `2 * cap`.
        let slots = (self.cap as usize * 16 / 7).next_power_of_two().max(4);
        slots * (std::mem::size_of::<(u64, Slot)>() + 1)
            + self.sketch.len() * 8
            + std::mem::size_of::<Self>()
    }

    /// Bytes this table holds on the heap now (its hash index and sketch).
    pub fn allocated_bytes(&self) -> usize {
        let cap = self.entries.capacity();
        let buckets = if cap == 0 {
            0
        } else {
            (cap * 8 / 7).next_power_of_two().max(4)
        };
        buckets * (std::mem::size_of::<(u64, Slot)>() + 1) + self.sketch.capacity() * 8
    }

    /// Number of distinct keys ever inserted.
    pub fn distinct(&self) -> u32 {
        self.distinct
    }

    /// The keys held exactly, in ascending order (deterministic).
    pub fn keys(&self) -> Vec<u64> {
        let mut k: Vec<u64> = self.entries.keys().copied().collect();
        k.sort_unstable();
        k
    }

    /// Number of exact entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key was ever inserted.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.distinct == 0
    }

    /// Looks a key up, decaying its count to `now`.
    #[inline]
    pub fn get(&self, key: u64, now: Minute, decay: Decay) -> Lookup {
        match self.entries.get(&key) {
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
        if let Some(e) = self.entries.get_mut(&key) {
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
        if self.entries.len() >= self.cap as usize {
            let victim = self
                .entries
                .iter()
                .map(|(k, e)| (*k, e.count * decay.factor(e.at, now)))
                .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
                .map(|(k, _)| k);
            if let Some(k) = victim {
                self.entries.remove(&k);
                self.sketch_insert(k);
            }
        }
        self.entries.insert(
            key,
            Slot {
                count: weight,
                at: now,
            },
        );
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
    fn fast_exp2_is_accurate() {
        let mut x = 0.0f32;
        while x > -40.0 {
            let (got, want) = (exp2_neg(x), x.exp2());
            assert!(((got - want) / want).abs() < 2e-4, "2^{x}: {got} vs {want}");
            x -= 0.0137;
        }
        assert_eq!(exp2_neg(0.0), 1.0);
        assert_eq!(exp2_neg(-200.0), 0.0);
    }

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
