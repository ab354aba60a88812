//! Settings of input decoding.

use serde::{Deserialize, Serialize};

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
