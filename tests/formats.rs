//! The format fixtures under `fixtures/formats/`, read with the source reader and decoded:
//! every line gives the expected event or the expected rejection.

use std::path::PathBuf;

use cinch::drive::input::{InputSpec, for_each_message};
use cinch::event::{DecodeConfig, Decoder, Format, Outcome, RejectReason};
use cinch::vocab::FormatChoice;

/// What one record turned into, owned so that it outlives the read buffer. (A few hundred of
/// them per test: the variants' sizes do not matter.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
enum Got {
    Event {
        format: Format,
        event_id: String,
        time_ms: i64,
        agent_id: String,
        agent_kind: Option<String>,
        action: String,
        resource: String,
        outcome: Outcome,
        session_id: Option<String>,
        source_ip: Option<String>,
        bytes: Option<u64>,
        attributes: Option<serde_json::Value>,
    },
    Rejected {
        reason: RejectReason,
    },
}

impl Got {
    fn code(&self) -> &'static str {
        match self {
            Got::Event { .. } => "ok",
            Got::Rejected { reason } => reason.code(),
        }
    }
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/formats")
        .join(name)
}

fn read(name: &str, format: FormatChoice) -> Vec<(u64, Got)> {
    let decoder = Decoder::new(DecodeConfig {
        format,
        ..DecodeConfig::default()
    });
    let mut out = Vec::new();
    for_each_message(&InputSpec::file(fixture(name)), |msg| {
        decoder.decode_input(&msg, &mut |d| {
            let got = match d {
                Ok(ev) => Got::Event {
                    format: ev.format,
                    event_id: ev.event_id.into_owned(),
                    time_ms: ev.time_ms,
                    agent_id: ev.agent_id.into_owned(),
                    agent_kind: ev.agent_kind.map(|k| k.into_owned()),
                    action: ev.action.into_owned(),
                    resource: ev.resource.into_owned(),
                    outcome: ev.outcome,
                    session_id: ev.session_id.map(|s| s.into_owned()),
                    source_ip: ev.source_ip.map(|s| s.into_owned()),
                    bytes: ev.bytes,
                    attributes: ev
                        .attributes
                        .map(|a| serde_json::from_str(a.get()).unwrap()),
                },
                Err(rej) => Got::Rejected { reason: rej.reason },
            };
            out.push((msg.line, got));
        });
    })
    .unwrap();
    out
}

fn codes(got: &[(u64, Got)]) -> Vec<(u64, &'static str)> {
    got.iter().map(|(l, g)| (*l, g.code())).collect()
}

fn event(got: &[(u64, Got)], line: u64) -> &Got {
    &got.iter().find(|(l, _)| *l == line).unwrap().1
}

fn field_of(got: &[(u64, Got)], line: u64) -> &'static str {
    match event(got, line) {
        Got::Rejected {
            reason:
                RejectReason::MissingField { field, .. } | RejectReason::InvalidField { field, .. },
        } => field,
        other => panic!("line {line}: {other:?}"),
    }
}

