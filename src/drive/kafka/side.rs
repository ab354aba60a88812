//! Side inputs of a run: entitlements (a file reloaded when it changes, and a compacted topic
//! keyed by agent id) and analyst feedback (a topic). Each is read on its own thread from the
//! beginning and kept up to date; engines see new entitlements at once (they are swapped whole,
//! readers take no lock) and feedback reaches the workers through the consumer loop.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message};

use crate::decide::suppress::Feedback;
use crate::grants::{AgentGrants, Entitlements, SharedEntitlements};
use crate::ml::SharedModel;
use crate::telemetry::DriverEvent;
use crate::telemetry::PipelineObserver;

/// The layers entitlements are composed of: the file, overlaid by the topic's records.
#[derive(Default)]
struct Layers {
    file: Entitlements,
    /// Per agent: its grants from the topic, or `None` after a tombstone (unknown).
    topic: HashMap<String, Option<AgentGrants>>,
}

/// Entitlements kept up to date from a file and a topic.
pub(crate) struct EntitlementsFeed {
    layers: Mutex<Layers>,
    shared: SharedEntitlements,
    observer: Arc<dyn PipelineObserver>,
}

impl EntitlementsFeed {
    pub(crate) fn new(
        initial: Entitlements,
        shared: SharedEntitlements,
        observer: Arc<dyn PipelineObserver>,
    ) -> Arc<Self> {
        let feed = Arc::new(EntitlementsFeed {
            layers: Mutex::new(Layers {
                file: initial,
                topic: HashMap::new(),
            }),
            shared,
            observer,
        });
        feed.compose();
        feed
    }

    fn compose(&self) {
        let layers = self.layers.lock().unwrap_or_else(|e| e.into_inner());
        let mut e = layers.file.clone();
        for (agent, grants) in &layers.topic {
            e.set_agent(agent, grants.clone());
        }
        self.observer.entitlements(e.agents(), e.grants());
        self.shared.store(Arc::new(e));
    }

