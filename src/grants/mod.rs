//! Least privilege from evidence: entitlements, the attribution of each access to a grant, the
//! per-grant usage ledger, and recommendations that remove or narrow grants.

pub(crate) mod days;
pub mod entitlements;
pub(crate) mod recommend;
pub mod settings;
pub(crate) mod usage;

pub use entitlements::{AgentGrants, Entitlements, EntitlementsError, GrantSpec, glob_match};
pub use usage::{Ledger, Use};

use std::sync::Arc;

use arc_swap::ArcSwap;

/// Entitlements shared by every engine of a process and replaced whole on reload; readers take
/// no lock.
pub(crate) type SharedEntitlements = Arc<ArcSwap<Entitlements>>;

/// A shared handle holding `e`.
pub fn shared(e: Entitlements) -> SharedEntitlements {
    Arc::new(ArcSwap::from_pointee(e))
}
