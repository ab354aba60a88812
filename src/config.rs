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
    /// errors.
    pub fn from_toml_at(text: &str, origin: &str) -> Result<Settings, ConfigError> {
        let s: Settings = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.into(),
            message: e.to_string(),
        })?;
        s.validate()?;
        Ok(s)
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
