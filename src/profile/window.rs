//! Short activity windows: what the agent is doing right now (events, bytes, denials and
//! distinct resources over the last few minutes). These are updated by every event, anomalous or
//! not, and are separate from the slowly learned baseline.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::counter::Minute;

/// One minute of activity.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
struct Slot {
    minute: Minute,
    events: u32,
    failed: u32,
    novel: u32,
    bytes: u64,
}

/// Per-minute activity over the last `SLOTS` minutes: one slot per minute modulo `SLOTS`, each
/// holding the newest minute that fell on it.
///
/// The slots of a quiet agent are few, so they are kept as a short list (in any order: sums do
/// not depend on it) until `SPARSE_MAX` of them are in use; the ring is then laid out whole, one
/// slot per residue.
#[derive(Clone, Debug, Default)]
pub(crate) struct MinuteRing {
    /// Either fewer than `SLOTS` slots in use, in any order, or all `SLOTS` slots, slot `i`
    /// holding minutes `m` with `m % SLOTS == i`.
    slots: Vec<Slot>,
    newest: Minute,
}

impl Slot {
    /// Whether a sum may still read it: it holds events of a minute at or after `read_from`.
    fn live(&self, read_from: Minute) -> bool {
        self.events > 0 && self.minute >= read_from
    }
}

/// Sums over a window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WindowSums {
    /// Events.
    pub events: u32,
    /// Denied or failed events.
    pub failed: u32,
    /// Events on a resource new to the agent (a new pattern, or a new member of a stable set).
    pub novel: u32,
    /// Bytes moved.
    pub bytes: u64,
}

impl MinuteRing {
    /// Number of minutes kept.
    pub const SLOTS: usize = 64;

    /// Slots in use up to which they are kept as a list.
    const SPARSE_MAX: usize = 12;

    /// Records an event at `minute`. Returns false when it is too old for the ring.
    ///
    /// `read_from` is a bound below every minute a sum will read from now on (the caller's
    /// lateness and longest window ensure it): slots older than it are let go, so that an agent
    /// that was busy and is quiet again keeps its few recent minutes in a short list.
    pub fn add(
        &mut self,
        minute: Minute,
        failed: bool,
        novel: bool,
        bytes: u64,
        read_from: Minute,
    ) -> bool {
        if minute + (Self::SLOTS as Minute) <= self.newest {
            return false;
        }
        self.newest = self.newest.max(minute);
        let r = minute as usize % Self::SLOTS;
        if self.dense() && self.slots[r].minute != minute {
            // A minute starts on its slot: at most once a minute, see whether most slots have
            // gone out of reach.
            let live = self.slots.iter().filter(|s| s.live(read_from)).count();
            if live <= Self::SPARSE_MAX / 2 {
                self.slots.retain(|s| s.live(read_from));
                self.slots.shrink_to(Self::SPARSE_MAX);
            }
        }
        let slot = match self.slot_of(minute) {
            Some(i) => &mut self.slots[i],
            None => {
                // A residue not in use: an empty slot (as the whole ring starts).
                if self.slots.len() >= Self::SPARSE_MAX {
                    self.slots.retain(|s| s.live(read_from));
                }
                if self.slots.len() >= Self::SPARSE_MAX {
                    self.spread();
                    &mut self.slots[r]
                } else {
                    if self.slots.len() == self.slots.capacity() {
                        let want = (self.slots.len() * 2).clamp(1, Self::SPARSE_MAX);
                        self.slots.reserve_exact(want - self.slots.len());
                    }
                    self.slots.push(Slot::default());
                    self.slots.last_mut().expect("just pushed")
                }
            }
        };
        if slot.minute != minute {
            if slot.minute > minute {
                return false;
            }
            *slot = Slot {
                minute,
                ..Slot::default()
            };
        }
        slot.events += 1;
        slot.failed += failed as u32;
        slot.novel += novel as u32;
        slot.bytes = slot.bytes.saturating_add(bytes);
        true
    }

    /// Whether the slots are laid out whole.
    fn dense(&self) -> bool {
        self.slots.len() == Self::SLOTS
    }

