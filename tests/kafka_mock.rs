//! The Kafka pipeline against librdkafka's in-process mock cluster (no broker needed).

#[path = "common/otlp.rs"]
mod otlp_fixture;

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
    /// Whether the instance holds partitions (restored and ready).
    ready: std::sync::atomic::AtomicBool,
    /// Model loads: (peer groups, whether it loaded).
    models: std::sync::Mutex<Vec<(usize, bool)>>,
    /// The agents the instance holds, every time it reported them.
    agents: std::sync::Mutex<Vec<usize>>,
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
    fn ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }
    fn lag(&self, _topic: &str, _partition: i32, lag: i64) {
        assert!(lag >= 0, "lag is never negative");
        self.lags.fetch_add(1, Ordering::Relaxed);
    }
    fn model_loaded(&self, groups: usize, ok: bool) {
        self.models.lock().unwrap().push((groups, ok));
    }
    fn agents(&self, count: usize, _state_bytes: usize) {
        self.agents.lock().unwrap().push(count);
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
    s.kafka.commit_interval_ms = 200;
    s.kafka.shutdown_deadline_secs = 10;
    s.kafka.scores_topic = Some("cinch.scores".into());
    // The fleet's entitlements, a short history so that 6 days give recommendations, and the
    // fixture key, so that every run signs alike.
    s.grants.entitlements_path = fleet_entitlements().display().to_string();
    s.grants.min_history_days = 2.0;
    s.grants.narrow_stable_days = 1.0;
    s.commands.signing_key = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/keys/cinch-signing.key")
        .display()
        .to_string();
    s
}

/// The entitlements of the fleet [`fleet`] simulates (written once per test process).
fn fleet_entitlements() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let d = tempfile::tempdir().expect("tempdir");
        fleet(d.path());
        d
    });
    Box::leak(dir.path().join("entitlements.json").into_boxed_path())
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
    // Read until every partition's position passes its end (a transaction's commit marker
    // occupies an offset but is never delivered).
    while !ends.is_empty() && started.elapsed() < Duration::from_secs(20) {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            let value = serde_json::from_slice(m.payload().unwrap_or_default()).expect("json");
            out.push((key, value));
        }
        if let Ok(pos) = c.position() {
            for e in pos.elements() {
                if let Offset::Offset(o) = e.offset()
                    && ends.get(&e.partition()).is_some_and(|end| o >= *end)
                {
                    ends.remove(&e.partition());
                }
            }
        }
    }
    assert!(ends.is_empty(), "{topic} read to its end");
    out
}

/// Runs a pipeline until it has handled `expected` records in all, then closes its open
/// findings.
async fn run_until(settings: Settings, counter: Arc<Counter>, expected: u64) -> RunSummary {
    run_until_with(settings, counter, expected, true).await
}

async fn run_until_with(
    settings: Settings,
    counter: Arc<Counter>,
    expected: u64,
    close: bool,
) -> RunSummary {
    let t0 = Instant::now();
    let c = counter.clone();
    let opts = RunOptions {
        observer: counter,
        close_findings_at_exit: close,
        ..RunOptions::default()
    };
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
    committed_on(brokers, group, INPUT, PARTITIONS)
}

