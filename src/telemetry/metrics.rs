//! The process's Prometheus metrics, every one with bounded labels.
//!
//! Each metric has one typed method that updates it, and no method takes a free-form string
//! that could become a label value: formats and outcomes are enums, reason codes and output
//! kinds are `&'static str` checked against a fixed list (anything else is counted as
//! `other`), and topic and partition are bounded by the deployment's input topics. An agent id
//! can never become a label.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

use prometheus::{
    Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use super::kafka_stats::PartitionLag;
use super::observer::PipelineObserver;
use crate::event::{Format, Outcome, RejectReason};

/// The content type of [`Metrics::render`]'s output (the Prometheus text format).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `format` label of input events whose format could not be determined.
pub(crate) const UNKNOWN_FORMAT: &str = "unknown";

/// The label value that stands in for a reason code or output kind outside the known lists.
pub(crate) const OTHER: &str = "other";

/// Every access outcome, in a fixed order.
const OUTCOMES: [Outcome; 3] = [Outcome::Success, Outcome::Denied, Outcome::Error];

/// The `reason` label values of `cinch_dead_letters_total`: every
/// [`RejectReason::code`], then [`OTHER`].
pub(crate) const DEAD_LETTER_REASONS: [&str; 10] = [
    "invalid_utf8",
    "not_json",
    "too_deep",
    "oversize",
    "unknown_format",
    "missing_field",
    "invalid_field",
    "time_out_of_range",
    "trailing_data",
    OTHER,
];

/// The `kind` label values of `cinch_outputs_total`, then [`OTHER`].
pub(crate) const OUTPUT_KINDS: [&str; 6] = [
    "finding",
    "recommendation",
    "command",
    "dead_letter",
    "audit",
    OTHER,
];

/// Buckets of `cinch_decision_latency_seconds`: 50 µs to 10 s.
const LATENCY_BUCKETS: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// Buckets of the checkpoint and restore durations: 1 ms to 5 minutes.
const STATE_IO_BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// The metrics of one cinch process, in their own registry.
pub struct Metrics {
    registry: Registry,
    input_events: IntCounterVec,
    dead_letters: IntCounterVec,
    outputs: IntCounterVec,
    decision_latency: Histogram,
    consumer_lag: IntGaugeVec,
    /// The `(topic, partition)` series of `consumer_lag` currently exported.
    lag_series: Mutex<BTreeSet<(String, i32)>>,
    agents_tracked: IntGauge,
    state_bytes: IntGauge,
    checkpoint_duration: Histogram,
    restore_duration: Histogram,
    ready: IntGauge,
    entitlements_agents: IntGauge,
    entitlements_grants: IntGauge,
    breaker_opened: prometheus::IntCounter,
    model_groups: IntGauge,
    model_loads: IntCounterVec,
    breakers_open: IntGauge,
    driver_events: IntCounterVec,
    already_reflected: prometheus::IntCounter,
    repartition: IntCounterVec,
    repartition_held: IntGauge,
    fleet_records: IntCounterVec,
    fleet_parked: IntGauge,
    /// Suppressions in force, by id: their `suppression_created` audit records.
    suppressions: Mutex<std::collections::BTreeMap<String, serde_json::Value>>,
    /// Driver events repeated identically are logged once, then summarised (every one counts).
    repeats: crate::telemetry::RepeatLimiter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric =
        IntCounterVec::new(Opts::new(name, help), labels).expect("counter definitions are valid");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique");
    metric
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let metric = IntGauge::new(name, help).expect("gauge definitions are valid");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique");
    metric
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let metric = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
        .expect("histogram definitions are valid");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique");
    metric
}

/// Clamps a count to a gauge's range.
fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A duration in seconds fit for a histogram: NaN is dropped, negatives (clock skew) count as 0.
fn seconds(secs: f64) -> Option<f64> {
    if secs.is_nan() {
        None
    } else {
        Some(secs.max(0.0))
    }
}

impl Metrics {
    /// Creates the metrics in a new registry. Every counter series of the bounded label sets
    /// starts at zero, so dashboards see them before the first event.
    pub fn new() -> Self {
        let registry = Registry::new();
        let input_events = counter_vec(
            &registry,
            "cinch_input_events_total",
            "Input events decoded, by format and access outcome.",
            &["format", "outcome"],
        );
        let dead_letters = counter_vec(
            &registry,
            "cinch_dead_letters_total",
            "Input records dead-lettered, by reason code.",
            &["reason"],
        );
        let outputs = counter_vec(
            &registry,
            "cinch_outputs_total",
            "Output records delivered, by kind.",
            &["kind"],
        );
        let decision_latency = histogram(
            &registry,
            "cinch_decision_latency_seconds",
            "Seconds from an event's receipt to its decision.",
            &LATENCY_BUCKETS,
        );
        let consumer_lag = IntGaugeVec::new(
            Opts::new(
                "cinch_consumer_lag",
                "Messages between an input partition's end and this instance's stored offset.",
            ),
            &["topic", "partition"],
        )
        .expect("gauge definitions are valid");
        registry
            .register(Box::new(consumer_lag.clone()))
            .expect("metric names are unique");
        let agents_tracked = gauge(
            &registry,
            "cinch_agents_tracked",
            "Agents whose state this instance holds.",
        );
        let state_bytes = gauge(
            &registry,
            "cinch_state_bytes",
            "Bytes of agent state this instance holds.",
        );
        let checkpoint_duration = histogram(
            &registry,
            "cinch_checkpoint_duration_seconds",
            "Seconds taken by each checkpoint of agent state.",
            &STATE_IO_BUCKETS,
        );
        let restore_duration = histogram(
            &registry,
            "cinch_restore_duration_seconds",
            "Seconds taken by each restore of agent state.",
            &STATE_IO_BUCKETS,
        );
        let ready = gauge(
            &registry,
            "cinch_ready",
            "1 once agent state is restored and the instance serves, else 0.",
        );

        let entitlements_agents = gauge(
            &registry,
            "cinch_entitlements_agents",
            "Agents whose entitlements are known (from the file and topic in force).",
        );
        let entitlements_grants = gauge(
            &registry,
            "cinch_entitlements_grants",
            "Grants in the entitlements in force.",
        );
        let model_groups = gauge(
            &registry,
            "cinch_model_groups",
            "Learned peer groups of the model in force (0: no model).",
        );
        let model_loads = counter_vec(
            &registry,
            "cinch_model_loads_total",
            "Model files loaded at start or on change, by result (ok, error: the model in force was kept).",
            &["result"],
        );
        let breaker_opened = prometheus::IntCounter::new(
            "cinch_breaker_opened_total",
            "Times a circuit breaker opened and stopped commands (findings go on).",
        )
        .expect("counter definitions are valid");
        registry
            .register(Box::new(breaker_opened.clone()))
            .expect("metric names are unique");
        let breakers_open = gauge(
            &registry,
            "cinch_breakers_open",
            "Input partitions whose circuit breaker is open (no commands issued for their agents).",
        );

        let driver_events = counter_vec(
            &registry,
            "cinch_driver_events_total",
            "Things the drivers reported (reloads, recovered failures), by event; each is also logged on stderr.",
            &["event"],
        );
        for name in crate::telemetry::DriverEvent::NAMES {
            driver_events.with_label_values(&[name]);
        }
        let repartition = counter_vec(
            &registry,
            "cinch_repartition_records_total",
            "Events of unkeyed input topics through their repartition topics, by stage: rekeyed (sent), held (read back, held for event-time order), late (read back after later events were released), duplicate (read back again, dropped).",
            &["stage"],
        );
        for stage in ["rekeyed", "held", "late", "duplicate"] {
            repartition.with_label_values(&[stage]);
        }
        let repartition_held = gauge(
            &registry,
            "cinch_repartition_held_events",
            "Events of repartition partitions held back for event-time order now (set at each commit point).",
        );
        let fleet_records = counter_vec(
            &registry,
            "cinch_fleet_records_total",
            "Fleet-topic records, by stage: published (by a partition held here), received (read back, this instance's own included), idle (a partition with nothing to read advanced to the fleet's tick).",
            &["stage"],
        );
        for stage in ["published", "received", "idle"] {
            fleet_records.with_label_values(&[stage]);
        }
        let fleet_parked = gauge(
            &registry,
            "cinch_fleet_parked_events",
            "Events parked until every partition of the fleet reaches their tick (set at each commit point).",
        );
        let already_reflected = prometheus::IntCounter::new(
            "cinch_already_reflected_total",
            "Redelivered input events whose effect the restored state already held (not applied again).",
        )
        .expect("counter definitions are valid");
        registry
            .register(Box::new(already_reflected.clone()))
            .expect("metric names are unique");

        let formats = Format::ALL.iter().map(|f| f.as_str());
        for format in formats.chain([UNKNOWN_FORMAT]) {
            for outcome in OUTCOMES {
                input_events.with_label_values(&[format, outcome.as_str()]);
            }
        }
        for reason in DEAD_LETTER_REASONS {
            dead_letters.with_label_values(&[reason]);
        }
        for kind in OUTPUT_KINDS {
            outputs.with_label_values(&[kind]);
        }

        Metrics {
            registry,
            input_events,
            dead_letters,
            outputs,
            decision_latency,
            consumer_lag,
            lag_series: Mutex::new(BTreeSet::new()),
            agents_tracked,
            state_bytes,
            checkpoint_duration,
            restore_duration,
            ready,
            entitlements_agents,
            entitlements_grants,
            breaker_opened,
            model_groups,
            model_loads,
            breakers_open,
            driver_events,
            already_reflected,
            repartition,
            repartition_held,
            fleet_records,
            fleet_parked,
            suppressions: Mutex::new(Default::default()),
            repeats: Default::default(),
        }
    }

    /// The suppressions in force (their `suppression_created` audit records), by id.
    pub fn suppressions(&self) -> Vec<serde_json::Value> {
        self.suppressions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// The registry, to add process-specific collectors or gather the families directly.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Counts one decoded input event.
    pub fn input_event(&self, format: Format, outcome: Outcome) {
        self.input_event_of(Some(format), outcome);
    }

    /// Counts one input event whose format may be unknown (`format="unknown"`).
    pub fn input_event_of(&self, format: Option<Format>, outcome: Outcome) {
        let format = format.map_or(UNKNOWN_FORMAT, Format::as_str);
        self.input_events
            .with_label_values(&[format, outcome.as_str()])
            .inc();
    }

    /// Counts one dead letter by its reason code. A code outside [`DEAD_LETTER_REASONS`] is
    /// counted as [`OTHER`].
    pub fn dead_letter(&self, reason_code: &'static str) {
        let reason = DEAD_LETTER_REASONS
            .iter()
            .copied()
            .find(|r| *r == reason_code)
            .unwrap_or(OTHER);
        self.dead_letters.with_label_values(&[reason]).inc();
    }

    /// Counts one dead letter for a decoder's rejection.
    pub fn dead_letter_for(&self, reason: &RejectReason) {
        self.dead_letter(reason.code());
    }

    /// Counts one delivered output record by kind. A kind outside [`OUTPUT_KINDS`] is counted
    /// as [`OTHER`].
    pub fn output(&self, kind: &'static str) {
        let kind = OUTPUT_KINDS
            .iter()
            .copied()
            .find(|k| *k == kind)
            .unwrap_or(OTHER);
        self.outputs.with_label_values(&[kind]).inc();
    }

    /// Records the seconds from an event's receipt to its decision.
    pub fn decision_latency(&self, secs: f64) {
        if let Some(secs) = seconds(secs) {
            self.decision_latency.observe(secs);
        }
    }

    /// Sets the consumer lag of one input partition. A negative lag (librdkafka's "unknown")
    /// stops exporting the partition's series rather than showing a false value.
    pub fn lag(&self, topic: &str, partition: i32, lag: i64) {
        if lag < 0 {
            self.forget_partition(topic, partition);
            return;
        }
        let partition_label = partition.to_string();
        self.consumer_lag
            .with_label_values(&[topic, partition_label.as_str()])
            .set(lag);
        self.lag_series
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((topic.to_owned(), partition));
    }

    /// Replaces every consumer-lag series with `lags`: partitions not in it (revoked, or whose
    /// lag is no longer known) stop being exported.
    pub fn set_consumer_lags(&self, lags: &[PartitionLag]) {
        let mut series = self
            .lag_series
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current: BTreeSet<(String, i32)> = lags
            .iter()
            .map(|l| (l.topic.clone(), l.partition))
            .collect();
        for (topic, partition) in series.difference(&current) {
            // An absent series is fine: it is what we want.
            let _ = self
                .consumer_lag
                .remove_label_values(&[topic.as_str(), partition.to_string().as_str()]);
        }
        for l in lags {
            self.consumer_lag
                .with_label_values(&[l.topic.as_str(), l.partition.to_string().as_str()])
                .set(l.lag);
        }
        *series = current;
    }

    /// Stops exporting the lag of one partition (after it is revoked).
    pub fn forget_partition(&self, topic: &str, partition: i32) {
        // An absent series is fine: it is what we want.
        let _ = self
            .consumer_lag
            .remove_label_values(&[topic, partition.to_string().as_str()]);
        self.lag_series
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(topic.to_owned(), partition));
    }

    /// Sets how many agents this instance tracks and the bytes their state takes.
    pub fn agents(&self, count: usize, state_bytes: usize) {
        self.agents_tracked.set(gauge_value(count));
        self.state_bytes.set(gauge_value(state_bytes));
    }

    /// Records the duration of a checkpoint of agent state.
    pub fn checkpoint(&self, secs: f64) {
        if let Some(secs) = seconds(secs) {
            self.checkpoint_duration.observe(secs);
        }
    }

    /// Records the duration of a restore of agent state.
    pub fn restore(&self, secs: f64) {
        if let Some(secs) = seconds(secs) {
            self.restore_duration.observe(secs);
        }
    }

    /// Marks the instance ready (state restored) or not.
    pub fn ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// Whether [`ready`](Self::ready) was last set to true.
    pub fn is_ready(&self) -> bool {
        self.ready.get() == 1
    }

    /// Every metric in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let families = self.registry.gather();
        let mut out = String::new();
        if let Err(e) = TextEncoder::new().encode_utf8(&families, &mut out) {
            // Encoding into a String fails only on invalid metric definitions; say so in the
            // scrape rather than failing it.
            out.push_str(&format!("# cinch: metrics encoding failed: {e}\n"));
        }
        out
    }
}

