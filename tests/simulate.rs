//! Behavioural tests of the synthetic fleet generator.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

use cinch::sim::{self, Archetype, GrantSpec, Scenario, SimConfig, glob_match};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Ev {
    event_id: String,
    time: String,
    agent_id: String,
    agent_kind: String,
    action: String,
    resource: String,
    outcome: String,
    session_id: String,
    source_ip: String,
    bytes: u64,
    grant: Option<String>,
    intent: Option<String>,
    attributes: serde_json::Map<String, serde_json::Value>,
    #[serde(skip)]
    time_ms: i64,
}

#[derive(Debug, Deserialize)]
struct LabelRow {
    event_id: String,
    label: String,
    attack_id: String,
    scenario: String,
}

#[derive(Debug, Deserialize)]
struct AttackRow {
    attack_id: String,
    agent_id: String,
    scenario: String,
    first_time: String,
    last_time: String,
    events: u64,
}

type Entitlements = BTreeMap<String, BTreeMap<String, GrantSpec>>;

struct Data {
    events: Vec<Ev>,
    labels: Vec<LabelRow>,
    attacks: Vec<AttackRow>,
    entitlements: Entitlements,
    manifest: serde_json::Value,
}

fn parse_time(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad time {s}: {e}"))
        .timestamp_millis()
}

fn load(dir: &Path) -> Data {
    let text = std::fs::read_to_string(dir.join(sim::EVENTS_FILE)).expect("events");
    let events = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let mut e: Ev = serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("line {}: {err}: {line}", i + 1));
            e.time_ms = parse_time(&e.time);
            e
        })
        .collect();
    let labels = csv::Reader::from_path(dir.join(sim::LABELS_FILE))
        .expect("labels")
        .deserialize()
        .map(|r| r.expect("label row"))
        .collect();
    let attacks = csv::Reader::from_path(dir.join(sim::ATTACKS_FILE))
        .expect("attacks")
        .deserialize()
        .map(|r| r.expect("attack row"))
        .collect();
    let entitlements =
        serde_json::from_slice(&std::fs::read(dir.join(sim::ENTITLEMENTS_FILE)).expect("ents"))
            .expect("entitlements parse as the contract form");
    let manifest =
        serde_json::from_slice(&std::fs::read(dir.join(sim::MANIFEST_FILE)).expect("manifest"))
            .expect("manifest parses");
    Data {
        events,
        labels,
        attacks,
        entitlements,
        manifest,
    }
}

fn config(agents: u32, days: u32, seed: u64, out: &Path) -> SimConfig {
    SimConfig {
        agents,
        days,
        seed,
        out: out.to_path_buf(),
        ..SimConfig::default()
    }
}

/// The 100-agent, 14-day fleet most tests look at (generated once).
fn fleet() -> &'static Data {
    static DATA: OnceLock<Data> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        sim::simulate(&config(100, 14, 7, dir.path())).expect("simulate");
        load(dir.path())
    })
}

fn read_all(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect()
}

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_differs() {
    let (a, b, c) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
        tempfile::tempdir().expect("c"),
    );
    sim::simulate(&config(40, 6, 11, a.path())).expect("a");
    sim::simulate(&config(40, 6, 11, b.path())).expect("b");
    sim::simulate(&config(40, 6, 12, c.path())).expect("c");
    let (fa, fb, fc) = (read_all(a.path()), read_all(b.path()), read_all(c.path()));
    assert_eq!(fa.len(), 5);
    for (name, bytes) in &fa {
        assert!(fb[name] == *bytes, "{name} differs between identical runs");
    }
    assert!(fa[sim::EVENTS_FILE] != fc[sim::EVENTS_FILE]);
    assert!(fa[sim::ENTITLEMENTS_FILE] != fc[sim::ENTITLEMENTS_FILE]);
}

