//! Telemetry: the process's metrics, the observer interface the drivers report through, and
//! the HTTP endpoint that serves them.
//!
//! ```text
//! observer.rs    PipelineObserver: typed internal events (and NoopObserver)
//! metrics.rs     Metrics: a Prometheus registry with bounded labels, implementing the observer
//! kafka_stats.rs consumer lag from librdkafka's statistics JSON
//! repeats.rs     RepeatLimiter: a log line that repeats is written once, then summarised
//! server.rs      GET /metrics, /healthz, /readyz with graceful shutdown
//! ```
//!
//! Drivers depend on this module; the engine never does.

pub(crate) mod events;
pub(crate) mod kafka_stats;
pub(crate) mod metrics;
pub(crate) mod observer;
pub(crate) mod repeats;
pub mod server;

use std::net::SocketAddr;

pub use events::DriverEvent;
pub use kafka_stats::{PartitionLag, apply_statistics, observe_statistics, parse_consumer_lags};
pub use metrics::{CONTENT_TYPE, Metrics};
pub use observer::{NoopObserver, PipelineObserver};
pub use repeats::{REPEAT_SUMMARY_SECS, RepeatLimiter};
pub use server::{
    DEFAULT_ADDR, Limits, ServerHandle, router, serve, serve_router, shutdown_signal,
};

/// What can go wrong in telemetry.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The endpoint's address could not be bound.
    #[error("cannot bind the telemetry endpoint to {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The endpoint failed while serving.
    #[error("telemetry endpoint failed: {0}")]
    Serve(#[source] std::io::Error),
    /// A librdkafka statistics document could not be read.
    #[error("invalid librdkafka statistics: {0}")]
    Statistics(#[source] serde_json::Error),
    /// The process's signal handlers could not be installed.
    #[error("cannot listen for shutdown signals: {0}")]
    Signal(#[source] std::io::Error),
}
