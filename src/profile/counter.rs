//! Bounded, decaying frequency tables: exact counts for the top entries and a membership sketch
//! for everything that was ever evicted, so "seen before" stays answerable at a fixed size.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// Event time in whole minutes since the epoch (fits in `u32` until the year 10,000).
pub(crate) type Minute = u32;

/// Converts epoch milliseconds to [`Minute`]s.
pub(crate) fn minute_of(time_ms: i64) -> Minute {
    (time_ms.max(0) / 60_000) as Minute
}

/// `2^x` for `x <= 0`, to a relative error below 2e-4: the exponent goes straight into the
/// float's bits and a polynomial covers the fraction. Pure arithmetic, so it gives the same bits
/// on every platform (unlike the C library's `exp2f`), and it is several times faster.
#[inline]
pub(crate) fn exp2_neg(x: f32) -> f32 {
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

/// The capacity a full table of `len` entries grows to, bounded by `bound`: 1, 3, 6, 12, 15,
/// 18, 22, ... (a quarter at a time past a dozen, so that a full-grown table holds little slack),
/// never beyond the bound, and always room for one more.
pub(crate) fn gentle_capacity(len: usize, bound: usize) -> usize {
    let want = match len {
        0 => 1,
        1..12 => (len * 2).max(3),
        _ => len + len / 4,
    };
    want.min(bound).max(len + 1)
}

/// Grows `v` to [`gentle_capacity`] when it is full, so that one more element fits without
/// doubling.
pub(crate) fn reserve_gently<T>(v: &mut Vec<T>, bound: usize) {
    if v.len() == v.capacity() {
        let len = v.len();
        v.reserve_exact(gentle_capacity(len, bound) - len);
    }
}

/// How counts fade with event time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Decay {
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
/// The exact entries are kept sorted by key in a vector that grows with use (up to `cap`; a
/// single entry is held in place), so a new or quiet agent's tables cost a few bytes and a full
/// one costs `cap` entries, with no hash-index overhead. Lookups are a binary search over at most `cap` keys. Eviction, which only
/// happens when a new key arrives at a full table, scans for the smallest decayed count and
/// breaks ties by key, so the result never depends on the layout. The sketch of evicted keys is
/// allocated at the first eviction (before it, it is all zeros and reads as empty).
#[derive(Clone, Debug)]
pub(crate) struct BoundedCounter {
    /// Exact entries, sorted by key.
    entries: SmallVec<[(u64, Slot); 1]>,
    /// Bloom filter (two probes) of keys evicted from `entries`, of `words` words; `None` until
    /// the first eviction (boxed twice, so that a table without one holds a thin pointer).
    sketch: Option<Box<Box<[u64]>>>,
    /// Length of the sketch in 64-bit words (a table of at most `u16::MAX` entries never
    /// asks for more than a quarter of that).
    words: u16,
    /// How many distinct keys were ever inserted.
    distinct: u32,
    cap: u16,
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
    /// Nothing is allocated until the first key arrives.
    pub fn new(cap: usize, sketch_bits: usize) -> Self {
        BoundedCounter {
            entries: SmallVec::new(),
            sketch: None,
            words: sketch_bits.div_ceil(64).clamp(1, u16::MAX as usize) as u16,
            distinct: 0,
            cap: cap.clamp(1, u16::MAX as usize) as u16,
        }
    }

    /// Bytes of memory this table uses at most.
    #[cfg(test)]
    pub fn max_bytes(&self) -> usize {
        self.cap as usize * std::mem::size_of::<(u64, Slot)>()
            + self.words as usize * 8
            + std::mem::size_of::<Box<[u64]>>()
            + std::mem::size_of::<Self>()
    }

    /// Bytes this table holds on the heap now (its entries and sketch).
    pub fn allocated_bytes(&self) -> usize {
        let entries = if self.entries.spilled() {
            self.entries.capacity() * std::mem::size_of::<(u64, Slot)>()
        } else {
            0
        };
        entries
            + self
                .sketch
                .as_ref()
                .map_or(0, |s| s.len() * 8 + std::mem::size_of::<Box<[u64]>>())
    }

    /// Number of distinct keys ever inserted.
    pub fn distinct(&self) -> u32 {
        self.distinct
    }

    /// The keys held exactly, in ascending order (deterministic).
    pub fn keys(&self) -> Vec<u64> {
        self.held().collect()
    }

    /// The keys held exactly, in ascending order, without collecting them.
    pub fn held(&self) -> impl Iterator<Item = u64> + '_ {
        self.entries.iter().map(|(k, _)| *k)
    }

    #[inline]
    fn find(&self, key: u64) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.cmp(&key))
    }

    /// Looks a key up, decaying its count to `now`.
    #[inline]
    pub fn get(&self, key: u64, now: Minute, decay: Decay) -> Lookup {
        match self.find(key) {
            Ok(i) => {
                let e = &self.entries[i].1;
                Lookup {
                    count: e.count * decay.factor(e.at, now),
                    seen: true,
                }
            }
            Err(_) => Lookup {
                count: 0.0,
                seen: self.sketch_has(key),
            },
        }
    }

    /// Adds `weight` to `key` at `now`. When the table is full the entry with the smallest
    /// decayed count is evicted into the sketch. With `once_per_day`, a key already credited on
    /// the same day is not credited again (slow, poisoning-resistant learning).
    pub fn add(&mut self, key: u64, weight: f32, now: Minute, decay: Decay, once_per_day: bool) {
        let at = match self.find(key) {
            Ok(i) => {
                let e = &mut self.entries[i].1;
                if once_per_day && e.at / 1440 == now / 1440 {
                    return;
                }
                e.count = e.count * decay.factor(e.at, now) + weight;
                e.at = e.at.max(now);
                return;
            }
            Err(at) => at,
        };
        if !self.sketch_has(key) {
            self.distinct = self.distinct.saturating_add(1);
        }
        if self.entries.len() >= self.cap as usize {
            let victim = self
                .entries
                .iter()
                .enumerate()
                .map(|(i, (k, e))| (i, *k, e.count * decay.factor(e.at, now)))
                .min_by(|a, b| a.2.total_cmp(&b.2).then(a.1.cmp(&b.1)))
                .map(|(i, k, _)| (i, k));
            if let Some((i, k)) = victim {
                self.sketch_insert(k);
                // The new entry takes the victim's place and only the entries between the two
                // move, one step (a removal and an insertion would move everything after each).
                let entry = (
                    key,
                    Slot {
                        count: weight,
                        at: now,
                    },
                );
                if i < at {
                    self.entries[i..at].rotate_left(1);
                    self.entries[at - 1] = entry;
                } else {
                    self.entries[at..=i].rotate_right(1);
                    self.entries[at] = entry;
                }
                return;
            }
        }
        if self.entries.len() == self.entries.capacity() {
            let len = self.entries.len();
            self.entries
                .reserve_exact(gentle_capacity(len, self.cap as usize) - len);
        }
        self.entries.insert(
            at,
            (
                key,
                Slot {
                    count: weight,
                    at: now,
                },
            ),
        );
    }

    fn probes(&self, key: u64) -> (usize, usize) {
        let bits = self.words as u64 * 64;
        let h2 = key.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15;
        ((key % bits) as usize, (h2 % bits) as usize)
    }

    #[inline]
    fn sketch_has(&self, key: u64) -> bool {
        let Some(sketch) = &self.sketch else {
            return false;
        };
        let (a, b) = self.probes(key);
        sketch[a / 64] & (1 << (a % 64)) != 0 && sketch[b / 64] & (1 << (b % 64)) != 0
    }

    fn sketch_insert(&mut self, key: u64) {
        let (a, b) = self.probes(key);
        let words = self.words as usize;
        let sketch = self
            .sketch
            .get_or_insert_with(|| Box::new(vec![0; words].into_boxed_slice()));
        sketch[a / 64] |= 1 << (a % 64);
        sketch[b / 64] |= 1 << (b % 64);
    }

    /// The sketch's words (zeros when it was never needed).
    fn sketch_words(&self) -> impl ExactSizeIterator<Item = u64> + '_ {
        let words = self.words as usize;
        (0..words).map(move |i| self.sketch.as_ref().map_or(0, |s| s[i]))
    }
}