    /// Reloads the file whenever its modification time or size changes.
    pub(crate) fn watch_file(
        self: &Arc<Self>,
        path: PathBuf,
        every: Duration,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<JoinHandle<()>> {
        let feed = self.clone();
        watch_file("cinch-entitlements-file", path, every, stop, move |path| {
            match crate::drive::files::entitlements(path) {
                Ok(e) => {
                    feed.observer
                        .driver_event(&DriverEvent::EntitlementsReloaded {
                            path: path.display().to_string(),
                            agents: e.agents(),
                            grants: e.grants(),
                        });
                    feed.layers.lock().unwrap_or_else(|e| e.into_inner()).file = e;
                    feed.compose();
                }
                Err(e) => feed
                    .observer
                    .driver_event(&DriverEvent::EntitlementsRejected {
                        error: e.to_string(),
                    }),
            }
        })
    }

    /// Follows a compacted topic of entitlements keyed by agent id.
    pub(crate) fn follow_topic(
        self: &Arc<Self>,
        base: &ClientConfig,
        group: &str,
        topic: &str,
        stop: Arc<AtomicBool>,
    ) -> Result<JoinHandle<()>, rdkafka::error::KafkaError> {
        let feed = self.clone();
        let observer = self.observer.clone();
        follow(base, group, topic, stop, observer, move |batch| {
            let mut changed = false;
            {
                let mut layers = feed.layers.lock().unwrap_or_else(|e| e.into_inner());
                for r in batch {
                    let agent = match &r.key {
                        Some(Ok(agent)) => agent,
                        Some(Err(e)) => {
                            feed.observer.driver_event(&DriverEvent::RecordSkipped {
                                reason: format!(
                                    "{}: entitlements record whose key (agent id) is not UTF-8: {e}",
                                    r.origin
                                ),
                            });
                            continue;
                        }
                        None => {
                            feed.observer.driver_event(&DriverEvent::RecordSkipped {
                                reason: format!(
                                    "{}: entitlements record without a key (agent id)",
                                    r.origin
                                ),
                            });
                            continue;
                        }
                    };
                    let grants =
                        match r.payload.as_deref() {
                            None => None,
                            Some(p) => {
                                match std::str::from_utf8(p).map_err(|e| e.to_string()).and_then(
                                    |t| AgentGrants::parse(t, &r.origin).map_err(|e| e.to_string()),
                                ) {
                                    Ok(g) => Some(g),
                                    Err(e) => {
                                        feed.observer.driver_event(
                                            &DriverEvent::EntitlementsRejected { error: e },
                                        );
                                        continue;
                                    }
                                }
                            }
                        };
                    layers.topic.insert(agent.to_string(), grants);
                    changed = true;
                }
            }
            if changed {
                feed.compose();
            }
        })
    }
}

/// Follows a topic of feedback records, sending each valid one on `tx`.
pub(crate) fn follow_feedback(
    base: &ClientConfig,
    group: &str,
    topic: &str,
    tx: Sender<Feedback>,
    stop: Arc<AtomicBool>,
    observer: Arc<dyn PipelineObserver>,
) -> Result<JoinHandle<()>, rdkafka::error::KafkaError> {
    let side_observer = observer.clone();
    follow(base, group, topic, stop, side_observer, move |batch| {
        for r in batch {
            let Some(p) = r.payload.as_deref() else {
                continue;
            };
            match std::str::from_utf8(p)
                .map_err(|e| e.to_string())
                .and_then(|t| Feedback::parse(t, &r.origin).map_err(|e| e.to_string()))
            {
                Ok(f) => {
                    // The receiver lives as long as the run: a send fails only once it has
                    // ended, and the next run reads the topic again from its beginning.
                    let _ = tx.send(f);
                }
                Err(e) => observer.driver_event(&DriverEvent::RecordSkipped { reason: e }),
            }
        }
    })
}

/// One record of a side topic.
struct Record {
    /// The key, if any, or why it is not text.
    key: Option<Result<String, std::str::Utf8Error>>,
    payload: Option<Vec<u8>>,
    origin: String,
}

impl Record {
    fn of(m: &rdkafka::message::BorrowedMessage<'_>) -> Record {
        Record {
            key: m.key().map(|k| std::str::from_utf8(k).map(str::to_string)),
            payload: m.payload().map(<[u8]>::to_vec),
            origin: format!("{}/{}/{}", m.topic(), m.partition(), m.offset()),
        }
    }
}

/// Reads every partition of `topic` from the beginning, without a consumer group, handing
/// batches of records to `apply` until `stop`. What the topic holds when it starts is read
/// before this returns ([`read_to_end`](super::state::read_to_end)), so the run begins with it.
fn follow(
    base: &ClientConfig,
    group: &str,
    topic: &str,
    stop: Arc<AtomicBool>,
    observer: Arc<dyn PipelineObserver>,
    mut apply: impl FnMut(Vec<Record>) + Send + 'static,
) -> Result<JoinHandle<()>, rdkafka::error::KafkaError> {
    let mut c = base.clone();
    c.set("group.id", format!("{group}.side.{topic}"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
    let consumer: BaseConsumer = c.create()?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    if let Some(e) = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .and_then(|t| t.error())
    {
        return Err(rdkafka::error::KafkaError::MetadataFetch(e.into()));
    }
    let mut batch = Vec::new();
    super::state::read_to_end(&consumer, topic, Duration::from_secs(5), &mut |m| {
        batch.push(Record::of(m));
        if batch.len() >= 1024 {
            apply(std::mem::take(&mut batch));
        }
    })?;
    if !batch.is_empty() {
        apply(batch);
    }
    let name = format!("cinch-side-{topic}");
    let topic = topic.to_string();
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            while !stop.load(Ordering::Acquire) {
                let mut batch = Vec::new();
                let mut wait = Duration::from_millis(200);
                while let Some(res) = consumer.poll(wait) {
                    wait = Duration::ZERO;
                    match res {
                        Ok(m) => batch.push(Record::of(&m)),
                        Err(e) => observer.driver_event(&DriverEvent::SideInputError {
                            topic: topic.clone(),
                            error: e.to_string(),
                        }),
                    }
                    if batch.len() >= 1024 {
                        break;
                    }
                }
                if !batch.is_empty() {
                    apply(batch);
                }
            }
        })
        .map_err(|e| rdkafka::error::KafkaError::ClientCreation(e.to_string()))
}

/// Calls `changed` on a thread of its own whenever the file's modification time or size
/// changes, checking every `every` until `stop`.
fn watch_file(
    name: &str,
    path: PathBuf,
    every: Duration,
    stop: Arc<AtomicBool>,
    mut changed: impl FnMut(&std::path::Path) + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    let stamp = |p: &PathBuf| -> Option<(SystemTime, u64)> {
        // A file that cannot be looked at has no stamp: the change to none calls `changed`,
        // whose reload reports why the file cannot be read.
        let m = std::fs::metadata(p).ok()?;
        Some((m.modified().ok()?, m.len()))
    };
    let mut seen = stamp(&path);
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            while !sleep_unless(&stop, every) {
                let now = stamp(&path);
                if now != seen {
                    seen = now;
                    changed(&path);
                }
            }
        })
}

