//! cinch: runtime least privilege for AI agents and other non-human identities.
//!
//! A behavioural anomaly-detection stream processor. Access events from existing log pipelines
//! (native JSON, OCSF, CloudTrail, Kubernetes audit) are decoded, each agent's behaviour is
//! learned into a bounded, decaying profile, every event is scored by a set of detectors, and
//! the scores are turned into findings.
//!
//! ```text
//! event/     the event model; one decoder per format
//! profile/   per-agent state: counters, sketches, resource generalisation, decay, serialisation
//! fleet      peer-group snapshots that change only at event-time ticks
//! detect/    one file per detector, and the fusion
//! decide/    policy: findings and their aggregation
//! output/    record formats (finding with OCSF, score line, dead letter), command signatures
//! ml/        learned models: peer groups, the event model, calibration, training (linfa)
//! engine     the pure pipeline: profile -> detect -> decide
//! authorize/ the policy decision point: verified commands and grants as Cedar policies
//! sim/, eval/ the labelled fleet simulator and detection-quality evaluation
//! drive/     drivers around the engine (file replay)
//! telemetry/ metrics with bounded labels, the pipeline observer, the HTTP endpoint
//! cli/       one file per subcommand
//! config     settings with documented defaults and validation
//! ```
//!
//! The engine side (`event`, `profile`, `fleet`, `detect`, `decide`, `output`, `engine`) never
//! imports a driver, the command line or the telemetry endpoint.

#![warn(missing_docs)]

pub mod authorize;
pub mod cli;
pub mod config;
pub mod decide;
pub mod detect;
pub mod drive;
pub mod engine;
pub mod eval;
pub mod event;
pub(crate) mod fleet;
pub mod grants;
pub mod ml;
pub mod output;
pub mod profile;
pub mod sim;
pub mod telemetry;
pub mod vocab;
