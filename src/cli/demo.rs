//! `cinch demo`: the whole Kafka pipeline on an embedded in-process broker, fed by a simulated
//! fleet with its entitlements, with a live feed of findings, commands and recommendations in
//! event-time order, and at the end the enforcement point deciding the next calls of an attacked
//! agent and of a benign one. No set-up.
//!
//! The fleet's days before its first attack are its history: they go through the same pipeline
//! at full speed and are summed up in one line; the feed shows the days after, at `--rate`.

use crate::event::{Format, Outcome};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::event::time::parse_rfc3339_ms;
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
/// The topic through which the input partitions share fleet knowledge.
const FLEET: &str = "cinch.fleet";

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
    let attacks_csv =
        std::fs::read_to_string(dir.join(sim::ATTACKS_FILE)).context("reading attacks")?;
    // The simulation's files were read whole; a leftover temporary directory costs nothing.
    let _ = std::fs::remove_dir_all(&dir);
    // The feed starts at the hour of the first attack; what comes before is history.
    let live_from_ms = attacks_csv
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(3).and_then(parse_rfc3339_ms))
        .min()
        .map_or(i64::MIN, |t| t - t.rem_euclid(3_600_000));
    let attack_of: HashMap<String, String> = labels
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f.len() >= 4 && f[1] == "attack").then(|| (f[0].to_string(), f[2].to_string()))
        })
        .collect();
    // The simulator writes well-formed events; a line it did not is not sent.
    let lines: Vec<(String, String, i64)> = events
        .lines()
        .filter_map(|l| {
            // The simulator writes a JSON object a line: every line parses.
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            let time = v["time"].as_str().and_then(parse_rfc3339_ms)?;
            Some((v["agent_id"].as_str()?.to_string(), l.to_string(), time))
        })
        .collect();
    let history = lines.iter().filter(|l| l.2 < live_from_ms).count();
    let total = lines.len() as u64;
    eprintln!(
        "cinch demo: {} agents, {} days: {} events ({} attacks, {} attack events); embedded broker starting",
        args.agents, args.days, total, sim.attacks, sim.attack_events
    );
    if history > 0 {
        eprintln!(
            "cinch demo: the {history} events before the first attack are the fleet's history: learned at full speed, summed up below"
        );
    }

    let mock = MockCluster::new(1).context("starting the embedded broker")?;
    let settings = {
        let mut s = Settings {
            ml: ml.ml,
            ..Settings::default()
        };
        // The demo's commands are enforced by its own decision point at the end (a simulation:
        // nothing outside the demo acts on them).
        s.commands.dry_run = false;
        s.kafka.brokers = mock.bootstrap_servers();
        s.kafka.group_id = "cinch-demo".into();
        // The input's partitions share what the fleet does, as one engine would know it.
        s.kafka.fleet_topic = Some(FLEET.into());
        for (k, v) in [
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "500"),
        ] {
            s.kafka.properties.insert(k.into(), v.into());
        }
        s
    };
    mock.create_topic(INPUT, 4, 1)?;
    mock.create_topic(FLEET, 1, 1)?;
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
    let progress = Arc::new(Progress::default());
    let feed = {
        let brokers = brokers.clone();
        let stop = stop_feed.clone();
        let attack_of = attack_of.clone();
        let clock = FeedClock {
            processed: progress.clone(),
            times: lines.iter().map(|l| l.2).collect(),
            live_from_ms,
            margin_ms: FEED_MARGIN_MS
                + settings.decide.aggregate_ms().1
                + settings.decide.rollout_hold_secs as i64 * 1000,
        };
        std::thread::spawn(move || feed(&brokers, &topics, &attack_of, &clock, &stop))
    };
    let signer = Arc::new(crate::drive::files::fresh_signer());
    eprintln!(
        "cinch demo: commands are signed with an ephemeral demo key (key_id {}); they are not dry runs, and nothing outside the demo acts on them",
        signer.key_id()
    );

    // Traffic at a visible pace, in time order.
    let rate = args.rate.max(1);
    let lines = Arc::new(lines);
    let producer = {
        let brokers = brokers.clone();
        let lines = lines.clone();
        std::thread::spawn(move || -> anyhow::Result<()> {
            let p: BaseProducer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("linger.ms", "5")
                .create()?;
            let mut started = Instant::now();
            for (i, (key, value, _)) in lines.iter().enumerate() {
                if i == history {
                    // The live part is paced from here.
                    started = Instant::now();
                }
                if i >= history {
                    let due = Duration::from_secs_f64((i - history) as f64 / f64::from(rate));
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
                kafka::send_waiting(&p, INPUT, key, value.as_bytes());
            }
            p.flush(Duration::from_secs(30))?;
            Ok(())
        })
    };

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
            entitlements: Some(crate::grants::shared(ents.clone())),
            signer: Some(signer.clone()),
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
    // Drift may draw a `narrow`; anything stronger on benign activity is a wrong revocation.
    let benign_above_narrow = fed
        .command_records
        .iter()
        .filter(|(r, attack)| !attack && r["action"] != "narrow")
        .count();
    println!(
        "  {} commands: {} on attacks ({} attacks contained), {} on benign activity ({} above narrow)",
        fed.commands,
        fed.commands - fed.benign_commands,
        fed.contained.len(),
        fed.benign_commands,
        benign_above_narrow
    );
    println!(
        "  {} least-privilege recommendations: {} grants to remove, {} to narrow",
        fed.recommendations, fed.removals, fed.narrowings
    );
    enforce(&fed, &ents, &signer, &lines)?;
    Ok(ExitCode::SUCCESS)
}