#[test]
fn gzip_output_holds_the_same_events() {
    let (plain, gz) = (
        tempfile::tempdir().expect("p"),
        tempfile::tempdir().expect("g"),
    );
    sim::simulate(&config(20, 5, 3, plain.path())).expect("plain");
    let mut cfg = config(20, 5, 3, gz.path());
    cfg.gzip = true;
    sim::simulate(&cfg).expect("gzip");
    let mut unzipped = Vec::new();
    flate2::read::MultiGzDecoder::new(
        std::fs::File::open(gz.path().join(sim::EVENTS_GZ_FILE)).expect("gz file"),
    )
    .read_to_end(&mut unzipped)
    .expect("gunzip");
    let text = std::fs::read(plain.path().join(sim::EVENTS_FILE)).expect("plain file");
    assert!(unzipped == text);
    assert!(!gz.path().join(sim::EVENTS_FILE).exists());
}

#[test]
fn events_are_valid_native_events_in_time_order() {
    let d = fleet();
    assert!(d.events.len() > 50_000, "{}", d.events.len());
    let start = parse_time(sim::DEFAULT_START);
    let end = start + 14 * 86_400_000;
    let mut ids = BTreeSet::new();
    for (i, e) in d.events.iter().enumerate() {
        assert!(!e.event_id.is_empty() && e.event_id.len() <= 256);
        assert!(e.event_id.starts_with("e-7-"), "{}", e.event_id);
        assert!(ids.insert(e.event_id.as_str()), "duplicate {}", e.event_id);
        assert!(e.time.ends_with('Z') && e.time.len() == 24, "{}", e.time);
        assert!((start..end).contains(&e.time_ms));
        assert!(!e.agent_id.is_empty() && !e.action.is_empty());
        assert!(["success", "denied", "error"].contains(&e.outcome.as_str()));
        assert!(["ai_agent", "service_account", "workload"].contains(&e.agent_kind.as_str()));
        assert!(e.session_id.starts_with("s-") && e.session_id.len() == 18);
        assert!(
            e.source_ip.parse::<std::net::Ipv4Addr>().is_ok(),
            "{}",
            e.source_ip
        );
        assert!(!e.attributes.is_empty());
        if e.outcome == "denied" {
            assert_eq!(e.bytes, 0);
        }
        if i > 0 {
            let p = &d.events[i - 1];
            assert!((p.time_ms, &p.event_id) < (e.time_ms, &e.event_id));
        }
    }
}

#[test]
fn every_event_has_one_label_and_attack_counts_match() {
    let d = fleet();
    assert_eq!(d.labels.len(), d.events.len());
    let mut per_attack: HashMap<&str, (u64, i64, i64, &str, &str)> = HashMap::new();
    for (e, l) in d.events.iter().zip(&d.labels) {
        assert_eq!(e.event_id, l.event_id);
        match l.label.as_str() {
            "benign" => assert!(l.attack_id.is_empty() && l.scenario.is_empty()),
            "attack" => {
                let s = per_attack.entry(&l.attack_id).or_insert((
                    0,
                    i64::MAX,
                    i64::MIN,
                    &l.scenario,
                    &e.agent_id,
                ));
                s.0 += 1;
                s.1 = s.1.min(e.time_ms);
                s.2 = s.2.max(e.time_ms);
                assert_eq!(s.3, l.scenario);
                assert_eq!(s.4, e.agent_id, "an attack stays on its agent");
            }
            other => panic!("label {other}"),
        }
    }
    assert_eq!(per_attack.len(), d.attacks.len());
    for a in &d.attacks {
        let s = per_attack[a.attack_id.as_str()];
        assert_eq!(s.0, a.events, "{}", a.attack_id);
        assert_eq!(s.1, parse_time(&a.first_time));
        assert_eq!(s.2, parse_time(&a.last_time));
        assert_eq!(s.3, a.scenario);
        assert_eq!(s.4, a.agent_id);
    }
    let attack_events: u64 = d.attacks.iter().map(|a| a.events).sum();
    assert_eq!(d.manifest["counts"]["attack_events"], attack_events);
    assert_eq!(d.manifest["counts"]["events"], d.events.len() as u64);
}

