//! The start-up check of `cinch run`: before anything else starts, a broker must answer a
//! metadata request within `kafka.startup_timeout_secs`. Against brokers none of which is
//! reachable (a wrong port, a name that does not resolve), librdkafka retries forever; the run
//! stops instead, with an error that names the brokers and librdkafka's reason.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext};

use super::KafkaError;
use super::produce::base_config;
use crate::config::KafkaSettings;

/// How long one metadata request waits at most, so that a stop is noticed soon.
const SLICE: Duration = Duration::from_millis(500);

/// Keeps librdkafka's reasons for the errors it reports: the last one about a broker (a refused
/// connection, a name that does not resolve, a failed authentication), and the last one that all
/// brokers are down, which says less.
#[derive(Default)]
struct Reasons {
    last: Mutex<Reasoned>,
}

#[derive(Default)]
struct Reasoned {
    broker: Option<String>,
    all_down: Option<String>,
}

impl Reasons {
    /// The most telling reason heard.
    fn take(&self) -> Option<String> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.broker.take().or_else(|| last.all_down.take())
    }
}

impl ClientContext for Reasons {
    fn error(&self, error: RdError, reason: &str) {
        let text = if reason.is_empty() {
            error.to_string()
        } else {
            reason.to_owned()
        };
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            last.all_down = Some(text);
        } else {
            last.broker = Some(text);
        }
    }
}

impl ProducerContext for Reasons {
    type DeliveryOpaque = ();

    /// It produces nothing.
    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

/// How the wait for a broker ended, when it did not fail.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Brokers {
    /// A broker answered.
    Answered,
    /// `stop` was set before one did.
    Stopped,
}

/// Waits until a broker answers, `kafka.startup_timeout_secs` at most.
pub(crate) fn await_brokers(
    k: &KafkaSettings,
    stop: &Arc<AtomicBool>,
) -> Result<Brokers, KafkaError> {
    let timeout = Duration::from_secs(k.startup_timeout_secs);
    let deadline = Instant::now() + timeout;
    // A plain producer: it asks for no group and creates no topic (the metadata of every topic
    // is asked for, not of one, which a producer's request could create).
    let client: BaseProducer<Reasons> = base_config(k).create_with_context(Reasons::default())?;
    loop {
        let started = Instant::now();
        let left = deadline.saturating_duration_since(started);
        let failed = match client.client().fetch_metadata(None, left.min(SLICE)) {
            Ok(_) => return Ok(Brokers::Answered),
            Err(e) => e,
        };
        // Serve the error events queued meanwhile: their reasons.
        client.poll(Duration::ZERO);
        if stop.load(Ordering::Acquire) {
            return Ok(Brokers::Stopped);
        }
        let now = Instant::now();
        if now >= deadline {
            let reason = client
                .context()
                .take()
                .unwrap_or_else(|| failed.to_string());
            return Err(KafkaError::Unreachable {
                brokers: k.brokers.clone(),
                secs: k.startup_timeout_secs,
                reason,
            });
        }
        // A request that failed at once is not repeated at once.
        let spent = now - started;
        if spent < SLICE {
            std::thread::sleep((SLICE - spent).min(deadline - now));
        }
    }
}
