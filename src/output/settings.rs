//! Settings of output records.

use serde::{Deserialize, Serialize};

use crate::vocab::FindingFormat;

/// How output records are written.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutputSettings {
    /// Shape of finding records: `native` (the cinch record, with the OCSF Detection Finding in
    /// its `ocsf` member) or `ocsf` (the OCSF Detection Finding alone).
    pub finding_format: FindingFormat,
}
