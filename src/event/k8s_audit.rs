//! Kubernetes audit events (`kind: Event`, `apiVersion: audit.k8s.io/v1`).
//!
//! Mapping:
//! - `event_id` = `auditID`; `time` = `stageTimestamp`, else `requestReceivedTimestamp`;
//! - `agent_id` = `user.username`; `agent_kind` = `k8s_service_account` for
//!   `system:serviceaccount:*` users, else `k8s_user`;
//! - `action` = `k8s:<verb>`;
//! - `resource` = `k8s://<namespace or _cluster>/<resource>[/<subresource>][/<name>]`; requests
//!   without an `objectRef` map to `k8s://_nonresource<path of requestURI>`;
//! - `outcome` from `responseStatus.code`: 401 and 403 denied, other codes >= 400 error;
//! - `source_ip` = `sourceIPs[0]`; attributes keep `stage`, `userAgent`, `requestURI`, `level`,
//!   the response code and any impersonated user.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::native::check_len;
use super::sniff::K8S_AUDIT_API_VERSION;
use super::wire::{self, Items, Obj, nested, raw_nonempty_str};
use super::{AccessEvent, Format, Outcome, RejectReason, time};

const FORMAT: &str = "k8s_audit";

const FIELDS: &[&str] = &[
    "kind",
    "apiVersion",
    "level",
    "auditID",
    "stage",
    "requestURI",
    "verb",
    "user",
    "impersonatedUser",
    "sourceIPs",
    "userAgent",
    "objectRef",
    "responseStatus",
    "requestReceivedTimestamp",
    "stageTimestamp",
];

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Wire<'a> {
    #[serde(borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow, rename = "apiVersion")]
    api_version: Option<&'a RawValue>,
    #[serde(borrow)]
    level: Option<&'a RawValue>,
    #[serde(borrow, rename = "auditID")]
    audit_id: Option<&'a RawValue>,
    #[serde(borrow)]
    stage: Option<&'a RawValue>,
    #[serde(borrow, rename = "requestURI")]
    request_uri: Option<&'a RawValue>,
    #[serde(borrow)]
    verb: Option<&'a RawValue>,
    #[serde(borrow)]
    user: Option<&'a RawValue>,
    #[serde(borrow, rename = "impersonatedUser")]
    impersonated_user: Obj<User<'a>>,
    #[serde(borrow, rename = "sourceIPs")]
    source_ips: Items<&'a RawValue>,
    #[serde(borrow, rename = "userAgent")]
    user_agent: Option<&'a RawValue>,
    #[serde(borrow, rename = "objectRef")]
    object_ref: Obj<ObjectRef<'a>>,
    #[serde(borrow, rename = "responseStatus")]
    response_status: Obj<Status<'a>>,
    #[serde(borrow, rename = "requestReceivedTimestamp")]
    request_received: Option<&'a RawValue>,
    #[serde(borrow, rename = "stageTimestamp")]
    stage_timestamp: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct User<'a> {
    #[serde(borrow)]
    username: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ObjectRef<'a> {
    #[serde(borrow)]
    resource: Option<&'a RawValue>,
    #[serde(borrow)]
    subresource: Option<&'a RawValue>,
    #[serde(borrow)]
    namespace: Option<&'a RawValue>,
    #[serde(borrow)]
    name: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Status<'a> {
    #[serde(borrow)]
    code: Option<&'a RawValue>,
}

/// Attributes kept with a Kubernetes audit event.
#[derive(Serialize)]
struct Attributes<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    stage: Option<Cow<'a, str>>,
    #[serde(rename = "userAgent", skip_serializing_if = "Option::is_none")]
    user_agent: Option<Cow<'a, str>>,
    #[serde(rename = "requestURI", skip_serializing_if = "Option::is_none")]
    request_uri: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u64>,
    #[serde(rename = "impersonatedUser", skip_serializing_if = "Option::is_none")]
    impersonated_user: Option<Cow<'a, str>>,
}

/// The prefix of service-account user names.
pub(crate) const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// Decodes one Kubernetes audit event (a JSON object).
pub fn decode(record: &str) -> Result<AccessEvent<'_>, RejectReason> {
    map(parse(record)?)
}

