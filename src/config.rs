//! Settings: every field documented, with defaults, unknown keys rejected, and validation that
//! reports every error at once. The shipped `configs/cinch.toml` lists them all.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::detect::DetectorId;
use crate::event::FormatChoice;
use crate::output::finding::FindingFormat;

/// Errors loading settings.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape (unknown keys included).
    #[error("invalid config {path}: {message}")]
    Parse {
        /// The path.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// One or more values are out of range.
    #[error("invalid config: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// All settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Input decoding.
    pub decode: DecodeSettings,
    /// Per-agent profiles.
    pub profile: ProfileSettings,
    /// Detectors and their fusion.
    pub detect: DetectSettings,
    /// Decisions: findings and their aggregation.
    pub decide: DecideSettings,
    /// Entitlements, grant usage and least-privilege recommendations.
    pub grants: GrantsSettings,
    /// Containment commands and their policy.
    pub commands: CommandSettings,
    /// The fleet-wide circuit breaker on commands.
    pub breaker: BreakerSettings,
    /// Analyst feedback and the suppressions it creates.
    pub feedback: FeedbackSettings,
    /// How output records are written.
    pub output: OutputSettings,
    /// The learned models (`cinch train`): peer groups, the event model, score calibration.
    pub ml: MlSettings,
    /// The Kafka driver (`cinch run`, `cinch demo`).
    pub kafka: KafkaSettings,
}

/// The learned models.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MlSettings {
    /// Apply a model: learned peer groups, the `model` detector and score calibration.
    pub enabled: bool,
    /// Model file written by `cinch train`, reloaded by `cinch run` when it changes; empty: the
    /// default model built into cinch (`models/default.json`, trained on simulated traffic).
    /// `--model` overrides it.
    pub model_path: String,
    /// Seconds between checks of the model file for changes (`cinch run`).
    pub reload_secs: u64,
    /// An agent is assigned to its nearest learned peer group once it has this many events...
    pub assign_min_events: u32,
    /// ...spread over at least this many days.
    pub assign_min_days: f64,
    /// The `model` detector starts scoring an event when at most this share of its group's
    /// training events were as unlikely, as `-log10` of the share (3 = one in a thousand)...
    pub rarity_from: f32,
    /// ...and scores 1 at this `-log10` share (5 = one in a hundred thousand).
    pub rarity_full: f32,
    /// Map fused scores through the model's per-group calibration, so that a score cuts off
    /// the same share of traffic in every group.
    pub calibrate: bool,
}

impl Default for MlSettings {
    fn default() -> Self {
        MlSettings {
            enabled: true,
            model_path: String::new(),
            reload_secs: 5,
            assign_min_events: 200,
            assign_min_days: 1.0,
            rarity_from: 3.0,
            rarity_full: 5.0,
            calibrate: false,
        }
    }
}

/// Entitlements, grant usage and least-privilege recommendations.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GrantsSettings {
    /// Entitlements file (JSON or YAML, CONTRACT.md section 2), reloaded when it changes; empty:
    /// none (`--entitlements` overrides it).
    pub entitlements_path: String,
    /// Compacted topic of entitlements keyed by agent id (`cinch run`); empty: none. A record's
    /// value is the agent's grants, `{"grant-id": {"actions": [...], "resources": [...]}}`; a
    /// tombstone makes them unknown again.
    pub entitlements_topic: String,
    /// Seconds between checks of the entitlements file for changes.
    pub reload_secs: u64,
    /// Lookback window: a grant unused for this many days is proposed for removal.
    pub lookback_days: u32,
    /// No recommendation before an agent has this many days of observed history...
    pub min_history_days: f64,
    /// ...and this many observed events.
    pub min_events: u64,
    /// Recommendations are reviewed every this many seconds of event time (and at the end of
    /// a replay).
    pub recommend_interval_secs: u64,
    /// A narrowing proposes at most this many resource patterns (else the resources are left
    /// as they are).
    pub max_proposed_resources: usize,
    /// A grant is narrowed only when its use has not spread for this many days: no action and
    /// no resource container (bucket, database, repository, mail domain) first used within
    /// them.
    pub narrow_stable_days: f64,
}

impl Default for GrantsSettings {
    fn default() -> Self {
        GrantsSettings {
            entitlements_path: String::new(),
            entitlements_topic: String::new(),
            reload_secs: 10,
            lookback_days: 30,
            min_history_days: 7.0,
            min_events: 100,
            recommend_interval_secs: 86_400,
            max_proposed_resources: 10,
            narrow_stable_days: 7.0,
        }
    }
}

