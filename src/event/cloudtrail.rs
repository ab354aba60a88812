//! AWS CloudTrail records.
//!
//! Mapping:
//! - `agent_id` from `userIdentity`: the role ARN (`sessionContext.sessionIssuer.arn`) for an
//!   assumed role, with the role session name as `session_id`; the ARN for IAM users and root;
//!   `invokedBy` for AWS services; otherwise the ARN, `principalId` or `accountId`.
//! - `action` = `eventSource:eventName`, e.g. `s3.amazonaws.com:GetObject`.
//! - `resource`: the first `resources[].ARN`; else `s3://bucket/key` from `requestParameters`;
//!   else a well-known identifier parameter as `aws:<service>:<param>/<value>` (ARN values are
//!   kept as they are), or the first id of an EC2-style set (`instancesSet.items[0].instanceId`
//!   gives `aws:ec2:instanceId/i-...`); else empty.
//! - `outcome`: no `errorCode` is success; access-denied style codes are denied; any other code
//!   is an error.
//! - `time` from `eventTime` (or `@timestamp`, as some exports carry it).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::native::check_len;
use super::wire::{self, Items, Obj, RawMap, nested, nested_lenient, raw_nonempty_str, raw_str};
use super::{AccessEvent, Format, Outcome, RejectReason, time};

const FORMAT: &str = "cloudtrail";

const FIELDS: &[&str] = &[
    "eventVersion",
    "userIdentity",
    "eventTime",
    "@timestamp",
    "eventSource",
    "eventName",
    "eventID",
    "sourceIPAddress",
    "userAgent",
    "awsRegion",
    "recipientAccountId",
    "errorCode",
    "errorMessage",
    "eventType",
    "resources",
    "requestParameters",
    "additionalEventData",
];

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Wire<'a> {
    #[serde(borrow, rename = "eventVersion")]
    event_version: Option<&'a RawValue>,
    #[serde(borrow, rename = "userIdentity")]
    user_identity: Option<&'a RawValue>,
    #[serde(borrow, rename = "eventTime")]
    event_time: Option<&'a RawValue>,
    #[serde(borrow, rename = "@timestamp")]
    at_timestamp: Option<&'a RawValue>,
    #[serde(borrow, rename = "eventSource")]
    event_source: Option<&'a RawValue>,
    #[serde(borrow, rename = "eventName")]
    event_name: Option<&'a RawValue>,
    #[serde(borrow, rename = "eventID")]
    event_id: Option<&'a RawValue>,
    #[serde(borrow, rename = "sourceIPAddress")]
    source_ip: Option<&'a RawValue>,
    #[serde(borrow, rename = "userAgent")]
    user_agent: Option<&'a RawValue>,
    #[serde(borrow, rename = "awsRegion")]
    aws_region: Option<&'a RawValue>,
    #[serde(borrow, rename = "recipientAccountId")]
    recipient_account_id: Option<&'a RawValue>,
    #[serde(borrow, rename = "errorCode")]
    error_code: Option<&'a RawValue>,
    #[serde(borrow, rename = "errorMessage")]
    error_message: Option<&'a RawValue>,
    #[serde(borrow, rename = "eventType")]
    event_type: Option<&'a RawValue>,
    #[serde(borrow)]
    resources: Items<Obj<Resource<'a>>>,
    #[serde(borrow, rename = "requestParameters")]
    request_parameters: Option<&'a RawValue>,
    #[serde(borrow, rename = "additionalEventData")]
    additional_event_data: Obj<AdditionalEventData<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UserIdentity<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    arn: Option<&'a RawValue>,
    #[serde(borrow, rename = "principalId")]
    principal_id: Option<&'a RawValue>,
    #[serde(borrow, rename = "accountId")]
    account_id: Option<&'a RawValue>,
    #[serde(borrow, rename = "invokedBy")]
    invoked_by: Option<&'a RawValue>,
    #[serde(borrow, rename = "accessKeyId")]
    access_key_id: Option<&'a RawValue>,
    #[serde(borrow, rename = "sessionContext")]
    session_context: Obj<SessionContext<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SessionContext<'a> {
    #[serde(borrow, rename = "sessionIssuer")]
    session_issuer: Obj<SessionIssuer<'a>>,
}

#[derive(Debug, Deserialize)]
struct SessionIssuer<'a> {
    #[serde(borrow)]
    arn: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
struct Resource<'a> {
    #[serde(borrow, rename = "ARN")]
    arn: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