/// The enforcement point over the demo's commands: the next call of the first agent contained
/// for an attack, and the usual call of an agent no command touched.
fn enforce(
    fed: &Fed,
    ents: &crate::grants::Entitlements,
    signer: &crate::output::sign::Signer,
    lines: &[(String, String, i64)],
) -> anyhow::Result<()> {
    use crate::authorize::{CommandIntake, Decision, Intake, PolicyStore, Query, UnknownAgents};
    println!();
    println!("== enforcement: cinch authorize --mode enforce over these commands");
    let mut intake = CommandIntake::new(signer.verifier());
    let mut store = PolicyStore::new(Some(ents), UnknownAgents::Deny)?;
    for (i, (record, _)) in fed.command_records.iter().enumerate() {
        match intake.take_as_issued(i as u64 + 1, record.to_string().as_bytes()) {
            Intake::Applied(c) => {
                store.apply(&c, Some(ents))?;
            }
            other => println!("  command {i} not applied: {other:?}"),
        }
    }
    let event = |id: &str| {
        lines.iter().find_map(|(_, line, _)| {
            // The lines were parsed once already, when they were read: they parse.
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            (v["event_id"] == id).then_some(v)
        })
    };
    let Some((command, _)) = fed.command_records.iter().find(|(_, attack)| *attack) else {
        println!("  no command answered an attack: nothing to enforce");
        return Ok(());
    };
    // The command was applied above, so it has these members, well-formed.
    let agent = command["agent_id"].as_str().unwrap_or_default();
    let now_ms = command["issued_at"]
        .as_str()
        .and_then(parse_rfc3339_ms)
        // As above: an applied command's `issued_at` is a time.
        .unwrap_or_default()
        + 1_000;
    let contained: HashSet<&str> = fed
        .command_records
        .iter()
        .filter_map(|(c, _)| c["agent_id"].as_str())
        .collect();
    let ask = |who: &str, ev: &serde_json::Value| {
        let q = Query {
            principal: who,
            // A simulated event always has its action and resource.
            action: ev["action"].as_str().unwrap_or_default(),
            resource: ev["resource"].as_str().unwrap_or_default(),
            session_id: ev["session_id"].as_str(),
            grant: None,
            now_ms,
        };
        let verdict = store.decide(&q).enforced;
        let why = verdict
            .reasons
            .first()
            .map_or_else(String::new, |r| format!(": {}", r.why));
        println!(
            "  {} {} {} on {} -> {}{}",
            crate::output::time::rfc3339_ms(now_ms),
            who,
            q.action,
            q.resource,
            match verdict.decision {
                Decision::Allow => "ALLOW",
                Decision::Deny => "DENY",
                Decision::RequiresApproval => "REQUIRES APPROVAL",
            },
            why
        );
    };
    // The attacked agent's next call: the call that raised the command, once more.
    match command["trigger_event_id"].as_str().and_then(event) {
        Some(ev) => ask(agent, &ev),
        None => println!(
            "  the event behind command {} is unknown",
            command["command_id"]
        ),
    }
    // A benign agent's usual call: the last call of an agent no command touched.
    let benign = lines.iter().rev().find_map(|(who, line, _)| {
        (!contained.contains(who.as_str()) && ents.agent(who).is_some())
            // As above: the lines parse.
            .then(|| serde_json::from_str::<serde_json::Value>(line).ok())
            .flatten()
            .map(|v| (who.clone(), v))
    });
    match benign {
        Some((who, ev)) => ask(&who, &ev),
        None => println!("  every agent with entitlements was touched by a command"),
    }
    Ok(())
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
    /// The command records, with whether they answer an attack.
    command_records: Vec<(serde_json::Value, bool)>,
}