/// Containment commands: when one is issued, what it does and how long it lasts.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CommandSettings {
    /// Whether commands are decided at all (findings are unaffected).
    pub enabled: bool,
    /// Commands are marked `dry_run`: SOAR tooling records them but does not act.
    pub dry_run: bool,
    /// Lowest finding severity that issues a command.
    pub min_severity: crate::decide::finding::Severity,
    /// Commands below this severity carry `requires_approval = true`.
    pub approval_below: crate::decide::finding::Severity,
    /// Corroboration: at least this many independent lines of evidence (detector families
    /// scoring at least `evidence_score`: what was accessed, when it reached beyond the
    /// agent's own territory; how much, when data moved in bulk; refusals, origin, timing,
    /// order; plus use of a grant the agent never used)...
    pub min_evidence: u8,
    /// Score at which a detector's reason counts as evidence.
    pub evidence_score: f32,
    /// ...or a sustained run of at least this many anomalous events in the finding, with at
    /// least one line of evidence.
    pub sustained_events: u64,
    /// A name (authority, path segment) new to the agent reaches beyond its territory when
    /// fewer than this share of its peers use it.
    pub reach_peer_share: f32,
    /// After a command for an agent, no command for another finding of that agent for this
    /// many seconds of event time.
    pub cooldown_secs: u64,
    /// `revoke_grant` lasts this many seconds (`expires_at`).
    pub revoke_grant_secs: u64,
    /// `revoke_session` lasts this many seconds.
    pub revoke_session_secs: u64,
    /// `suspend_agent` lasts this many seconds.
    pub suspend_agent_secs: u64,
    /// Ed25519 private key (PKCS#8 PEM, from `cinch keygen`) that signs commands; empty: an
    /// ephemeral key is generated and the run says so (`--signing-key` overrides it).
    pub signing_key: String,
}

impl Default for CommandSettings {
    fn default() -> Self {
        use crate::decide::finding::Severity;
        CommandSettings {
            enabled: true,
            dry_run: true,
            min_severity: Severity::High,
            approval_below: Severity::Critical,
            min_evidence: 2,
            evidence_score: 0.5,
            sustained_events: 5,
            reach_peer_share: 0.05,
            cooldown_secs: 3600,
            revoke_grant_secs: 7 * 86_400,
            revoke_session_secs: 3600,
            suspend_agent_secs: 86_400,
            signing_key: String::new(),
        }
    }
}

/// The fleet-wide circuit breaker: when too many agents trip at once, that is a broken
/// detector or a fleet-wide release, not an attack on everyone, so commands stop (findings go
/// on) until it closes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerSettings {
    /// Window of event time over which tripped agents are counted, in seconds.
    pub window_secs: u64,
    /// Opens when more than this share of the agents active in the window trip...
    pub max_agent_share: f64,
    /// ...and at least this many agents trip (small fleets);
    pub min_agents: usize,
    /// or when more than this many commands would be issued within a minute.
    pub max_commands_per_minute: usize,
    /// Closes this many seconds of event time after it last tripped.
    pub cooldown_secs: u64,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            window_secs: 600,
            max_agent_share: 0.05,
            min_agents: 3,
            max_commands_per_minute: 20,
            cooldown_secs: 1800,
        }
    }
}

/// Analyst feedback: a finding marked false positive suppresses its pattern for its agent.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FeedbackSettings {
    /// Feedback file (JSON lines), read at start (`--feedback` overrides it); empty: none.
    pub path: String,
    /// Topic of feedback records (`cinch run`); empty: none.
    pub topic: String,
    /// A suppression lasts this many days unless the feedback says otherwise.
    pub suppression_days: u32,
}

impl Default for FeedbackSettings {
    fn default() -> Self {
        FeedbackSettings {
            path: String::new(),
            topic: String::new(),
            suppression_days: 30,
        }
    }
}

