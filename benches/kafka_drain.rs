//! A bare rdkafka consumer that drains a topic and reports its rate: the yardstick for
//! `cinch run`'s throughput against the same broker (`benches/kafka_throughput.sh`).
//!
//! `cargo bench --bench kafka_drain -- BROKERS TOPIC MESSAGES`; without arguments (a plain
//! `cargo bench`) it explains itself and exits.

use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [brokers, topic, messages] = args.as_slice() else {
        eprintln!("kafka_drain: usage: cargo bench --bench kafka_drain -- BROKERS TOPIC MESSAGES");
        return;
    };
    let want: u64 = messages.parse().expect("MESSAGES is a number");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("kafka-drain-{}", std::process::id()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("queued.max.messages.kbytes", "16384")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let (mut n, mut bytes, mut first) = (0u64, 0u64, None);
    let deadline = Instant::now() + Duration::from_secs(600);
    while n < want && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            first.get_or_insert_with(Instant::now);
            n += 1;
            bytes += m.payload().map_or(0, |p| p.len() as u64);
        }
    }
    let secs = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    println!(
        "bare consumer: {n} messages ({:.1} MB) in {secs:.2} s from the first: {:.0} messages/s",
        bytes as f64 / 1e6,
        n as f64 / secs.max(1e-9)
    );
}
