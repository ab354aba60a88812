//! At-least-once bookkeeping: per input partition, the offsets in flight and how many of their
//! outputs the broker has yet to acknowledge. An offset may be stored (and so committed) only
//! when it and every earlier offset of its partition are complete.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// An input partition.
pub(crate) type Partition = (Arc<str>, i32);

/// The input message an output was caused by (`None`: caused by no particular message, such as
/// the records closed at shutdown).
#[derive(Clone, Debug)]
pub(crate) struct Tag(pub(crate) Option<(Arc<str>, i32, i64)>);

/// Offsets in flight per input partition, with their pending counts.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    inflight: Mutex<HashMap<Partition, BTreeMap<i64, u32>>>,
    failure: Mutex<Option<String>>,
    /// Outputs acknowledged by the broker.
    pub(crate) delivered: AtomicU64,
    /// Outputs not yet acknowledged (tagged or not).
    pub(crate) outstanding: AtomicU64,
}

impl Tracker {
    fn lock(&self) -> MutexGuard<'_, HashMap<Partition, BTreeMap<i64, u32>>> {
        self.inflight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A message was dispatched: it is pending until its worker calls [`Tracker::done`].
    pub(crate) fn begin(&self, topic: &Arc<str>, partition: i32, offset: i64) {
        *self
            .lock()
            .entry((topic.clone(), partition))
            .or_default()
            .entry(offset)
            .or_default() += 1;
    }

    /// Undoes [`Tracker::begin`] of a message that could not be dispatched.
    pub(crate) fn forget(&self, topic: &Arc<str>, partition: i32, offset: i64) {
        if let Some(m) = self.lock().get_mut(&(topic.clone(), partition)) {
            m.remove(&offset);
        }
    }

    /// One more output of `tag` is on its way to the broker.
    pub(crate) fn add(&self, tag: &Tag) {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        if let Some((t, p, o)) = &tag.0
            && let Some(n) = self
                .lock()
                .get_mut(&(t.clone(), *p))
                .and_then(|m| m.get_mut(o))
        {
            *n += 1;
        }
    }

    /// An output was acknowledged.
    pub(crate) fn delivered(&self, tag: &Tag) {
        self.delivered.fetch_add(1, Ordering::AcqRel);
        self.outstanding.fetch_sub(1, Ordering::AcqRel);
        self.done(tag);
    }

    /// One pending item of `tag` is complete (an output acknowledged, or the worker finished).
    pub(crate) fn done(&self, tag: &Tag) {
        if let Some((t, p, o)) = &tag.0
            && let Some(n) = self
                .lock()
                .get_mut(&(t.clone(), *p))
                .and_then(|m| m.get_mut(o))
        {
            *n = n.saturating_sub(1);
        }
    }

    /// An output could not be delivered: its input offset is never stored, and the run stops.
    pub(crate) fn fail(&self, message: String) {
        self.outstanding.fetch_sub(1, Ordering::AcqRel);
        let mut f = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if f.is_none() {
            *f = Some(message);
        }
    }

    /// The first delivery failure, if any.
    pub(crate) fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// For each partition whose oldest offsets are complete: forgets them and returns the offset
    /// to store (the next one to read).
    pub(crate) fn committable(&self) -> Vec<(Arc<str>, i32, i64)> {
        if self.failure().is_some() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for ((t, p), offsets) in self.lock().iter_mut() {
            let mut next = None;
            while let Some((&o, &n)) = offsets.first_key_value() {
                if n > 0 {
                    break;
                }
                offsets.pop_first();
                next = Some(o + 1);
            }
            if let Some(n) = next {
                out.push((t.clone(), *p, n));
            }
        }
        out.sort();
        out
    }

    /// Offsets still waiting for their worker or outputs on these partitions (all partitions when `None`).
    pub(crate) fn in_flight(&self, parts: Option<&[Partition]>) -> usize {
        self.lock()
            .iter()
            .filter(|(k, _)| parts.is_none_or(|ps| ps.contains(k)))
            .map(|(_, m)| m.values().filter(|n| **n > 0).count())
            .sum()
    }

    /// Forgets these partitions (revoked).
    pub(crate) fn remove(&self, parts: &[Partition]) {
        let mut m = self.lock();
        for p in parts {
            m.remove(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_stored_in_order_after_every_delivery() {
        let t = Tracker::default();
        let topic: Arc<str> = "in".into();
        for o in 0..3 {
            t.begin(&topic, 0, o);
        }
        let tag = |o| Tag(Some((topic.clone(), 0, o)));
        t.add(&tag(0));
        t.add(&tag(1));
        t.done(&tag(0));
        t.done(&tag(1));
        t.done(&tag(2));
        // Offset 2 is complete but 0 and 1 wait for their outputs.
        assert!(t.committable().is_empty());
        t.delivered(&tag(1));
        assert!(t.committable().is_empty());
        t.delivered(&tag(0));
        assert_eq!(t.committable(), vec![(topic.clone(), 0, 3)]);
        assert_eq!(t.in_flight(None), 0);
        assert_eq!(t.outstanding.load(Ordering::Acquire), 0);
    }

    #[test]
    fn a_failed_delivery_stores_nothing() {
        let t = Tracker::default();
        let topic: Arc<str> = "in".into();
        t.begin(&topic, 1, 7);
        let tag = Tag(Some((topic.clone(), 1, 7)));
        t.add(&tag);
        t.done(&tag);
        t.fail("broker down".into());
        assert!(t.committable().is_empty());
        assert_eq!(t.failure().as_deref(), Some("broker down"));
    }
}
