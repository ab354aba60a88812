//! Decode throughput per format, in events per second.

use std::hint::black_box;

use cinch::drive::input::read_messages;
use cinch::event::Decoder;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// The allocator the `cinch` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const N: usize = 1000;

fn native(i: usize) -> String {
    format!(
        r#"{{"event_id":"evt-{i:08}","time":"2024-05-01T12:{:02}:{:02}.{:03}Z","agent_id":"agent-{:04}","agent_kind":"ai_agent","action":"s3:GetObject","resource":"s3://finance-reports/2024/q1/report-{i:05}.pdf","outcome":"success","session_id":"run-{:05}","source_ip":"10.20.{}.{}","bytes":{},"attributes":{{"model":"m1","tool":"s3"}}}}"#,
        i / 60 % 60,
        i % 60,
        i % 1000,
        i % 97,
        i / 10,
        i % 250,
        i % 200,
        i * 37
    )
}

fn ocsf(i: usize) -> String {
    format!(
        r#"{{"class_uid":6003,"class_name":"API Activity","category_uid":6,"activity_id":2,"activity_name":"Read","type_uid":600302,"time":{},"severity_id":1,"status_id":1,"status":"Success","metadata":{{"uid":"ocsf-{i:08}","version":"1.1.0","product":{{"name":"Agent Gateway","vendor_name":"Example"}}}},"actor":{{"user":{{"uid":"agent-{:04}","name":"bot","type":"System"}},"session":{{"uid":"run-{:05}"}}}},"api":{{"operation":"GetObject","service":{{"name":"s3"}}}},"resources":[{{"uid":"arn:aws:s3:::reports/r-{i:05}.pdf","type":"object"}}],"src_endpoint":{{"ip":"10.1.{}.{}"}},"cloud":{{"provider":"AWS","region":"eu-west-1"}}}}"#,
        1_714_564_800_000u64 + i as u64 * 1000,
        i % 97,
        i / 10,
        i % 250,
        i % 200
    )
}

fn cloudtrail(i: usize) -> String {
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"AssumedRole","principalId":"AROAEXAMPLE:i-{i:08x}","arn":"arn:aws:sts::123456789012:assumed-role/app-role-{}/i-{i:08x}","accountId":"123456789012","accessKeyId":"ASIAEXAMPLE{i:06}","sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROAEXAMPLE","arn":"arn:aws:iam::123456789012:role/app-role-{}","accountId":"123456789012","userName":"app-role"}},"webIdFederationData":{{}},"attributes":{{"creationDate":"2023-07-10T11:55:01Z","mfaAuthenticated":"false"}},"ec2RoleDelivery":"2.0"}}}},"eventTime":"2023-07-10T12:{:02}:{:02}Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","sourceIPAddress":"10.0.{}.{}","userAgent":"[aws-cli/2.13.0 Python/3.11.4 Linux/5.15 exe/x86_64]","requestParameters":{{"bucketName":"payroll-{}","Host":"payroll.s3.us-east-1.amazonaws.com","key":"2023/07/file-{i:05}.csv"}},"responseElements":null,"additionalEventData":{{"SignatureVersion":"SigV4","CipherSuite":"ECDHE-RSA-AES128-GCM-SHA256","bytesTransferredIn":0,"AuthenticationMethod":"AuthHeader","x-amz-id-2":"RBVZE1aP5ZIWKUdG1hjRObcaPvsi1R4sMQr7GV+WPWocwL/I0cZVMkXnNBc55YA7mS056DtQDEI=","bytesTransferredOut":{}}},"requestID":"REQ{i:08}","eventID":"{i:08x}-2222-3333-4444-555555555555","readOnly":true,"resources":[{{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::payroll/2023/07/file-{i:05}.csv"}},{{"accountId":"123456789012","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::payroll"}}],"eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"123456789012","eventCategory":"Data"}}"#,
        i % 13,
        i % 13,
        i / 60 % 60,
        i % 60,
        i % 250,
        i % 200,
        i % 7,
        i * 11
    )
}

fn k8s(i: usize) -> String {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{i:08x}-8d7a-4c51-9d65-7a0b1f0f7f11","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/ns-{}/secrets/s-{i}","verb":"get","user":{{"username":"system:serviceaccount:ns-{}:agent-{}","uid":"5f1","groups":["system:serviceaccounts","system:authenticated"]}},"sourceIPs":["10.244.{}.{}"],"userAgent":"agent-runner/1.4","objectRef":{{"resource":"secrets","namespace":"ns-{}","name":"s-{i}","apiVersion":"v1"}},"responseStatus":{{"metadata":{{}},"code":200}},"requestReceivedTimestamp":"2024-05-01T12:00:00.123456Z","stageTimestamp":"2024-05-01T12:00:00.130001Z"}}"#,
        i % 5,
        i % 5,
        i % 31,
        i % 250,
        i % 200,
        i % 5
    )
}

