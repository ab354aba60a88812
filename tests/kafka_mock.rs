//! The Kafka pipeline against librdkafka's in-process mock cluster (no broker needed).

use cinch::event::{Format, Outcome};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cinch::config::Settings;
use cinch::drive::kafka::{self, PipelineObserver, RunOptions, RunSummary};
use cinch::sim::{self, SimConfig};
use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

const INPUT: &str = "cinch.events";
const PARTITIONS: i32 = 4;

/// Counts the records the pipeline handled.
#[derive(Default)]
struct Counter {
    records: AtomicU64,
    /// Consumer-lag reports, from librdkafka's statistics.
    lags: AtomicU64,
}

impl PipelineObserver for Counter {
    fn input_event(&self, _format: Format, _outcome: Outcome) {
        self.records.fetch_add(1, Ordering::Relaxed);
    }
    fn already_reflected(&self) {
        self.records.fetch_add(1, Ordering::Relaxed);
    }
    fn dead_letter(&self, _reason_code: &'static str) {
        self.records.fetch_add(1, Ordering::Relaxed);
    }
    fn lag(&self, _topic: &str, _partition: i32, lag: i64) {
        assert!(lag >= 0, "lag is never negative");
        self.lags.fetch_add(1, Ordering::Relaxed);
    }
}

fn cluster() -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic(INPUT, PARTITIONS, 1)
        .expect("input topic");
    for t in [
        "cinch.findings",
        "cinch.recommendations",
        "cinch.commands",
        "cinch.dead-letters",
        "cinch.audit",
        "cinch.state",
        "cinch.scores",
    ] {
        mock.create_topic(t, 2, 1).expect("output topic");
    }
    mock
}

fn settings(brokers: &str, group: &str) -> Settings {
    let mut s = Settings::default();
    s.kafka.brokers = brokers.to_string();
    s.kafka.group_id = group.to_string();
    s.kafka.workers = 2;
    // Small queues, so that consumption pauses and resumes many times.
    s.kafka.channel_capacity = 256;
    for (k, v) in [
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "500"),
        ("statistics.interval.ms", "200"),
    ] {
        s.kafka.properties.insert(k.into(), v.into());
    }
    s.kafka.checkpoint_every_events = 1000;
    s.kafka.shutdown_deadline_secs = 10;
    s.kafka.scores_topic = Some("cinch.scores".into());
    s
}

/// A small simulated fleet with attacks: (agent id, JSON line) in time order, and the ids of
/// the attack events.
fn fleet(dir: &Path) -> (Vec<(String, String)>, Vec<String>) {
    let cfg = SimConfig {
        agents: 12,
        days: 6,
        seed: 7,
        attack_share: 0.5,
        out: dir.to_path_buf(),
        ..SimConfig::default()
    };
    sim::simulate(&cfg).expect("simulate");
    let text = std::fs::read_to_string(dir.join("events.jsonl")).expect("events");
    let events = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            (v["agent_id"].as_str().unwrap().to_string(), l.to_string())
        })
        .collect();
    let labels = std::fs::read_to_string(dir.join("labels.csv")).expect("labels");
    let attacks = labels
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split(',');
            let id = f.next()?;
            (f.next()? == "attack").then(|| id.to_string())
        })
        .collect();
    (events, attacks)
}

fn produce(brokers: &str, records: &[(String, String)]) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for (key, value) in records {
        kafka::send_waiting(&p, INPUT, key, value.as_bytes());
    }
    p.flush(Duration::from_secs(10)).expect("flush");
}

/// Every message of a topic, as (key, value).
fn read_all(brokers: &str, topic: &str) -> Vec<(String, serde_json::Value)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "cinch-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .expect("metadata");
    let mut tpl = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for p in md.topics()[0].partitions() {
        let (lo, hi) = c
            .fetch_watermarks(topic, p.id(), Duration::from_secs(5))
            .expect("watermarks");
        if hi > lo {
            tpl.add_partition_offset(topic, p.id(), Offset::Offset(lo))
                .unwrap();
            ends.insert(p.id(), hi);
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return out;
    }
    c.assign(&tpl).unwrap();
    let started = Instant::now();
    while !ends.is_empty() && started.elapsed() < Duration::from_secs(20) {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            if m.offset() + 1 >= ends[&m.partition()] {
                ends.remove(&m.partition());
            }
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            let value = serde_json::from_slice(m.payload().unwrap_or_default()).expect("json");
            out.push((key, value));
        }
    }
    assert!(ends.is_empty(), "{topic} read to its end");
    out
}

/// Runs a pipeline until it has handled `expected` records in all.
async fn run_until(settings: Settings, counter: Arc<Counter>, expected: u64) -> RunSummary {
    let t0 = Instant::now();
    let c = counter.clone();
    let opts = RunOptions { observer: counter };
    let summary = kafka::run_with(settings, opts, async move {
        let started = Instant::now();
        while c.records.load(Ordering::Relaxed) < expected
            && started.elapsed() < Duration::from_secs(60)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("pipeline");
    eprintln!("run took {:?}", t0.elapsed());
    summary
}

fn committed(brokers: &str, group: &str) -> BTreeMap<i32, i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(INPUT, p);
    }
    let got = c
        .committed_offsets(tpl, Duration::from_secs(5))
        .expect("committed");
    got.elements()
        .iter()
        .map(|e| (e.partition(), e.offset().to_raw().unwrap_or(-1)))
        .collect()
}

