//! Consumer lag from librdkafka's statistics.
//!
//! librdkafka emits a JSON document every `statistics.interval.ms` (its `STATISTICS.md`
//! describes it). Only `topics.<name>.partitions.<id>` matters here: for each partition the
//! lag is `consumer_lag_stored` (the high watermark minus the offset stored for commit, which
//! cinch stores only after the outputs of a message are delivered), or `consumer_lag` (against
//! the committed or consumed offset) where no offset is stored yet. The internal unassigned
//! partition `-1` and partitions whose lag librdkafka does not know (`-1`: not assigned, or no
//! watermark yet) are skipped. Every other field is ignored, so the parser follows librdkafka's
//! additions without change.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::TelemetryError;
use super::metrics::Metrics;
use super::observer::PipelineObserver;

/// The consumer lag of one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    /// The topic's name.
    pub topic: String,
    /// The partition id.
    pub partition: i32,
    /// Messages between the partition's end and this consumer's position.
    pub lag: i64,
}

#[derive(Deserialize)]
struct Statistics {
    #[serde(default)]
    topics: BTreeMap<String, TopicStatistics>,
}

#[derive(Deserialize)]
struct TopicStatistics {
    #[serde(default)]
    partitions: BTreeMap<String, PartitionStatistics>,
}

#[derive(Deserialize)]
struct PartitionStatistics {
    partition: i32,
    #[serde(default = "unknown_lag")]
    consumer_lag: i64,
    #[serde(default = "unknown_lag")]
    consumer_lag_stored: i64,
}

fn unknown_lag() -> i64 {
    -1
}

/// librdkafka's id of the internal unassigned partition.
const UNASSIGNED_PARTITION: i32 = -1;

/// Reads the known consumer lags from a librdkafka statistics document, ordered by topic and
/// partition.
pub fn parse_consumer_lags(json: &str) -> Result<Vec<PartitionLag>, TelemetryError> {
    let stats: Statistics = serde_json::from_str(json).map_err(TelemetryError::Statistics)?;
    let mut lags = Vec::new();
    for (topic, t) in stats.topics {
        let mut partitions: Vec<PartitionStatistics> = t.partitions.into_values().collect();
        partitions.sort_by_key(|p| p.partition);
        for p in partitions {
            if p.partition == UNASSIGNED_PARTITION {
                continue;
            }
            let lag = if p.consumer_lag_stored >= 0 {
                p.consumer_lag_stored
            } else {
                p.consumer_lag
            };
            if lag >= 0 {
                lags.push(PartitionLag {
                    topic: topic.clone(),
                    partition: p.partition,
                    lag,
                });
            }
        }
    }
    Ok(lags)
}

/// Reports the consumer lags of a statistics document to `observer`, and returns how many
/// partitions had a known lag.
pub fn observe_statistics(
    json: &str,
    observer: &dyn PipelineObserver,
) -> Result<usize, TelemetryError> {
    let lags = parse_consumer_lags(json)?;
    for l in &lags {
        observer.lag(&l.topic, l.partition, l.lag);
    }
    Ok(lags.len())
}

/// Replaces `cinch_consumer_lag` with the lags of a statistics document, so that partitions no
/// longer assigned stop being exported, and returns how many partitions had a known lag.
pub fn apply_statistics(json: &str, metrics: &Metrics) -> Result<usize, TelemetryError> {
    let lags = parse_consumer_lags(json)?;
    metrics.set_consumer_lags(&lags);
    Ok(lags.len())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    const SAMPLE: &str = include_str!("../../fixtures/telemetry/librdkafka_stats.json");

    fn lag(topic: &str, partition: i32, lag: i64) -> PartitionLag {
        PartitionLag {
            topic: topic.into(),
            partition,
            lag,
        }
    }

    #[test]
    fn lags_of_assigned_partitions_are_read_from_a_consumer_sample() {
        let lags = parse_consumer_lags(SAMPLE).unwrap();
        assert_eq!(
            lags,
            vec![
                lag("cinch.events.cloudtrail", 0, 500),
                lag("cinch.events.cloudtrail", 1, 0),
                lag("cinch.events.ocsf", 1, 200),
            ],
            "stored lag preferred; partition -1 and unknown lags skipped"
        );
    }

    #[test]
    fn committed_lag_is_used_where_no_offset_is_stored() {
        let json = r#"{"topics": {"t": {"topic": "t", "partitions": {
            "0": {"partition": 0, "consumer_lag": 12, "consumer_lag_stored": -1},
            "1": {"partition": 1, "consumer_lag": 9},
            "-1": {"partition": -1, "consumer_lag": 5, "consumer_lag_stored": 5}
        }}}}"#;
        assert_eq!(
            parse_consumer_lags(json).unwrap(),
            vec![lag("t", 0, 12), lag("t", 1, 9)]
        );
    }

    #[test]
    fn producer_statistics_and_empty_documents_have_no_lag() {
        let producer = r#"{"name": "rdkafka#producer-1", "type": "producer", "topics": {
            "out": {"topic": "out", "partitions": {
                "0": {"partition": 0, "consumer_lag": -1, "consumer_lag_stored": -1}
            }}}}"#;
        assert!(parse_consumer_lags(producer).unwrap().is_empty());
        assert!(parse_consumer_lags("{}").unwrap().is_empty());
    }

    #[test]
    fn malformed_statistics_are_an_error() {
        let err = parse_consumer_lags("{\"topics\": [").unwrap_err();
        assert!(matches!(err, TelemetryError::Statistics(_)), "{err}");
        assert!(parse_consumer_lags(r#"{"topics": {"t": {"partitions": {"0": {}}}}}"#).is_err());
    }

    #[test]
    fn statistics_update_the_lag_gauge() {
        let m = Metrics::new();
        m.lag("cinch.events.cloudtrail", 2, 999);
        assert_eq!(apply_statistics(SAMPLE, &m).unwrap(), 3);
        let text = m.render();
        assert!(
            text.contains(
                "cinch_consumer_lag{partition=\"0\",topic=\"cinch.events.cloudtrail\"} 500"
            )
        );
        assert!(
            text.contains("cinch_consumer_lag{partition=\"1\",topic=\"cinch.events.ocsf\"} 200")
        );
        assert!(
            !text.contains("partition=\"2\""),
            "a partition no longer assigned is dropped: {text}"
        );
        assert!(!text.contains("partition=\"-1\""));
    }

    #[test]
    fn statistics_reach_any_observer() {
        #[derive(Default)]
        struct Recorder(Mutex<Vec<(String, i32, i64)>>);
        impl PipelineObserver for Recorder {
            fn lag(&self, topic: &str, partition: i32, lag: i64) {
                self.0.lock().unwrap().push((topic.into(), partition, lag));
            }
        }
        let r = Recorder::default();
        assert_eq!(observe_statistics(SAMPLE, &r).unwrap(), 3);
        assert_eq!(
            r.0.lock().unwrap()[0],
            ("cinch.events.cloudtrail".to_string(), 0, 500)
        );
    }
}