struct AdditionalEventData<'a> {
    #[serde(borrow, rename = "bytesTransferredOut")]
    bytes_out: Option<&'a RawValue>,
}

/// Attributes kept with a CloudTrail event.
#[derive(Serialize)]
struct Attributes<'a> {
    #[serde(rename = "userAgent", skip_serializing_if = "Option::is_none")]
    user_agent: Option<Cow<'a, str>>,
    #[serde(rename = "awsRegion", skip_serializing_if = "Option::is_none")]
    aws_region: Option<Cow<'a, str>>,
    #[serde(rename = "recipientAccountId", skip_serializing_if = "Option::is_none")]
    recipient_account_id: Option<Cow<'a, str>>,
    #[serde(rename = "errorCode", skip_serializing_if = "Option::is_none")]
    error_code: Option<Cow<'a, str>>,
    #[serde(rename = "errorMessage", skip_serializing_if = "Option::is_none")]
    error_message: Option<Cow<'a, str>>,
    #[serde(rename = "eventType", skip_serializing_if = "Option::is_none")]
    event_type: Option<Cow<'a, str>>,
    #[serde(rename = "accessKeyId", skip_serializing_if = "Option::is_none")]
    access_key_id: Option<Cow<'a, str>>,
}

/// Decodes one CloudTrail record (a JSON object).
pub fn decode(record: &str) -> Result<AccessEvent<'_>, RejectReason> {
    let w: Wire<'_> =
        serde_json::from_str(record).map_err(|e| wire::classify(&e, FORMAT, FIELDS))?;
    if wire::is_null(w.event_version) {
        return Err(RejectReason::MissingField {
            format: FORMAT,
            field: "eventVersion",
        });
    }
    let ui: UserIdentity<'_> =
        nested(w.user_identity, FORMAT, "userIdentity")?.ok_or(RejectReason::MissingField {
            format: FORMAT,
            field: "userIdentity",
        })?;
    let event_id = wire::required_str(w.event_id, FORMAT, "eventID")?;
    check_len(&event_id, FORMAT, "eventID", 1, 256)?;
    let time_ms = event_time(&w)?;
    let source = wire::required_str(w.event_source, FORMAT, "eventSource")?;
    let name = wire::required_str(w.event_name, FORMAT, "eventName")?;
    let action = format!("{source}:{name}");
    check_len(&action, FORMAT, "eventName", 1, 256)?;
    let agent = identity(&ui)?;
    check_len(&agent.id, FORMAT, "userIdentity", 1, 512)?;
    let resource = resource(&w, &source);
    check_len(&resource, FORMAT, "resources", 0, 4096)?;
    let error_code = raw_nonempty_str(w.error_code);
    let outcome = error_code
        .as_deref()
        .map_or(Outcome::Success, outcome_of_error);
    let bytes = w
        .additional_event_data
        .0
        .as_ref()
        .and_then(|a| wire::raw_u64(a.bytes_out));
    let attributes = wire::owned_raw(&Attributes {
        user_agent: raw_nonempty_str(w.user_agent),
        aws_region: raw_nonempty_str(w.aws_region),
        recipient_account_id: raw_nonempty_str(w.recipient_account_id),
        error_code,
        error_message: raw_nonempty_str(w.error_message),
        event_type: raw_nonempty_str(w.event_type),
        access_key_id: raw_nonempty_str(ui.access_key_id),
    });
    Ok(AccessEvent {
        format: Format::Cloudtrail,
        event_id,
        time_ms,
        agent_id: agent.id,
        agent_kind: Some(Cow::Borrowed(agent.kind)),
        action: Cow::Owned(action),
        resource,
        outcome,
        session_id: agent.session,
        source_ip: raw_nonempty_str(w.source_ip),
        bytes,
        grant: None,
        intent: None,
        attributes,
        tool: None,
    })
}

fn event_time(w: &Wire<'_>) -> Result<i64, RejectReason> {
    let (raw, field) = if wire::is_null(w.event_time) && !wire::is_null(w.at_timestamp) {
        (w.at_timestamp, "@timestamp")
    } else {
        (w.event_time, "eventTime")
    };
    match raw {
        Some(r) if !wire::is_null(raw) => time::from_loose(&wire::raw_loose(r), FORMAT, field),
        _ => Err(RejectReason::MissingField {
            format: FORMAT,
            field: "eventTime",
        }),
    }
}