impl PartialEq for BoundedCounter {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
            && self.cap == other.cap
            && self.distinct == other.distinct
            && self.words == other.words
            && self.sketch_words().eq(other.sketch_words())
    }
}

// The serialised form is the one of the table's first layout (a map of entries, the bound, the
// whole sketch, the distinct count), so checkpoints written before and after read the same.

/// The entries, serialised as a map in key order.
struct EntriesRef<'a>(&'a [(u64, Slot)]);

impl Serialize for EntriesRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// The sketch, serialised whole (zeros when it was never needed).
struct SketchRef<'a>(&'a BoundedCounter);

impl Serialize for SketchRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.sketch_words())
    }
}

#[derive(Serialize)]
#[serde(rename = "BoundedCounter")]
struct Stored<'a> {
    entries: EntriesRef<'a>,
    cap: u16,
    sketch: SketchRef<'a>,
    distinct: u32,
}

#[derive(Deserialize)]
#[serde(rename = "BoundedCounter")]
struct Restored {
    entries: std::collections::BTreeMap<u64, Slot>,
    cap: u16,
    sketch: Vec<u64>,
    distinct: u32,
}

impl Serialize for BoundedCounter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Stored {
            entries: EntriesRef(&self.entries[..]),
            cap: self.cap,
            sketch: SketchRef(self),
            distinct: self.distinct,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for BoundedCounter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = Restored::deserialize(d)?;
        if r.sketch.is_empty() || r.sketch.len() > u16::MAX as usize {
            return Err(serde::de::Error::invalid_length(
                r.sketch.len(),
                &"a sketch of 1 to 65535 words",
            ));
        }
        let mut entries: SmallVec<[(u64, Slot); 1]> = r.entries.into_iter().collect();
        entries.shrink_to_fit();
        Ok(BoundedCounter {
            entries,
            words: r.sketch.len() as u16,
            sketch: r
                .sketch
                .iter()
                .any(|w| *w != 0)
                .then(|| Box::new(r.sketch.into_boxed_slice())),
            distinct: r.distinct,
            cap: r.cap,
        })
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
        assert_eq!(c.keys().len(), 2);
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