impl PipelineObserver for Metrics {
    fn input_event(&self, format: Format, outcome: Outcome) {
        Metrics::input_event(self, format, outcome);
    }

    fn dead_letter(&self, reason_code: &'static str) {
        Metrics::dead_letter(self, reason_code);
    }

    fn output(&self, kind: &'static str) {
        Metrics::output(self, kind);
    }

    fn decision_latency(&self, secs: f64) {
        Metrics::decision_latency(self, secs);
    }

    fn lag(&self, topic: &str, partition: i32, lag: i64) {
        Metrics::lag(self, topic, partition, lag);
    }

    fn agents(&self, count: usize, state_bytes: usize) {
        Metrics::agents(self, count, state_bytes);
    }

    fn checkpoint(&self, secs: f64) {
        Metrics::checkpoint(self, secs);
    }

    fn restore(&self, secs: f64) {
        Metrics::restore(self, secs);
    }

    fn ready(&self, ready: bool) {
        Metrics::ready(self, ready);
    }

    fn entitlements(&self, agents: usize, grants: usize) {
        self.entitlements_agents.set(gauge_value(agents));
        self.entitlements_grants.set(gauge_value(grants));
    }

    fn model_loaded(&self, groups: usize, ok: bool) {
        if ok {
            self.model_groups.set(gauge_value(groups));
        }
        self.model_loads
            .with_label_values(&[if ok { "ok" } else { "error" }])
            .inc();
    }