struct Agent<'a> {
    id: Cow<'a, str>,
    kind: &'static str,
    session: Option<Cow<'a, str>>,
}

/// The `agent_kind` of a `userIdentity.type`.
fn kind_name(t: &str) -> &'static str {
    match t {
        "AssumedRole" => "aws_assumed_role",
        "IAMUser" => "aws_iam_user",
        "Root" => "aws_root",
        "AWSService" => "aws_service",
        "FederatedUser" => "aws_federated_user",
        "AWSAccount" => "aws_account",
        "SAMLUser" => "aws_saml_user",
        "WebIdentityUser" => "aws_web_identity_user",
        "IdentityCenterUser" => "aws_identity_center_user",
        "Role" => "aws_role",
        _ => "aws_other",
    }
}

fn identity<'a>(ui: &UserIdentity<'a>) -> Result<Agent<'a>, RejectReason> {
    let t = raw_nonempty_str(ui.kind);
    let arn = raw_nonempty_str(ui.arn);
    let invoked_by = raw_nonempty_str(ui.invoked_by);
    let fallback = || {
        arn.clone()
            .or_else(|| raw_nonempty_str(ui.principal_id))
            .or_else(|| raw_nonempty_str(ui.account_id))
            .ok_or(RejectReason::MissingField {
                format: FORMAT,
                field: "userIdentity.arn",
            })
    };
    match t.as_deref() {
        Some("AssumedRole") => {
            let issuer = ui
                .session_context
                .0
                .as_ref()
                .and_then(|c| c.session_issuer.0.as_ref())
                .and_then(|i| raw_nonempty_str(i.arn));
            let session = match &arn {
                Some(Cow::Borrowed(b)) => {
                    let b: &'a str = b;
                    role_session_name(b).map(Cow::Borrowed)
                }
                Some(Cow::Owned(o)) => role_session_name(o).map(|s| Cow::Owned(s.to_owned())),
                None => None,
            };
            let id = match issuer {
                Some(i) => i,
                None => match arn.as_deref().and_then(role_arn_of_session) {
                    Some(role) => Cow::Owned(role),
                    None => fallback()?,
                },
            };
            Ok(Agent {
                id,
                kind: "aws_assumed_role",
                session,
            })
        }
        Some("AWSService") => Ok(Agent {
            id: match invoked_by {
                Some(i) => i,
                None => fallback()?,
            },
            kind: "aws_service",
            session: None,
        }),
        None if arn.is_none() && invoked_by.is_some() => Ok(Agent {
            // Present, by the guard above.
            id: invoked_by.unwrap_or_default(),
            kind: "aws_service",
            session: None,
        }),
        other => Ok(Agent {
            id: fallback()?,
            kind: other.map_or("aws_other", kind_name),
            session: None,
        }),
    }
}

/// The session name of `arn:aws:sts::ACCT:assumed-role/ROLE/SESSION`.
fn role_session_name(arn: &str) -> Option<&str> {
    let (_, res) = arn.split_once(":assumed-role/")?;
    let (_, session) = res.rsplit_once('/')?;
    (!session.is_empty()).then_some(session)
}

/// `arn:aws:iam::ACCT:role/ROLE` from an assumed-role session ARN (the role path is unknown).
fn role_arn_of_session(arn: &str) -> Option<String> {
    let (head, res) = arn.split_once(":assumed-role/")?;
    let (role, _) = res.rsplit_once('/')?;
    let mut parts = head.splitn(5, ':');
    let (_arn, partition, _sts, _region, account) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    Some(format!("arn:{partition}:iam::{account}:role/{role}"))
}

/// Identifier parameters, in order of preference, used when a record names no resource ARN.
const ID_PARAMS: &[&str] = &[
    "instanceId",
    "instanceIds",
    "roleName",
    "userName",
    "groupName",
    "policyArn",
    "functionName",
    "secretId",
    "keyId",
    "name",
    "names",
    "trailName",
    "logGroupName",
    "dBInstanceIdentifier",
    "dBClusterIdentifier",
    "dBSnapshotIdentifier",
    "snapshotId",
    "imageId",
    "volumeId",
    "vpcId",
    "subnetId",
    "groupId",
    "routeTableId",
    "clusterName",
    "repositoryName",
    "tableName",
    "queueUrl",
    "topicArn",
    "stackName",
    "instanceProfileName",
    "roleArn",
    "modelId",
    "resourceArn",
    "resourceId",
    "arn",
    "bucket",
    "internetGatewayId",
    "networkInterfaceId",
    "natGatewayId",
    "allocationId",
    "associationId",
    "resourceName",
    "trailNameList",
    "resourceIdList",
    "configurationARN",
];