    proptest::proptest! {
        /// Adding keys to a full table keeps what a plain model keeps: sorted entries, the
        /// smallest decayed count (ties to the smaller key) evicted for each new key, counts
        /// decayed and credited as `add` says.
        #[test]
        fn add_keeps_what_a_plain_model_keeps(
            steps in proptest::collection::vec((0u64..40, 1u8..4, 0u32..600, proptest::bool::ANY), 1..200),
        ) {
            let decay = Decay::with_half_life_days(0.1);
            let mut c = BoundedCounter::new(8, 256);
            let mut model: std::collections::BTreeMap<u64, Slot> = Default::default();
            let mut now = 0;
            for (key, weight, gap, once) in steps {
                now += gap;
                let weight = weight as f32 * 0.5;
                c.add(key, weight, now, decay, once);
                if let Some(e) = model.get_mut(&key) {
                    if !(once && e.at / 1440 == now / 1440) {
                        e.count = e.count * decay.factor(e.at, now) + weight;
                        e.at = e.at.max(now);
                    }
                } else {
                    if model.len() >= 8 {
                        let victim = model
                            .iter()
                            .map(|(k, e)| (*k, e.count * decay.factor(e.at, now)))
                            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
                            .map(|(k, _)| k)
                            .expect("a full table");
                        model.remove(&victim);
                    }
                    model.insert(key, Slot { count: weight, at: now });
                }
                let held: Vec<(u64, Slot)> = c.entries.iter().copied().collect();
                let want: Vec<(u64, Slot)> = model.iter().map(|(k, e)| (*k, *e)).collect();
                proptest::prop_assert_eq!(held, want);
            }
        }
    }
}
