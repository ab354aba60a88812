//! `cinch demo`: the whole Kafka pipeline on an embedded in-process broker, fed by a simulated
//! fleet with its entitlements, with a live feed of findings, commands and recommendations. No
//! set-up.

use crate::event::{Format, Outcome};
use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::config::Settings;
use crate::drive::kafka::{self, PipelineObserver, RunOptions};
use crate::sim::{self, SimConfig};

/// Arguments of `cinch demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Agents in the simulated fleet.
    #[arg(long, default_value_t = 30)]
    pub agents: u32,
    /// Days of simulated traffic (recommendations need 7 days of history).
    #[arg(long, default_value_t = 10)]
    pub days: u32,
    /// Events produced per second (wall clock).
    #[arg(long, default_value_t = 4000)]
    pub rate: u32,
    /// Seed of the simulation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Keep running after the simulated period, until Ctrl-C.
    #[arg(long)]
    pub follow: bool,
    /// Model file from `cinch train` to apply instead of the built-in default.
    #[arg(long)]
    pub model: Option<std::path::PathBuf>,
    /// Run without the learned model (statistical detectors only).
    #[arg(long, conflicts_with = "model")]
    pub no_model: bool,
}

const INPUT: &str = "cinch.events";

#[derive(Default)]
struct Progress {
    records: AtomicU64,
}

impl PipelineObserver for Progress {
    fn input_event(&self, _format: Format, _outcome: Outcome) {
        self.records.fetch_add(1, Ordering::Relaxed);
    }
    fn already_reflected(&self) {
        self.records.fetch_add(1, Ordering::Relaxed);
    }
    fn dead_letter(&self, _reason_code: &'static str) {
        self.records.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs the subcommand.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    // The model first, so that a bad model file is reported before anything runs.
    let mut ml = Settings::default();
    if args.no_model {
        ml.ml.enabled = false;
    }
    let model = super::load_model(&mut ml, args.model.as_deref(), "cinch demo")?;
    let dir = std::env::temp_dir().join(format!("cinch-demo-{}", std::process::id()));
    let cfg = SimConfig {
        agents: args.agents,
        days: args.days,
        seed: args.seed,
        out: dir.clone(),
        ..SimConfig::default()
    };
    let sim = sim::simulate(&cfg).context("simulating the fleet")?;
    let events = std::fs::read_to_string(dir.join(sim::EVENTS_FILE)).context("reading events")?;
    let labels = std::fs::read_to_string(dir.join(sim::LABELS_FILE)).context("reading labels")?;
    let ents = crate::drive::files::entitlements(&dir.join("entitlements.json"))
        .context("reading the fleet's entitlements")?;
    // What the fleet's files held is read: a directory left behind costs only disk space.
    let _ = std::fs::remove_dir_all(&dir);
    let attack_of: HashMap<String, String> = labels
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f.len() >= 4 && f[1] == "attack").then(|| (f[0].to_string(), f[2].to_string()))
        })
        .collect();
    let lines: Vec<(String, String)> = events
        .lines()
        .filter_map(|l| {
            // The simulator writes a JSON object a line: every line parses.
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            Some((v["agent_id"].as_str()?.to_string(), l.to_string()))
        })
        .collect();
    let total = lines.len() as u64;
    eprintln!(
        "cinch demo: {} agents, {} days: {} events ({} attacks, {} attack events); embedded broker starting",
        args.agents, args.days, total, sim.attacks, sim.attack_events
    );

    let mock = MockCluster::new(1).context("starting the embedded broker")?;
    let settings = {
        let mut s = Settings {
            ml: ml.ml,
            ..Settings::default()
        };
        s.kafka.brokers = mock.bootstrap_servers();
        s.kafka.group_id = "cinch-demo".into();
        for (k, v) in [
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "500"),
        ] {
            s.kafka.properties.insert(k.into(), v.into());
        }
        s
    };
    mock.create_topic(INPUT, 4, 1)?;
    let k = &settings.kafka;
    for t in [
        &k.findings_topic,
        &k.recommendations_topic,
        &k.commands_topic,
        &k.dead_letters_topic,
        &k.audit_topic,
        &k.state_topic,
    ] {
        mock.create_topic(t, 1, 1)?;
    }
    let brokers = settings.kafka.brokers.clone();
    let topics = vec![
        settings.kafka.findings_topic.clone(),
        settings.kafka.commands_topic.clone(),
        settings.kafka.recommendations_topic.clone(),
    ];

    // The feed: findings, commands and recommendations as they arrive.
    let stop_feed = Arc::new(AtomicBool::new(false));
    let feed = {
        let brokers = brokers.clone();
        let stop = stop_feed.clone();
        let attack_of = attack_of.clone();
        std::thread::spawn(move || feed(&brokers, &topics, &attack_of, &stop))
    };
    let signer = Arc::new(crate::drive::files::fresh_signer());
    eprintln!(
        "cinch demo: commands are signed with an ephemeral demo key (key_id {}); they are dry runs",
        signer.key_id()
    );

    // Traffic at a visible pace, in time order.
    let rate = args.rate.max(1);
    let producer = {
        let brokers = brokers.clone();
        std::thread::spawn(move || -> anyhow::Result<()> {
            let p: BaseProducer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("linger.ms", "5")
                .create()?;
            let started = Instant::now();
            for (i, (key, value)) in lines.iter().enumerate() {
                let due = Duration::from_secs_f64(i as f64 / f64::from(rate));
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
                kafka::send_waiting(&p, INPUT, key, value.as_bytes());
            }
            p.flush(Duration::from_secs(30))?;
            Ok(())
        })
    };

    let progress = Arc::new(Progress::default());
    let seen = progress.clone();
    let follow = args.follow;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let summary = rt.block_on(kafka::run_with(
        settings,
        RunOptions {
            observer: progress,
            close_findings_at_exit: true,
            entitlements: Some(crate::grants::shared(ents)),
            signer: Some(signer),
            feedback: Vec::new(),
            model: model.map(|m| crate::ml::shared(Some(m))),
        },
        async move {
            if follow {
                super::run::shutdown_signal().await;
            } else {
                tokio::select! {
                    _ = async {
                        while seen.records.load(Ordering::Relaxed) < total {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    } => {}
                    _ = super::run::shutdown_signal() => {}
                }
            }
        },
    ))?;
    producer
        .join()
        .map_err(|_| anyhow::anyhow!("the traffic thread stopped"))??;
    // Let the feed catch up with the last findings.
    std::thread::sleep(Duration::from_secs(2));
    stop_feed.store(true, Ordering::Release);
    let fed = feed
        .join()
        .map_err(|_| anyhow::anyhow!("the feed thread stopped"))?;
    let (findings, caught, benign) = (fed.findings, fed.caught.len(), fed.benign_findings);
    println!();
    println!("== summary");
    println!(
        "  {} events from {} agents; {} dead-lettered",
        summary.input.events, summary.agents, summary.input.dead_letters
    );
    println!(
        "  {} findings: {} on attacks ({} of {} simulated attacks caught), {} on benign activity",
        findings,
        findings - benign,
        caught,
        sim.attacks,
        benign
    );
    println!(
        "  {} commands (all dry runs): {} on attacks ({} attacks contained), {} on benign activity",
        fed.commands,
        fed.commands - fed.benign_commands,
        fed.contained.len(),
        fed.benign_commands
    );
    println!(
        "  {} least-privilege recommendations: {} grants to remove, {} to narrow",
        fed.recommendations, fed.removals, fed.narrowings
    );
    Ok(ExitCode::SUCCESS)
}