#[test]
fn every_scenario_is_present_at_100_agents_with_varied_sizes() {
    let d = fleet();
    assert_eq!(d.attacks.len(), 20);
    for s in Scenario::DEFAULT {
        assert!(
            d.attacks.iter().any(|a| a.scenario == s.name()),
            "no {} attack",
            s.name()
        );
    }
    let agents: BTreeSet<&str> = d.attacks.iter().map(|a| a.agent_id.as_str()).collect();
    assert_eq!(agents.len(), d.attacks.len(), "one attack per agent");
    let sizes: Vec<u64> = d.attacks.iter().map(|a| a.events).collect();
    assert!(sizes.iter().any(|&n| n <= 5), "{sizes:?}");
    assert!(sizes.iter().any(|&n| n >= 50), "{sizes:?}");
}

#[test]
fn attacks_start_after_the_baseline_period() {
    let d = fleet();
    let start = parse_time(sim::DEFAULT_START);
    let baseline_end = start + (14.0 * 0.4 * 86_400_000.0) as i64;
    for a in &d.attacks {
        assert!(parse_time(&a.first_time) >= baseline_end, "{a:?}");
    }
    for (e, l) in d.events.iter().zip(&d.labels) {
        if l.label == "attack" {
            assert!(e.time_ms >= baseline_end);
        }
    }
}

fn covers(spec: &GrantSpec, action: &str, resource: &str) -> bool {
    spec.actions.iter().any(|p| glob_match(p, action))
        && spec.resources.iter().any(|p| glob_match(p, resource))
}

#[test]
fn entitlements_have_the_contract_form_and_cover_benign_use() {
    let d = fleet();
    assert_eq!(d.entitlements.len(), 100);
    for grants in d.entitlements.values() {
        assert!(grants.len() >= 2);
        for g in grants.values() {
            assert!(!g.actions.is_empty() && !g.resources.is_empty());
        }
    }
    let mut with_grant = 0usize;
    let mut benign = 0usize;
    for (e, l) in d.events.iter().zip(&d.labels) {
        let Some(g) = &e.grant else { continue };
        let spec = d.entitlements[&e.agent_id]
            .get(g)
            .unwrap_or_else(|| panic!("{} has no grant {g}", e.agent_id));
        assert!(covers(spec, &e.action, &e.resource), "{} {e:?}", l.label);
    }
    for (e, l) in d.events.iter().zip(&d.labels) {
        if l.label == "benign" {
            benign += 1;
            with_grant += e.grant.is_some() as usize;
        }
    }
    let share = with_grant as f64 / benign as f64;
    assert!((0.8..0.95).contains(&share), "{share}");
}

#[test]
fn entitlements_are_broader_than_benign_use() {
    let d = fleet();
    let unused = d.manifest["unused_grants"]
        .as_object()
        .expect("unused grants");
    let mut used: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for (e, l) in d.events.iter().zip(&d.labels) {
        if let (Some(g), "benign") = (&e.grant, l.label.as_str()) {
            used.entry(&e.agent_id).or_default().insert(g);
        }
    }
    for (agent, grants) in &d.entitlements {
        let listed: Vec<&str> = unused[agent]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert!((1..=3).contains(&listed.len()), "{agent}: {listed:?}");
        for g in &listed {
            assert!(grants.contains_key(*g));
            assert!(!used.get(agent.as_str()).is_some_and(|u| u.contains(g)));
        }
    }
}

#[test]
fn every_archetype_is_present_with_its_own_behaviour() {
    let d = fleet();
    let per = &d.manifest["counts"]["agents_per_archetype"];
    let mut actions: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for e in &d.events {
        let prefix = e.agent_id.split('-').next().unwrap_or_default();
        actions.entry(prefix).or_default().insert(&e.action);
    }
    for a in Archetype::ALL {
        assert!(per[a.name()].as_u64().unwrap_or(0) >= 1, "{}", a.name());
    }
    for (prefix, action) in [
        ("etl", "warehouse:Load"),
        ("support", "tickets:Update"),
        ("code", "ci:Trigger"),
        ("analyst", "db:Select"),
        ("infra", "k8s:watch"),
        ("finance", "payments:ListTransactions"),
    ] {
        assert!(
            actions[prefix].contains(action),
            "{prefix} never does {action}"
        );
    }
}

