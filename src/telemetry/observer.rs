//! The interface through which the pipeline reports what it does.
//!
//! Drivers hold a `&dyn PipelineObserver` (or an `Arc` of one) and call it as events pass; the
//! engine itself never does. Every argument is a bounded type or a `&'static str` code, so no
//! per-agent value can reach a metric label. [`NoopObserver`] is the default for tests and
//! embedded use; [`Metrics`](super::Metrics) records everything for the `/metrics` endpoint.

/// Receives the pipeline's internal events. Every method does nothing by default.
pub trait PipelineObserver: Send + Sync {
    /// An input record was decoded into an access event of `_format` with `_outcome`.
    fn input_event(&self, _format: crate::event::Format, _outcome: crate::event::Outcome) {}
    /// A redelivered event whose effect the restored agent state already reflects: not applied
    /// again.
    fn already_reflected(&self) {}
    /// An event of an unkeyed topic went through its repartition topic: `rekeyed` (sent to it),
    /// `held` (read back and held for event-time order), `late` (read back after later events
    /// had been released) or `duplicate` (read back a second time, dropped).
    fn repartition(&self, _stage: &'static str) {}
    /// Events of repartition partitions held back for event-time order now, over the instance.
    fn repartition_held(&self, _events: usize) {}
    /// A fleet-topic record was `published` (by a partition held here), `received` (read back,
    /// this instance's own included) or an `idle` partition was advanced to the fleet's tick.
    fn fleet_record(&self, _stage: &'static str) {}
    /// Events parked until the fleet reaches their tick now, over the instance.
    fn fleet_parked(&self, _events: usize) {}
    /// A record was dead-lettered for the reason with this code
    /// ([`RejectReason::code`](crate::event::RejectReason::code)).
    fn dead_letter(&self, _reason_code: &'static str) {}
    /// Something a driver reports (a reload, a failure it recovers from): logged and counted.
    fn driver_event(&self, _event: &super::DriverEvent) {}
    /// An output record of this kind (`finding`, `recommendation`, `command`, `dead_letter`,
    /// `audit`) was delivered.
    fn output(&self, _kind: &'static str) {}
    /// Seconds from an event's receipt to its decision.
    fn decision_latency(&self, _secs: f64) {}
    /// The consumer lag of one input partition, in messages.
    fn lag(&self, _topic: &str, _partition: i32, _lag: i64) {}
    /// How many agents this instance tracks, and the bytes their state takes.
    fn agents(&self, _count: usize, _state_bytes: usize) {}
    /// A checkpoint of agent state took this many seconds.
    fn checkpoint(&self, _secs: f64) {}
    /// A restore of agent state took this many seconds.
    fn restore(&self, _secs: f64) {}
    /// Whether the instance is ready to serve (its state restored).
    fn ready(&self, _ready: bool) {}
    /// The entitlements in force now cover this many agents and grants.
    fn entitlements(&self, _agents: usize, _grants: usize) {}
    /// A model file was loaded (`ok`, with its number of peer groups) or failed to load.
    fn model_loaded(&self, _groups: usize, _ok: bool) {}
    /// A circuit breaker opened: commands stop until it closes.
    fn breaker_opened(&self) {}
    /// How many partitions' circuit breakers are open now.
    fn breakers_open(&self, _open: usize) {}
    /// A suppression came into force (`_record` is its `suppression_created` audit record).
    fn suppression_created(&self, _id: &str, _record: &serde_json::Value) {}
    /// A suppression lapsed.
    fn suppression_expired(&self, _id: &str) {}
}

/// Observer that records nothing.
pub struct NoopObserver;
impl PipelineObserver for NoopObserver {}