    /// The index of the slot of `minute`'s residue, if in use.
    #[inline]
    fn slot_of(&self, minute: Minute) -> Option<usize> {
        let r = minute as usize % Self::SLOTS;
        if self.dense() {
            return Some(r);
        }
        self.slots
            .iter()
            .position(|s| s.minute as usize % Self::SLOTS == r)
    }

    /// Lays the slots out whole, one per residue.
    fn spread(&mut self) {
        let mut all = vec![Slot::default(); Self::SLOTS];
        for s in &self.slots {
            all[s.minute as usize % Self::SLOTS] = *s;
        }
        self.slots = all;
    }

    /// Bytes held on the heap now.
    pub fn allocated_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
    }

    /// Bytes held on the heap at most.
    #[cfg(test)]
    pub const MAX_HEAP_BYTES: usize = Self::SLOTS * std::mem::size_of::<Slot>();

    /// Sums over two windows ending at `now` (inclusive), of `a` and `b` minutes, in one pass.
    pub fn sums_two(&self, now: Minute, a: u32, b: u32) -> (WindowSums, WindowSums) {
        let lo_a = now.saturating_sub(a.saturating_sub(1));
        let lo_b = now.saturating_sub(b.saturating_sub(1));
        let (mut sa, mut sb) = (WindowSums::default(), WindowSums::default());
        for slot in &self.slots {
            if slot.minute > now || slot.events == 0 {
                continue;
            }
            if slot.minute >= lo_a {
                sa.add(slot);
            }
            if slot.minute >= lo_b {
                sb.add(slot);
            }
        }
        (sa, sb)
    }

    /// The whole ring, one slot per residue (none before the first event), as serialised.
    fn whole(&self) -> Vec<Slot> {
        if self.slots.is_empty() || self.dense() {
            return self.slots.clone();
        }
        let mut all = vec![Slot::default(); Self::SLOTS];
        for s in &self.slots {
            all[s.minute as usize % Self::SLOTS] = *s;
        }
        all
    }
}

impl PartialEq for MinuteRing {
    fn eq(&self, other: &Self) -> bool {
        self.newest == other.newest && self.whole() == other.whole()
    }
}

// Serialised as the whole ring (its first layout), so checkpoints read the same either way.
#[derive(Serialize, Deserialize)]
#[serde(rename = "MinuteRing")]
struct StoredRing {
    slots: Vec<Slot>,
    newest: Minute,
}

impl Serialize for MinuteRing {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        StoredRing {
            slots: self.whole(),
            newest: self.newest,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for MinuteRing {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = StoredRing::deserialize(d)?;
        if !r.slots.is_empty() && r.slots.len() != Self::SLOTS {
            return Err(serde::de::Error::invalid_length(
                r.slots.len(),
                &"0 or 64 slots",
            ));
        }
        // Keep only the slots in use while they are few (an unused slot is all zeros, as a
        // never-used one reads).
        let used: Vec<Slot> = r
            .slots
            .iter()
            .filter(|s| **s != Slot::default())
            .copied()
            .collect();
        let slots = if used.len() <= Self::SPARSE_MAX && used.len() < r.slots.len() {
            used
        } else {
            r.slots
        };
        Ok(MinuteRing {
            slots,
            newest: r.newest,
        })
    }
}

impl WindowSums {
    fn add(&mut self, slot: &Slot) {
        self.events += slot.events;
        self.failed += slot.failed;
        self.novel += slot.novel;
        self.bytes = self.bytes.saturating_add(slot.bytes);
    }
}

/// Distinct exact resources touched over a short window, bounded.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct DistinctWindow {
    recent: VecDeque<(Minute, u64)>,
}