/// Reloads the model file whenever it changes; a file that does not load is reported and the
/// model in force is kept.
pub(crate) fn watch_model(
    shared: SharedModel,
    path: PathBuf,
    every: Duration,
    observer: Arc<dyn PipelineObserver>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    watch_file(
        "cinch-model-file",
        path,
        every,
        stop,
        move |path| match crate::drive::files::model(path) {
            Ok(m) => {
                observer.driver_event(&DriverEvent::ModelReloaded {
                    path: path.display().to_string(),
                    groups: m.groups(),
                    events: m.file().training.events,
                });
                observer.model_loaded(m.groups(), true);
                shared.store(Some(Arc::new(m)));
            }
            Err(e) => {
                observer.model_loaded(0, false);
                observer.driver_event(&DriverEvent::ModelRejected {
                    error: e.to_string(),
                });
            }
        },
    )
}

/// Sleeps `d` in short steps; true when `stop` was set.
fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let step = Duration::from_millis(100);
    let mut left = d;
    while !left.is_zero() {
        if stop.load(Ordering::Acquire) {
            return true;
        }
        let s = left.min(step);
        std::thread::sleep(s);
        left -= s;
    }
    stop.load(Ordering::Acquire)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::NoopObserver;

    #[test]
    fn a_changed_entitlements_file_is_reloaded_and_a_broken_one_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ents.json");
        let doc = |agent: &str| {
            format!(
                r#"{{"{agent}": {{"g": {{"actions": ["s3:GetObject"], "resources": ["s3://a/*"]}}}}}}"#
            )
        };
        std::fs::write(&path, doc("first")).unwrap();
        let shared = crate::grants::shared(crate::drive::files::entitlements(&path).unwrap());
        let feed = EntitlementsFeed::new(
            (**shared.load()).clone(),
            shared.clone(),
            Arc::new(NoopObserver),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let h = feed
            .watch_file(path.clone(), Duration::from_millis(50), stop.clone())
            .unwrap();
        let wait_for = |agent: &str| {
            let t = std::time::Instant::now();
            while t.elapsed() < Duration::from_secs(10) {
                if shared.load().agent(agent).is_some() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            false
        };
        assert!(wait_for("first"));
        std::fs::write(&path, doc("second-agent")).unwrap();
        assert!(
            wait_for("second-agent"),
            "the change was not picked up: {:?}",
            shared.load().agent_ids()
        );
        assert!(
            shared.load().agent("first").is_none(),
            "the file replaces the old one"
        );
        std::fs::write(&path, "{broken").unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            shared.load().agent("second-agent").is_some(),
            "a broken file leaves the entitlements in force"
        );
        stop.store(true, Ordering::Release);
        h.join().unwrap();
    }
}
