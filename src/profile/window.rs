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

/// Per-minute activity over the last `SLOTS` minutes.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct MinuteRing {
    slots: Vec<Slot>,
    newest: Minute,
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

    /// Records an event at `minute`. Returns false when it is too old for the ring.
    pub fn add(&mut self, minute: Minute, failed: bool, novel: bool, bytes: u64) -> bool {
        if self.slots.is_empty() {
            self.slots = vec![Slot::default(); Self::SLOTS];
        }
        if minute + (Self::SLOTS as Minute) <= self.newest {
            return false;
        }
        self.newest = self.newest.max(minute);
        let slot = &mut self.slots[minute as usize % Self::SLOTS];
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
pub struct DistinctWindow {
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
        if !self.recent.iter().any(|&(_, r)| r == resource) {
            if self.recent.len() >= cap {
                self.recent.pop_front();
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
            r.add(m, m % 2 == 0, m % 5 == 0, 10);
        }
        let (s, hour) = r.sums_two(109, 5, 60);
        assert_eq!(s.events, 5);
        assert_eq!(s.bytes, 50);
        assert_eq!(s.failed, 2);
        assert_eq!(s.novel, 1);
        assert_eq!(hour.events, 10);
        assert_eq!(hour.bytes, 100);
        assert!(
            !r.add(20, false, false, 0),
            "a minute older than the ring is refused"
        );
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
