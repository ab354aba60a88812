//! OCSF events (API Activity 6003, Authentication 3002 and other classes with an actor).
//!
//! Mapping:
//! - `event_id` = `metadata.uid`, else `ocsf-<FNV-1a 64 of the record bytes in hex>` (stable);
//! - `time` = `time` (epoch ms or RFC 3339), else `time_dt`;
//! - `agent_id` = `actor.user.uid`, `actor.user.name`, `actor.app_name` or `actor.process.name`;
//! - `action` = `api.operation`; for Authentication (3002) without `api`, `auth:<activity_name>`
//!   (or `auth:<activity_id>`); for other classes without `api`, `ocsf-<class_uid>:<activity>`;
//! - `resource` = `resources[0].uid` or `.name`, else `dst_endpoint` (hostname, ip, svc_name);
//! - `outcome` from `status_id`: 1 success; 2 failure, which is denied when `status_detail`,
//!   `status` or `status_code` mention a denial (denied, (un/not) authorised, forbidden) and an error
//!   otherwise; anything else success;
//! - `source_ip` = `src_endpoint.ip`, `session_id` = `actor.session.uid`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::native::check_len;
use super::wire::{self, Items, Obj, nested, raw_nonempty_str};
use super::{AccessEvent, Format, Outcome, RejectReason, time};

const FORMAT: &str = "ocsf";

const FIELDS: &[&str] = &[
    "class_uid",
    "class_name",
    "activity_id",
    "activity_name",
    "time",
    "time_dt",
    "status_id",
    "status",
    "status_detail",
    "status_code",
    "metadata",
    "actor",
    "api",
    "resources",
    "src_endpoint",
    "dst_endpoint",
    "cloud",
];

/// The OCSF class of Authentication events.
pub(crate) const CLASS_AUTHENTICATION: u64 = 3002;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Wire<'a> {
    #[serde(borrow)]
    class_uid: Option<&'a RawValue>,
    #[serde(borrow)]
    class_name: Option<&'a RawValue>,
    #[serde(borrow)]
    activity_id: Option<&'a RawValue>,
    #[serde(borrow)]
    activity_name: Option<&'a RawValue>,
    #[serde(borrow)]
    time: Option<&'a RawValue>,
    #[serde(borrow)]
    time_dt: Option<&'a RawValue>,
    #[serde(borrow)]
    status_id: Option<&'a RawValue>,
    #[serde(borrow)]
    status: Option<&'a RawValue>,
    #[serde(borrow)]
    status_detail: Option<&'a RawValue>,
    #[serde(borrow)]
    status_code: Option<&'a RawValue>,
    #[serde(borrow)]
    metadata: Obj<Metadata<'a>>,
    #[serde(borrow)]
    actor: Option<&'a RawValue>,
    #[serde(borrow)]
    api: Obj<Api<'a>>,
    #[serde(borrow)]
    resources: Items<Obj<Named<'a>>>,
    #[serde(borrow)]
    src_endpoint: Obj<Endpoint<'a>>,
    #[serde(borrow)]
    dst_endpoint: Obj<Endpoint<'a>>,
    #[serde(borrow)]
    cloud: Obj<Cloud<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Metadata<'a> {
    #[serde(borrow)]
    uid: Option<&'a RawValue>,
    #[serde(borrow)]
    product: Obj<Named<'a>>,
}

/// Any object with a `uid`, a `name` and a `type`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Named<'a> {
    #[serde(borrow)]
    uid: Option<&'a RawValue>,
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow, rename = "type")]
    kind: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Actor<'a> {
    #[serde(borrow)]
    user: Obj<Named<'a>>,
    #[serde(borrow)]
    app_name: Option<&'a RawValue>,
    #[serde(borrow)]
    process: Obj<Named<'a>>,
    #[serde(borrow)]
    session: Obj<Named<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Api<'a> {
    #[serde(borrow)]
    operation: Option<&'a RawValue>,
    #[serde(borrow)]
    service: Obj<Named<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Endpoint<'a> {
    #[serde(borrow)]
    ip: Option<&'a RawValue>,
    #[serde(borrow)]
    hostname: Option<&'a RawValue>,
    #[serde(borrow)]
    svc_name: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Cloud<'a> {
    #[serde(borrow)]
    region: Option<&'a RawValue>,
}

/// Attributes kept with an OCSF event.
#[derive(Serialize)]
struct Attributes<'a> {
    class_uid: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    class_name: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    activity_name: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    product: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_type: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_detail: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<Cow<'a, str>>,
}