/// How far the pipeline has gone, in event time, so that the feed prints in event-time order.
struct FeedClock {
    processed: Arc<Progress>,
    /// Event time of each input record, in the order produced.
    times: Vec<i64>,
    /// Records before this are history: counted, not printed.
    live_from_ms: i64,
    /// Event time between an event and the last record it can lead to being written (see
    /// [`FEED_MARGIN_MS`]).
    margin_ms: i64,
}

/// How long after the pipeline has processed an event its outputs have surely reached the feed
/// (partitions behind the others, the producer's batching, the feed's fetch).
const FEED_DELAY: Duration = Duration::from_secs(2);

/// Event time, beyond the longest a finding stays open and is held back for a roll-out, between
/// an event and the finding it opens being written (a finding is written when it closes or, if
/// held, when it is judged).
const FEED_MARGIN_MS: i64 = 3_600_000;

impl FeedClock {
    /// Event time of the newest record processed.
    fn processed_ms(&self) -> i64 {
        let n = self.processed.records.load(Ordering::Relaxed) as usize;
        n.checked_sub(1)
            .and_then(|i| self.times.get(i))
            .copied()
            .unwrap_or(i64::MIN)
    }
}

/// Event time up to which every output has arrived: what was processed [`FEED_DELAY`] ago,
/// less the clock's margin.
#[derive(Default)]
struct Settled {
    samples: std::collections::VecDeque<(Instant, i64)>,
}

impl Settled {
    fn at(&mut self, clock: &FeedClock) -> i64 {
        let now = Instant::now();
        self.samples.push_back((now, clock.processed_ms()));
        while self
            .samples
            .get(1)
            .is_some_and(|(t, _)| now.duration_since(*t) >= FEED_DELAY)
        {
            self.samples.pop_front();
        }
        match self.samples.front() {
            Some((t, ms)) if now.duration_since(*t) >= FEED_DELAY => {
                ms.saturating_sub(clock.margin_ms)
            }
            _ => i64::MIN,
        }
    }
}

/// One line of the feed, waiting for its turn: lines of the same instant are printed in the
/// order of their text, whichever partition wrote them first.
type Pending = Reverse<(i64, String)>;

