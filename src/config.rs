//! Settings: every field documented, with defaults, unknown keys rejected, and validation that
//! reports every error at once. The shipped `configs/cinch.toml` lists them all.
//!
//! Each module owns its settings struct and its validation; this one only gathers them. Reading
//! a settings file is the command line's business (`drive::files`).

use serde::{Deserialize, Serialize};

pub use crate::decide::settings::{
    BreakerSettings, CommandSettings, DecideSettings, FeedbackSettings,
};
pub use crate::detect::settings::DetectSettings;
pub use crate::drive::kafka::settings::{Guarantee, KafkaSettings};
pub use crate::event::settings::{DecodeSettings, ToolSettings};
pub use crate::grants::settings::GrantsSettings;
pub use crate::ml::settings::MlSettings;
pub use crate::output::settings::OutputSettings;
pub use crate::profile::settings::ProfileSettings;

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
    /// AI agents' tools: their effects, where their names do not say.
    pub tools: ToolSettings,
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

impl Settings {
    /// Parses and validates settings from TOML text; `origin` names where the text came from in
    /// errors. Every problem is reported at once: unknown sections and keys, values of the
    /// wrong type or enum, and values out of range (a file that is not TOML at all is one
    /// error, with its position).
    pub fn from_toml_at(text: &str, origin: &str) -> Result<Settings, ConfigError> {
        // `origin` names the text in syntax errors; the caller names the file for the rest.
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.into(),
            message: e.to_string(),
        })?;
        let mut errs = Vec::new();
        let mut s = Settings::default();
        for (name, value) in table {
            match name.as_str() {
                "decode" => section(&name, value, &mut s.decode, &mut errs),
                "tools" => section(&name, value, &mut s.tools, &mut errs),
                "profile" => section(&name, value, &mut s.profile, &mut errs),
                "detect" => section(&name, value, &mut s.detect, &mut errs),
                "decide" => section(&name, value, &mut s.decide, &mut errs),
                "grants" => section(&name, value, &mut s.grants, &mut errs),
                "commands" => section(&name, value, &mut s.commands, &mut errs),
                "breaker" => section(&name, value, &mut s.breaker, &mut errs),
                "feedback" => section(&name, value, &mut s.feedback, &mut errs),
                "output" => section(&name, value, &mut s.output, &mut errs),
                "ml" => section(&name, value, &mut s.ml, &mut errs),
                "kafka" => section(&name, value, &mut s.kafka, &mut errs),
                _ => errs.push(format!(
                    "unknown section `{name}`, expected one of `decode`, `tools`, `profile`, `detect`, `decide`, `grants`, `commands`, `breaker`, `feedback`, `output`, `ml`, `kafka`"
                )),
            }
        }
        if let Err(ConfigError::Invalid(more)) = s.validate() {
            errs.extend(more);
        }
        if errs.is_empty() {
            Ok(s)
        } else {
            Err(ConfigError::Invalid(errs))
        }
    }

    /// Parses and validates settings from TOML text.
    pub fn from_toml(text: &str) -> Result<Settings, ConfigError> {
        Settings::from_toml_at(text, "<text>")
    }

    /// Checks every value and reports all problems at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errs = Vec::new();
        self.decode.validate(&mut errs);
        self.tools.validate(&mut errs);
        self.profile.validate(&mut errs);
        self.detect.validate(&mut errs);
        self.decide.validate(&mut errs);
        self.grants.validate(&mut errs);
        self.ml.validate(&mut errs);
        self.commands.validate(&mut errs);
        self.breaker.validate(&mut errs);
        self.feedback.validate(&mut errs);
        self.kafka.validate(&mut errs);
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(errs))
        }
    }
}