#[test]
fn rolled_out_tool_reaches_every_agent_of_its_archetype_from_its_day() {
    let d = fleet();
    let r = &d.manifest["drift"]["rollouts"][0];
    let from = parse_time(r["from"].as_str().expect("from"));
    let action = r["action"].as_str().expect("action");
    let support: BTreeSet<&str> = d
        .entitlements
        .keys()
        .filter(|a| a.starts_with("support-bot-"))
        .map(String::as_str)
        .collect();
    let mut first_day_users = BTreeSet::new();
    for (e, l) in d.events.iter().zip(&d.labels) {
        if e.action == action && l.label == "benign" {
            assert!(e.time_ms >= from, "{action} used before its roll-out");
            assert!(support.contains(e.agent_id.as_str()));
            if e.time_ms < from + 86_400_000 {
                first_day_users.insert(e.agent_id.as_str());
            }
        }
    }
    assert_eq!(first_day_users, support);
}

#[test]
fn an_injection_campaign_reuses_one_destination_across_agents() {
    let d = fleet();
    let dest = d.manifest["campaign_destination"]
        .as_str()
        .expect("campaign");
    let agents: BTreeSet<&str> = d
        .events
        .iter()
        .zip(&d.labels)
        .filter(|(e, l)| l.scenario == "prompt_injection_tool" && e.resource == dest)
        .map(|(e, _)| e.agent_id.as_str())
        .collect();
    assert!(agents.len() >= 2, "{agents:?}");
}

#[test]
fn injected_calls_share_the_session_and_intent_of_benign_calls() {
    let d = fleet();
    let mut sessions: HashMap<&str, (usize, usize, BTreeSet<Option<&str>>)> = HashMap::new();
    let injected: BTreeSet<&str> = d
        .events
        .iter()
        .zip(&d.labels)
        .filter(|(_, l)| l.scenario == "prompt_injection_tool")
        .map(|(e, _)| e.session_id.as_str())
        .collect();
    for (e, l) in d.events.iter().zip(&d.labels) {
        if injected.contains(e.session_id.as_str()) {
            let s = sessions.entry(&e.session_id).or_default();
            if l.label == "benign" {
                s.0 += 1;
            } else {
                s.1 += 1;
            }
            s.2.insert(e.intent.as_deref());
        }
    }
    assert!(!sessions.is_empty());
    for (id, (benign, attack, intents)) in sessions {
        assert!(benign >= 1 && (1..=5).contains(&attack), "{id}");
        assert_eq!(intents.len(), 1, "{id}");
    }
}

#[test]
fn benign_traffic_comes_from_a_small_stable_set_of_addresses() {
    let d = fleet();
    let mut ips: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for (e, l) in d.events.iter().zip(&d.labels) {
        if l.label == "benign" {
            ips.entry(&e.agent_id).or_default().insert(&e.source_ip);
        }
    }
    assert_eq!(ips.len(), 100);
    for (agent, set) in ips {
        assert!(set.len() <= 6, "{agent}: {set:?}");
    }
}

#[test]
fn invalid_settings_are_reported_together() {
    let cfg = SimConfig {
        agents: 0,
        start: "yesterday".into(),
        attack_share: 2.0,
        ..SimConfig::default()
    };
    let err = cfg.validate().expect_err("invalid");
    let text = err.to_string();
    assert!(text.contains("agents") && text.contains("start") && text.contains("attack share"));
}

#[test]
fn attacks_exercise_unused_grants_where_they_fit() {
    let d = fleet();
    let unused = d.manifest["unused_grants"]
        .as_object()
        .expect("unused grants");
    let carried = d
        .events
        .iter()
        .zip(&d.labels)
        .filter(|(e, l)| {
            l.label == "attack"
                && e.grant.as_ref().is_some_and(|g| {
                    unused[&e.agent_id]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(g)))
                })
        })
        .count();
    assert!(carried > 0);
}