/// The Kafka driver: brokers, consumer group, topics, workers and checkpoints.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSettings {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Consumer group id; every instance of one deployment uses the same.
    pub group_id: String,
    /// Topics of access events (keyed by agent id).
    pub input_topics: Vec<String>,
    /// Findings topic.
    pub findings_topic: String,
    /// Least-privilege recommendations topic.
    pub recommendations_topic: String,
    /// Containment commands topic.
    pub commands_topic: String,
    /// Dead letters topic (rejected input records).
    pub dead_letters_topic: String,
    /// Audit topic.
    pub audit_topic: String,
    /// Compacted topic of per-agent state checkpoints, keyed by agent id.
    pub state_topic: String,
    /// When set, one score line per valid event goes to this topic (off by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scores_topic: Option<String>,
    /// Engine threads. Each owns the agents of the partitions dispatched to it.
    pub workers: usize,
    /// Messages queued per worker; when a queue is full, consumption pauses until it drains.
    pub channel_capacity: usize,
    /// Every this many milliseconds (of wall clock; results never depend on it) the pipeline
    /// checkpoints the partitions that moved on and commits their input offsets.
    pub commit_interval_ms: u64,
    /// Delivery guarantee: `at_least_once` (outputs may repeat after a crash, with the same
    /// ids) or `exactly_once` (Kafka transactions: outputs, checkpoints and input offsets
    /// commit together; downstream consumers read with `isolation.level=read_committed`).
    pub guarantee: Guarantee,
    /// Transactional id of this instance's producer in `exactly_once` mode (default: the group
    /// id, the host name and the process id). Zombie instances are fenced by the consumer
    /// group's generation, so each live instance needs only a distinct id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactional_id: Option<String>,
    /// On shutdown, in-flight work is drained and offsets committed within this many seconds.
    pub shutdown_deadline_secs: u64,
    /// librdkafka properties passed verbatim to every client (`security.protocol`,
    /// `sasl.mechanism`, `sasl.username`, `ssl.ca.location`, ...).
    pub properties: std::collections::BTreeMap<String, String>,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        KafkaSettings {
            brokers: "127.0.0.1:9092".into(),
            group_id: "cinch".into(),
            input_topics: vec!["cinch.events".into()],
            findings_topic: "cinch.findings".into(),
            recommendations_topic: "cinch.recommendations".into(),
            commands_topic: "cinch.commands".into(),
            dead_letters_topic: "cinch.dead-letters".into(),
            audit_topic: "cinch.audit".into(),
            state_topic: "cinch.state".into(),
            scores_topic: None,
            workers: 2,
            channel_capacity: 16_384,
            commit_interval_ms: 1000,
            guarantee: Guarantee::AtLeastOnce,
            transactional_id: None,
            shutdown_deadline_secs: 30,
            properties: Default::default(),
        }
    }
}

impl KafkaSettings {
    fn validate(&self, errs: &mut Vec<String>) {
        if self.brokers.trim().is_empty() {
            errs.push("kafka.brokers must not be empty".into());
        }
        if self.group_id.trim().is_empty() {
            errs.push("kafka.group_id must not be empty".into());
        }
        if self.input_topics.is_empty() || self.input_topics.iter().any(|t| t.trim().is_empty()) {
            errs.push("kafka.input_topics must list at least one non-empty topic".into());
        }
        for (name, t) in [
            ("findings_topic", &self.findings_topic),
            ("recommendations_topic", &self.recommendations_topic),
            ("commands_topic", &self.commands_topic),
            ("dead_letters_topic", &self.dead_letters_topic),
            ("audit_topic", &self.audit_topic),
            ("state_topic", &self.state_topic),
        ] {
            if t.trim().is_empty() {
                errs.push(format!("kafka.{name} must not be empty"));
            } else if self.input_topics.contains(t) {
                errs.push(format!(
                    "kafka.{name} ({t}) must not also be an input topic"
                ));
            }
        }
        if let Some(t) = &self.scores_topic
            && t.trim().is_empty()
        {
            errs.push("kafka.scores_topic must not be empty when set".into());
        }
        if !(1..=256).contains(&self.workers) {
            errs.push(format!(
                "kafka.workers must be within 1..256 (got {})",
                self.workers
            ));
        }
        if !(1..=1_000_000).contains(&self.channel_capacity) {
            errs.push(format!(
                "kafka.channel_capacity must be within 1..1000000 (got {})",
                self.channel_capacity
            ));
        }
        if !(10..=600_000).contains(&self.commit_interval_ms) {
            errs.push(format!(
                "kafka.commit_interval_ms must be within 10..600000 (got {})",
                self.commit_interval_ms
            ));
        }
        if let Some(t) = &self.transactional_id
            && t.trim().is_empty()
        {
            errs.push("kafka.transactional_id must not be empty when set".into());
        }
        if !(1..=3600).contains(&self.shutdown_deadline_secs) {
            errs.push(format!(
                "kafka.shutdown_deadline_secs must be within 1..3600 (got {})",
                self.shutdown_deadline_secs
            ));
        }
        for key in [
            "group.id",
            "enable.auto.offset.store",
            "enable.auto.commit",
            "partition.assignment.strategy",
            "transactional.id",
        ] {
            if self.properties.contains_key(key) {
                errs.push(format!(
                    "kafka.properties.\"{key}\" is set by cinch and cannot be overridden"
                ));
            }
        }
    }
}