#[test]
fn native_fixture() {
    let got = read("native.jsonl", FormatChoice::Auto);
    assert_eq!(
        codes(&got),
        [
            (1, "ok"),
            (2, "ok"),
            (3, "ok"),
            (4, "ok"),
            (5, "ok"),
            (7, "ok"),
            (8, "missing_field"),
            (9, "time_out_of_range"),
            (10, "invalid_field"),
            (11, "not_json"),
            (12, "invalid_field"),
            (13, "invalid_field"),
            (14, "time_out_of_range"),
        ]
    );
    assert_eq!(
        *event(&got, 1),
        Got::Event {
            format: Format::Native,
            event_id: "n-0001".into(),
            time_ms: 1_714_554_000_000,
            agent_id: "agent:report-writer".into(),
            agent_kind: Some("ai_agent".into()),
            action: "s3:GetObject".into(),
            resource: "s3://finance-reports/2024/q1.pdf".into(),
            outcome: Outcome::Success,
            session_id: Some("task-8812".into()),
            source_ip: Some("10.20.0.14".into()),
            bytes: Some(482_113),
            attributes: Some(serde_json::json!({"model": "gpt-x", "tool": "s3_reader"})),
        }
    );
    match event(&got, 3) {
        Got::Event {
            time_ms, outcome, ..
        } => {
            // 09:02:00.125+02:00 is 07:02:00.125Z.
            assert_eq!(*time_ms, 1_714_546_920_125);
            assert_eq!(*outcome, Outcome::Denied);
        }
        other => panic!("{other:?}"),
    }
    match event(&got, 5) {
        Got::Event {
            agent_id,
            resource,
            outcome,
            ..
        } => {
            assert_eq!(agent_id, "agent:été");
            assert_eq!(resource, "s3://drop/\"quoted\"");
            assert_eq!(*outcome, Outcome::Error);
        }
        other => panic!("{other:?}"),
    }
    match event(&got, 7) {
        Got::Event { source_ip, .. } => assert_eq!(source_ip.as_deref(), Some("999.1.1.01")),
        other => panic!("{other:?}"),
    }
    assert_eq!(field_of(&got, 8), "agent_id");
    assert_eq!(field_of(&got, 10), "bytes");
    assert_eq!(field_of(&got, 12), "outcome");
    assert_eq!(field_of(&got, 13), "attributes");

    // Forcing the native format changes nothing; forcing another rejects every record.
    assert_eq!(read("native.jsonl", FormatChoice::Native), got);
    let as_ocsf = read("native.jsonl", FormatChoice::Ocsf);
    assert_eq!(as_ocsf.len(), got.len());
    assert!(as_ocsf.iter().all(|(_, g)| g.code() != "ok"));
}

