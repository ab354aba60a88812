//! Models learned across the fleet, trained offline with linfa (`cinch train`) and applied on the
//! hot path without allocation:
//!
//! - **peer groups**: agents clustered by behaviour profile with k-means, the number of groups
//!   chosen by silhouette; an agent is assigned to the nearest group once it has enough history,
//!   and the peer-group detector then judges it against that group;
//! - **an event model** per group: a Gaussian mixture over per-event features (hour, volume,
//!   pace, familiarity), the number of components chosen by BIC, whose log-likelihood is turned
//!   into the share of the group's history that was as unlikely; it enters the fusion as the
//!   `model` detector;
//! - **calibration** of the fused score per group, so that a score cuts off the same share of
//!   traffic in every group.

pub(crate) mod features;
pub(crate) mod gmm;
pub(crate) mod math;
pub mod model;
pub mod settings;
pub mod train;

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwapOption;

pub use features::{Behaviour, EVENT_DIM, PROFILE_DIM, event_vector};
pub use model::{Model, ModelFile, Rarity};

/// The model in force, shared by engines and replaced whole when its file changes.
pub(crate) type SharedModel = Arc<ArcSwapOption<Model>>;

/// A shared handle holding `model` (a [`Model`] or an `Arc` of one).
pub fn shared(model: Option<impl Into<Arc<Model>>>) -> SharedModel {
    Arc::new(ArcSwapOption::from(model.map(Into::into)))
}

/// Why a model could not be used or made.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file could not be read.
    #[error("cannot read model {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("model is not valid: {0}")]
    Parse(String),
    /// Written by a build with another model format.
    #[error(
        "model file format version {found} (written by cinch {written_by}) cannot be read by this build, which reads version {}; retrain it with `cinch train`",
        model::FORMAT_VERSION
    )]
    Version {
        /// Version in the file.
        found: u32,
        /// The cinch version that wrote it.
        written_by: String,
    },
    /// Its features are not the ones this build computes.
    #[error("model feature schema does not match this build: {0}; retrain it with `cinch train`")]
    Schema(String),
    /// Inconsistent contents.
    #[error("model is not valid: {0}")]
    Invalid(String),
    /// Training could not fit a model.
    #[error("training failed: {0}")]
    Fit(String),
    /// A model file could not be written.
    #[error("cannot write model {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An error with the file it came from.
    #[error("{path}: {source}")]
    At {
        /// The file.
        path: String,
        /// The error.
        source: Box<ModelError>,
    },
}

impl ModelError {
    /// The error, naming the file it is about.
    pub fn at(self, path: &Path) -> ModelError {
        match self {
            e @ (ModelError::Read { .. } | ModelError::Write { .. } | ModelError::At { .. }) => e,
            e => ModelError::At {
                path: path.display().to_string(),
                source: Box::new(e),
            },
        }
    }
}