/// Decodes one OCSF record (a JSON object).
pub fn decode(record: &str) -> Result<AccessEvent<'_>, RejectReason> {
    let w: Wire<'_> =
        serde_json::from_str(record).map_err(|e| wire::classify(&e, FORMAT, FIELDS))?;
    if wire::is_null(w.class_uid) {
        return Err(RejectReason::MissingField {
            format: FORMAT,
            field: "class_uid",
        });
    }
    let class_uid = wire::raw_u64(w.class_uid).ok_or_else(|| RejectReason::InvalidField {
        format: FORMAT,
        field: "class_uid",
        detail: format!(
            "expected an integer, found {}",
            w.class_uid.map_or("null", wire::raw_type_name)
        ),
    })?;

    // Absent objects have no members, and each member below is optional.
    let metadata = w.metadata.0.unwrap_or_default();
    let api = w.api.0.unwrap_or_default();
    let event_id = match raw_nonempty_str(metadata.uid) {
        Some(uid) => uid,
        None => Cow::Owned(format!("ocsf-{:016x}", wire::fnv1a64(record.as_bytes()))),
    };
    check_len(&event_id, FORMAT, "metadata.uid", 1, 256)?;

    let present = |r: &&RawValue| !wire::is_null(Some(r));
    let time_ms = if let Some(t) = w.time.filter(present) {
        time::from_loose(&wire::raw_loose(t), FORMAT, "time")?
    } else if let Some(t) = w.time_dt.filter(present) {
        time::from_loose(&wire::raw_loose(t), FORMAT, "time_dt")?
    } else {
        return Err(RejectReason::MissingField {
            format: FORMAT,
            field: "time",
        });
    };

    // Absent objects have no members: the agent is looked for in the next place.
    let actor = nested::<Actor<'_>>(w.actor, FORMAT, "actor")?.unwrap_or_default();
    let user = actor.user.0.unwrap_or_default();
    let agent_id = raw_nonempty_str(user.uid)
        .map(|id| (id, "ocsf_user"))
        .or_else(|| raw_nonempty_str(user.name).map(|id| (id, "ocsf_user")))
        .or_else(|| raw_nonempty_str(actor.app_name).map(|id| (id, "ocsf_app")))
        .or_else(|| {
            actor
                .process
                .0
                .and_then(|p| raw_nonempty_str(p.name))
                .map(|id| (id, "ocsf_process"))
        });
    let Some((agent_id, agent_kind)) = agent_id else {
        return Err(RejectReason::MissingField {
            format: FORMAT,
            field: "actor.user.uid",
        });
    };
    check_len(&agent_id, FORMAT, "actor.user.uid", 1, 512)?;

    let activity = raw_nonempty_str(w.activity_name)
        .or_else(|| wire::raw_u64(w.activity_id).map(|n| Cow::Owned(n.to_string())));
    let action: Cow<'_, str> = match raw_nonempty_str(api.operation) {
        Some(op) => op,
        None => match activity.as_deref() {
            Some(a) if class_uid == CLASS_AUTHENTICATION => Cow::Owned(format!("auth:{a}")),
            Some(a) => Cow::Owned(format!("ocsf-{class_uid}:{a}")),
            None => {
                return Err(RejectReason::MissingField {
                    format: FORMAT,
                    field: "api.operation",
                });
            }
        },
    };
    check_len(&action, FORMAT, "api.operation", 1, 256)?;

    let resource = w
        .resources
        .0
        .into_iter()
        .next()
        .and_then(|r| r.0)
        .and_then(|r| raw_nonempty_str(r.uid).or_else(|| raw_nonempty_str(r.name)))
        .or_else(|| {
            w.dst_endpoint.0.and_then(|d| {
                raw_nonempty_str(d.hostname)
                    .or_else(|| raw_nonempty_str(d.ip))
                    .or_else(|| raw_nonempty_str(d.svc_name))
            })
        })
        .unwrap_or(Cow::Borrowed(""));
    check_len(&resource, FORMAT, "resources", 0, 4096)?;

    let status_detail = raw_nonempty_str(w.status_detail);
    let status = raw_nonempty_str(w.status);
    let outcome = match wire::raw_u64(w.status_id) {
        Some(2) => {
            let code = raw_nonempty_str(w.status_code);
            let texts = [status_detail.as_deref(), status.as_deref(), code.as_deref()];
            if texts.iter().flatten().any(|t| mentions_denial(t)) {
                Outcome::Denied
            } else {
                Outcome::Error
            }
        }
        _ => Outcome::Success,
    };

    let attributes = wire::owned_raw(&Attributes {
        class_uid,
        class_name: raw_nonempty_str(w.class_name),
        activity_name: raw_nonempty_str(w.activity_name),
        service: api.service.0.and_then(|s| raw_nonempty_str(s.name)),
        product: metadata.product.0.and_then(|p| raw_nonempty_str(p.name)),
        user_type: raw_nonempty_str(user.kind),
        status_detail,
        region: w.cloud.0.and_then(|c| raw_nonempty_str(c.region)),
    });

    Ok(AccessEvent {
        format: Format::Ocsf,
        event_id,
        time_ms,
        agent_id,
        agent_kind: Some(Cow::Borrowed(agent_kind)),
        action,
        resource,
        outcome,
        session_id: actor.session.0.and_then(|s| raw_nonempty_str(s.uid)),
        source_ip: w.src_endpoint.0.and_then(|e| raw_nonempty_str(e.ip)),
        bytes: None,
        grant: None,
        intent: None,
        attributes,
        tool: None,
    })
}

