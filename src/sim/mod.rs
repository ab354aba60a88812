//! Labelled synthetic fleet generator (`cinch simulate`).
//!
//! Two kinds of fleet ([`SimKind`], `--kind`):
//!
//! - `fleet` (the default, described below): AI agents, service accounts and workloads as
//!   native access events, with entitlements;
//! - `llm`: LLM agents (banking, mail, workspace, travel and research assistants) as
//!   OpenTelemetry GenAI spans in OTLP JSON (`spans.jsonl`), with prompt injections planted in
//!   tool results; see [`llm`].
//!
//! The `fleet` kind simulates a fleet of AI agents, service accounts and workloads over a
//! period, writing their access events in the native format with ground truth beside them:
//!
//! | file | content |
//! |---|---|
//! | `events.jsonl` (`.gz`) | native events (CONTRACT.md section 1), ordered by time then event id |
//! | `labels.csv` | `event_id,label,attack_id,scenario`, one row per event, in event order |
//! | `attacks.csv` | `attack_id,agent_id,scenario,first_time,last_time,events` |
//! | `entitlements.json` | every agent's grants (CONTRACT.md section 2), broader than its use |
//! | `manifest.json` | arguments, counts, time range, grants never used, the benign drift injected |
//!
//! # Archetypes
//!
//! | archetype | ids | kind | behaviour |
//! |---|---|---|---|
//! | data pipeline | `etl-orders-03` | `service_account` | hourly ingest (`s3://<team>-raw/YYYY/MM/DD/part-NNNN.json.gz` to `s3://<team>-curated/...`, `warehouse:Load`) and a nightly compaction, every day |
//! | support agent | `support-bot-017` | `ai_agent` | one session per ticket: `kb:Search`, `crm:GetCustomer`, `tickets:Read/Update`, sometimes `mail:Send` to the customer or a carrier |
//! | coding agent | `code-agent-004` | `ai_agent` | `git:Clone/Pull/Push` on a few repositories, `artifact:Get`, its CI secret, `ci:Trigger/GetStatus` |
//! | analyst agent | `analyst-sales-02` | `ai_agent` | `db:Select` over a growing working set of tables, `report:Read/Write`; month-end spike |
//! | infrastructure bot | `infra-bot-07` | `workload` | `k8s:list` every 1 to 10 minutes around the clock, hourly `k8s:watch` and role refresh |
//! | finance agent | `finance-recon-02` | `ai_agent` | daily reconciliation run, `payments:ListTransactions`, `ledger:Read`; month-end spike |
//!
//! Every agent has its own working set, time zone and working hours, one to three stable source
//! addresses, heavy-tailed data volumes, and occasional denials and errors. Sessions follow a
//! Markov chain per archetype and share one stated intent (LLM agents).
//!
//! # Benign drift
//!
//! Working sets grow (tables, repositories, namespaces, accounts); about 15% of agents are
//! redeployed to new addresses mid-period; analyst and finance agents spike at month end; every
//! support agent starts using `kb:SemanticSearch` on the same day; human-driven agents are quiet
//! at weekends. The manifest lists all of it.
//!
//! # Attacks
//!
//! A share of the agents (default 20%) suffer one attack each, scenarios assigned round-robin
//! over [`SimConfig::scenarios`] (by default the seven of [`Scenario::DEFAULT`]), never in the
//! first 40% of the days. The opt-in [`Scenario::BaselinePoisoning`] is a slow ramp over up to a
//! week: another team's data through the agent's usual action, one or two reads on the first
//! day and 1.6 to 2.2 times as many each day after. Attack events use the same formats, id
//! schemes and byte scales as benign ones; a capability the agent never uses is exercised
//! through one of its unused grants when one fits (and then carries it as `grant`), otherwise
//! without a grant and mostly denied. Several prompt injections send to one shared external
//! destination (a campaign).
//!
//! # Determinism
//!
//! Output is a pure function of the settings: every agent-day and every attack draws from its
//! own ChaCha stream derived from the seed, so the same settings give byte-identical files and
//! no output depends on generation order.

use std::path::PathBuf;

use serde::Serialize;

mod archetypes;
mod attacks;
mod clock;
mod drift;
mod event;
mod fleet;
mod grants;
pub mod llm;
mod manifest;
mod rng;
mod sessions;
mod writer;