fn committed_on(brokers: &str, group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
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

    assert_eq!(summary.input.records, events.len() as u64, "{summary}");
    assert_eq!(summary.input.events, good, "{summary}");
    // Each worker reports at its commit points; the gauge is the instance's sum (a worker holds
    // only some of the agents), and at the end it lets every partition go.
    let reports = counter.agents.lock().unwrap().clone();
    assert!(
        reports.contains(&summary.agents),
        "the agents gauge counts every worker's agents: {} in all, reported {reports:?}",
        summary.agents
    );
    assert_eq!(reports.last(), Some(&0), "{reports:?}");
    assert_eq!(summary.input.dead_letters, bad.len() as u64, "{summary}");
    assert_eq!(
        summary.input.records,
        summary.input.events + summary.input.dead_letters
    );

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

/// Records by id: `field` names the id. Repeated records (a replay after a restart) must be
/// identical.
fn by_id(
    records: &[(String, serde_json::Value)],
    field: &str,
) -> BTreeMap<String, serde_json::Value> {
    let mut out: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for (_, v) in records {
        let id = v[field].as_str().expect("id").to_string();
        if let Some(prev) = out.get(&id) {
            assert_eq!(prev, v, "a repeated {field} {id} is not identical");
        }
        out.insert(id, v.clone());
    }
    out
}

/// The scores and findings of one uninterrupted consumer, by id.
struct Reference {
    scores: BTreeMap<String, serde_json::Value>,
    findings: BTreeMap<String, serde_json::Value>,
    commands: BTreeMap<String, serde_json::Value>,
    recommendations: BTreeMap<String, serde_json::Value>,
}

impl Reference {
    /// Asserts that the scores, findings, commands and recommendations on `brokers` equal
    /// these, with none missing and repeats identical; returns how many score lines were read
    /// (repeats included).
    fn assert_matches(&self, brokers: &str) -> usize {
        let scores = read_all(brokers, "cinch.scores");
        assert_same("score", &self.scores, &by_id(&scores, "event_id"));
        assert_same(
            "finding",
            &self.findings,
            &by_id(&read_all(brokers, "cinch.findings"), "finding_id"),
        );
        assert_same(
            "command",
            &self.commands,
            &by_id(&read_all(brokers, "cinch.commands"), "command_id"),
        );
        assert_same(
            "recommendation",
            &self.recommendations,
            &by_id(
                &read_all(brokers, "cinch.recommendations"),
                "recommendation_id",
            ),
        );
        scores.len()
    }
}

/// The scores and findings of one uninterrupted consumer over `events`.
async fn reference(events: &[(String, String)]) -> Reference {
    let mock = cluster();
    let b = mock.bootstrap_servers();
    produce(&b, events);
    let s = run_until(
        settings(&b, "whole"),
        Arc::new(Counter::default()),
        events.len() as u64,
    )
    .await;
    assert_eq!(s.input.events, events.len() as u64);
    let r = Reference {
        scores: by_id(&read_all(&b, "cinch.scores"), "event_id"),
        findings: by_id(&read_all(&b, "cinch.findings"), "finding_id"),
        commands: by_id(&read_all(&b, "cinch.commands"), "command_id"),
        recommendations: by_id(&read_all(&b, "cinch.recommendations"), "recommendation_id"),
    };
    assert!(
        !r.commands.is_empty(),
        "the fleet's attacks draw no command"
    );
    assert!(
        !r.recommendations.is_empty(),
        "the fleet's grants draw no recommendation"
    );
    r
}

/// Asserts every record of an interrupted run equals the uninterrupted one, and none is missing.
fn assert_same(
    what: &str,
    reference: &BTreeMap<String, serde_json::Value>,
    got: &BTreeMap<String, serde_json::Value>,
) {
    for (id, v) in got {
        match reference.get(id) {
            Some(r) => assert_eq!(r, v, "{what} {id} differs from the uninterrupted run"),
            None => panic!("{what} {id} is not in the uninterrupted run: {v}"),
        }
    }
    let missing: Vec<&String> = reference.keys().filter(|k| !got.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "{} {what}s missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_state_continues_the_scores_of_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let (events, _) = fleet(dir.path());
    let half = events.len() / 2;
    let reference = reference(&events).await;
    assert!(!reference.findings.is_empty());

    // Interrupted half-way: a new instance, with another number of workers, restores the
    // checkpointed state and reads on.
    let split = cluster();
    let b = split.bootstrap_servers();
    produce(&b, &events[..half]);
    let first = run_until_with(
        settings(&b, "split"),
        Arc::new(Counter::default()),
        half as u64,
        false,
    )
    .await;
    assert!(first.checkpoints > 0);
    produce(&b, &events[half..]);
    let mut one_worker = settings(&b, "split");
    one_worker.kafka.workers = 1;
    let second = run_until(
        one_worker,
        Arc::new(Counter::default()),
        (events.len() - half) as u64,
    )
    .await;
    assert!(second.restored_agents > 0, "{second}");
    assert_eq!(
        second.input.events,
        (events.len() - half) as u64,
        "{second}"
    );
    assert_eq!(second.already_reflected, 0, "{second}");

    assert_eq!(reference.assert_matches(&b), events.len());
}

/// Waits until the group's committed offsets reach the ends of the input.
async fn until_committed(brokers: String, group: &'static str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(90) {
        let (b, e) = (brokers.clone(), brokers.clone());
        let done = tokio::task::spawn_blocking(move || {
            committed(&b, group) == ends(&e, INPUT, PARTITIONS)
        })
        .await
        .unwrap();
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn until(what: &str, f: impl Fn() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_moving_between_two_live_consumers_keep_every_score_and_finding() {
    let dir = tempfile::tempdir().unwrap();
    let (events, _) = fleet(dir.path());
    let reference = reference(&events).await;
    let third = events.len() / 3;

    let mock = cluster();
    let b = mock.bootstrap_servers();
    produce(&b, &events[..third]);
    // A alone; B joins (partitions move from A to B); A leaves (they move back to B).
    let (a_counter, b_counter) = (Arc::new(Counter::default()), Arc::new(Counter::default()));
    let (stop_a, a_stopped) = tokio::sync::oneshot::channel::<()>();
    let a = tokio::spawn(kafka::run_with(
        settings(&b, "live"),
        RunOptions {
            observer: a_counter.clone(),
            close_findings_at_exit: false,
            ..RunOptions::default()
        },
        async move {
            let _ = a_stopped.await;
        },
    ));
    let c = a_counter.clone();
    until("A to read the first third", || {
        c.records.load(Ordering::Relaxed) >= third as u64
    })
    .await;
    let mut b_settings = settings(&b, "live");
    b_settings.kafka.workers = 3;
    let bb = b.clone();
    let (all_produced, produced) = tokio::sync::oneshot::channel::<()>();
    let b_task = tokio::spawn(kafka::run_with(
        b_settings,
        RunOptions {
            observer: b_counter.clone(),
            close_findings_at_exit: true,
            ..RunOptions::default()
        },
        async move {
            let _ = produced.await;
            until_committed(bb, "live").await
        },
    ));
    let c = b_counter.clone();
    until("B to be assigned partitions", || {
        c.ready.load(Ordering::Acquire)
    })
    .await;
    produce(&b, &events[third..2 * third]);
    let (ca, cb) = (a_counter.clone(), b_counter.clone());
    until("A and B to read the second third", || {
        ca.records.load(Ordering::Relaxed) + cb.records.load(Ordering::Relaxed) >= 2 * third as u64
    })
    .await;
    let _ = stop_a.send(());
    let a_summary = a.await.unwrap().expect("A");
    produce(&b, &events[2 * third..]);
    let _ = all_produced.send(());
    let b_summary = b_task.await.unwrap().expect("B");
    eprintln!("A: {a_summary}\nB: {b_summary}");
    assert!(
        b_summary.restored_agents > 0,
        "B took over agents from A: {b_summary}"
    );
    assert!(a_summary.input.events > 0 && b_summary.input.events > 0);

    reference.assert_matches(&b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_mode_commits_in_transactions_and_restores_across_instances() {
    let dir = tempfile::tempdir().unwrap();
    let (events, _) = fleet(dir.path());
    let half = events.len() / 2;
    let reference = reference(&events).await;

    let mock = cluster();
    let b = mock.bootstrap_servers();
    let eos = |group: &str| {
        let mut s = settings(&b, group);
        s.kafka.guarantee = cinch::config::Guarantee::ExactlyOnce;
        s
    };
    produce(&b, &events[..half]);
    let first = run_until_with(eos("eos"), Arc::new(Counter::default()), half as u64, false).await;
    assert!(first.checkpoints > 0, "{first}");
    assert_eq!(first.aborted_transactions, 0, "{first}");
    produce(&b, &events[half..]);
    // The mock cluster acknowledges a transaction's input offsets but does not store them (its
    // TxnOffsetCommit handler keeps nothing), so the second instance reads the input from the
    // start: the restored checkpoint must tell it which events it already reflects. The run
    // ends when every score is visible. Committed offsets are checked on a real broker by the
    // end-to-end script.
    let (bb, total) = (b.clone(), events.len());
    let second = kafka::run_with(
        eos("eos"),
        RunOptions {
            observer: Arc::new(Counter::default()),
            close_findings_at_exit: true,
            ..RunOptions::default()
        },
        async move {
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(60) {
                let b = bb.clone();
                let n = tokio::task::spawn_blocking(move || read_all(&b, "cinch.scores").len())
                    .await
                    .unwrap();
                if n >= total {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        },
    )
    .await
    .expect("second instance");
    assert!(second.restored_agents > 0, "{second}");
    assert_eq!(
        second.input.events - second.already_reflected,
        (events.len() - half) as u64,
        "{second}"
    );

    assert_eq!(
        reference.assert_matches(&b),
        events.len(),
        "each score once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_errors_are_retried_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (events, _) = fleet(dir.path());
    let reference = reference(&events).await;

    let mock = cluster();
    let b = mock.bootstrap_servers();
    produce(&b, &events);
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    // Transient failures on every path: produce, fetch, offset commit and the group
    // coordinator.
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        ],
    );
    mock.request_errors(
        RDKafkaApiKey::Fetch,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 2],
    );
    mock.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS; 2],
    );
    mock.broker_round_trip_time(1, Duration::from_millis(20))
        .unwrap();
    // One produce request in flight at a time. librdkafka's mock broker checks the sequence
    // numbers of an idempotent producer only for transactional ones (`rd_kafka_mock_validate_
    // records`), so with requests pipelined it appends a request R2 after an R1 it failed; the
    // producer, as against a real broker (which would refuse R2 as out of order), then takes
    // R1's records for persisted (`rd_kafka_dr_implicit_ack`) and they are lost in the mock
    // only. With one request in flight the retries are exercised without that artefact.
    let mut s = settings(&b, "flaky");
    s.kafka
        .properties
        .insert("max.in.flight.requests.per.connection".into(), "1".into());
    let summary = run_until(s, Arc::new(Counter::default()), events.len() as u64).await;
    assert_eq!(summary.input.events, events.len() as u64, "{summary}");
    reference.assert_matches(&b);
    assert_eq!(committed(&b, "flaky"), ends(&b, INPUT, PARTITIONS));
}

#[test]
fn an_output_the_broker_refuses_stops_the_run_without_committing_its_input() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (events, _) = fleet(dir.path());
        let mock = cluster();
        let b = mock.bootstrap_servers();
        produce(&b, &events);
        mock.topic_error(
            "cinch.scores",
            rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        )
        .unwrap();
        let mut s = settings(&b, "refused");
        s.kafka.shutdown_deadline_secs = 5;
        let result = kafka::run_with(
            s,
            RunOptions::default(),
            tokio::time::sleep(Duration::from_secs(30)),
        )
        .await;
        let err = result.expect_err("the run stops");
        eprintln!("{err}");
        let committed = committed(&b, "refused");
        assert!(
            committed.values().all(|o| *o < 0),
            "no input offset was committed: {committed:?}"
        );
    });
}

/// What `cinch ARGS` prints on stdout, once it has succeeded within `timeout`.
fn cinch_stdout(args: &[&str], timeout: Duration) -> String {
    let out = assert_cmd::Command::cargo_bin("cinch")
        .unwrap()
        .args(args)
        .timeout(timeout)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn demo_runs_by_itself_and_prints_a_summary() {
    let cinch = |args: &[&str]| cinch_stdout(args, Duration::from_secs(120));
    let text = cinch(&["demo", "--agents", "8", "--days", "4", "--rate", "50000"]);
    assert!(text.contains("== summary"), "{text}");
    assert!(text.contains("findings:"), "{text}");
    // History summed up first, then the live feed, then the enforcement point's decisions.
    let at = |s: &str| text.find(s).unwrap_or_else(|| panic!("no {s:?} in {text}"));
    assert!(at("== history") < at("== live") && at("== live") < at("== summary"));
    assert!(at("== summary") < at("== enforcement"), "{text}");

    // Its four input partitions share fleet knowledge: the demo judges its fleet as a replay
    // over four partitions with fleet knowledge merged does.
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim");
    let sim_s = sim.to_str().unwrap();
    cinch(&[
        "simulate", "--agents", "8", "--days", "4", "--seed", "1", "--out", sim_s,
    ]);
    let config = dir.path().join("cinch.toml");
    std::fs::write(&config, "[commands]\ndry_run = false\n").unwrap();
    let out = dir.path().join("out.jsonl");
    cinch(&[
        "replay",
        "--input",
        sim.join("events.jsonl").to_str().unwrap(),
        "--entitlements",
        sim.join("entitlements.json").to_str().unwrap(),
        "--partitions",
        "4",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let records = std::fs::read_to_string(&out).unwrap();
    let kind = |k: &str| {
        records
            .lines()
            .filter(|l| l.contains(&format!("\"kind\":\"{k}\"")))
            .count()
    };
    let summary = &text[at("== summary")..];
    let told = |what: &str| -> usize {
        summary
            .lines()
            .find_map(|l| l.split_once(what))
            .and_then(|(n, _)| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {what:?} in {summary}"))
    };
    assert!(kind("finding") > 0, "{records}");
    assert_eq!(told(" findings:"), kind("finding"), "{text}");
    assert_eq!(told(" commands:"), kind("command"), "{text}");
    assert_eq!(
        told(" least-privilege recommendations"),
        kind("recommendation"),
        "{text}"
    );
}

/// What a new user sees first: the default demo's live feed opens on attacks, not on noise.
#[test]
fn the_demos_first_screen_shows_at_least_as_many_attack_findings_as_benign_ones() {
    let text = cinch_stdout(&["demo"], Duration::from_secs(300));
    let screen: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("== live"))
        .skip(1)
        .take(24)
        .collect();
    assert_eq!(screen.len(), 24, "{text}");
    let findings = |label: &str| {
        screen
            .iter()
            .filter(|l| l.contains(" finding ") && l.contains(label))
            .count()
    };
    let (attacks, benign) = (findings("[ATTACK "), findings("[benign]"));
    assert!(attacks > 0 && attacks >= benign, "{}", screen.join("\n"));
}

/// Produces `(key, value)` records to `topic`.
fn produce_to(brokers: &str, topic: &str, records: &[(String, String)]) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("producer");
    for (key, value) in records {
        kafka::send_waiting(&p, topic, key, value.as_bytes());
    }
    p.flush(Duration::from_secs(10)).expect("flush");
}

/// Entitlements from a compacted topic give exactly what the same entitlements from a file
/// give; feedback from a topic reaches the partition engine that knows its finding (restored by
/// a new instance), which then suppresses the behaviour it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entitlements_and_feedback_topics_reach_the_engines() {
    let dir = tempfile::tempdir().unwrap();
    let (events, _) = fleet(dir.path());
    let want = reference(&events).await;

    let mock = cluster();
    mock.create_topic("cinch.entitlements", 1, 1).unwrap();
    mock.create_topic("cinch.feedback", 1, 1).unwrap();
    let b = mock.bootstrap_servers();
    let doc: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fleet_entitlements()).unwrap()).unwrap();
    let mut grants: Vec<(String, String)> = doc
        .iter()
        .map(|(agent, g)| (agent.clone(), g.to_string()))
        .collect();
    // A broken record first: reported and skipped, the later one for that agent applies.
    grants.insert(0, (grants[0].0.clone(), "{not json".into()));
    produce_to(&b, "cinch.entitlements", &grants);
    produce(&b, &events);
    let mut s = settings(&b, "side");
    s.grants.entitlements_path = String::new();
    s.grants.entitlements_topic = "cinch.entitlements".into();
    s.feedback.topic = "cinch.feedback".into();
    run_until(s.clone(), Arc::new(Counter::default()), events.len() as u64).await;
    assert_same(
        "command",
        &want.commands,
        &by_id(&read_all(&b, "cinch.commands"), "command_id"),
    );
    assert_same(
        "recommendation",
        &want.recommendations,
        &by_id(&read_all(&b, "cinch.recommendations"), "recommendation_id"),
    );

    // An analyst marks the last finding a false positive; the agent then does the same again a
    // day later.
    let findings = by_id(&read_all(&b, "cinch.findings"), "finding_id");
    let f = findings
        .values()
        .max_by_key(|f| f["last_seen"].as_str().unwrap().to_string())
        .unwrap();
    let agent = f["agent_id"].as_str().unwrap();
    let feedback = serde_json::json!({
        "finding_id": f["finding_id"], "agent_id": agent, "verdict": "false_positive",
        "analyst": "alice@example.com", "reason": "a known job",
    });
    produce_to(
        &b,
        "cinch.feedback",
        &[(agent.to_string(), feedback.to_string())],
    );
    let ids: std::collections::HashSet<&str> = f["event_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    let again: Vec<(String, String)> = events
        .iter()
        .filter_map(|(k, line)| {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            if !ids.contains(v["event_id"].as_str()?) {
                return None;
            }
            let t = cinch::event::time::parse_rfc3339_ms(v["time"].as_str()?)? + 86_400_000;
            v["time"] = t.into();
            v["event_id"] = format!("{}-again", v["event_id"].as_str()?).into();
            Some((k.clone(), v.to_string()))
        })
        .collect();
    assert!(!again.is_empty());
    produce(&b, &again);
    run_until_with(s, Arc::new(Counter::default()), again.len() as u64, true).await;
    let audit = read_all(&b, "cinch.audit");
    let created: Vec<&serde_json::Value> = audit
        .iter()
        .map(|(_, a)| a)
        .filter(|a| a["event"] == "suppression_created")
        .collect();
    assert_eq!(created.len(), 1, "{audit:?}");
    assert_eq!(created[0]["details"]["finding_id"], f["finding_id"]);
    assert_eq!(created[0]["details"]["analyst"], "alice@example.com");
    let later = read_all(&b, "cinch.findings");
    assert!(
        !later.iter().any(|(_, g)| g["event_ids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().ends_with("-again"))),
        "the suppressed behaviour opened a finding"
    );
}

/// The built-in model with its last peer group removed (a valid model of one group fewer).
fn smaller_model() -> serde_json::Value {
    let mut m: serde_json::Value = serde_json::from_str(cinch::ml::model::DEFAULT_MODEL).unwrap();
    let pop = |v: &mut serde_json::Value| {
        v.as_array_mut().unwrap().pop();
    };
    pop(&mut m["peer_groups"]["centroids"]);
    pop(&mut m["peer_groups"]["sizes"]);
    let groups = m["event_model"]["groups"].as_array_mut().unwrap();
    let fleet = groups.pop().unwrap();
    groups.pop();
    groups.push(fleet);
    if let Some(c) = m["calibration"]["groups"].as_array_mut() {
        let fleet = c.pop().unwrap();
        c.pop();
        c.push(fleet);
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_model_file_is_reloaded_and_a_broken_one_keeps_the_model_in_force() {
    let mock = cluster();
    let b = mock.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.json");
    std::fs::write(&path, cinch::ml::model::DEFAULT_MODEL).unwrap();
    let groups = cinch::ml::Model::embedded().unwrap().groups();
    let mut s = settings(&b, "model-reload");
    s.ml.enabled = true;
    s.ml.model_path = path.display().to_string();
    s.ml.reload_secs = 1;
    let (events, _) = fleet(dir.path());
    let counter = Arc::new(Counter::default());
    let c = counter.clone();
    let (b2, p2, n) = (b.clone(), path.clone(), events.len() as u64);
    let opts = RunOptions {
        observer: counter.clone(),
        close_findings_at_exit: true,
        ..RunOptions::default()
    };
    let loads = |c: &Counter| c.models.lock().unwrap().clone();
    let summary = kafka::run_with(s, opts, async move {
        until("the model loads", || loads(&c) == vec![(groups, true)]).await;
        std::fs::write(&p2, "{\"format\": \"cinch-model\", \"format_version\": 1").unwrap();
        until("the broken file is refused", || loads(&c).len() == 2).await;
        std::fs::write(&p2, smaller_model().to_string()).unwrap();
        until("the smaller model loads", || loads(&c).len() == 3).await;
        produce(&b2, &events);
        until("every event is scored", || {
            c.records.load(Ordering::Relaxed) >= n
        })
        .await;
    })
    .await
    .expect("pipeline");
    assert_eq!(
        loads(&counter),
        vec![(groups, true), (0, false), (groups - 1, true)]
    );
    assert_eq!(summary.input.events, n);
    // Every event came after the reload: none is judged against the removed group.
    let removed = format!("learned peer group {} ", groups - 1);
    let scores = read_all(&b, "cinch.scores");
    let explanations: Vec<String> = scores
        .iter()
        .flat_map(|(_, v)| v["reasons"].as_array().unwrap().clone())
        .filter(|r| r["detector"] == "model")
        .map(|r| r["explanation"].as_str().unwrap().to_string())
        .collect();
    assert!(
        explanations
            .iter()
            .any(|e| e.contains("learned peer group"))
    );
    assert!(explanations.iter().all(|e| !e.contains(&removed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_does_not_load_stops_the_run_before_it_starts() {
    let mock = cluster();
    let b = mock.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.json");
    std::fs::write(&path, "{}").unwrap();
    let mut s = settings(&b, "model-broken");
    s.ml.enabled = true;
    s.ml.model_path = path.display().to_string();
    let err = kafka::run_with(s, RunOptions::default(), async {})
        .await
        .expect_err("a broken model stops the run");
    let msg = err.to_string();
    assert!(
        msg.contains("model.json") && msg.contains("not a cinch model"),
        "{msg}"
    );
}

/// Counts repartition records read back (held, late or duplicate) and dead letters.
#[derive(Default)]
struct Repartitioned {
    received: AtomicU64,
    late: AtomicU64,
    /// Events held for order, every time they were reported.
    held: std::sync::Mutex<Vec<usize>>,
}

impl PipelineObserver for Repartitioned {
    fn repartition(&self, stage: &'static str) {
        if stage != "rekeyed" {
            self.received.fetch_add(1, Ordering::Relaxed);
        }
        if stage == "late" {
            self.late.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn dead_letter(&self, _reason_code: &'static str) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }
    fn repartition_held(&self, events: usize) {
        self.held.lock().unwrap().push(events);
    }
}

/// Produces each record to the partition `partition` gives it (by its index and key), keyed
/// or not.
fn produce_placed(
    brokers: &str,
    topic: &str,
    records: &[(String, String)],
    keyed: bool,
    partition: impl Fn(usize, &str) -> i32,
) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for (i, (key, value)) in records.iter().enumerate() {
        let mut rec = rdkafka::producer::BaseRecord::to(topic)
            .payload(value.as_bytes())
            .partition(partition(i, key));
        if keyed {
            rec = rec.key(key.as_str());
        }
        while let Err((_, r)) = p.send(rec) {
            rec = r;
            p.poll(Duration::from_millis(10));
        }
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(10)).expect("flush");
}

/// `records` (JSON lines with a `time`) cut where event time crosses a multiple of `ms`.
fn rounds_of(records: &[(String, String)], ms: i64) -> Vec<Vec<(String, String)>> {
    let mut rounds: Vec<Vec<(String, String)>> = Vec::new();
    let mut current = None;
    for r in records {
        let time = serde_json::from_str::<serde_json::Value>(&r.1)
            .ok()
            .and_then(|v| v["time"].as_str().map(str::to_string))
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.timestamp_millis() / ms);
        if time.is_some() && time != current || rounds.is_empty() {
            current = time.or(current);
            rounds.push(Vec::new());
        }
        rounds.last_mut().unwrap().push(r.clone());
    }
    rounds
}

/// The (partition, key) of every record of a topic.
fn keyed_partitions(brokers: &str, topic: &str, partitions: i32) -> Vec<(i32, String)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "cinch-test-keys")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let ends = ends(brokers, topic, partitions);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let total: i64 = ends.values().sum();
    let mut out = Vec::new();
    let started = Instant::now();
    while (out.len() as i64) < total && started.elapsed() < Duration::from_secs(20) {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            out.push((m.partition(), key));
        }
    }
    out
}

/// The partition a Java producer (and `cinch replay --partitions`) gives a key.
fn murmur2_partition(key: &str, partitions: i32) -> i32 {
    cinch::engine::partition_of(key.as_bytes(), partitions as usize) as i32
}

const UNKEYED: &str = "cinch.unkeyed";

/// The outputs of a run on `events` keyed by agent id, spread as a Java producer spreads them.
async fn keyed_reference(events: &[(String, String)]) -> Reference {
    let keyed = cluster();
    let kb = keyed.bootstrap_servers();
    produce_placed(&kb, INPUT, events, true, |_, key| {
        murmur2_partition(key, PARTITIONS)
    });
    let s = run_until(
        settings(&kb, "keyed"),
        Arc::new(Counter::default()),
        events.len() as u64,
    )
    .await;
    assert_eq!(s.input.events, events.len() as u64, "{s}");
    let reference = Reference {
        scores: by_id(&read_all(&kb, "cinch.scores"), "event_id"),
        findings: by_id(&read_all(&kb, "cinch.findings"), "finding_id"),
        commands: by_id(&read_all(&kb, "cinch.commands"), "command_id"),
        recommendations: by_id(&read_all(&kb, "cinch.recommendations"), "recommendation_id"),
    };
    assert!(!reference.findings.is_empty() && !reference.commands.is_empty());
    reference
}

/// A cluster with an unkeyed input topic of three partitions and its repartition topic (the
/// mock cluster cannot create topics on request: it is made here, with the partitions of the
/// keyed input), and settings that read the unkeyed topic. A live stream: event time goes on in
/// step across the three partitions, so the order window (three hours, where a live
/// deployment's default is a minute: here hours of event time pass in a fraction of a second)
/// covers what interleaving is left by rounds of two hours ([`produce_rounds`]).
fn unkeyed_cluster(
    group: &str,
) -> (
    MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    Settings,
) {
    let mock = cluster();
    mock.create_topic(UNKEYED, 3, 1).unwrap();
    let mut s = settings(&mock.bootstrap_servers(), group);
    mock.create_topic(&s.kafka.repartition_topic(UNKEYED), PARTITIONS, 1)
        .unwrap();
    s.kafka.input_topics = vec![UNKEYED.into()];
    s.kafka.unkeyed_topics = vec![UNKEYED.into()];
    s.kafka.repartition_order_secs = 3 * 3600;
    (mock, s)
}

/// Runs `s` while `records` go to the unkeyed topic, round robin over its three partitions
/// (every agent's events in all three), in rounds of two hours of event time, each produced
/// once the repartition records of the last are read back (`before` of them were read back
/// before the first round: duplicates of an earlier instance's, say).
async fn produce_rounds(
    s: Settings,
    records: &[(String, String)],
    close: bool,
    before: u64,
) -> (RunSummary, Arc<Repartitioned>) {
    let rounds = rounds_of(records, 2 * 3600 * 1000);
    let observer = Arc::new(Repartitioned::default());
    let o = observer.clone();
    let producer = s.kafka.brokers.clone();
    let summary = kafka::run_with(
        s,
        RunOptions {
            observer: observer.clone(),
            close_findings_at_exit: close,
            ..RunOptions::default()
        },
        async move {
            let mut sent = 0usize;
            for round in rounds {
                let first = sent;
                sent += round.len();
                let (b, o) = (producer.clone(), o.clone());
                tokio::task::spawn_blocking(move || {
                    produce_placed(&b, UNKEYED, &round, false, |i, _| ((first + i) % 3) as i32);
                    let started = Instant::now();
                    while o.received.load(Ordering::Relaxed) < before + sent as u64
                        && started.elapsed() < Duration::from_secs(30)
                    {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                })
                .await
                .unwrap();
            }
            let started = Instant::now();
            while o.received.load(Ordering::Relaxed) < before + sent as u64
                && started.elapsed() < Duration::from_secs(30)
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        },
    )
    .await
    .expect("pipeline");
    (summary, observer)
}

/// Runs `s` with no new input until its partitions are restored, then closes its findings
/// (releasing the events held for order).
async fn restore_and_close(s: Settings) -> RunSummary {
    let counter = Arc::new(Counter::default());
    let c = counter.clone();
    kafka::run_with(
        s,
        RunOptions {
            observer: counter.clone(),
            close_findings_at_exit: true,
            ..RunOptions::default()
        },
        async move {
            let started = Instant::now();
            while !c.ready.load(Ordering::Acquire) && started.elapsed() < Duration::from_secs(30) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Ready: every partition is restored.
            tokio::time::sleep(Duration::from_millis(500)).await;
        },
    )
    .await
    .expect("pipeline")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unkeyed_input_is_rekeyed_by_agent_and_scores_as_keyed_input_does() {
    let dir = tempfile::tempdir().unwrap();
    let (events, _) = fleet(dir.path());
    let reference = keyed_reference(&events).await;

    // The same events with no key, and two records that are not events.
    let (mock, s) = unkeyed_cluster("unkeyed");
    let b = mock.bootstrap_servers();
    let repartition = s.kafka.repartition_topic(UNKEYED);
    let mut input = events.clone();
    input.insert(500, ("bad".into(), "not json".into()));
    input.insert(3000, ("bad".into(), "{\"agent_id\":\"a\"}".into()));
    // The first instance stops with the last rounds' events still held for order: they are
    // in its checkpoint, and the next instance, with no new input, scores them at the end.
    let (first, observer) = produce_rounds(s.clone(), &input, false, 0).await;
    assert_eq!(first.rekeyed, events.len() as u64, "{first}");
    assert_eq!(first.input.dead_letters, 2, "{first}");
    let held = events.len() as u64 - first.input.events;
    assert!(held > 0, "events are held at the stop: {first}");
    let reports = observer.held.lock().unwrap().clone();
    assert!(
        reports.contains(&(held as usize)),
        "the held gauge at the last commit point: {held}, reported {reports:?}"
    );
    assert_eq!(first.repartition_duplicates, 0, "{first}");
    assert_eq!(first.repartition_late, 0, "{first}");
    assert!(first.to_string().contains("re-keyed by agent"), "{first}");

    let second = restore_and_close(s).await;
    assert_eq!(second.input.events, held, "{second}");
    assert_eq!(second.rekeyed, 0, "{second}");

    let dead = read_all(&b, "cinch.dead-letters");
    assert_eq!(dead.len(), 2);
    assert!(dead.iter().all(|(k, _)| k.starts_with("cinch.unkeyed/")));

    // Every agent's events are in the partition murmur2 gives its id.
    let moved = keyed_partitions(&b, &repartition, PARTITIONS);
    assert_eq!(moved.len(), events.len());
    assert!(
        moved
            .iter()
            .all(|(p, key)| *p == murmur2_partition(key, PARTITIONS))
    );
    let agents: std::collections::HashSet<&str> = moved.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(agents.len(), 12, "every agent's events are re-keyed");

    let scores = reference.assert_matches(&b);
    assert_eq!(scores, events.len());
    assert_eq!(
        committed_on(&b, "unkeyed", UNKEYED, 3),
        ends(&b, UNKEYED, 3),
        "the unkeyed input is committed to its end"
    );
    assert_eq!(
        committed_on(&b, "unkeyed", &repartition, PARTITIONS),
        ends(&b, &repartition, PARTITIONS),
        "the repartition topic is committed to its end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unkeyed_input_re_read_after_a_restart_counts_each_event_once_exactly_once_mode() {
    let dir = tempfile::tempdir().unwrap();
    let (events, _) = fleet(dir.path());
    let reference = keyed_reference(&events).await;
    let half = events.len() / 2;

    let (mock, mut s) = unkeyed_cluster("unkeyed-eos");
    let b = mock.bootstrap_servers();
    s.kafka.guarantee = cinch::config::Guarantee::ExactlyOnce;
    let (first, _) = produce_rounds(s.clone(), &events[..half], false, 0).await;
    assert_eq!(first.rekeyed, half as u64, "{first}");
    assert_eq!(first.aborted_transactions, 0, "{first}");
    // The mock cluster does not store a transaction's input offsets (see
    // `exactly_once_mode_commits_in_transactions_and_restores_across_instances`): the second
    // instance re-reads both topics from the start. The unkeyed partitions, restored from their
    // checkpoints (written in the transactions), know how far they re-keyed, so the first half
    // is not re-keyed again; the repartition partitions, restored from theirs, count what they
    // read again as already reflected. No event counts twice in a baseline.
    let (second, _) = produce_rounds(s.clone(), &events[half..], true, 0).await;
    assert_eq!(second.rekeyed, (events.len() - half) as u64, "{second}");
    assert_eq!(second.repartition_duplicates, 0, "{second}");
    assert_eq!(
        second.input.events - second.already_reflected + first.input.events,
        events.len() as u64,
        "every event scored once over the two instances: {first} / {second}"
    );
    assert_eq!(
        reference.assert_matches(&b),
        events.len(),
        "each score once"
    );
}

const FLEET: &str = "cinch.fleet";

/// What `cinch replay` writes for `events` (in time order) with settings `s` and `extra`
/// arguments, as a [`Reference`].
fn replay_reference(s: &Settings, events: &[(String, String)], extra: &[&str]) -> Reference {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    let lines: String = events.iter().map(|(_, l)| format!("{l}\n")).collect();
    std::fs::write(&input, lines).unwrap();
    let config = dir.path().join("cinch.toml");
    std::fs::write(&config, toml::to_string(s).unwrap()).unwrap();
    let (out, scores) = (
        dir.path().join("out.jsonl"),
        dir.path().join("scores.jsonl"),
    );
    let output = assert_cmd::cargo::cargo_bin_cmd!("cinch")
        .arg("replay")
        .arg("--quiet")
        .arg("--config")
        .arg(&config)
        .arg("--input")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .arg("--scores-out")
        .arg(&scores)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read = |p: &Path| -> Vec<(String, serde_json::Value)> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| (String::new(), serde_json::from_str(l).unwrap()))
            .collect()
    };
    let records = read(&out);
    let of = |field: &str| {
        let kept: Vec<(String, serde_json::Value)> = records
            .iter()
            .filter(|(_, v)| v.get(field).is_some())
            .cloned()
            .collect();
        by_id(&kept, field)
    };
    Reference {
        scores: by_id(&read(&scores), "event_id"),
        findings: of("finding_id"),
        commands: of("command_id"),
        recommendations: of("recommendation_id"),
    }
}

/// Settings that share fleet knowledge through [`FLEET`] (made here: the mock cluster cannot
/// create topics on request).
fn fleet_settings(
    mock: &MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    group: &str,
) -> Settings {
    // Created by the first caller; a second creation of the same topic is refused.
    let _ = mock.create_topic(FLEET, 1, 1);
    let mut s = settings(&mock.bootstrap_servers(), group);
    s.kafka.fleet_topic = Some(FLEET.into());
    s.kafka.fleet_idle_secs = 2;
    s
}

/// Counts fleet records and parked events.
#[derive(Default)]
struct FleetCounter {
    counter: Counter,
    published: AtomicU64,
    idle: AtomicU64,
    parked: std::sync::Mutex<Vec<usize>>,
}

impl PipelineObserver for FleetCounter {
    fn input_event(&self, f: Format, o: Outcome) {
        self.counter.input_event(f, o);
    }
    fn already_reflected(&self) {
        self.counter.already_reflected();
    }
    fn dead_letter(&self, code: &'static str) {
        self.counter.dead_letter(code);
    }
    fn ready(&self, ready: bool) {
        self.counter.ready(ready);
    }
    fn fleet_record(&self, stage: &'static str) {
        match stage {
            "published" => self.published.fetch_add(1, Ordering::Relaxed),
            "idle" => self.idle.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
    }
    fn fleet_parked(&self, events: usize) {
        self.parked.lock().unwrap().push(events);
    }
}

/// Runs an instance until it and `other` have scored `total` events between them (or for 90 s),
/// then closes its findings.
async fn run_sharing(
    s: Settings,
    o: Arc<FleetCounter>,
    other: Arc<FleetCounter>,
    total: u64,
) -> Result<RunSummary, kafka::KafkaError> {
    let c = o.clone();
    kafka::run_with(
        s,
        RunOptions {
            observer: o,
            close_findings_at_exit: true,
            ..RunOptions::default()
        },
        async move {
            let started = Instant::now();
            while c.counter.records.load(Ordering::Relaxed)
                + other.counter.records.load(Ordering::Relaxed)
                < total
                && started.elapsed() < Duration::from_secs(90)
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_topic_shares_fleet_knowledge_across_instances_as_one_engine_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let (events, _) = fleet(dir.path());
    let mock = cluster();
    let b = mock.bootstrap_servers();
    let s = fleet_settings(&mock, "fleet");
    // Four engines, one per partition, that share the fleet at every tick (whose scores, findings
    // and commands are those of one engine holding the whole fleet), and four that each know
    // their own partition.
    let whole = replay_reference(&s, &events, &["--partitions", "4"]);
    let split = replay_reference(&s, &events, &["--partitions", "4", "--split-fleet"]);
    assert_ne!(
        whole.scores, split.scores,
        "a split fleet scores otherwise: the test would not see a fleet that is not shared"
    );
    assert!(!whole.findings.is_empty() && !whole.commands.is_empty());

    // Two instances, one worker each, share the four partitions; the events are keyed by agent
    // as a Java producer keys them. A third of the input is there before they start, the rest
    // comes while they run.
    let third = events.len() / 3;
    produce_placed(&b, INPUT, &events[..third], true, |_, key| {
        murmur2_partition(key, PARTITIONS)
    });
    let (oa, ob) = (
        Arc::new(FleetCounter::default()),
        Arc::new(FleetCounter::default()),
    );
    let total = events.len() as u64;
    let start = |s: Settings, o: Arc<FleetCounter>, other: Arc<FleetCounter>| {
        tokio::spawn(run_sharing(s, o, other, total))
    };
    let mut sa = fleet_settings(&mock, "fleet");
    sa.kafka.workers = 1;
    let a = start(sa.clone(), oa.clone(), ob.clone());
    let b_task = start(sa, ob.clone(), oa.clone());
    let bb = b.clone();
    let rest = events[third..].to_vec();
    tokio::task::spawn_blocking(move || {
        produce_placed(&bb, INPUT, &rest, true, |_, key| {
            murmur2_partition(key, PARTITIONS)
        })
    })
    .await
    .unwrap();
    let (ra, rb) = (
        a.await.unwrap().expect("A"),
        b_task.await.unwrap().expect("B"),
    );
    eprintln!("A: {ra}\nB: {rb}");
    assert_eq!(ra.input.events + rb.input.events, total, "A: {ra}\nB: {rb}");
    assert_eq!(ra.fleet_parked + rb.fleet_parked, 0);
    assert!(
        ra.fleet_published > 0 && rb.fleet_published > 0,
        "both instances held partitions: A: {ra}\nB: {rb}"
    );
    assert!(
        ra.to_string().contains("fleet-topic records published"),
        "{ra}"
    );
    // Every partition published its fleet ticks: the fleet topic holds them.
    let records = read_all(&b, FLEET);
    let members: std::collections::HashSet<&str> = records
        .iter()
        .filter_map(|(_, v)| v["member"].as_str())
        .collect();
    assert_eq!(members.len(), PARTITIONS as usize, "{members:?}");

    // The two instances' outputs are those of `cinch replay --partitions 4`.
    assert_eq!(whole.assert_matches(&b), events.len());
}

/// One event in each partition (the last agent murmur2 sends there, with its last event) at
/// `time`, after the fleet's six days, with ids `e-<label>-<partition>`.
fn closing_events(events: &[(String, String)], label: &str, time: &str) -> Vec<(String, String)> {
    let mut last: BTreeMap<i32, serde_json::Value> = BTreeMap::new();
    for (key, line) in events {
        last.insert(
            murmur2_partition(key, PARTITIONS),
            serde_json::from_str(line).unwrap(),
        );
    }
    assert_eq!(
        last.len(),
        PARTITIONS as usize,
        "an agent in every partition"
    );
    last.into_iter()
        .map(|(p, mut ev)| {
            ev["event_id"] = format!("e-{label}-{p}").into();
            ev["time"] = time.into();
            (ev["agent_id"].as_str().unwrap().into(), ev.to_string())
        })
        .collect()
}

/// The fleet of [`fleet`], each partition ending with an event a day after the rest, so that
/// the fleet passes every tick of the input without waiting for an idle partition.
fn closed_fleet(dir: &Path) -> Vec<(String, String)> {
    let (mut events, _) = fleet(dir);
    let closing = closing_events(&events, "closing", "2026-01-13T00:00:00.000Z");
    events.extend(closing);
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_revoked_with_events_parked_for_the_fleet_loses_none_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let events = closed_fleet(dir.path());
    let mock = cluster();
    let b = mock.bootstrap_servers();
    let mut s = fleet_settings(&mock, "fleet-revoke");
    // No partition is advanced for being idle while the test runs: the results depend on the
    // input alone, however long the second instance takes to join.
    s.kafka.fleet_idle_secs = 600;
    s.kafka.workers = 1;
    let whole = replay_reference(&s, &events, &["--partitions", "4"]);

    // A third of the input is there before the first instance starts, but none of the last
    // partition's: the fleet waits for it, so the other partitions park what they read.
    let third = events.len() / 3;
    let place = |_: usize, key: &str| murmur2_partition(key, PARTITIONS);
    let (waiting, early): (Vec<_>, Vec<_>) = events[..third]
        .iter()
        .cloned()
        .partition(|(key, _)| place(0, key) == PARTITIONS - 1);
    assert!(!waiting.is_empty() && !early.is_empty());
    produce_placed(&b, INPUT, &early, true, place);
    let (oa, ob) = (
        Arc::new(FleetCounter::default()),
        Arc::new(FleetCounter::default()),
    );
    let total = events.len() as u64;
    let start = |s: Settings, o: Arc<FleetCounter>, other: Arc<FleetCounter>| {
        tokio::spawn(run_sharing(s, o, other, total))
    };
    let a = start(s.clone(), oa.clone(), ob.clone());
    let started = Instant::now();
    let parked = || oa.parked.lock().unwrap().last().copied().unwrap_or(0);
    while parked() == 0 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Asserted once the instances have stopped, as every check of this test is (a panic while
    // they run would not end the test).
    let parked_at_join = parked();
    // The second instance joins: the first gives up half its partitions, with their parked
    // events, which the second must read again.
    let b_task = start(s, ob.clone(), oa.clone());
    let parked_b = || ob.parked.lock().unwrap().last().copied().unwrap_or(0);
    while parked_b() == 0 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reparked = parked_b();
    let bb = b.clone();
    let rest: Vec<_> = waiting
        .into_iter()
        .chain(events[third..].iter().cloned())
        .collect();
    tokio::task::spawn_blocking(move || produce_placed(&bb, INPUT, &rest, true, place))
        .await
        .unwrap();
    let (ra, rb) = (
        a.await.unwrap().expect("A"),
        b_task.await.unwrap().expect("B"),
    );
    eprintln!(
        "A: {ra}\nB: {rb}\nparked when B joined: {parked_at_join}, read again by B: {reparked}"
    );
    assert!(parked_at_join > 0, "the first instance parked nothing");
    assert!(
        reparked > 0,
        "the second instance did not read again the events the first had parked"
    );
    assert_eq!(
        ra.fleet_idle + rb.fleet_idle,
        0,
        "a partition was advanced for being idle: the outputs would depend on timing"
    );
    assert_eq!(ra.input.events + rb.input.events, total, "A: {ra}\nB: {rb}");
    assert_eq!(ra.fleet_parked + rb.fleet_parked, 0);
    // Every event scored once, as one engine per partition sharing the fleet scores it.
    assert_eq!(whole.assert_matches(&b), events.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unkeyed_input_shares_the_fleet_through_its_repartition_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let mut events = closed_fleet(dir.path());
    // A day later, an event in every repartition partition releases the closing ones from the
    // hold for event-time order; these last ones are still held when the input ends.
    let held_back = closing_events(&events, "after", "2026-01-14T00:00:00.000Z");
    events.extend(held_back);

    let (mock, mut s) = unkeyed_cluster("unkeyed-fleet");
    let b = mock.bootstrap_servers();
    mock.create_topic(FLEET, 1, 1).unwrap();
    s.kafka.fleet_topic = Some(FLEET.into());
    // No partition is advanced for being idle: the outputs depend on the input alone.
    s.kafka.fleet_idle_secs = 600;
    // Checkpoints carry hundreds of parked events each. The mock cluster keeps 5 MiB a
    // partition and does not compact: fewer checkpoints, spread over more state partitions,
    // keep every partition's last one.
    s.kafka.commit_interval_ms = 1000;
    s.kafka.state_topic = "cinch.state-fleet".into();
    mock.create_topic(&s.kafka.state_topic, 12, 1).unwrap();
    let partitions = PARTITIONS.to_string();
    let whole = replay_reference(&s, &events, &["--partitions", &partitions]);
    let split = replay_reference(&s, &events, &["--partitions", &partitions, "--split-fleet"]);
    assert_ne!(
        whole.scores, split.scores,
        "a split fleet scores otherwise: the test would not see a fleet that is not shared"
    );

    // The first instance gets the fleet's first five days in repartition partition 0 and all
    // six elsewhere: it stops with the other partitions' last day parked for the fleet, and
    // events held for order, both in its checkpoint. The second gets the rest, then closes its
    // findings.
    let later = |(key, line): &(String, String)| {
        let ev: serde_json::Value = serde_json::from_str(line).unwrap();
        let time = ev["time"].as_str().unwrap();
        time >= "2026-01-13" || (murmur2_partition(key, PARTITIONS) == 0 && time >= "2026-01-10")
    };
    let (rest, early): (Vec<_>, Vec<_>) = events.iter().cloned().partition(later);
    let (first, _) = produce_rounds(s.clone(), &early, false, 0).await;
    let (second, _) = produce_rounds(s, &rest, true, 0).await;
    eprintln!("first: {first}\nsecond: {second}");
    assert_eq!(first.rekeyed, early.len() as u64, "{first}");
    assert!(first.fleet_published > 0, "{first}");
    assert!(
        first.fleet_parked > 0,
        "events are parked at the stop: {first}"
    );
    assert_eq!(second.rekeyed, rest.len() as u64, "{second}");
    assert_eq!(
        first.input.events + second.input.events,
        events.len() as u64,
        "each event scored once over the two instances: first: {first}\nsecond: {second}"
    );
    assert_eq!(second.fleet_parked, 0, "{second}");
    // Every score, finding, command and recommendation is the one `cinch replay --partitions`
    // gives: one engine holding the whole fleet.
    assert_eq!(whole.assert_matches(&b), events.len());
}

/// Ten support agents on a weekday routine for 16 days (keyed by agent, as JSON lines). On
/// day 14 `support-0` takes up a new tool at 09:37 (a finding held for a roll-out, due at
/// 15:56); the routine ends at 15:26, `support-1` works again at 16:30, and `support-1` and
/// `support-3` take the tool up at 18:00 and 18:40; the next day starts at 09:00.
fn late_followers() -> Vec<(String, String)> {
    const DAY: i64 = 86_400_000;
    const HOUR: i64 = 3_600_000;
    const MIN: i64 = 60_000;
    const START: i64 = 1_767_571_200_000;
    let ev = |id: String, t: i64, agent: &str, action: &str, resource: String, session: String| {
        let line = serde_json::json!({
            "event_id": id, "time": t, "agent_id": agent, "action": action,
            "resource": resource, "session_id": session, "intent": "answer customer ticket",
            "bytes": 1500 + (t / 1000) % 900,
        });
        (t, agent.to_string(), line.to_string())
    };
    let mut evs = Vec::new();
    for d in (0..16).filter(|d| d % 7 < 5) {
        for a in 0..10 {
            let agent = format!("support-{a}");
            for s in 0..12 {
                let t = START + d * DAY + 9 * HOUR + s * 35 * MIN;
                let cust = 1000 + d * 100 + s;
                let sess = format!("{agent}-s{d}-{s}");
                let calls = [
                    ("kb:Search", "kb://articles".to_string()),
                    ("crm:GetCustomer", format!("crm://customers/{cust}")),
                    ("tickets:Read", format!("tickets://queue/{}", cust * 7)),
                    ("tickets:Update", format!("tickets://queue/{}", cust * 7)),
                ];
                for (i, (action, resource)) in calls.into_iter().enumerate() {
                    let at = t + i as i64 * 20_000;
                    evs.push(ev(
                        format!("{sess}-{i}"),
                        at,
                        &agent,
                        action,
                        resource,
                        sess.clone(),
                    ));
                }
            }
        }
    }
    let day14 = START + 14 * DAY;
    for (agent, at) in [
        ("support-0", day14 + 9 * HOUR + 37 * MIN),
        ("support-1", day14 + 18 * HOUR),
        ("support-3", day14 + 18 * HOUR + 40 * MIN),
    ] {
        for s in 0..3 {
            let sess = format!("{agent}-new-{s}");
            let t = at + s * 2 * MIN;
            let r = "kb://articles".to_string();
            evs.push(ev(sess.clone(), t, agent, "kb:SemanticSearch", r, sess));
        }
    }
    let t = day14 + 16 * HOUR + 30 * MIN;
    evs.push(ev(
        "late-1".into(),
        t,
        "support-1",
        "kb:Search",
        "kb://articles".into(),
        "late".into(),
    ));
    evs.sort_by_key(|e| e.0);
    evs.into_iter().map(|(_, k, l)| (k, l)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_finding_is_judged_as_of_its_due_time_by_instances_sharing_the_fleet() {
    let events = late_followers();
    let p = |a: &str| murmur2_partition(a, PARTITIONS);
    assert!(
        p("support-0") != p("support-1") && p("support-0") != p("support-3"),
        "the followers are in other partitions than the adopter"
    );
    let mock = cluster();
    let b = mock.bootstrap_servers();
    let s = fleet_settings(&mock, "held");
    // One engine judges the held finding at 16:30, before anyone followed: it is emitted. The
    // adopter's partition sees its next event the day after, when two peers have followed; its
    // engine still judges the finding against the fleet as it stood at the due time.
    let one = replay_reference(&s, &events, &[]);
    let whole = replay_reference(&s, &events, &["--partitions", &PARTITIONS.to_string()]);
    let adopted = |r: &Reference| {
        r.findings
            .values()
            .filter(|f| {
                f["agent_id"] == "support-0"
                    && f["actions"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x == "kb:SemanticSearch"))
            })
            .count()
    };
    assert_eq!(adopted(&one), 1, "{:?}", one.findings.keys());
    assert_eq!(whole.findings, one.findings);
    // An instance holding the four partitions, sharing the fleet through the fleet topic, judges
    // it alike.
    produce_placed(&b, INPUT, &events, true, |_, key| {
        murmur2_partition(key, PARTITIONS)
    });
    let (o, other) = (
        Arc::new(FleetCounter::default()),
        Arc::new(FleetCounter::default()),
    );
    let total = events.len() as u64;
    let r = run_sharing(s, o, other, total).await.expect("run");
    assert_eq!(r.input.events, total, "{r}");
    assert_eq!(whole.assert_matches(&b), events.len());
}

/// Waits until the group's committed offsets reach the ends of the non-empty partitions of
/// `topic` (of [`PARTITIONS`] or fewer partitions).
async fn until_committed_where_produced(brokers: String, group: &'static str, topic: &'static str) {
    let started = Instant::now();
    loop {
        let b = brokers.clone();
        let done = tokio::task::spawn_blocking(move || {
            let partitions = if topic == UNKEYED { 3 } else { PARTITIONS };
            let committed = committed_on(&b, group, topic, partitions);
            ends(&b, topic, partitions)
                .iter()
                .filter(|(_, end)| **end > 0)
                .all(|(p, end)| committed.get(p) == Some(end))
        })
        .await
        .unwrap();
        if done {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for the input to be committed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_tool_calls_wait_for_their_agent_run_across_commit_points_and_a_restart() {
    let mock = cluster();
    let b = mock.bootstrap_servers();
    tool_calls_wait_across_a_restart(&b, settings(&b, "otlp-join"), INPUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_tool_calls_of_an_unkeyed_topic_wait_for_their_agent_run_across_a_restart() {
    let (mock, s) = unkeyed_cluster("otlp-join");
    tool_calls_wait_across_a_restart(&mock.bootstrap_servers(), s, UNKEYED).await;
}

/// Sends every OTLP request of the fixture but the last agent run to `topic`, runs an instance
/// until its input is committed and stops it with that run's tool calls waiting, then sends the
/// run and runs a second instance: every call is scored once, with the run's agent.
async fn tool_calls_wait_across_a_restart(b: &str, s: Settings, topic: &'static str) {
    let b = b.to_string();
    let requests: Vec<String> = otlp_fixture::split_requests()
        .into_iter()
        .flat_map(|(calls, run)| [calls, run])
        .collect();
    let (before, last_run) = requests.split_at(requests.len() - 1);
    // One service's traces, on one partition.
    let keyed = |lines: &[String]| -> Vec<(String, String)> {
        lines
            .iter()
            .map(|l| ("banking".to_string(), l.clone()))
            .collect()
    };
    produce_to(&b, topic, &keyed(before));
    // A first instance reads everything but the last agent run, passes commit points (every
    // 200 ms) with that run's tool calls waiting, and stops.
    let bb = b.clone();
    let first = kafka::run_with(s.clone(), RunOptions::default(), async move {
        until_committed_where_produced(bb, "otlp-join", topic).await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
    })
    .await
    .expect("first run");
    assert!(first.checkpoints > 0, "{first}");
    assert_eq!(first.join_fallbacks, 0, "no call gave up waiting: {first}");
    let waiting = 14 - first.joined_spans;
    assert!(waiting > 0, "the last run's calls wait for it: {first}");

    // The agent run arrives; a second instance restores the waiting calls and joins them.
    produce_to(&b, topic, &keyed(last_run));
    let bb = b.clone();
    let opts = RunOptions {
        close_findings_at_exit: true,
        ..RunOptions::default()
    };
    let second = kafka::run_with(s, opts, async move {
        until_committed_where_produced(bb, "otlp-join", topic).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
    })
    .await
    .expect("second run");
    assert_eq!(
        second.joined_spans, waiting,
        "the waiting calls were restored and joined: {second}"
    );
    assert_eq!(second.join_fallbacks, 0, "{second}");

    let scores = read_all(&b, "cinch.scores");
    let ids: std::collections::BTreeSet<&str> = scores
        .iter()
        .map(|(_, s)| s["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(scores.len(), 14, "every tool call scored once");
    assert_eq!(ids.len(), 14);
    for (_, s) in &scores {
        assert_eq!(s["agent_id"], "banking-assistant", "{s}");
    }
    // The steered payment, in the last run, is found with the user's request it came with.
    let findings = read_all(&b, "cinch.findings");
    assert!(
        findings
            .iter()
            .any(|(_, f)| f.to_string().contains("0901abababababab")),
        "{findings:?}"
    );
}