fn parse(record: &str) -> Result<Wire<'_>, RejectReason> {
    serde_json::from_str(record).map_err(|e| wire::classify(&e, FORMAT, FIELDS))
}

/// Decodes a record when it carries `kind: Event` and `apiVersion: audit.k8s.io/v1`; `None`
/// when it does not (it is then another format or none).
pub(crate) fn decode_if_audit_event(record: &str) -> Option<Result<AccessEvent<'_>, RejectReason>> {
    let w = match parse(record) {
        Ok(w) => w,
        Err(e) => return Some(Err(e)),
    };
    let is_event = wire::raw_str(w.kind).as_deref() == Some("Event")
        && wire::raw_str(w.api_version).as_deref() == Some(K8S_AUDIT_API_VERSION);
    is_event.then(|| map(w))
}

fn map(w: Wire<'_>) -> Result<AccessEvent<'_>, RejectReason> {
    let event_id = wire::required_str(w.audit_id, FORMAT, "auditID")?;
    check_len(&event_id, FORMAT, "auditID", 1, 256)?;
    let (t, field) = if wire::is_null(w.stage_timestamp) {
        (w.request_received, "requestReceivedTimestamp")
    } else {
        (w.stage_timestamp, "stageTimestamp")
    };
    let time_ms = match t {
        Some(t) if !wire::is_null(Some(t)) => time::from_loose(&wire::raw_loose(t), FORMAT, field)?,
        _ => {
            return Err(RejectReason::MissingField {
                format: FORMAT,
                field: "stageTimestamp",
            });
        }
    };
    let user = nested::<User<'_>>(w.user, FORMAT, "user")?.ok_or(RejectReason::MissingField {
        format: FORMAT,
        field: "user.username",
    })?;
    let agent_id = wire::required_str(user.username, FORMAT, "user.username")?;
    check_len(&agent_id, FORMAT, "user.username", 1, 512)?;
    let agent_kind = if agent_id.starts_with(SERVICE_ACCOUNT_PREFIX) {
        "k8s_service_account"
    } else {
        "k8s_user"
    };
    let verb = wire::required_str(w.verb, FORMAT, "verb")?;
    let action = format!("k8s:{verb}");
    check_len(&action, FORMAT, "verb", 1, 256)?;
    let request_uri = raw_nonempty_str(w.request_uri);
    let resource = resource(w.object_ref.0, request_uri.as_deref());
    check_len(&resource, FORMAT, "objectRef", 0, 4096)?;
    let code = w.response_status.0.and_then(|s| wire::raw_u64(s.code));
    let outcome = match code {
        Some(401 | 403) => Outcome::Denied,
        Some(c) if c >= 400 => Outcome::Error,
        _ => Outcome::Success,
    };
    let source_ip = raw_nonempty_str(w.source_ips.0.first().copied());
    let attributes = wire::owned_raw(&Attributes {
        stage: raw_nonempty_str(w.stage),
        user_agent: raw_nonempty_str(w.user_agent),
        request_uri,
        level: raw_nonempty_str(w.level),
        code,
        impersonated_user: w
            .impersonated_user
            .0
            .and_then(|u| raw_nonempty_str(u.username)),
    });
    Ok(AccessEvent {
        format: Format::K8sAudit,
        event_id,
        time_ms,
        agent_id,
        agent_kind: Some(Cow::Borrowed(agent_kind)),
        action: Cow::Owned(action),
        resource: Cow::Owned(resource),
        outcome,
        session_id: None,
        source_ip,
        bytes: None,
        grant: None,
        intent: None,
        attributes,
        tool: None,
    })
}