/// The delivery guarantee of `cinch run`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guarantee {
    /// Every input record is processed at least once; after a crash some outputs may be
    /// produced again, identical and with the same ids.
    #[default]
    AtLeastOnce,
    /// Outputs, state checkpoints and input offsets are committed in one Kafka transaction.
    ExactlyOnce,
}

/// Input decoding.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeSettings {
    /// Which formats to accept: `auto` detects each record's format.
    pub format: FormatChoice,
    /// Largest accepted record in bytes; larger ones are dead-lettered.
    pub max_record_bytes: usize,
}

impl Default for DecodeSettings {
    fn default() -> Self {
        DecodeSettings {
            format: FormatChoice::Auto,
            max_record_bytes: 1 << 20,
        }
    }
}

/// Per-agent behavioural profiles.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileSettings {
    /// Hard memory bound of one agent's profile, in bytes, whatever its traffic.
    pub max_bytes_per_agent: usize,
    /// Half-life of baseline counts, in days of event time.
    pub half_life_days: f64,
    /// An agent is in its learning period until it has this many days of history...
    pub learning_days: f64,
    /// ...and this many learned events. Until then it is judged mainly against its peers.
    pub learning_events: u32,
    /// How late (event time behind the agent's newest event) an event may arrive and still
    /// count in short activity windows. Later events are scored and counted as late.
    pub max_lateness_secs: u32,
}

impl Default for ProfileSettings {
    fn default() -> Self {
        ProfileSettings {
            max_bytes_per_agent: 64 * 1024,
            half_life_days: 21.0,
            learning_days: 3.0,
            learning_events: 150,
            max_lateness_secs: 900,
        }
    }
}

/// Detectors and fusion.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DetectSettings {
    /// Detectors to run (all by default).
    pub enabled: Vec<DetectorId>,
    /// Weight of each detector in the fusion, 0..1 (missing ones weigh 1).
    pub weights: std::collections::BTreeMap<DetectorId, f32>,
    /// A detector's reason is reported when its score reaches this.
    pub reason_floor: f32,
    /// Events scoring at or above this are not learned into the baseline at full weight:
    /// new behaviour in them is learned at most once a day, so an attacker cannot teach the
    /// baseline quickly.
    pub learn_below: f32,
    /// Fraction of a peer group using a capability above which it counts as common there.
    pub peer_common_share: f32,
    /// Smallest peer group whose statistics are trusted.
    pub min_peer_group: u32,
    /// Short activity window for rate, volume, denial and breadth detectors, in seconds.
    pub window_secs: u32,
    /// Period of fleet (peer-group) snapshots in event time, in seconds.
    pub fleet_tick_secs: u32,
}

impl Default for DetectSettings {
    fn default() -> Self {
        DetectSettings {
            enabled: DetectorId::ALL.to_vec(),
            weights: [(DetectorId::Model, 0.5)].into_iter().collect(),
            reason_floor: 0.2,
            learn_below: 0.3,
            peer_common_share: 0.25,
            min_peer_group: 3,
            window_secs: 300,
            fleet_tick_secs: 3600,
        }
    }
}

impl DetectSettings {
    /// The fusion weight of every detector, in [`DetectorId::ALL`] order.
    pub fn weights_table(&self) -> [f32; DetectorId::ALL.len()] {
        DetectorId::ALL.map(|id| self.weight(id))
    }

    /// The fusion weight of a detector (0 when disabled).
    pub fn weight(&self, id: DetectorId) -> f32 {
        if !self.enabled.contains(&id) {
            return 0.0;
        }
        self.weights.get(&id).copied().unwrap_or(1.0)
    }
}

/// Decisions.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DecideSettings {
    /// An event scoring at or above this opens or joins a finding.
    pub finding_threshold: f32,
    /// Score at which a finding is at least `medium`.
    pub medium: f32,
    /// Score at which a finding is at least `high`.
    pub high: f32,
    /// Score at which a finding is `critical` (with two or more detectors agreeing).
    pub critical: f32,
    /// A finding closes when no anomalous event of its agent arrives for this long.
    pub aggregate_gap_secs: u32,
    /// A finding closes at the latest this long after it opened.
    pub aggregate_max_secs: u32,
    /// Most event ids listed in one finding (the count is always exact).
    pub max_events_per_finding: usize,
    /// An anomalous event whose strong reasons (detector and resource pattern) were all
    /// reported for its agent within this many seconds opens no new finding (0 disables).
    pub repeat_window_secs: u32,
}

