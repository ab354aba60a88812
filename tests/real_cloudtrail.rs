//! Every real CloudTrail file under `fixtures/cloudtrail` (vendored from `../shared/data/cloudtrail`) is read with the source reader
//! and decoded; the records are counted independently and must all decode.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use cinch::drive::input::{InputSpec, for_each_message};
use cinch::event::{Decoder, Format, Outcome};

mod common;
use common::{cloudtrail_dir as data_dir, data_files};

/// Counts the records of a file without the project's reader: decompress if gzip, then parse
/// every JSON value with serde_json and count `Records[]` items, array items or single records.
fn count_records(path: &Path) -> usize {
    let mut bytes = std::fs::read(path).unwrap();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut text)
            .unwrap();
        bytes = text;
    }
    serde_json::Deserializer::from_slice(&bytes)
        .into_iter::<serde_json::Value>()
        .map(|v| {
            let v = v.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            match v {
                serde_json::Value::Array(items) => items.len(),
                serde_json::Value::Object(ref m) if m.contains_key("Records") => {
                    m["Records"].as_array().unwrap().len()
                }
                _ => 1,
            }
        })
        .sum()
}

#[derive(Default)]
struct Seen {
    decoded: usize,
    rejected: usize,
    agents: BTreeMap<String, usize>,
    sources: BTreeSet<String>,
    sessions: BTreeSet<String>,
    denied: usize,
    with_bytes: usize,
    empty_resource: usize,
}

fn decode_file(decoder: &Decoder, path: &Path) -> Seen {
    let mut seen = Seen::default();
    let input = InputSpec::file(path);
    let stats = for_each_message(&input, |msg| {
        decoder.decode_input(&msg, &mut |d| match d {
            Ok(ev) => {
                assert_eq!(ev.format, Format::Cloudtrail);
                assert!(!ev.event_id.is_empty());
                assert!(ev.action.contains(".amazonaws.com:"), "{}", ev.action);
                seen.decoded += 1;
                *seen.agents.entry(ev.agent_id.to_string()).or_default() += 1;
                if let Some(ip) = &ev.source_ip {
                    seen.sources.insert(ip.to_string());
                }
                if let Some(s) = &ev.session_id {
                    seen.sessions.insert(s.to_string());
                }
                seen.denied += usize::from(ev.outcome == Outcome::Denied);
                seen.with_bytes += usize::from(ev.bytes.is_some());
                seen.empty_resource += usize::from(ev.resource.is_empty());
            }
            Err(rej) => {
                seen.rejected += 1;
                eprintln!(
                    "{} line {} offset {}: {} ({})",
                    path.display(),
                    msg.line,
                    rej.offset,
                    rej.reason,
                    String::from_utf8_lossy(&rej.raw[..rej.raw.len().min(300)])
                );
            }
        });
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(stats.messages > 0, "{}: no messages", path.display());
    seen
}

#[test]
fn every_real_cloudtrail_record_decodes() {
    let dir = data_dir();
    assert!(
        dir.is_dir(),
        "the real CloudTrail data folder {} is missing",
        dir.display()
    );
    let decoder = Decoder::default();
    let mut per_folder: BTreeMap<String, Seen> = BTreeMap::new();
    let files = data_files(&dir);
    assert!(files.len() >= 90, "only {} data files found", files.len());
    for path in &files {
        let expected = count_records(path);
        let seen = decode_file(&decoder, path);
        assert_eq!(
            seen.decoded + seen.rejected,
            expected,
            "{}: decoded + rejected != records in the file",
            path.display()
        );
        assert_eq!(seen.rejected, 0, "{}: records rejected", path.display());
        let folder = path
            .strip_prefix(&dir)
            .unwrap()
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .to_string();
        let agg = per_folder.entry(folder).or_default();
        agg.decoded += seen.decoded;
        agg.denied += seen.denied;
        agg.with_bytes += seen.with_bytes;
        agg.empty_resource += seen.empty_resource;
        for (a, n) in seen.agents {
            *agg.agents.entry(a).or_default() += n;
        }
        agg.sources.extend(seen.sources);
        agg.sessions.extend(seen.sessions);
    }
    for (folder, seen) in &per_folder {
        eprintln!(
            "{folder}: {} events, {} agents, {} denied, {} with bytes, {} without resource",
            seen.decoded,
            seen.agents.len(),
            seen.denied,
            seen.with_bytes,
            seen.empty_resource
        );
    }

    let invictus = &per_folder["invictus-stratus"];
    assert_eq!(invictus.decoded, 2900);
    let role = "arn:aws:iam::123837392027:role/stratus-red-team-ec2-steal-credentials-role";
    assert!(
        invictus.agents.get(role).copied().unwrap_or(0) >= 15,
        "role {role} not mapped as agent: {:?}",
        invictus.agents.keys().collect::<Vec<_>>()
    );
    assert!(invictus.sources.contains("192.168.10.20"));
    assert!(invictus.sources.contains("AWS Internal"));
    assert!(invictus.sessions.contains("i-0dbc91f429e48eeed"));
    assert!(invictus.agents.len() <= 20, "{:?}", invictus.agents.keys());
    assert!(invictus.with_bytes > 0);

    let otrf = &per_folder["otrf-ec2-proxy-s3"];
    assert_eq!(otrf.decoded, 103);
    let waf_role = otrf
        .agents
        .iter()
        .find(|(a, _)| a.contains(":role/MordorNginxStack-BankingWAFRole"))
        .map(|(_, n)| *n);
    assert_eq!(waf_role, Some(11));
    assert!(
        otrf.agents
            .contains_key("arn:aws:iam::123456789123:user/pedro")
    );
    // Every address was anonymised to 1.2.3.4; AWS services appear by name.
    assert!(otrf.sources.contains("1.2.3.4"));
    assert!(
        otrf.sources
            .iter()
            .all(|s| s == "1.2.3.4" || s.ends_with(".amazonaws.com")),
        "{:?}",
        otrf.sources
    );

    let stratus = &per_folder["stratus-detonations"];
    assert!(stratus.decoded > 0);
    assert!(stratus.denied > 0);
}

#[test]
fn cloudtrail_records_keep_their_details() {
    let path = data_dir()
        .join("stratus-detonations/aws.credential-access.secretsmanager-retrieve-secrets.json");
    let text = std::fs::read(&path).unwrap();
    let decoder = Decoder::default();
    let mut events = Vec::new();
    let mut rejected = 0;
    decoder.decode_message(&text, &mut |d| match d {
        Ok(ev) => events.push((
            ev.action.to_string(),
            ev.resource.to_string(),
            ev.agent_kind.as_deref().map(str::to_owned),
        )),
        Err(_) => rejected += 1,
    });
    assert_eq!(rejected, 0);
    assert_eq!(events.len(), count_records(&path));
    let get_secret: Vec<_> = events
        .iter()
        .filter(|(a, _, _)| a == "secretsmanager.amazonaws.com:GetSecretValue")
        .collect();
    assert!(!get_secret.is_empty());
    for (_, resource, _) in get_secret {
        assert!(
            resource.starts_with("arn:aws:secretsmanager:"),
            "GetSecretValue resource {resource}"
        );
    }
}