fn resource(object_ref: Option<ObjectRef<'_>>, request_uri: Option<&str>) -> String {
    match object_ref {
        Some(o) => {
            let ns = raw_nonempty_str(o.namespace);
            let mut out = format!("k8s://{}", ns.as_deref().unwrap_or("_cluster"));
            for part in [o.resource, o.subresource, o.name] {
                if let Some(part) = raw_nonempty_str(part) {
                    out.push('/');
                    out.push_str(&part);
                }
            }
            out
        }
        None => match request_uri {
            Some(uri) => {
                let path = uri.split('?').next().unwrap_or(uri);
                format!("k8s://_nonresource{path}")
            }
            None => String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET_SECRET: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"2f6c1c4e-8d7a-4c51-9d65-7a0b1f0f7f11","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/payments/secrets/db-creds","verb":"get","user":{"username":"system:serviceaccount:payments:agent-runner","uid":"5f1","groups":["system:serviceaccounts","system:authenticated"]},"sourceIPs":["10.244.1.17","10.0.0.1"],"userAgent":"agent-runner/1.4","objectRef":{"resource":"secrets","namespace":"payments","name":"db-creds","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":403},"requestReceivedTimestamp":"2024-05-01T12:00:00.123456Z","stageTimestamp":"2024-05-01T12:00:00.130001Z"}"#;

    #[test]
    fn service_account_denied_secret_read() {
        let ev = decode(GET_SECRET).unwrap();
        assert_eq!(ev.format, Format::K8sAudit);
        assert_eq!(ev.event_id, "2f6c1c4e-8d7a-4c51-9d65-7a0b1f0f7f11");
        assert_eq!(ev.time_ms, 1_714_564_800_130);
        assert_eq!(ev.agent_id, "system:serviceaccount:payments:agent-runner");
        assert_eq!(ev.agent_kind.as_deref(), Some("k8s_service_account"));
        assert_eq!(ev.action, "k8s:get");
        assert_eq!(ev.resource, "k8s://payments/secrets/db-creds");
        assert_eq!(ev.outcome, Outcome::Denied);
        assert_eq!(ev.source_ip.as_deref(), Some("10.244.1.17"));
        let attrs: serde_json::Value = serde_json::from_str(ev.attributes.unwrap().get()).unwrap();
        assert_eq!(attrs["stage"], "ResponseComplete");
        assert_eq!(attrs["userAgent"], "agent-runner/1.4");
        assert_eq!(attrs["code"], 403);
    }

    #[test]
    fn resources_and_outcomes() {
        let rec = |obj: &str, code: u32, user: &str| {
            format!(
                r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","verb":"list","user":{{"username":"{user}"}},"requestURI":"/healthz?verbose=1","requestReceivedTimestamp":"2024-05-01T12:00:00Z"{obj},"responseStatus":{{"code":{code}}}}}"#
            )
        };
        let r = rec(r#","objectRef":{"resource":"nodes"}"#, 200, "alice");
        let ev = decode(&r).unwrap();
        assert_eq!(ev.resource, "k8s://_cluster/nodes");
        assert_eq!(ev.outcome, Outcome::Success);
        assert_eq!(ev.agent_kind.as_deref(), Some("k8s_user"));
        assert_eq!(ev.time_ms, 1_714_564_800_000);
        let r = rec(
            r#","objectRef":{"resource":"pods","subresource":"log","namespace":"web","name":"p-1"}"#,
            404,
            "bob",
        );
        let ev = decode(&r).unwrap();
        assert_eq!(ev.resource, "k8s://web/pods/log/p-1");
        assert_eq!(ev.outcome, Outcome::Error);
        let r = rec("", 401, "x");
        let ev = decode(&r).unwrap();
        assert_eq!(ev.resource, "k8s://_nonresource/healthz");
        assert_eq!(ev.outcome, Outcome::Denied);
    }

    #[test]
    fn required_fields() {
        let full: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(GET_SECRET).unwrap();
        for (remove, field) in [
            ("auditID", "auditID"),
            ("user", "user.username"),
            ("verb", "verb"),
        ] {
            let mut m = full.clone();
            m.remove(remove);
            assert_eq!(
                decode(&serde_json::to_string(&m).unwrap()).unwrap_err(),
                RejectReason::MissingField {
                    format: "k8s_audit",
                    field
                }
            );
        }
        let mut m = full.clone();
        m.remove("stageTimestamp");
        m.remove("requestReceivedTimestamp");
        assert_eq!(
            decode(&serde_json::to_string(&m).unwrap()).unwrap_err(),
            RejectReason::MissingField {
                format: "k8s_audit",
                field: "stageTimestamp"
            }
        );
        let mut m = full;
        m.insert("user".into(), serde_json::json!({"username": 7}));
        assert_eq!(
            decode(&serde_json::to_string(&m).unwrap())
                .unwrap_err()
                .code(),
            "invalid_field"
        );
    }
}