/// An OTLP JSON export request of `n` execute_tool spans (with arguments) and one
/// invoke_agent span that names the agent.
fn otlp_request(n: usize) -> String {
    let kv = |k: &str, v: &str| serde_json::json!({"key": k, "value": {"stringValue": v}});
    let mut spans = vec![serde_json::json!({
        "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
        "name": "invoke_agent support", "startTimeUnixNano": "1714564800000000000",
        "endTimeUnixNano": "1714564900000000000",
        "attributes": [kv("gen_ai.operation.name", "invoke_agent"), kv("gen_ai.agent.id", "support-agent-7"),
                       kv("gen_ai.conversation.id", "conv-1")]})];
    for i in 0..n {
        spans.push(serde_json::json!({
            "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": format!("{:016x}", 0x1000 + i),
            "parentSpanId": "b7ad6b7169203331", "name": "execute_tool get_ticket",
            "startTimeUnixNano": format!("{}", 1_714_564_800_000_000_000u64 + i as u64 * 1_000_000),
            "endTimeUnixNano": format!("{}", 1_714_564_800_500_000_000u64 + i as u64 * 1_000_000),
            "attributes": [kv("gen_ai.operation.name", "execute_tool"), kv("gen_ai.tool.name", "get_ticket"),
                           kv("gen_ai.tool.call.arguments", &format!("{{\"ticket_id\": \"T-{i:05}\"}}"))],
            "status": {}}));
    }
    serde_json::json!({"resourceSpans": [{"resource": {"attributes": [kv("service.name", "support")]},
        "scopeSpans": [{"scope": {"name": "agents"}, "spans": spans}]}]})
    .to_string()
}

/// The tool calls of [`otlp_request`] as native events: the same agent, session, tool, time and
/// arguments, one record each.
fn native_tool_call(i: usize) -> String {
    serde_json::json!({
        "event_id": format!("{:016x}", 0x1000 + i),
        "time": 1_714_564_800_000u64 + i as u64,
        "agent_id": "support-agent-7", "action": "get_ticket", "resource": "tool:get_ticket",
        "session_id": "conv-1", "arguments": format!("{{\"ticket_id\": \"T-{i:05}\"}}")})
    .to_string()
}

fn bench_format(c: &mut Criterion, name: &str, records: Vec<String>) {
    let decoder = Decoder::default();
    let mean = records.iter().map(String::len).sum::<usize>() / records.len();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(records.len() as u64));
    // Sanity: every record decodes.
    let mut ok = 0;
    for r in &records {
        decoder.decode_message(r.as_bytes(), &mut |d| ok += usize::from(d.is_ok()));
    }
    assert_eq!(ok, records.len(), "{name}: not every bench record decodes");
    group.bench_function(format!("{name} ({mean} B/event)"), |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for r in &records {
                decoder.decode_message(black_box(r.as_bytes()), &mut |d| {
                    ok += usize::from(d.is_ok());
                    black_box(&d);
                });
            }
            ok
        })
    });
    group.bench_function(format!("{name} (serde_json skip only, reference)"), |b| {
        b.iter(|| {
            for r in &records {
                black_box(
                    serde_json::from_slice::<serde::de::IgnoredAny>(black_box(r.as_bytes()))
                        .is_ok(),
                );
            }
        })
    });
    group.finish();
}

fn decode(c: &mut Criterion) {
    bench_format(c, "native", (0..N).map(native).collect());
    bench_format(c, "ocsf", (0..N).map(ocsf).collect());
    bench_format(c, "cloudtrail", (0..N).map(cloudtrail).collect());
    bench_format(c, "k8s_audit", (0..N).map(k8s).collect());
    bench_format(
        c,
        "native, the otlp spans' tool calls",
        (0..100).map(native_tool_call).collect(),
    );

    // The same native events through the file reader (JSON lines) and the decoder.
    let mut file = Vec::new();
    for i in 0..N {
        file.extend_from_slice(native(i).as_bytes());
        file.push(b'\n');
    }
    let decoder = Decoder::default();
    let mut group = c.benchmark_group("source+decode");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("native jsonl", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            read_messages(black_box(&file[..]), "bench", 1 << 28, |m| {
                decoder.decode_input(&m, &mut |d| ok += usize::from(d.is_ok()));
            })
            .unwrap();
            ok
        })
    });
    group.finish();

    // OpenTelemetry: an export request of 100 tool call spans, as OTLP JSON and protobuf.
    let json = otlp_request(100);
    let req: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest =
        serde_json::from_str(&json).expect("a valid export request");
    let proto = prost::Message::encode_to_vec(&req);
    let decoder = Decoder::default();
    let mut ok = 0;
    decoder.decode_message(json.as_bytes(), &mut |d| ok += usize::from(d.is_ok()));
    assert_eq!(ok, 100, "every tool call span decodes");
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(100));
    group.bench_function(
        format!("otlp json, 100 spans ({} B/span)", json.len() / 100),
        |b| {
            b.iter(|| {
                let mut ok = 0usize;
                decoder.decode_message(black_box(json.as_bytes()), &mut |d| {
                    ok += usize::from(d.is_ok())
                });
                ok
            })
        },
    );
    group.bench_function(
        format!("otlp protobuf, 100 spans ({} B/span)", proto.len() / 100),
        |b| {
            b.iter(|| {
                let mut ok = 0usize;
                decoder.decode_otlp_proto(black_box(&proto[..]), &mut |d| {
                    ok += usize::from(d.is_ok())
                });
                ok
            })
        },
    );
    group.finish();

    // A CloudTrail S3 delivery object of N records.
    let delivery = format!(
        r#"{{"Records":[{}]}}"#,
        (0..N).map(cloudtrail).collect::<Vec<_>>().join(",")
    );
    let decoder = Decoder::default();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("cloudtrail delivery object", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            decoder.decode_message(black_box(delivery.as_bytes()), &mut |d| {
                ok += usize::from(d.is_ok())
            });
            ok
        })
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