impl Default for DecideSettings {
    fn default() -> Self {
        DecideSettings {
            finding_threshold: 0.6,
            medium: 0.7,
            high: 0.85,
            critical: 0.95,
            aggregate_gap_secs: 900,
            aggregate_max_secs: 3600,
            max_events_per_finding: 500,
            repeat_window_secs: 86_400,
        }
    }
}

/// How output records are written.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutputSettings {
    /// Shape of finding records: `native` (the cinch record, with the OCSF Detection Finding in
    /// its `ocsf` member) or `ocsf` (the OCSF Detection Finding alone).
    pub finding_format: FindingFormat,
}

fn unit_check(errs: &mut Vec<String>, name: &str, v: f32) {
    if !(0.0..=1.0).contains(&v) || v.is_nan() {
        errs.push(format!("{name} must be within 0..1 (got {v})"));
    }
}

impl Settings {
    /// Reads settings from a TOML file and validates them.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Settings::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates settings from TOML text.
    pub fn from_toml(text: &str) -> Result<Settings, ConfigError> {
        let s: Settings = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "<text>".into(),
            message: e.to_string(),
        })?;
        s.validate()?;
        Ok(s)
    }

    /// Checks every value and reports all problems at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errs = Vec::new();
        let mut unit = |name: &str, v: f32| unit_check(&mut errs, name, v);
        unit("detect.reason_floor", self.detect.reason_floor);
        unit("detect.learn_below", self.detect.learn_below);
        unit("detect.peer_common_share", self.detect.peer_common_share);
        unit("decide.finding_threshold", self.decide.finding_threshold);
        unit("decide.medium", self.decide.medium);
        unit("decide.high", self.decide.high);
        unit("decide.critical", self.decide.critical);
        for (id, w) in &self.detect.weights {
            unit(&format!("detect.weights.{}", id.as_str()), *w);
        }
        if !(self.decide.medium <= self.decide.high && self.decide.high <= self.decide.critical) {
            errs.push("decide.medium <= decide.high <= decide.critical must hold".into());
        }
        if self.profile.max_bytes_per_agent < crate::profile::MIN_PROFILE_BYTES {
            errs.push(format!(
                "profile.max_bytes_per_agent must be at least {} (got {})",
                crate::profile::MIN_PROFILE_BYTES,
                self.profile.max_bytes_per_agent
            ));
        }
        if !(self.profile.half_life_days > 0.0 && self.profile.half_life_days <= 3650.0) {
            errs.push(format!(
                "profile.half_life_days must be within (0, 3650] (got {})",
                self.profile.half_life_days
            ));
        }
        if !(self.profile.learning_days >= 0.0 && self.profile.learning_days <= 365.0) {
            errs.push(format!(
                "profile.learning_days must be within 0..365 (got {})",
                self.profile.learning_days
            ));
        }
        if self.decode.max_record_bytes < 1024 || self.decode.max_record_bytes > 64 << 20 {
            errs.push(format!(
                "decode.max_record_bytes must be within 1024..67108864 (got {})",
                self.decode.max_record_bytes
            ));
        }
        if self.detect.window_secs < 10 || self.detect.window_secs > 3600 {
            errs.push(format!(
                "detect.window_secs must be within 10..3600 (got {})",
                self.detect.window_secs
            ));
        }
        if self.detect.fleet_tick_secs < 60 {
            errs.push(format!(
                "detect.fleet_tick_secs must be at least 60 (got {})",
                self.detect.fleet_tick_secs
            ));
        }
        if self.decide.aggregate_gap_secs == 0
            || self.decide.aggregate_gap_secs > self.decide.aggregate_max_secs
        {
            errs.push(
                "decide.aggregate_gap_secs must be > 0 and <= decide.aggregate_max_secs".into(),
            );
        }
        if self.decide.max_events_per_finding == 0 {
            errs.push("decide.max_events_per_finding must be at least 1".into());
        }
        if self.grants.lookback_days == 0 {
            errs.push("grants.lookback_days must be at least 1".into());
        }
        if !(self.grants.min_history_days >= 0.0 && self.grants.min_history_days <= 3650.0) {
            errs.push(format!(
                "grants.min_history_days must be within 0..3650 (got {})",
                self.grants.min_history_days
            ));
        }
        if self.grants.recommend_interval_secs < 60 {
            errs.push(format!(
                "grants.recommend_interval_secs must be at least 60 (got {})",
                self.grants.recommend_interval_secs
            ));
        }
        if !(self.grants.narrow_stable_days >= 0.0 && self.grants.narrow_stable_days <= 3650.0) {
            errs.push(format!(
                "grants.narrow_stable_days must be within 0..3650 (got {})",
                self.grants.narrow_stable_days
            ));
        }
        if self.grants.max_proposed_resources == 0 {
            errs.push("grants.max_proposed_resources must be at least 1".into());
        }
        if self.ml.reload_secs == 0 {
            errs.push("ml.reload_secs must be at least 1".into());
        }
        if !(self.ml.assign_min_days >= 0.0 && self.ml.assign_min_days <= 365.0) {
            errs.push(format!(
                "ml.assign_min_days must be within 0..365 (got {})",
                self.ml.assign_min_days
            ));
        }
        if !(self.ml.rarity_from >= 0.0
            && self.ml.rarity_from < self.ml.rarity_full
            && self.ml.rarity_full <= 12.0)
        {
            errs.push(format!(
                "0 <= ml.rarity_from < ml.rarity_full <= 12 must hold (got {} and {})",
                self.ml.rarity_from, self.ml.rarity_full
            ));
        }
        if self.grants.reload_secs == 0 {
            errs.push("grants.reload_secs must be at least 1".into());
        }
        for (name, v) in [
            (
                "commands.revoke_grant_secs",
                self.commands.revoke_grant_secs,
            ),
            (
                "commands.revoke_session_secs",
                self.commands.revoke_session_secs,
            ),
            (
                "commands.suspend_agent_secs",
                self.commands.suspend_agent_secs,
            ),
        ] {
            if v == 0 {
                errs.push(format!("{name} must be at least 1: every command expires"));
            }
        }
        if self.commands.min_evidence == 0 {
            errs.push("commands.min_evidence must be at least 1".into());
        }
        unit_check(
            &mut errs,
            "commands.evidence_score",
            self.commands.evidence_score,
        );
        unit_check(
            &mut errs,
            "commands.reach_peer_share",
            self.commands.reach_peer_share,
        );
        if !(self.breaker.max_agent_share > 0.0 && self.breaker.max_agent_share <= 1.0) {
            errs.push(format!(
                "breaker.max_agent_share must be within (0, 1] (got {})",
                self.breaker.max_agent_share
            ));
        }
        if self.breaker.window_secs < 60 {
            errs.push(format!(
                "breaker.window_secs must be at least 60 (got {})",
                self.breaker.window_secs
            ));
        }
        if self.breaker.max_commands_per_minute == 0 {
            errs.push("breaker.max_commands_per_minute must be at least 1".into());
        }
        if self.feedback.suppression_days == 0 {
            errs.push("feedback.suppression_days must be at least 1".into());
        }
        self.kafka.validate(&mut errs);
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(errs))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_is_valid_and_complete() {
        let text = include_str!("../configs/cinch.toml");
        let s = Settings::from_toml(text).expect("shipped config parses");
        assert_eq!(
            s,
            Settings::default(),
            "configs/cinch.toml documents the defaults"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = Settings::from_toml("[decide]\nfinding_treshold = 0.5\n").unwrap_err();
        assert!(err.to_string().contains("finding_treshold"), "{err}");
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let err = Settings::from_toml(
            "[decide]\nfinding_threshold = 1.5\nmedium = 0.9\nhigh = 0.8\n[profile]\nmax_bytes_per_agent = 10\n",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("decide.finding_threshold"), "{text}");
        assert!(text.contains("decide.medium <= decide.high"), "{text}");
        assert!(text.contains("profile.max_bytes_per_agent"), "{text}");
    }

    #[test]
    fn kafka_settings_are_validated() {
        let err = Settings::from_toml(
            "[kafka]\nworkers = 0\ninput_topics = []\n[kafka.properties]\n\"group.id\" = \"x\"\n",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("kafka.workers"), "{text}");
        assert!(text.contains("kafka.input_topics"), "{text}");
        assert!(text.contains("group.id"), "{text}");
        let ok = Settings::from_toml(
            "[kafka]\nbrokers = \"b1:9093,b2:9093\"\n[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n",
        )
        .unwrap();
        assert_eq!(ok.kafka.properties["security.protocol"], "SASL_SSL");
    }
}