/// Prints findings, commands and recommendations in event-time order, each with what the
/// simulator knows of it (attack or benign); history is summed up in one line.
fn feed(
    brokers: &str,
    topics: &[String],
    attack_of: &HashMap<String, String>,
    clock: &FeedClock,
    stop: &AtomicBool,
) -> Fed {
    let mut fed = Fed::default();
    let consumer: Result<BaseConsumer, _> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "cinch-demo-feed")
        .set("enable.auto.commit", "false")
        .create();
    let Ok(consumer) = consumer else {
        eprintln!("cinch demo: the feed could not connect to the embedded broker");
        return fed;
    };
    let mut tpl = TopicPartitionList::new();
    for t in topics {
        if let Err(e) = tpl.add_partition_offset(t, 0, Offset::Beginning) {
            eprintln!("cinch demo: the feed cannot read {t}: {e}");
        }
    }
    if let Err(e) = consumer.assign(&tpl) {
        eprintln!("cinch demo: the feed cannot read the outputs: {e}");
        return fed;
    }
    let mut pending: BinaryHeap<Pending> = BinaryHeap::new();
    let mut history = Fed::default();
    let mut live = false;
    let mut settled = Settled::default();
    let mut release = |pending: &mut BinaryHeap<Pending>, upto: i64, history: &Fed| {
        while pending.peek().is_some_and(|Reverse((t, _))| *t <= upto) {
            let Some(Reverse((_, line))) = pending.pop() else {
                break;
            };
            if !live {
                live = true;
                print_history(history);
            }
            println!("{line}");
        }
    };
    while !stop.load(Ordering::Acquire) {
        release(&mut pending, settled.at(clock), &history);
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        // The pipeline writes JSON; anything else on these topics is not cinch's and not shown.
        let Some(r) = m
            .payload()
            // Every output record is a JSON object; anything else is not one to show.
            .and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
        else {
            continue;
        };
        let time = |k: &str| r[k].as_str().and_then(parse_rfc3339_ms).unwrap_or(i64::MAX);
        let at = match r["kind"].as_str() {
            Some("command") => time("issued_at"),
            _ => time("time"),
        };
        let target = if at < clock.live_from_ms {
            &mut history
        } else {
            &mut fed
        };
        if let Some(line) = describe(&r, attack_of, target)
            && at >= clock.live_from_ms
        {
            pending.push(Reverse((at, line)));
        }
    }
    release(&mut pending, i64::MAX, &history);
    if !live {
        print_history(&history);
    }
    fed.absorb(history);
    fed
}

/// The line a record makes in the feed, counting it in `fed`.
fn describe(
    r: &serde_json::Value,
    attack_of: &HashMap<String, String>,
    fed: &mut Fed,
) -> Option<String> {
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
            Some(format!(
                "{} finding  {:<8} {:<24} {} [{}]",
                s("time"),
                s("severity"),
                s("agent_id"),
                r["reasons"][0]["explanation"].as_str().unwrap_or(""),
                label
            ))
        }
        Some("command") => {
            fed.commands += 1;
            let before = fed.benign_commands;
            let label = label(
                r["trigger_event_id"].as_str(),
                attack_of,
                &mut fed.benign_commands,
                &mut fed.contained,
            );
            fed.command_records
                .push((r.clone(), fed.benign_commands == before));
            Some(format!(
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
            ))
        }
        Some("recommendation") => {
            fed.recommendations += 1;
            match r["change"].as_str() {
                Some("remove") => fed.removals += 1,
                _ => fed.narrowings += 1,
            }
            Some(format!(
                "{} recommend {} grant {} of {}: {}",
                s("time"),
                s("change"),
                s("grant"),
                s("agent_id"),
                r["evidence"]["justification"].as_str().unwrap_or("")
            ))
        }
        _ => None,
    }
}

/// The one line that sums up the history.
fn print_history(h: &Fed) {
    println!(
        "== history (learned before the first attack, not shown): {} findings ({} on attacks, {} on benign activity), {} commands, {} recommendations",
        h.findings,
        h.findings - h.benign_findings,
        h.benign_findings,
        h.commands,
        h.recommendations
    );
    println!("== live, in event-time order");
}

impl Fed {
    /// Adds the counts of `other` (the history) to these.
    fn absorb(&mut self, other: Fed) {
        self.findings += other.findings;
        self.benign_findings += other.benign_findings;
        self.caught.extend(other.caught);
        self.commands += other.commands;
        self.benign_commands += other.benign_commands;
        self.contained.extend(other.contained);
        self.recommendations += other.recommendations;
        self.removals += other.removals;
        self.narrowings += other.narrowings;
        self.command_records.extend(other.command_records);
    }
}