fn resource<'a>(w: &Wire<'a>, event_source: &str) -> Cow<'a, str> {
    if let Some(arn) = w
        .resources
        .0
        .iter()
        .filter_map(|r| r.0.as_ref())
        .find_map(|r| raw_nonempty_str(r.arn))
    {
        return arn;
    }
    let Some(params) = nested_lenient::<RawMap<'a>>(w.request_parameters) else {
        return Cow::Borrowed("");
    };
    if let Some(bucket) = raw_nonempty_str(params.get("bucketName")) {
        return Cow::Owned(match raw_nonempty_str(params.get("key")) {
            Some(key) => format!("s3://{bucket}/{key}"),
            None => format!("s3://{bucket}"),
        });
    }
    let service = event_source.split('.').next().unwrap_or(event_source);
    for &param in ID_PARAMS {
        let raw = params.get(param);
        let value = match raw_str(raw) {
            Some(s) => Some(s),
            None => wire::raw_first(raw).and_then(|first| raw_str(Some(first))),
        };
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            if v.starts_with("arn:") {
                return v;
            }
            return Cow::Owned(format!("aws:{service}:{param}/{v}"));
        }
    }
    if let Some((key, id)) = id_set(&params) {
        return Cow::Owned(format!("aws:{service}:{key}/{id}"));
    }
    Cow::Borrowed("")
}

/// The first identifier in an EC2-style set parameter, e.g. `instancesSet.items[0].instanceId`
/// or `vpcSet.items[0].vpcId`: the first member of the first item whose name ends in `Id`.
fn id_set<'a>(params: &RawMap<'a>) -> Option<(Cow<'a, str>, Cow<'a, str>)> {
    params
        .0
        .iter()
        .filter(|(key, _)| {
            key.ends_with("Set") && key != "filterSet" && !key.starts_with("tagSpecification")
        })
        .find_map(|(_, raw)| {
            let set = nested_lenient::<RawMap<'a>>(Some(raw))?;
            let first = wire::raw_first(set.get("items").or_else(|| set.get("item")))?;
            let item = nested_lenient::<RawMap<'a>>(Some(first))?;
            item.0
                .into_iter()
                .filter(|(k, _)| k.ends_with("Id"))
                .find_map(|(k, v)| raw_nonempty_str(Some(v)).map(|v| (k, v)))
        })
}