#[test]
fn ocsf_fixture() {
    let got = read("ocsf.jsonl", FormatChoice::Auto);
    assert_eq!(
        codes(&got),
        [
            (1, "ok"),
            (2, "ok"),
            (3, "ok"),
            (4, "ok"),
            (5, "ok"),
            (6, "missing_field"),
            (7, "time_out_of_range"),
            (8, "not_json"),
            (9, "invalid_field"),
        ]
    );
    match event(&got, 1) {
        Got::Event {
            format,
            event_id,
            agent_id,
            action,
            resource,
            session_id,
            source_ip,
            outcome,
            ..
        } => {
            assert_eq!(*format, Format::Ocsf);
            assert_eq!(event_id, "9b1f3c2e-0001");
            assert_eq!(agent_id, "agent-reporter-7");
            assert_eq!(action, "GetObject");
            assert_eq!(resource, "arn:aws:s3:::finance-reports/2024/q1.pdf");
            assert_eq!(session_id.as_deref(), Some("run-551"));
            assert_eq!(source_ip.as_deref(), Some("10.20.0.14"));
            assert_eq!(*outcome, Outcome::Success);
        }
        other => panic!("{other:?}"),
    }
    match event(&got, 2) {
        Got::Event {
            agent_id,
            outcome,
            resource,
            ..
        } => {
            assert_eq!(agent_id, "deploy-bot");
            assert_eq!(*outcome, Outcome::Denied);
            assert_eq!(resource, "prod-bucket");
        }
        other => panic!("{other:?}"),
    }
    match event(&got, 3) {
        Got::Event {
            agent_id,
            action,
            outcome,
            resource,
            event_id,
            ..
        } => {
            assert_eq!(agent_id, "ci-runner");
            assert_eq!(action, "auth:Logon");
            assert_eq!(*outcome, Outcome::Error);
            assert_eq!(resource, "vault.internal");
            assert!(event_id.starts_with("ocsf-"));
        }
        other => panic!("{other:?}"),
    }
    match event(&got, 4) {
        Got::Event {
            agent_id,
            action,
            time_ms,
            ..
        } => {
            assert_eq!(agent_id, "sshd");
            assert_eq!(action, "auth:1");
            assert_eq!(*time_ms, 1_714_554_180_500);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(field_of(&got, 6), "actor.user.uid");
    assert_eq!(field_of(&got, 9), "class_uid");
}

#[test]
fn cloudtrail_fixture() {
    let got = read("cloudtrail.jsonl", FormatChoice::Auto);
    assert_eq!(
        codes(&got),
        [
            (1, "ok"),
            (2, "ok"),
            (3, "ok"),
            (4, "ok"),
            (5, "ok"),
            (5, "ok"),
            (6, "ok"),
            (6, "ok"),
            (7, "missing_field"),
            (8, "invalid_field"),
            (9, "time_out_of_range"),
            (10, "not_json"),
        ]
    );
    let events: Vec<_> = got
        .iter()
        .filter_map(|(_, g)| match g {
            Got::Event {
                event_id,
                agent_id,
                agent_kind,
                action,
                resource,
                outcome,
                session_id,
                bytes,
                ..
            } => Some((
                event_id.as_str(),
                agent_id.as_str(),
                agent_kind.as_deref().unwrap(),
                action.as_str(),
                resource.as_str(),
                *outcome,
                session_id.as_deref(),
                *bytes,
            )),
            Got::Rejected { .. } => None,
        })
        .collect();
    let role = "arn:aws:iam::123456789012:role/app-role";
    let alice = "arn:aws:iam::123456789012:user/alice";
    assert_eq!(
        events,
        [
            (
                "ct-0001",
                role,
                "aws_assumed_role",
                "s3.amazonaws.com:GetObject",
                "arn:aws:s3:::payroll/2023/07.csv",
                Outcome::Success,
                Some("i-0abc"),
                Some(51234)
            ),
            (
                "ct-0002",
                alice,
                "aws_iam_user",
                "iam.amazonaws.com:CreateAccessKey",
                "aws:iam:userName/backdoor",
                Outcome::Success,
                None,
                None
            ),
            (
                "ct-0003",
                role,
                "aws_assumed_role",
                "ec2.amazonaws.com:DescribeInstances",
                "aws:ec2:instanceId/i-0abc",
                Outcome::Denied,
                Some("i-0abc"),
                None
            ),
            (
                "ct-0004",
                "cloudtrail.amazonaws.com",
                "aws_service",
                "s3.amazonaws.com:GetBucketAcl",
                "s3://trail-logs",
                Outcome::Success,
                None,
                None
            ),
            (
                "ct-0005",
                alice,
                "aws_iam_user",
                "s3.amazonaws.com:ListBuckets",
                "",
                Outcome::Success,
                None,
                None
            ),
            (
                "ct-0006",
                alice,
                "aws_iam_user",
                "secretsmanager.amazonaws.com:GetSecretValue",
                "aws:secretsmanager:secretId/prod/db",
                Outcome::Error,
                None,
                None
            ),
            (
                "ct-0007",
                "arn:aws:iam::123456789012:root",
                "aws_root",
                "signin.amazonaws.com:ConsoleLogin",
                "",
                Outcome::Success,
                None,
                None
            ),
            (
                "ct-0008",
                "cloudtrail.amazonaws.com",
                "aws_service",
                "sts.amazonaws.com:AssumeRole",
                role,
                Outcome::Success,
                None,
                None
            ),
        ]
    );
    assert_eq!(field_of(&got, 7), "eventName");
    assert_eq!(field_of(&got, 8), "userIdentity");
    match event(&got, 3) {
        Got::Event {
            source_ip,
            attributes,
            ..
        } => {
            assert_eq!(source_ip.as_deref(), Some("192.168.10.20"));
            let a = attributes.as_ref().unwrap();
            assert_eq!(a["errorCode"], "Client.UnauthorizedOperation");
            assert_eq!(a["awsRegion"], "us-east-1");
            assert_eq!(a["recipientAccountId"], "123456789012");
            assert_eq!(a["eventType"], "AwsApiCall");
            assert_eq!(a["userAgent"], "aws-cli/2.13.0 Python/3.11.4");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn k8s_audit_fixture() {
    let got = read("k8s_audit.jsonl", FormatChoice::Auto);
    assert_eq!(
        codes(&got),
        [
            (1, "ok"),
            (2, "ok"),
            (3, "ok"),
            (4, "ok"),
            (5, "ok"),
            (6, "missing_field"),
            (7, "invalid_field"),
            (8, "missing_field"),
        ]
    );
    let events: Vec<_> = got
        .iter()
        .filter_map(|(_, g)| match g {
            Got::Event {
                agent_kind,
                action,
                resource,
                outcome,
                ..
            } => Some((
                agent_kind.as_deref().unwrap(),
                action.as_str(),
                resource.as_str(),
                *outcome,
            )),
            Got::Rejected { .. } => None,
        })
        .collect();
    assert_eq!(
        events,
        [
            (
                "k8s_service_account",
                "k8s:list",
                "k8s://default/pods",
                Outcome::Success
            ),
            (
                "k8s_service_account",
                "k8s:get",
                "k8s://payments/secrets/db-creds",
                Outcome::Denied
            ),
            (
                "k8s_user",
                "k8s:create",
                "k8s://web/pods/exec/web-7d9",
                Outcome::Success
            ),
            (
                "k8s_user",
                "k8s:delete",
                "k8s://_cluster/clusterroles/agent-admin",
                Outcome::Error
            ),
            (
                "k8s_user",
                "k8s:get",
                "k8s://_nonresource/healthz",
                Outcome::Denied
            ),
        ]
    );
    match event(&got, 1) {
        Got::Event {
            time_ms,
            source_ip,
            event_id,
            attributes,
            ..
        } => {
            assert_eq!(event_id, "k-0001");
            assert_eq!(*time_ms, 1_714_554_000_140);
            assert_eq!(source_ip.as_deref(), Some("10.244.0.12"));
            let a = attributes.as_ref().unwrap();
            assert_eq!(a["stage"], "ResponseComplete");
            assert_eq!(a["userAgent"], "kubectl/v1.29.0 (linux/amd64)");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(field_of(&got, 6), "user.username");
    assert_eq!(field_of(&got, 7), "stageTimestamp");
    assert_eq!(field_of(&got, 8), "stageTimestamp");
}

#[test]
fn mixed_formats_in_one_stream() {
    // All four fixtures concatenated: auto-detection gives the same results per record.
    let mut all = Vec::new();
    let mut expected = Vec::new();
    for name in [
        "native.jsonl",
        "ocsf.jsonl",
        "cloudtrail.jsonl",
        "k8s_audit.jsonl",
    ] {
        all.extend(std::fs::read(fixture(name)).unwrap());
        expected.extend(
            read(name, FormatChoice::Auto)
                .into_iter()
                .map(|(_, g)| g.code()),
        );
    }
    let decoder = Decoder::default();
    let mut got = Vec::new();
    cinch::drive::input::read_messages(&all[..], "mixed", 1 << 20, |msg| {
        decoder.decode_input(&msg, &mut |d| {
            got.push(match d {
                Ok(_) => "ok",
                Err(r) => r.reason.code(),
            })
        });
    })
    .unwrap();
    assert_eq!(got, expected);
}

#[test]
fn pretty_printed_gzip_deliveries() {
    use std::io::Write;
    // Two pretty-printed S3 delivery objects, each in its own gzip member, then garbage.
    let records: Vec<serde_json::Value> = std::fs::read_to_string(fixture("cloudtrail.jsonl"))
        .unwrap()
        .lines()
        .take(4)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first =
        serde_json::to_string_pretty(&serde_json::json!({"Records": &records[..3]})).unwrap();
    let second =
        serde_json::to_string_pretty(&serde_json::json!({"Records": &records[3..]})).unwrap();
    let gz = |text: &str| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let mut file = gz(&format!("{first}\n"));
    file.extend(gz(&second));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deliveries.json.gz");
    std::fs::write(&path, &file).unwrap();

    let decoder = Decoder::default();
    let mut got = Vec::new();
    let stats = for_each_message(&InputSpec::file(&path), |msg| {
        decoder.decode_input(&msg, &mut |d| {
            got.push((
                msg.line,
                d.map(|e| e.event_id.into_owned())
                    .map_err(|r| r.reason.code()),
            ))
        });
    })
    .unwrap();
    assert!(stats.gzip);
    assert_eq!(stats.layout, cinch::drive::input::Layout::Documents);
    let second_line = first.lines().count() as u64 + 1;
    assert_eq!(
        got,
        [
            (1, Ok("ct-0001".to_owned())),
            (1, Ok("ct-0002".to_owned())),
            (1, Ok("ct-0003".to_owned())),
            (second_line, Ok("ct-0004".to_owned())),
        ]
    );

    // Garbage after the last gzip member is one rejected record, not an error.
    file.extend_from_slice(b"this is not gzip");
    std::fs::write(&path, &file).unwrap();
    let mut codes = Vec::new();
    let stats = for_each_message(&InputSpec::file(&path), |msg| {
        decoder.decode_input(&msg, &mut |d| {
            codes.push(d.map(|_| ()).map_err(|r| r.reason.code()))
        });
    })
    .unwrap();
    assert_eq!(stats.unreadable, 1);
    assert_eq!(codes, [Ok(()), Ok(()), Ok(()), Ok(()), Err("not_json")]);
}