pub use archetypes::Archetype;
pub use attacks::Scenario;
pub use grants::{GrantSpec, glob_match};

use event::SimEvent;
use fleet::World;

/// Events file name.
pub const EVENTS_FILE: &str = "events.jsonl";
/// Events file name when compressed.
pub const EVENTS_GZ_FILE: &str = "events.jsonl.gz";
/// Labels file name.
pub const LABELS_FILE: &str = "labels.csv";
/// Attacks file name.
pub const ATTACKS_FILE: &str = "attacks.csv";
/// Entitlements file name.
pub const ENTITLEMENTS_FILE: &str = "entitlements.json";
/// Manifest file name.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Default start of the simulated period (a Monday).
pub const DEFAULT_START: &str = "2026-01-05T00:00:00Z";

/// What kind of fleet a simulation writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SimKind {
    /// Service accounts, workloads and AI agents as native events (`events.jsonl`), with
    /// entitlements.
    #[default]
    Fleet,
    /// LLM agents as OpenTelemetry GenAI spans (`spans.jsonl`), with prompt injections planted
    /// in tool results.
    Llm,
}

impl SimKind {
    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            SimKind::Fleet => "fleet",
            SimKind::Llm => "llm",
        }
    }
}

/// Settings of a simulation.
#[derive(Clone, Debug, Serialize)]
pub struct SimConfig {
    /// What kind of fleet.
    pub kind: SimKind,
    /// Number of agents in the fleet.
    pub agents: u32,
    /// Number of days simulated.
    pub days: u32,
    /// Seed of every random choice.
    pub seed: u64,
    /// Start of the period, RFC 3339.
    pub start: String,
    /// Share of agents that suffer one attack each (0..=1).
    pub attack_share: f64,
    /// The attack scenarios, assigned round-robin (`fleet` kind only; default
    /// [`Scenario::DEFAULT`]).
    pub scenarios: Vec<Scenario>,
    /// Compress the events file.
    pub gzip: bool,
    /// Output directory (created if missing).
    #[serde(skip)]
    pub out: PathBuf,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            kind: SimKind::Fleet,
            agents: 100,
            days: 14,
            seed: 1,
            start: DEFAULT_START.to_string(),
            attack_share: 0.2,
            scenarios: Scenario::DEFAULT.to_vec(),
            gzip: false,
            out: PathBuf::from("sim-out"),
        }
    }
}

impl SimConfig {
    /// Checks the settings, reporting every problem at once. Returns the start in epoch ms.
    pub fn validate(&self) -> Result<i64, SimError> {
        let mut errors = Vec::new();
        if self.agents == 0 || self.agents > 1_000_000 {
            errors.push(format!("agents must be 1..=1000000, got {}", self.agents));
        }
        if self.days == 0 || self.days > 3660 {
            errors.push(format!("days must be 1..=3660, got {}", self.days));
        }
        if !(0.0..=1.0).contains(&self.attack_share) {
            errors.push(format!(
                "attack share must be within 0..=1, got {}",
                self.attack_share
            ));
        }
        if self.kind == SimKind::Fleet && self.scenarios.is_empty() && self.attack_share > 0.0 {
            errors.push("attacks need at least one scenario".to_string());
        }
        let start = clock::parse_rfc3339(&self.start);
        match start {
            None => errors.push(format!("start `{}` is not an RFC 3339 time", self.start)),
            Some(t) if !(0..4_000_000_000_000).contains(&t) => {
                errors.push(format!("start `{}` is outside 1970..2096", self.start))
            }
            _ => {}
        }
        match start {
            Some(t) if errors.is_empty() => Ok(t),
            _ => Err(SimError::Invalid(errors)),
        }
    }
}

/// Why a simulation failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The settings are invalid.
    #[error("invalid simulation settings: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A JSON document could not be encoded.
    #[error("cannot encode {}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
}