impl DistinctWindow {
    /// Adds a resource at `minute`, expires entries older than `window` minutes, and returns the
    /// number of distinct resources in the window (at most `cap`).
    pub fn add(&mut self, minute: Minute, resource: u64, window: u32, cap: usize) -> u32 {
        while let Some(&(m, _)) = self.recent.front() {
            if m + window <= minute {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        // A burst's entries are gone once it has passed: give their room back.
        if self.recent.capacity() > 16 && self.recent.len() * 4 < self.recent.capacity() {
            self.recent.shrink_to((self.recent.len() * 2).max(8));
        }
        if !self.recent.iter().any(|&(_, r)| r == resource) {
            if self.recent.len() >= cap {
                self.recent.pop_front();
            }
            if self.recent.capacity() == 0 {
                // A quiet agent's window mostly holds one resource.
                self.recent.reserve_exact(1);
            }
            self.recent
                .push_back((minute.max(self.recent.back().map_or(0, |b| b.0)), resource));
        }
        self.recent.len() as u32
    }

    /// Bytes held on the heap now.
    pub fn allocated_bytes(&self) -> usize {
        self.recent.capacity() * 16
    }

    /// Memory at most, for `cap` entries.
    #[cfg(test)]
    pub fn max_bytes(cap: usize) -> usize {
        cap * 16 + std::mem::size_of::<Self>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_sums_recent_minutes_only() {
        let mut r = MinuteRing::default();
        for m in 100..110 {
            r.add(m, m % 2 == 0, m % 5 == 0, 10, 0);
        }
        let (s, hour) = r.sums_two(109, 5, 60);
        assert_eq!(s.events, 5);
        assert_eq!(s.bytes, 50);
        assert_eq!(s.failed, 2);
        assert_eq!(s.novel, 1);
        assert_eq!(hour.events, 10);
        assert_eq!(hour.bytes, 100);
        assert!(
            !r.add(20, false, false, 0, 0),
            "a minute older than the ring is refused"
        );
    }

    #[test]
    fn slots_out_of_reach_are_let_go_and_no_sum_changes() {
        // As the profile drives it: events up to 15 minutes behind the newest are not late;
        // busy stretches (a slot most minutes) and quiet ones (an event an hour or more apart).
        let (lateness, window) = (15, 5);
        let mut kept = MinuteRing::default();
        let mut pruned = MinuteRing::default();
        let (mut last, mut t, mut seed) = (0u32, 10_000u32, 7u64);
        let mut quiet_bytes = Vec::new();
        for i in 0..20_000u32 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = (seed >> 33) as u32;
            let busy = (i / 500) % 2 == 0;
            t += if busy { r % 3 } else { 40 + r % 90 };
            let now = t.saturating_sub(r % 20);
            let late_limit = last.saturating_sub(lateness);
            if now < late_limit {
                continue;
            }
            let read_from = late_limit.saturating_sub(window.max(60));
            let (failed, novel, bytes) = (
                r.is_multiple_of(7),
                r.is_multiple_of(5),
                u64::from(r % 1000),
            );
            assert_eq!(
                kept.add(now, failed, novel, bytes, 0),
                pruned.add(now, failed, novel, bytes, read_from)
            );
            last = last.max(now);
            assert_eq!(
                kept.sums_two(now, window, 60),
                pruned.sums_two(now, window, 60),
                "event {i} at {now}"
            );
            if !busy && i % 500 == 499 {
                quiet_bytes.push((kept.allocated_bytes(), pruned.allocated_bytes()));
            }
        }
        // After each quiet stretch the busy hour's slots are gone from the pruned ring.
        assert!(!quiet_bytes.is_empty());
        for (kept, pruned) in quiet_bytes {
            assert_eq!(kept, MinuteRing::MAX_HEAP_BYTES);
            assert!(pruned <= MinuteRing::SPARSE_MAX * std::mem::size_of::<Slot>());
        }
    }

    #[test]
    fn distinct_window_expires_and_dedups() {
        let mut w = DistinctWindow::default();
        assert_eq!(w.add(0, 1, 10, 100), 1);
        assert_eq!(w.add(1, 1, 10, 100), 1);
        assert_eq!(w.add(2, 2, 10, 100), 2);
        assert_eq!(w.add(11, 3, 10, 100), 2);
        assert_eq!(w.add(30, 4, 10, 100), 1);
    }
}
