//! Delivery bookkeeping: how many outputs the broker acknowledged, and the first one it refused.
//!
//! Offsets are not tracked per message: they are committed only at commit points, after every
//! output produced before the point has been acknowledged (see `consume`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Acknowledged outputs and the first delivery failure.
#[derive(Debug, Default)]
pub(crate) struct Deliveries {
    /// Records acknowledged by the broker.
    pub(crate) delivered: AtomicU64,
    failure: Mutex<Option<String>>,
}

impl Deliveries {
    /// A record was acknowledged.
    pub(crate) fn delivered(&self) {
        self.delivered.fetch_add(1, Ordering::AcqRel);
    }

    /// A record could not be delivered: the offsets of the commit point it belongs to are never
    /// committed, and the run stops.
    pub(crate) fn fail(&self, message: String) {
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

    /// Forgets a failure (its transaction was aborted, and its records will be produced again).
    pub(crate) fn clear(&self) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_kept_until_cleared() {
        let d = Deliveries::default();
        d.delivered();
        d.fail("broker down".into());
        d.fail("later".into());
        assert_eq!(d.delivered.load(Ordering::Acquire), 1);
        assert_eq!(d.failure().as_deref(), Some("broker down"));
        d.clear();
        assert!(d.failure().is_none());
    }
}