/// Reads one section into `into`; when it does not read, reads each of its keys alone, so that
/// every bad key is named, and leaves `into` at its defaults.
fn section<T: serde::de::DeserializeOwned>(
    name: &str,
    value: toml::Value,
    into: &mut T,
    errs: &mut Vec<String>,
) {
    let toml::Value::Table(table) = value else {
        errs.push(format!("`{name}` must be a table (a `[{name}]` section)"));
        return;
    };
    match T::deserialize(toml::Value::Table(table.clone())) {
        Ok(v) => *into = v,
        Err(_) => {
            // The keys that read alone are kept, so that their ranges are checked too.
            let mut good = toml::Table::new();
            for (key, v) in table {
                let mut one = toml::Table::new();
                one.insert(key.clone(), v.clone());
                match T::deserialize(toml::Value::Table(one)) {
                    Ok(_) => {
                        good.insert(key, v);
                    }
                    Err(e) => {
                        let e = e.to_string();
                        // An empty message has no first line: the key is named all the same.
                        let first = e.lines().next().unwrap_or_default();
                        errs.push(format!("{name}.{key}: {first}"));
                    }
                }
            }
            if let Ok(v) = T::deserialize(toml::Value::Table(good)) {
                *into = v;
            }
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
    fn every_key_type_and_enum_error_is_reported_at_once() {
        let err = Settings::from_toml(
            "[bogus]\nx = 1\n[profile]\nhalf_life_days = \"x\"\nmax_lateness_secs = -1\n\
             [decide]\nfinding_treshold = 0.5\n[output]\nfinding_format = \"xml\"\n\
             [grants]\nrecommend_interval_secs = 4611686018427387904\n\
             [commands]\nrevoke_session_secs = 9223372036854775807\n",
        )
        .unwrap_err()
        .to_string();
        for want in [
            "unknown section `bogus`",
            "profile.half_life_days",
            "profile.max_lateness_secs",
            "decide.finding_treshold",
            "output.finding_format",
            "grants.recommend_interval_secs must be at most",
            "commands.revoke_session_secs must be at most",
        ] {
            assert!(err.contains(want), "{want} missing from: {err}");
        }
    }

    #[test]
    fn broker_lists_and_topic_names_are_checked() {
        for (brokers, topic, want) in [
            (":::,,,", "events", "kafka.brokers"),
            ("http://x:9092", "events", "has a scheme"),
            ("localhost:9092", "bad topic/../x", "is not allowed"),
            ("localhost:0", "events", "is not a port"),
        ] {
            let text = format!("[kafka]\nbrokers = \"{brokers}\"\ninput_topics = [\"{topic}\"]\n");
            let err = Settings::from_toml(&text).unwrap_err().to_string();
            assert!(err.contains(want), "{brokers} / {topic}: {err}");
        }
        let long = "b".repeat(100_000);
        let err = Settings::from_toml(&format!("[kafka]\nbrokers = \"{long}:9092\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 4096"), "{err}");
        for ok in [
            "localhost:9092",
            "10.0.0.1:9092, [::1]:9093,kafka-0.kafka.svc:19092",
        ] {
            let text = format!("[kafka]\nbrokers = \"{ok}\"\n");
            assert!(Settings::from_toml(&text).is_ok(), "{ok}");
        }
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
    fn tool_effects_are_validated_with_the_rest() {
        let err = Settings::from_toml(
            "[tools]\neffects = { \"wire_funds\" = \"transfer\", \"lookup_*\" = \"peek\", \"\" = \"read\" }\n[decide]\nfinding_threshold = 1.5\n",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("tools.effects.\"lookup_*\": unknown effect \"peek\""),
            "{text}"
        );
        assert!(text.contains("must not be empty"), "{text}");
        assert!(text.contains("decide.finding_threshold"), "{text}");
        assert!(!text.contains("wire_funds"), "{text}");
        let ok = Settings::from_toml("[tools.effects]\n\"lookup_*\" = \"read\"\n").unwrap();
        assert_eq!(ok.tools.effects["lookup_*"], "read");
    }

    #[test]
    fn kafka_settings_are_validated() {
        let err = Settings::from_toml(
            "[kafka]\nworkers = 0\ninput_topics = []\nstartup_timeout_secs = 0\n[kafka.properties]\n\"group.id\" = \"x\"\n",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("kafka.workers"), "{text}");
        assert!(
            text.contains("kafka.startup_timeout_secs must be within 1..600"),
            "{text}"
        );
        let err = Settings::from_toml("[kafka]\nstartup_timeout_secs = 601\n").unwrap_err();
        assert!(err.to_string().contains("(got 601)"), "{err}");
        assert!(text.contains("kafka.input_topics"), "{text}");
        assert!(text.contains("group.id"), "{text}");
        let ok = Settings::from_toml(
            "[kafka]\nbrokers = \"b1:9093,b2:9093\"\n[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n",
        )
        .unwrap();
        assert_eq!(ok.kafka.properties["security.protocol"], "SASL_SSL");
    }

    #[test]
    fn unkeyed_topics_and_their_repartitioning_are_validated_together() {
        let text = Settings::from_toml(
            "[kafka]
input_topics = [\"a\"]
unkeyed_topics = [\"b\"]
             repartition_partitions = 0
repartition_order_secs = 90000
",
        )
        .unwrap_err()
        .to_string();
        for want in [
            "kafka.unkeyed_topics: b is not one of kafka.input_topics",
            "kafka.repartition_partitions must be within 1..10000 (got 0)",
            "kafka.repartition_order_secs must be within 0..86400 (got 90000)",
        ] {
            assert!(text.contains(want), "{want} missing from: {text}");
        }
        let long = "t".repeat(240);
        let text = Settings::from_toml(&format!(
            "[kafka]\ninput_topics = [\"{long}\"]\nunkeyed_topics = [\"{long}\"]\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(text.contains("its repartition topic"), "{text}");
        let ok = Settings::from_toml(
            "[kafka]\ngroup_id = \"g\"\ninput_topics = [\"a\", \"b\"]\nunkeyed_topics = [\"b\"]\n",
        )
        .unwrap();
        assert_eq!(ok.kafka.repartition_topic("b"), "g-b-repartition");
    }

    #[test]
    fn the_fleet_topic_is_validated_with_every_other_error() {
        let text = Settings::from_toml(
            "[kafka]
input_topics = [\"a\", \"b\"]
unkeyed_topics = [\"b\"]
fleet_topic = \"a\"
fleet_idle_secs = 0
",
        )
        .unwrap_err()
        .to_string();
        for want in [
            "kafka.fleet_topic (a) must not also be an input or the state topic",
            "kafka.fleet_idle_secs must be within 1..3600 (got 0)",
        ] {
            assert!(text.contains(want), "{want} missing from: {text}");
        }
        let text = Settings::from_toml(
            "[kafka]\ngroup_id = \"g\"\ninput_topics = [\"b\"]\nunkeyed_topics = [\"b\"]\n\
             fleet_topic = \"g-b-repartition\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            text.contains(
                "kafka.fleet_topic (g-b-repartition) must not be the repartition topic of b"
            ),
            "{text}"
        );
        // Unkeyed input shares the fleet through its repartition partitions.
        let ok = Settings::from_toml(
            "[kafka]\ninput_topics = [\"b\"]\nunkeyed_topics = [\"b\"]\nfleet_topic = \"f\"\n",
        )
        .unwrap();
        assert_eq!(ok.kafka.fleet_topic.as_deref(), Some("f"));
        let text = Settings::from_toml("[kafka]\nfleet_topic = \"bad name\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("kafka.fleet_topic: ` ` is not allowed"),
            "{text}"
        );
        let ok = Settings::from_toml("[kafka]\nfleet_topic = \"cinch.fleet\"\n").unwrap();
        assert_eq!(ok.kafka.fleet_topic.as_deref(), Some("cinch.fleet"));
        assert_eq!(ok.kafka.fleet_idle_secs, 10);
    }
}
