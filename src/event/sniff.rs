//! Format detection from a record's top-level keys.
//!
//! Detection reads only the keys that tell the formats apart (values are skipped, not built),
//! so it costs one shallow pass over the record.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::wire;
use super::{Format, RejectReason};

/// The top-level keys that identify a format.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Probe<'a> {
    #[serde(borrow)]
    agent_id: Option<&'a RawValue>,
    #[serde(borrow)]
    action: Option<&'a RawValue>,
    #[serde(borrow)]
    event_id: Option<&'a RawValue>,
    #[serde(borrow)]
    class_uid: Option<&'a RawValue>,
    #[serde(borrow, rename = "eventVersion")]
    event_version: Option<&'a RawValue>,
    #[serde(borrow, rename = "userIdentity")]
    user_identity: Option<&'a RawValue>,
    #[serde(borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow, rename = "apiVersion")]
    api_version: Option<&'a RawValue>,
}

const FIELDS: &[&str] = &[
    "agent_id",
    "action",
    "event_id",
    "class_uid",
    "eventVersion",
    "userIdentity",
    "kind",
    "apiVersion",
];

/// The `apiVersion` of Kubernetes audit events.
pub(crate) const K8S_AUDIT_API_VERSION: &str = "audit.k8s.io/v1";

/// Detects the format of one record (a JSON object).
///
/// A record that matches no format fully but carries a key of one (e.g. a native record without
/// `agent_id` but with `action`) is attributed to that format, so that its decoder can name the
/// missing field; a record with no known key at all is `UnknownFormat`.
pub fn detect(record: &str) -> Result<Format, RejectReason> {
    let p: Probe<'_> =
        serde_json::from_str(record).map_err(|e| wire::classify(&e, "auto", FIELDS))?;
    let present = |r: Option<&RawValue>| !wire::is_null(r);
    let kind = wire::raw_str(p.kind);
    let api = wire::raw_str(p.api_version);
    if present(p.agent_id) && present(p.action) {
        return Ok(Format::Native);
    }
    if present(p.class_uid) {
        return Ok(Format::Ocsf);
    }
    if present(p.event_version) && present(p.user_identity) {
        return Ok(Format::Cloudtrail);
    }
    if kind.as_deref() == Some("Event") && api.as_deref() == Some(K8S_AUDIT_API_VERSION) {
        return Ok(Format::K8sAudit);
    }
    // Partial matches: let the closest decoder say what is missing.
    if present(p.agent_id) || present(p.action) || present(p.event_id) {
        return Ok(Format::Native);
    }
    if present(p.event_version) || present(p.user_identity) {
        return Ok(Format::Cloudtrail);
    }
    if api
        .as_deref()
        .is_some_and(|a| a.starts_with("audit.k8s.io/"))
    {
        return Ok(Format::K8sAudit);
    }
    Err(RejectReason::UnknownFormat(
        "no known format matches: expected agent_id and action (native), class_uid (OCSF), \
         eventVersion and userIdentity (CloudTrail), or kind Event with apiVersion \
         audit.k8s.io/v1 (Kubernetes audit)"
            .to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format() {
        assert_eq!(
            detect(r#"{"agent_id":"a","action":"b"}"#),
            Ok(Format::Native)
        );
        assert_eq!(detect(r#"{"class_uid":6003,"actor":{}}"#), Ok(Format::Ocsf));
        assert_eq!(
            detect(r#"{"eventVersion":"1.08","userIdentity":{"type":"Root"}}"#),
            Ok(Format::Cloudtrail)
        );
        assert_eq!(
            detect(r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":"get"}"#),
            Ok(Format::K8sAudit)
        );
    }

    #[test]
    fn partial_matches_and_unknown() {
        assert_eq!(detect(r#"{"action":"b","time":1}"#), Ok(Format::Native));
        assert_eq!(detect(r#"{"eventVersion":"1.08"}"#), Ok(Format::Cloudtrail));
        assert_eq!(
            detect(r#"{"kind":"Pod","apiVersion":"v1"}"#)
                .unwrap_err()
                .code(),
            "unknown_format"
        );
        assert_eq!(
            detect(r#"{"agent_id":null}"#).unwrap_err().code(),
            "unknown_format"
        );
        assert_eq!(detect("{").unwrap_err().code(), "not_json");
    }
}