/// Whether a status text says the access was refused.
fn mentions_denial(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    ["denied", "unauthori", "not authori", "forbidden"]
        .iter()
        .any(|w| lower.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = r#"{"class_uid":6003,"class_name":"API Activity","category_uid":6,"activity_id":2,"activity_name":"Read","time":1714564800000,"severity_id":1,"status_id":1,"status":"Success","metadata":{"uid":"ocsf-evt-1","version":"1.1.0","product":{"name":"Agent Gateway","vendor_name":"Example"}},"actor":{"user":{"uid":"agent-42","name":"report-bot","type":"System"},"session":{"uid":"sess-9"}},"api":{"operation":"GetObject","service":{"name":"s3"}},"resources":[{"uid":"arn:aws:s3:::reports/q1.pdf","name":"q1.pdf","type":"object"}],"src_endpoint":{"ip":"10.1.2.3"},"dst_endpoint":{"hostname":"s3.amazonaws.com"},"cloud":{"region":"eu-west-1","provider":"AWS"}}"#;

    #[test]
    fn api_activity() {
        let ev = decode(API).unwrap();
        assert_eq!(ev.format, Format::Ocsf);
        assert_eq!(ev.event_id, "ocsf-evt-1");
        assert_eq!(ev.time_ms, 1_714_564_800_000);
        assert_eq!(ev.agent_id, "agent-42");
        assert_eq!(ev.agent_kind.as_deref(), Some("ocsf_user"));
        assert_eq!(ev.action, "GetObject");
        assert_eq!(ev.resource, "arn:aws:s3:::reports/q1.pdf");
        assert_eq!(ev.outcome, Outcome::Success);
        assert_eq!(ev.session_id.as_deref(), Some("sess-9"));
        assert_eq!(ev.source_ip.as_deref(), Some("10.1.2.3"));
        let attrs: serde_json::Value = serde_json::from_str(ev.attributes.unwrap().get()).unwrap();
        assert_eq!(attrs["class_uid"], 6003);
        assert_eq!(attrs["service"], "s3");
        assert_eq!(attrs["product"], "Agent Gateway");
        assert_eq!(attrs["region"], "eu-west-1");
    }

    #[test]
    fn authentication_without_api_and_failures() {
        let rec = r#"{"class_uid":3002,"activity_id":1,"activity_name":"Logon","time":"2024-05-01T12:00:00Z","status_id":2,"status":"Failure","status_detail":"User is not authorized","actor":{"app_name":"payments-worker"},"dst_endpoint":{"ip":"10.0.0.9"}}"#;
        let ev = decode(rec).unwrap();
        assert_eq!(ev.action, "auth:Logon");
        assert_eq!(ev.agent_id, "payments-worker");
        assert_eq!(ev.agent_kind.as_deref(), Some("ocsf_app"));
        assert_eq!(ev.outcome, Outcome::Denied);
        assert_eq!(ev.resource, "10.0.0.9");
        assert!(ev.event_id.starts_with("ocsf-"));
        assert_eq!(ev.event_id.len(), 5 + 16);
        // Stable: the same bytes give the same id.
        assert_eq!(decode(rec).unwrap().event_id, ev.event_id);

        let rec = r#"{"class_uid":3002,"activity_id":3,"time":1714564800000,"status_id":2,"status_detail":"timeout","actor":{"process":{"name":"cron"}}}"#;
        let ev = decode(rec).unwrap();
        assert_eq!(ev.action, "auth:3");
        assert_eq!(ev.agent_id, "cron");
        assert_eq!(ev.outcome, Outcome::Error);
        assert_eq!(ev.resource, "");
    }

    #[test]
    fn rejects() {
        let missing_actor = r#"{"class_uid":6003,"time":1,"api":{"operation":"x"}}"#;
        assert_eq!(
            decode(missing_actor).unwrap_err(),
            RejectReason::MissingField {
                format: "ocsf",
                field: "actor.user.uid"
            }
        );
        let missing_time =
            r#"{"class_uid":6003,"actor":{"user":{"uid":"a"}},"api":{"operation":"x"}}"#;
        assert_eq!(
            decode(missing_time).unwrap_err(),
            RejectReason::MissingField {
                format: "ocsf",
                field: "time"
            }
        );
        let no_action = r#"{"class_uid":6003,"time":1,"actor":{"user":{"uid":"a"}}}"#;
        assert_eq!(
            decode(no_action).unwrap_err(),
            RejectReason::MissingField {
                format: "ocsf",
                field: "api.operation"
            }
        );
        let bad_class =
            r#"{"class_uid":"six","time":1,"actor":{"user":{"uid":"a"}},"api":{"operation":"x"}}"#;
        assert_eq!(decode(bad_class).unwrap_err().code(), "invalid_field");
        let bad_actor = r#"{"class_uid":6003,"time":1,"actor":"bob","api":{"operation":"x"}}"#;
        assert_eq!(decode(bad_actor).unwrap_err().code(), "invalid_field");
        let old = r#"{"class_uid":6003,"time":-1000,"actor":{"user":{"uid":"a"}},"api":{"operation":"x"}}"#;
        assert_eq!(decode(old).unwrap_err().code(), "time_out_of_range");
    }
}
