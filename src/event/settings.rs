//! Settings of input decoding.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
}

impl Default for DecodeSettings {
    fn default() -> Self {
        DecodeSettings {
            format: FormatChoice::Auto,
            max_record_bytes: 1 << 20,
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