/// How the simulator labels a record: `ATTACK <ids>` for the attacks its events belong to (which
/// are added to `hit`), else `benign` (counted in `benign`).
fn label<'a>(
    events: impl IntoIterator<Item = &'a str>,
    attack_of: &HashMap<String, String>,
    benign: &mut u64,
    hit: &mut HashSet<String>,
) -> String {
    let mut attacks: Vec<&String> = events
        .into_iter()
        .filter_map(|e| attack_of.get(e))
        .collect();
    attacks.sort();
    attacks.dedup();
    if attacks.is_empty() {
        *benign += 1;
        return "benign".into();
    }
    hit.extend(attacks.iter().map(|a| (*a).clone()));
    let ids: Vec<&str> = attacks.iter().map(|a| a.as_str()).collect();
    format!("ATTACK {}", ids.join(","))
}

/// What the feed saw.
#[derive(Default)]
struct Fed {
    findings: u64,
    benign_findings: u64,
    caught: HashSet<String>,
    commands: u64,
    benign_commands: u64,
    contained: HashSet<String>,
    recommendations: u64,
    removals: u64,
    narrowings: u64,
}

/// Prints findings, commands and recommendations as they arrive, each with what the simulator
/// knows of it (attack or benign).
fn feed(
    brokers: &str,
    topics: &[String],
    attack_of: &HashMap<String, String>,
    stop: &AtomicBool,
) -> Fed {
    let mut fed = Fed::default();
    let consumer: Result<BaseConsumer, _> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "cinch-demo-feed")
        .set("enable.auto.commit", "false")
        .create();
    let Ok(consumer) = consumer else {
        return fed;
    };
    let mut tpl = TopicPartitionList::new();
    // The feed only shows what goes by; the run's summary counts every record whatever the
    // feed can follow.
    for t in topics {
        // Fails only for an offset librdkafka cannot represent, and `Beginning` is one it can.
        let _ = tpl.add_partition_offset(t, 0, Offset::Beginning);
    }
    // As above: the feed is a view.
    let _ = consumer.assign(&tpl);
    while !stop.load(Ordering::Acquire) {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let Some(r) = m
            .payload()
            // Every output record is a JSON object; anything else is not one to show.
            .and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
        else {
            continue;
        };
        let s = |k: &str| r[k].as_str().unwrap_or("?").to_string();
        match r["kind"].as_str() {
            Some("finding") => {
                fed.findings += 1;
                let events = r["event_ids"].as_array().into_iter().flatten();
                let label = label(
                    events.filter_map(|e| e.as_str()),
                    attack_of,
                    &mut fed.benign_findings,
                    &mut fed.caught,
                );
                println!(
                    "{} finding  {:<8} {:<24} {} [{}]",
                    s("time"),
                    s("severity"),
                    s("agent_id"),
                    r["reasons"][0]["explanation"].as_str().unwrap_or(""),
                    label
                );
            }
            Some("command") => {
                fed.commands += 1;
                let label = label(
                    r["trigger_event_id"].as_str(),
                    attack_of,
                    &mut fed.benign_commands,
                    &mut fed.contained,
                );
                println!(
                    "{} COMMAND  {} {} of {}{}: {} [{}]",
                    s("issued_at"),
                    s("action"),
                    s("target"),
                    s("agent_id"),
                    if r["requires_approval"] == true {
                        " (needs approval)"
                    } else {
                        ""
                    },
                    s("reason"),
                    label
                );
            }
            Some("recommendation") => {
                fed.recommendations += 1;
                match r["change"].as_str() {
                    Some("remove") => fed.removals += 1,
                    _ => fed.narrowings += 1,
                }
                println!(
                    "{} recommend {} grant {} of {}: {}",
                    s("time"),
                    s("change"),
                    s("grant"),
                    s("agent_id"),
                    r["evidence"]["justification"].as_str().unwrap_or("")
                );
            }
            _ => {}
        }
    }
    fed
}