/// What a simulation wrote.
#[derive(Clone, Debug, Serialize)]
pub struct SimSummary {
    /// The kind of fleet.
    pub kind: SimKind,
    /// Events written (tool-call spans for an LLM fleet).
    pub events: u64,
    /// Of which attack events.
    pub attack_events: u64,
    /// Agents in the fleet.
    pub agents: u32,
    /// Attacks injected (with at least one event).
    pub attacks: usize,
    /// Days simulated.
    pub days: u32,
    /// Events per archetype (per role for an LLM fleet), by name.
    pub events_per_archetype: Vec<(&'static str, u64)>,
    /// Attacks per scenario, by name.
    pub attacks_per_scenario: Vec<(&'static str, usize)>,
    /// The files written.
    pub files: Vec<PathBuf>,
}

impl std::fmt::Display for SimSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "simulated {} {} agents over {} days: {} {} ({} attack events in {} attacks) written to {}",
            self.agents,
            self.kind.name(),
            self.days,
            self.events,
            match self.kind {
                SimKind::Fleet => "events",
                SimKind::Llm => "tool-call spans",
            },
            self.attack_events,
            self.attacks,
            self.files
                .first()
                .and_then(|p| p.parent())
                .map(|p| p.display().to_string())
                // No file written: no directory to name.
                .unwrap_or_default()
        )
    }
}

/// Runs a simulation and writes its files into `cfg.out`.
pub fn simulate(cfg: &SimConfig) -> Result<SimSummary, SimError> {
    let start_ms = cfg.validate()?;
    let dir = cfg.out.as_path();
    std::fs::create_dir_all(dir).map_err(|source| SimError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    if cfg.kind == SimKind::Llm {
        return llm::simulate(cfg, start_ms);
    }
    let world = World::build(cfg, start_ms);
    let plans = attacks::plan(&world, cfg.attack_share, &cfg.scenarios);
    let campaign = attacks::campaign_destination(cfg.seed);

    let mut attack_events: Vec<SimEvent> = Vec::new();
    for p in &plans {
        attacks::generate(&world, p, &campaign, &mut attack_events);
    }
    attack_events.sort_unstable_by_key(SimEvent::key);

    let mut out = writer::EventWriter::create(dir, cfg.gzip, cfg.seed, &plans)?;
    let end = world.end_ms();
    let mut pending: Vec<SimEvent> = Vec::new();
    let mut next_attack = 0;
    for d in 0..world.days {
        for a in &world.agents {
            archetypes::day(&world, a, d, &mut pending);
        }
        let limit = world.day_start(d + 1);
        while next_attack < attack_events.len() && attack_events[next_attack].time_ms < limit {
            pending.push(attack_events[next_attack].clone());
            next_attack += 1;
        }
        pending.sort_unstable_by_key(SimEvent::key);
        let cut = pending.partition_point(|e| e.time_ms < limit);
        // Every event generated on day `d` lies at or after the day's start, so nothing
        // written earlier can follow anything drained here.
        debug_assert!(
            pending
                .first()
                .is_none_or(|e| e.time_ms >= world.day_start(d))
        );
        for e in pending.drain(..cut) {
            if e.time_ms >= world.start_ms && e.time_ms < end {
                out.write(&world, &e)?;
            }
        }
    }
    let (stats, events_path) = out.finish()?;

    let attacks_path = writer::write_attacks(dir, &world, &plans, &stats)?;
    let ent_path = writer::write_entitlements(dir, &world)?;

    let events_file = events_path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        // The writer names the file it wrote: it has a name.
        .unwrap_or_default();
    let manifest = manifest::build(
        cfg,
        start_ms,
        &world,
        &plans,
        &stats,
        &campaign,
        events_file,
    );
    let manifest_path = dir.join(MANIFEST_FILE);
    writer::write_json(&manifest_path, &manifest)?;

    Ok(SimSummary {
        kind: SimKind::Fleet,
        events: stats.events,
        attack_events: stats.attack_events,
        agents: cfg.agents,
        attacks: manifest.counts.attacks,
        days: cfg.days,
        events_per_archetype: Archetype::ALL
            .iter()
            .map(|a| a.name())
            .zip(stats.per_archetype.iter().copied())
            .collect(),
        attacks_per_scenario: cfg
            .scenarios
            .iter()
            .map(|s| (s.name(), manifest.counts.attacks_per_scenario[s.name()]))
            .collect(),
        files: vec![
            events_path,
            dir.join(LABELS_FILE),
            attacks_path,
            ent_path,
            manifest_path,
        ],
    })
}