#[test]
fn scenarios_carry_their_signatures() {
    let d = fleet();
    let mut benign_ips: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for (e, l) in d.events.iter().zip(&d.labels) {
        if l.label == "benign" {
            benign_ips
                .entry(&e.agent_id)
                .or_default()
                .insert(&e.source_ip);
        }
    }
    let mut by_scenario: HashMap<&str, Vec<&Ev>> = HashMap::new();
    for (e, l) in d.events.iter().zip(&d.labels) {
        if l.label == "attack" {
            by_scenario.entry(&l.scenario).or_default().push(e);
        }
    }
    let known = |e: &Ev| benign_ips[e.agent_id.as_str()].contains(e.source_ip.as_str());
    // Stolen credentials and replays come from addresses the agent never used.
    for s in ["credential_theft_enum", "session_replay_offhours"] {
        assert!(by_scenario[s].iter().all(|e| !known(e)), "{s}");
    }
    // Exfiltration and lateral movement come from the agent's own addresses.
    for s in ["bulk_exfiltration", "lateral_movement", "low_and_slow"] {
        assert!(by_scenario[s].iter().all(|e| known(e)), "{s}");
    }
    let enumeration = &by_scenario["credential_theft_enum"];
    assert!(enumeration.iter().any(|e| e.outcome == "denied"));
    let distinct: BTreeSet<&str> = enumeration.iter().map(|e| e.resource.as_str()).collect();
    assert!(distinct.len() * 2 > enumeration.len());
    let escalation = &by_scenario["privilege_escalation"];
    assert!(
        escalation
            .iter()
            .all(|e| e.action.starts_with("iam:") || e.action == "sts:AssumeRole")
    );
    let denied = escalation.iter().filter(|e| e.outcome == "denied").count();
    assert!(denied * 2 > escalation.len());
    let exfil = &by_scenario["bulk_exfiltration"];
    let reads: BTreeSet<&str> = exfil.iter().map(|e| e.action.as_str()).collect();
    assert!(reads.iter().all(|a| !a.starts_with("iam:")));
}

#[test]
fn baseline_poisoning_is_opt_in_and_ramps_up_day_after_day() {
    assert!(!Scenario::DEFAULT.contains(&Scenario::BaselinePoisoning));
    assert!(
        fleet()
            .attacks
            .iter()
            .all(|a| a.scenario != "baseline_poisoning")
    );
    assert_eq!(
        Scenario::parse_list("default,baseline_poisoning").expect("list"),
        Scenario::ALL.to_vec()
    );
    assert!(Scenario::parse_list("poisoning").is_err());

    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = SimConfig {
        scenarios: vec![Scenario::BaselinePoisoning],
        ..config(40, 14, 3, dir.path())
    };
    sim::simulate(&cfg).expect("simulate");
    let d = load(dir.path());
    assert_eq!(d.attacks.len(), 8);
    assert_eq!(
        d.manifest["counts"]["attacks_per_scenario"],
        serde_json::json!({"baseline_poisoning": 8})
    );
    let mut benign_ips: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    let mut actions: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    let mut per_day: HashMap<&str, BTreeMap<i64, u64>> = HashMap::new();
    for (e, l) in d.events.iter().zip(&d.labels) {
        if l.label == "benign" {
            benign_ips
                .entry(&e.agent_id)
                .or_default()
                .insert(&e.source_ip);
            actions.entry(&e.agent_id).or_default().insert(&e.action);
        } else {
            assert_eq!(l.scenario, "baseline_poisoning");
            *per_day
                .entry(&l.attack_id)
                .or_default()
                .entry(e.time_ms.div_euclid(86_400_000))
                .or_default() += 1;
        }
    }
    let start = parse_time(sim::DEFAULT_START);
    for a in &d.attacks {
        let days: Vec<u64> = per_day[a.attack_id.as_str()].values().copied().collect();
        // A week of daily doses, from one or two to dozens, each at least as large as the last
        // (bar rounding): a slow ramp, not a burst.
        assert_eq!(days.len(), 7, "{a:?}: {days:?}");
        assert!(days[0] <= 2 && days[6] >= 10 * days[0], "{days:?}");
        assert!(days.windows(2).all(|w| w[1] + 1 >= w[0]), "{days:?}");
        assert!(parse_time(&a.first_time) >= start + 6 * 86_400_000, "{a:?}");
    }
    // Through the agent's usual actions, from its own addresses.
    for (e, l) in d.events.iter().zip(&d.labels) {
        if l.label == "attack" {
            assert!(
                benign_ips[e.agent_id.as_str()].contains(e.source_ip.as_str()),
                "{e:?}"
            );
            assert!(
                actions[e.agent_id.as_str()].contains(e.action.as_str()),
                "{e:?}"
            );
        }
    }
}