fn ends(brokers: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("consumer");
    (0..partitions)
        .map(|p| {
            (
                p,
                c.fetch_watermarks(topic, p, Duration::from_secs(5))
                    .unwrap()
                    .1,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_finds_attacks_dead_letters_bad_records_and_commits_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let (mut events, attacks) = fleet(dir.path());
    let good = events.len() as u64;
    let bad = [
        "not json at all",
        "{\"event_id\":\"x1\",\"agent_id\":\"a\"}",
        "{\"event_id\":\"x2\",\"time\":\"1900-01-01T00:00:00Z\",\"agent_id\":\"a\",\"action\":\"s3:GetObject\",\"resource\":\"\"}",
        "",
    ];
    for (i, b) in bad.iter().enumerate() {
        events.insert(i * 997, ("bad".into(), b.to_string()));
    }
    let mock = cluster();
    let brokers = mock.bootstrap_servers();
    produce(&brokers, &events);

    let counter = Arc::new(Counter::default());
    let summary = run_until(
        settings(&brokers, "happy"),
        counter.clone(),
        events.len() as u64,
    )
    .await;
    assert!(
        counter.lags.load(Ordering::Relaxed) > 0,
        "consumer lag is reported from librdkafka's statistics"
    );

    assert_eq!(summary.records, events.len() as u64, "{summary}");
    assert_eq!(summary.events, good, "{summary}");
    assert_eq!(summary.dead_letters, bad.len() as u64, "{summary}");
    assert_eq!(summary.records, summary.events + summary.dead_letters);

    let dead = read_all(&brokers, "cinch.dead-letters");
    assert_eq!(dead.len(), bad.len());
    for (key, v) in &dead {
        assert_eq!(v["kind"], "dead_letter");
        assert_eq!(v["source"].as_str(), Some(key.as_str()));
        assert!(key.starts_with("cinch.events/"), "{key}");
    }

    let findings = read_all(&brokers, "cinch.findings");
    assert_eq!(findings.len() as u64, summary.findings, "{summary}");
    assert!(!findings.is_empty());
    let flagged: std::collections::HashSet<&str> = findings
        .iter()
        .flat_map(|(_, f)| f["event_ids"].as_array().unwrap().iter())
        .filter_map(|e| e.as_str())
        .collect();
    let caught = attacks
        .iter()
        .filter(|a| flagged.contains(a.as_str()))
        .count();
    assert!(caught > 0, "some attack events are in findings");
    for (key, f) in &findings {
        assert_eq!(f["agent_id"].as_str(), Some(key.as_str()));
    }

    let scores = read_all(&brokers, "cinch.scores");
    assert_eq!(scores.len() as u64, good);

    assert_eq!(
        committed(&brokers, "happy"),
        ends(&brokers, INPUT, PARTITIONS),
        "committed offsets reach the end of every input partition"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_state_continues_the_scores_of_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let (events, _) = fleet(dir.path());
    let half = events.len() / 2;
    // One partition per worker, so each engine sees its events in the same order in every run.
    let settings = |b: &str, g: &str| {
        let mut s = settings(b, g);
        s.kafka.workers = PARTITIONS as usize;
        s
    };

    // Uninterrupted.
    let whole = cluster();
    let b = whole.bootstrap_servers();
    produce(&b, &events);
    let s = run_until(
        settings(&b, "whole"),
        Arc::new(Counter::default()),
        events.len() as u64,
    )
    .await;
    assert_eq!(s.events, events.len() as u64);
    let reference: HashMap<String, serde_json::Value> = read_all(&b, "cinch.scores")
        .into_iter()
        .map(|(_, v)| (v["event_id"].as_str().unwrap().to_string(), v))
        .collect();

    // Interrupted half-way: a new instance restores the checkpointed state.
    let split = cluster();
    let b = split.bootstrap_servers();
    produce(&b, &events[..half]);
    let first = run_until(
        settings(&b, "split"),
        Arc::new(Counter::default()),
        half as u64,
    )
    .await;
    assert!(first.checkpoints > 0);
    produce(&b, &events[half..]);
    let second = run_until(
        settings(&b, "split"),
        Arc::new(Counter::default()),
        (events.len() - half) as u64,
    )
    .await;
    assert!(second.restored_agents > 0, "{second}");
    assert_eq!(second.events, (events.len() - half) as u64, "{second}");
    assert_eq!(second.already_reflected, 0, "{second}");

    // The first half was scored by the same engine state in both runs: identical. In the second
    // half the restored profiles carry the baselines over; only the fleet-wide peer statistics
    // (not checkpointed) start afresh, which moves a few scores of the restored instance.
    let first_half: std::collections::HashSet<&str> = events[..half]
        .iter()
        .map(|(_, l)| {
            let i = l.find("\"event_id\":\"").unwrap() + 12;
            &l[i..i + l[i..].find('"').unwrap()]
        })
        .collect();
    let scores = read_all(&b, "cinch.scores");
    assert_eq!(scores.len(), events.len());
    let (mut same, mut differ) = (0usize, Vec::new());
    for (_, v) in &scores {
        let id = v["event_id"].as_str().unwrap();
        if reference[id]["score"] == v["score"] {
            same += 1;
        } else {
            assert!(
                !first_half.contains(id),
                "{id} scored differently before the restart"
            );
            differ.push((
                id.to_string(),
                reference[id]["score"].clone(),
                v["score"].clone(),
            ));
        }
    }
    assert!(
        differ.len() * 100 <= events.len() - half,
        "{} of {} scores after the restart differ (at most 1% may), e.g. {:?}",
        differ.len(),
        events.len() - half,
        &differ[..differ.len().min(5)]
    );
    assert!(same >= half);
}

#[test]
fn demo_runs_by_itself_and_prints_a_summary() {
    let out = assert_cmd::Command::cargo_bin("cinch")
        .unwrap()
        .args(["demo", "--agents", "8", "--days", "4", "--rate", "50000"])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("== summary"), "{text}");
    assert!(text.contains("findings:"), "{text}");
}