/// The outcome of a record with this `errorCode`.
pub(crate) fn outcome_of_error(code: &str) -> Outcome {
    let lower = code.to_ascii_lowercase();
    if lower.contains("accessdenied")
        || lower.contains("unauthorized")
        || lower.contains("forbidden")
    {
        Outcome::Denied
    } else {
        Outcome::Error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASSUMED_ROLE_GET: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROATFQR7NSC:i-0dbc91f429e48eeed","arn":"arn:aws:sts::123837392027:assumed-role/stratus-red-team-ec2-steal-credentials-role/i-0dbc91f429e48eeed","accountId":"123837392027","accessKeyId":"ASIATFQR7NSCV","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROATFQR7NSC","arn":"arn:aws:iam::123837392027:role/stratus-red-team-ec2-steal-credentials-role","accountId":"123837392027","userName":"stratus-red-team-ec2-steal-credentials-role"},"attributes":{"creationDate":"2023-07-10T11:55:01Z","mfaAuthenticated":"false"},"ec2RoleDelivery":"2.0"}},"eventTime":"2023-07-10T12:01:02Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","sourceIPAddress":"192.168.10.20","userAgent":"aws-cli/2.0","requestParameters":{"bucketName":"secret-bucket","key":"data/payroll.csv","Host":"secret-bucket.s3.amazonaws.com"},"responseElements":null,"additionalEventData":{"bytesTransferredIn":0,"bytesTransferredOut":2048},"requestID":"X","eventID":"11111111-2222-3333-4444-555555555555","readOnly":true,"eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"123837392027"}"#;

    #[test]
    fn assumed_role_maps_to_role_and_session() {
        let ev = decode(ASSUMED_ROLE_GET).unwrap();
        assert_eq!(
            ev.agent_id,
            "arn:aws:iam::123837392027:role/stratus-red-team-ec2-steal-credentials-role"
        );
        assert_eq!(ev.agent_kind.as_deref(), Some("aws_assumed_role"));
        assert_eq!(ev.session_id.as_deref(), Some("i-0dbc91f429e48eeed"));
        assert_eq!(ev.action, "s3.amazonaws.com:GetObject");
        assert_eq!(ev.resource, "s3://secret-bucket/data/payroll.csv");
        assert_eq!(ev.outcome, Outcome::Success);
        assert_eq!(ev.source_ip.as_deref(), Some("192.168.10.20"));
        assert_eq!(ev.bytes, Some(2048));
        assert_eq!(ev.event_id, "11111111-2222-3333-4444-555555555555");
        assert_eq!(ev.time_ms, 1_688_990_462_000);
        let attrs: serde_json::Value = serde_json::from_str(ev.attributes.unwrap().get()).unwrap();
        assert_eq!(attrs["userAgent"], "aws-cli/2.0");
        assert_eq!(attrs["awsRegion"], "us-east-1");
        assert_eq!(attrs["recipientAccountId"], "123837392027");
        assert_eq!(attrs["eventType"], "AwsApiCall");
        assert!(attrs.get("errorCode").is_none());
    }

    #[test]
    fn identity_types() {
        let rec = |ui: &str, extra: &str| {
            format!(
                r#"{{"eventVersion":"1.08","userIdentity":{ui},"eventTime":"2023-07-10T12:00:00Z","eventSource":"iam.amazonaws.com","eventName":"GetUser","eventID":"e1","sourceIPAddress":"AWS Internal"{extra}}}"#
            )
        };
        let r = rec(
            r#"{"type":"IAMUser","arn":"arn:aws:iam::1:user/pedro","principalId":"AID"}"#,
            "",
        );
        let ev = decode(&r).unwrap();
        assert_eq!(ev.agent_id, "arn:aws:iam::1:user/pedro");
        assert_eq!(ev.agent_kind.as_deref(), Some("aws_iam_user"));
        assert_eq!(ev.source_ip.as_deref(), Some("AWS Internal"));

        let r = rec(r#"{"type":"Root","arn":"arn:aws:iam::1:root"}"#, "");
        let ev = decode(&r).unwrap();
        assert_eq!(
            (ev.agent_id.as_ref(), ev.agent_kind.as_deref()),
            ("arn:aws:iam::1:root", Some("aws_root"))
        );

        let r = rec(
            r#"{"type":"AWSService","invokedBy":"lambda.amazonaws.com"}"#,
            "",
        );
        let ev = decode(&r).unwrap();
        assert_eq!(
            (ev.agent_id.as_ref(), ev.agent_kind.as_deref()),
            ("lambda.amazonaws.com", Some("aws_service"))
        );

        let r = rec(
            r#"{"accountId":"1","invokedBy":"secretsmanager.amazonaws.com"}"#,
            "",
        );
        assert_eq!(decode(&r).unwrap().agent_id, "secretsmanager.amazonaws.com");

        let r = rec(
            r#"{"type":"FederatedUser","arn":"arn:aws:sts::1:federated-user/bob","principalId":"1:bob"}"#,
            "",
        );
        let ev = decode(&r).unwrap();
        assert_eq!(
            (ev.agent_id.as_ref(), ev.agent_kind.as_deref()),
            (
                "arn:aws:sts::1:federated-user/bob",
                Some("aws_federated_user")
            )
        );

        let r = rec(r#"{"type":"SomethingNew","principalId":"P1"}"#, "");
        assert_eq!(decode(&r).unwrap().agent_id, "P1");
        let r = rec(r#"{"type":"SomethingNew","accountId":"123"}"#, "");
        assert_eq!(decode(&r).unwrap().agent_id, "123");

        // An assumed role without a session issuer: the role ARN is derived from the session ARN.
        let r = rec(
            r#"{"type":"AssumedRole","arn":"arn:aws:sts::9:assumed-role/R/sess"}"#,
            "",
        );
        let ev = decode(&r).unwrap();
        assert_eq!(ev.agent_id, "arn:aws:iam::9:role/R");
        assert_eq!(ev.session_id.as_deref(), Some("sess"));

        let r = rec(r#"{"type":"IAMUser"}"#, "");
        assert_eq!(
            decode(&r).unwrap_err(),
            RejectReason::MissingField {
                format: "cloudtrail",
                field: "userIdentity.arn"
            }
        );
        let r = rec(r#""root""#, "");
        assert_eq!(decode(&r).unwrap_err().code(), "invalid_field");
    }

    #[test]
    fn resources_and_outcomes() {
        let rec = |src: &str, params: &str, extra: &str| {
            format!(
                r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/u"}},"eventTime":"2024-01-01T00:00:00Z","eventSource":"{src}","eventName":"Op","eventID":"e","requestParameters":{params}{extra}}}"#
            )
        };
        let res =
            |src: &str, params: &str| decode(&rec(src, params, "")).unwrap().resource.into_owned();
        assert_eq!(
            res("iam.amazonaws.com", r#"{"roleName":"admin"}"#),
            "aws:iam:roleName/admin"
        );
        assert_eq!(
            res(
                "ec2.amazonaws.com",
                r#"{"instancesSet":{"items":[{"instanceId":"i-1"},{"instanceId":"i-2"}]},"filterSet":{}}"#
            ),
            "aws:ec2:instanceId/i-1"
        );
        assert_eq!(
            res(
                "secretsmanager.amazonaws.com",
                r#"{"secretId":"arn:aws:secretsmanager:us-east-1:1:secret:x"}"#
            ),
            "arn:aws:secretsmanager:us-east-1:1:secret:x"
        );
        assert_eq!(
            res("ssm.amazonaws.com", r#"{"names":["/p/a","/p/b"]}"#),
            "aws:ssm:names//p/a"
        );
        assert_eq!(res("s3.amazonaws.com", r#"{"bucketName":"b"}"#), "s3://b");
        assert_eq!(res("s3.amazonaws.com", r#"{"Host":"x"}"#), "");
        assert_eq!(res("s3.amazonaws.com", "null"), "");
        let r = rec(
            "kms.amazonaws.com",
            r#"{"keyId":"k"}"#,
            r#","resources":[{"accountId":"1","type":"AWS::KMS::Key","ARN":"arn:aws:kms:us-east-1:1:key/k"}],"errorCode":"AccessDenied","errorMessage":"no""#,
        );
        let ev = decode(&r).unwrap();
        assert_eq!(ev.resource, "arn:aws:kms:us-east-1:1:key/k");
        assert_eq!(ev.outcome, Outcome::Denied);
        let attrs: serde_json::Value = serde_json::from_str(ev.attributes.unwrap().get()).unwrap();
        assert_eq!(attrs["errorCode"], "AccessDenied");
        assert_eq!(attrs["errorMessage"], "no");

        for (code, want) in [
            ("AccessDenied", Outcome::Denied),
            ("AccessDeniedException", Outcome::Denied),
            ("Client.UnauthorizedOperation", Outcome::Denied),
            ("UnauthorizedOperation", Outcome::Denied),
            ("Forbidden", Outcome::Denied),
            ("ThrottlingException", Outcome::Error),
            ("NoSuchBucketPolicy", Outcome::Error),
        ] {
            assert_eq!(outcome_of_error(code), want, "{code}");
        }
    }

    #[test]
    fn required_fields() {
        let full: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(ASSUMED_ROLE_GET).unwrap();
        for field in [
            "eventVersion",
            "userIdentity",
            "eventTime",
            "eventSource",
            "eventName",
            "eventID",
        ] {
            let mut m = full.clone();
            m.remove(field);
            match decode(&serde_json::to_string(&m).unwrap()).unwrap_err() {
                RejectReason::MissingField { field: f, format } => {
                    assert_eq!((f, format), (field, "cloudtrail"))
                }
                other => panic!("{field}: {other:?}"),
            }
        }
        let mut m = full.clone();
        m.insert("eventTime".into(), "9999-12-31T00:00:00Z".into());
        assert_eq!(
            decode(&serde_json::to_string(&m).unwrap())
                .unwrap_err()
                .code(),
            "time_out_of_range"
        );
        let mut m = full.clone();
        m.insert("eventName".into(), 5.into());
        assert_eq!(
            decode(&serde_json::to_string(&m).unwrap())
                .unwrap_err()
                .code(),
            "invalid_field"
        );
        // Exports that carry `@timestamp` instead of `eventTime`.
        let mut m = full;
        m.remove("eventTime");
        m.insert("@timestamp".into(), "2020-09-14T00:44:23.000Z".into());
        assert_eq!(
            decode(&serde_json::to_string(&m).unwrap()).unwrap().time_ms,
            1_600_044_263_000
        );
    }
}
