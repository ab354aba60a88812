//! Settings of input decoding.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::DecodeConfig;
use super::otlp::JoinSettings;
use super::tool::Effect;
use crate::vocab::FormatChoice;

/// Input decoding.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeSettings {
    /// Which formats to accept: `auto` detects each record's format.
    pub format: FormatChoice,
    /// Largest accepted record in bytes; larger ones are dead-lettered.
    pub max_record_bytes: usize,
    /// How long an OTLP tool call span waits for an ancestor (its `invoke_agent` span, which
    /// exporters send after it) that is not in its own export request, in seconds of span time;
    /// 0 decodes every request on its own.
    pub otlp_join_wait_secs: u64,
    /// Most OTLP tool calls waiting for ancestors at once (per partition); beyond it the
    /// oldest is released without its ancestor.
    pub otlp_join_max_pending: usize,
    /// Most OTLP spans remembered as possible ancestors of later tool calls (per partition).
    pub otlp_join_max_spans: usize,
}

impl Default for DecodeSettings {
    fn default() -> Self {
        let join = JoinSettings::default();
        DecodeSettings {
            format: FormatChoice::Auto,
            max_record_bytes: 1 << 20,
            otlp_join_wait_secs: (join.wait_ms / 1000) as u64,
            otlp_join_max_pending: join.max_pending,
            otlp_join_max_spans: join.max_spans,
        }
    }
}

impl DecodeSettings {
    /// Appends every problem with these settings to `errs`.
    pub fn validate(&self, errs: &mut Vec<String>) {
        if self.max_record_bytes < 1024 || self.max_record_bytes > 64 << 20 {
            errs.push(format!(
                "decode.max_record_bytes must be within 1024..67108864 (got {})",
                self.max_record_bytes
            ));
        }
        if self.otlp_join_wait_secs > 86_400 {
            errs.push(format!(
                "decode.otlp_join_wait_secs must be within 0..86400 (got {})",
                self.otlp_join_wait_secs
            ));
        }
        if self.otlp_join_max_pending > 1_000_000 {
            errs.push(format!(
                "decode.otlp_join_max_pending must be within 0..1000000 (got {})",
                self.otlp_join_max_pending
            ));
        }
        if self.otlp_join_max_spans > 10_000_000 {
            errs.push(format!(
                "decode.otlp_join_max_spans must be within 0..10000000 (got {})",
                self.otlp_join_max_spans
            ));
        }
    }

    /// The decoder's settings.
    pub fn decoder(&self) -> DecodeConfig {
        DecodeConfig {
            format: self.format,
            max_record_bytes: self.max_record_bytes,
            join: JoinSettings {
                wait_ms: (self.otlp_join_wait_secs.min(86_400) * 1000) as i64,
                max_pending: self.otlp_join_max_pending,
                max_spans: self.otlp_join_max_spans,
            },
        }
    }
}

/// How AI agents' tools are understood.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ToolSettings {
    /// The effect of tools, by exact name or by pattern (`*` stands for any run of characters),
    /// overriding what their names say: `{ "wire_funds" = "transfer", "lookup_*" = "read" }`.
    /// Effects: `read`, `write`, `execute`, `share`, `send`, `transfer`. An exact name wins over
    /// patterns; of several matching patterns the one with the most characters besides `*`
    /// wins (ties: the first in sorted order). Tools that match none are read from their names.
    /// Empty by default.
    pub effects: BTreeMap<String, String>,
}

impl ToolSettings {
    /// Appends every problem with these settings to `errs`.
    pub fn validate(&self, errs: &mut Vec<String>) {
        for (tool, effect) in &self.effects {
            if tool.is_empty() {
                errs.push("tools.effects: a tool name or pattern must not be empty".into());
            }
            if Effect::from_name(effect).is_none() {
                let names: Vec<&str> = Effect::ALL.iter().map(|e| e.as_str()).collect();
                errs.push(format!(
                    "tools.effects.{tool:?}: unknown effect {effect:?} (one of {})",
                    names.join(", ")
                ));
            }
        }
    }

    /// The valid overrides: (name or pattern, effect).
    pub fn overrides(&self) -> impl Iterator<Item = (&str, Effect)> {
        self.effects
            .iter()
            .filter_map(|(t, e)| Some((t.as_str(), Effect::from_name(e)?)))
    }
}