    fn breaker_opened(&self) {
        self.breaker_opened.inc();
    }

    fn already_reflected(&self) {
        self.already_reflected.inc();
    }

    fn repartition(&self, stage: &'static str) {
        self.repartition.with_label_values(&[stage]).inc();
    }

    fn repartition_held(&self, events: usize) {
        self.repartition_held.set(gauge_value(events));
    }

    fn fleet_record(&self, stage: &'static str) {
        self.fleet_records.with_label_values(&[stage]).inc();
    }

    fn fleet_parked(&self, events: usize) {
        self.fleet_parked.set(gauge_value(events));
    }

    fn driver_event(&self, event: &crate::telemetry::DriverEvent) {
        for line in self
            .repeats
            .admit(&event.to_string(), std::time::Instant::now())
        {
            eprintln!("cinch: {line}");
        }
        self.driver_events.with_label_values(&[event.name()]).inc();
    }

    fn breakers_open(&self, open: usize) {
        self.breakers_open.set(gauge_value(open));
    }

    fn suppression_created(&self, id: &str, record: &serde_json::Value) {
        self.suppressions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_string(), record.clone());
    }

    fn suppression_expired(&self, id: &str) {
        self.suppressions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample `name{labels}` in rendered text, labels in any order.
    fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let (metric, rest) = match series.split_once('{') {
                    Some((m, rest)) => (m, rest.strip_suffix('}')?),
                    None => (series, ""),
                };
                if metric != name {
                    return None;
                }
                let mut got: Vec<(&str, &str)> = rest
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .filter_map(|p| {
                        let (k, v) = p.split_once('=')?;
                        Some((k, v.trim_matches('"')))
                    })
                    .collect();
                let mut want = labels.to_vec();
                got.sort();
                want.sort();
                (got == want).then(|| value.parse().ok())?
            })
    }

    /// Every `key="value"` label pair in rendered text.
    fn label_values<'a>(text: &'a str, key: &str) -> BTreeSet<&'a str> {
        let needle = format!("{key}=\"");
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let start = l.find(&needle)? + needle.len();
                let len = l[start..].find('"')?;
                Some(&l[start..start + len])
            })
            .collect()
    }

    #[test]
    fn input_events_are_counted_by_format_and_outcome() {
        let m = Metrics::new();
        m.input_event(Format::Ocsf, Outcome::Denied);
        m.input_event(Format::Ocsf, Outcome::Denied);
        m.input_event(Format::Cloudtrail, Outcome::Success);
        m.input_event_of(None, Outcome::Error);
        let text = m.render();
        let input = |format, outcome| {
            sample(
                &text,
                "cinch_input_events_total",
                &[("format", format), ("outcome", outcome)],
            )
        };
        assert_eq!(input("ocsf", "denied"), Some(2.0));
        assert_eq!(input("cloudtrail", "success"), Some(1.0));
        assert_eq!(input("unknown", "error"), Some(1.0));
        assert_eq!(input("k8s_audit", "success"), Some(0.0), "pre-initialised");
    }

    /// A driver event repeated many times a second (a broker down) is logged once then
    /// summarised, but every one of them counts.
    #[test]
    fn repeated_driver_events_all_count() {
        let m = Metrics::new();
        let down = crate::telemetry::DriverEvent::ConsumerError {
            error: "all brokers are down".into(),
        };
        for _ in 0..100 {
            m.driver_event(&down);
        }
        let held = m
            .repeats
            .admit(&down.to_string(), std::time::Instant::now());
        assert!(held.is_empty(), "the log is limited: {held:?}");
        let text = m.render();
        assert_eq!(
            sample(
                &text,
                "cinch_driver_events_total",
                &[("event", "consumer_error")]
            ),
            Some(100.0)
        );
    }

    #[test]
    fn every_bounded_series_exists_before_the_first_event() {
        let text = Metrics::new().render();
        for format in ["native", "ocsf", "cloudtrail", "k8s_audit", "unknown"] {
            for outcome in ["success", "denied", "error"] {
                assert_eq!(
                    sample(
                        &text,
                        "cinch_input_events_total",
                        &[("format", format), ("outcome", outcome)]
                    ),
                    Some(0.0),
                    "{format}/{outcome}"
                );
            }
        }
        for reason in DEAD_LETTER_REASONS {
            assert_eq!(
                sample(&text, "cinch_dead_letters_total", &[("reason", reason)]),
                Some(0.0)
            );
        }
        for kind in OUTPUT_KINDS {
            assert_eq!(
                sample(&text, "cinch_outputs_total", &[("kind", kind)]),
                Some(0.0)
            );
        }
        assert_eq!(sample(&text, "cinch_ready", &[]), Some(0.0));
        assert_eq!(sample(&text, "cinch_agents_tracked", &[]), Some(0.0));
        assert_eq!(
            sample(&text, "cinch_decision_latency_seconds_count", &[]),
            Some(0.0)
        );
    }

    #[test]
    fn dead_letters_and_outputs_are_counted_by_code_and_kind() {
        let m = Metrics::new();
        m.dead_letter("not_json");
        m.dead_letter_for(&RejectReason::MissingField {
            format: "ocsf",
            field: "actor.user.uid",
        });
        m.dead_letter_for(&RejectReason::MissingField {
            format: "native",
            field: "agent_id",
        });
        m.output("finding");
        m.output("command");
        m.output("command");
        let text = m.render();
        let dl = |r| sample(&text, "cinch_dead_letters_total", &[("reason", r)]);
        let out = |k| sample(&text, "cinch_outputs_total", &[("kind", k)]);
        assert_eq!(dl("not_json"), Some(1.0));
        assert_eq!(dl("missing_field"), Some(2.0));
        assert_eq!(dl("oversize"), Some(0.0));
        assert_eq!(out("finding"), Some(1.0));
        assert_eq!(out("command"), Some(2.0));
        assert_eq!(out("audit"), Some(0.0));
    }

    #[test]
    fn every_reject_reason_code_has_its_own_label() {
        let reasons = [
            RejectReason::InvalidUtf8 { offset: 3 },
            RejectReason::NotJson(String::new()),
            RejectReason::TooDeep(String::new()),
            RejectReason::Oversize { size: 2, limit: 1 },
            RejectReason::UnknownFormat(String::new()),
            RejectReason::MissingField {
                format: "native",
                field: "agent_id",
            },
            RejectReason::InvalidField {
                format: "native",
                field: "time",
                detail: String::new(),
            },
            RejectReason::TimeOutOfRange {
                detail: String::new(),
            },
            RejectReason::TrailingData(String::new()),
        ];
        let m = Metrics::new();
        for reason in &reasons {
            assert!(
                DEAD_LETTER_REASONS.contains(&reason.code()),
                "{} has no label",
                reason.code()
            );
            m.dead_letter_for(reason);
        }
        let text = m.render();
        for reason in &reasons {
            let code = reason.code();
            assert_eq!(
                sample(&text, "cinch_dead_letters_total", &[("reason", code)]),
                Some(1.0)
            );
        }
        assert_eq!(
            sample(&text, "cinch_dead_letters_total", &[("reason", "other")]),
            Some(0.0)
        );
    }

    #[test]
    fn no_agent_id_can_become_a_label_value() {
        // The only string-taking methods accept `&'static str` codes checked against fixed
        // lists; a value that is not a known code (an agent id, say) lands in `other`.
        let m = Metrics::new();
        let agent_id: &'static str = "agent-7f3a9c-billing-bot";
        m.dead_letter(agent_id);
        m.output(agent_id);
        m.input_event(Format::Native, Outcome::Success);
        let text = m.render();
        assert!(!text.contains(agent_id), "{text}");
        assert_eq!(
            sample(&text, "cinch_dead_letters_total", &[("reason", "other")]),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "cinch_outputs_total", &[("kind", "other")]),
            Some(1.0)
        );
        // Every label value rendered comes from a fixed set.
        let formats: BTreeSet<&str> = Format::ALL
            .iter()
            .map(|f| f.as_str())
            .chain([UNKNOWN_FORMAT])
            .collect();
        assert!(label_values(&text, "format").is_subset(&formats));
        let outcomes: BTreeSet<&str> = OUTCOMES.iter().map(|o| o.as_str()).collect();
        assert!(label_values(&text, "outcome").is_subset(&outcomes));
        let reasons: BTreeSet<&str> = DEAD_LETTER_REASONS.into_iter().collect();
        assert!(label_values(&text, "reason").is_subset(&reasons));
        let kinds: BTreeSet<&str> = OUTPUT_KINDS.into_iter().collect();
        assert!(label_values(&text, "kind").is_subset(&kinds));
    }

    #[test]
    fn gauges_and_histograms_render() {
        let m = Metrics::new();
        m.agents(1_234, 5_678_900);
        m.decision_latency(0.000_7);
        m.decision_latency(0.003);
        m.decision_latency(f64::NAN);
        m.checkpoint(0.2);
        m.restore(1.5);
        m.restore(-0.1);
        m.ready(true);
        let text = m.render();
        assert_eq!(sample(&text, "cinch_agents_tracked", &[]), Some(1234.0));
        assert_eq!(sample(&text, "cinch_state_bytes", &[]), Some(5_678_900.0));
        assert_eq!(
            sample(&text, "cinch_decision_latency_seconds_count", &[]),
            Some(2.0),
            "NaN is dropped"
        );
        assert_eq!(
            sample(
                &text,
                "cinch_decision_latency_seconds_bucket",
                &[("le", "0.001")]
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "cinch_checkpoint_duration_seconds_count", &[]),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "cinch_restore_duration_seconds_count", &[]),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                "cinch_restore_duration_seconds_bucket",
                &[("le", "0.001")]
            ),
            Some(1.0),
            "a negative duration counts as zero"
        );
        assert_eq!(sample(&text, "cinch_ready", &[]), Some(1.0));
        assert!(m.is_ready());
        m.ready(false);
        assert!(!m.is_ready());
        assert!(text.contains("# TYPE cinch_decision_latency_seconds histogram"));
        assert!(text.contains("# TYPE cinch_input_events_total counter"));
        assert!(text.contains("# TYPE cinch_ready gauge"));
    }

    #[test]
    fn consumer_lag_is_set_replaced_and_forgotten() {
        let m = Metrics::new();
        m.lag("cinch.events", 0, 42);
        m.lag("cinch.events", 1, 7);
        let text = m.render();
        let lag = |text: &str, p| {
            sample(
                text,
                "cinch_consumer_lag",
                &[("topic", "cinch.events"), ("partition", p)],
            )
        };
        assert_eq!(lag(&text, "0"), Some(42.0));
        assert_eq!(lag(&text, "1"), Some(7.0));

        m.set_consumer_lags(&[PartitionLag {
            topic: "cinch.events".into(),
            partition: 1,
            lag: 3,
        }]);
        let text = m.render();
        assert_eq!(lag(&text, "0"), None, "revoked partition is dropped");
        assert_eq!(lag(&text, "1"), Some(3.0));

        m.lag("cinch.events", 1, -1);
        assert_eq!(
            lag(&m.render(), "1"),
            None,
            "an unknown lag is not exported"
        );

        m.lag("cinch.events", 4, 5);
        m.forget_partition("cinch.events", 4);
        assert!(!m.render().contains("cinch_consumer_lag{"));
    }

    #[test]
    fn the_observer_interface_reaches_the_metrics() {
        let m = Metrics::new();
        let observer: &dyn PipelineObserver = &m;
        observer.input_event(Format::K8sAudit, Outcome::Denied);
        observer.dead_letter("oversize");
        observer.output("audit");
        observer.lag("cinch.events", 2, 11);
        observer.agents(3, 300);
        observer.ready(true);
        let text = m.render();
        assert_eq!(
            sample(
                &text,
                "cinch_input_events_total",
                &[("format", "k8s_audit"), ("outcome", "denied")]
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "cinch_dead_letters_total", &[("reason", "oversize")]),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "cinch_outputs_total", &[("kind", "audit")]),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "cinch_consumer_lag",
                &[("topic", "cinch.events"), ("partition", "2")]
            ),
            Some(11.0)
        );
        assert_eq!(sample(&text, "cinch_agents_tracked", &[]), Some(3.0));
        assert!(m.is_ready());

        // The no-op observer accepts the same calls and records nothing.
        let noop: &dyn PipelineObserver = &super::super::NoopObserver;
        noop.input_event(Format::Native, Outcome::Success);
        noop.ready(true);
    }
}
