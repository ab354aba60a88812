//! The detection-quality floor on a small simulated fleet: a regression in any detector, the
//! fusion or the decisions that costs detection or adds false alarms fails here.
//!
//! The fleet (60 agents, 10 days, seed 42, 40% of agents attacked) is small enough for CI. The
//! floors sit just below the figures measured on it (README, "Detection quality"):
//! PR-AUC 0.891, ROC-AUC 0.962, 24/24 attacks detected, 0.032 benign findings per agent-day,
//! median delay 1 event.

use cinch::config::Settings;
use cinch::eval::{Scorer, load_dataset, run};
use cinch::sim::{SimConfig, simulate};

#[test]
fn small_fleet_meets_the_quality_floor() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SimConfig {
        agents: 60,
        days: 10,
        seed: 42,
        attack_share: 0.4,
        out: dir.path().to_path_buf(),
        ..SimConfig::default()
    };
    simulate(&cfg).expect("simulate");
    let ds = load_dataset(dir.path()).expect("dataset");
    assert_eq!(ds.rejected, 0, "simulated events all decode");
    let r = run(&ds, &Scorer::Engine(Box::default()));
    let summary = format!("{r:#?}");
    assert!(r.pr_auc >= 0.80, "PR-AUC {} < 0.80\n{summary}", r.pr_auc);
    assert!(r.roc_auc >= 0.93, "ROC-AUC {} < 0.93\n{summary}", r.roc_auc);
    assert!(
        r.detected >= 21,
        "{}/{} attacks detected\n{summary}",
        r.detected,
        r.attacks
    );
    // Three or four attacks per scenario: every scenario is caught at least once (measured:
    // all of each, but for one or two of three off-hours session replays).
    assert_eq!(r.scenarios.len(), 7, "{summary}");
    for (name, s) in &r.scenarios {
        assert!(
            s.detected >= 1,
            "scenario {name}: {}/{}\n{summary}",
            s.detected,
            s.total
        );
    }
    assert!(
        r.benign_findings_per_agent_day <= 0.15,
        "{} benign findings per agent-day\n{summary}",
        r.benign_findings_per_agent_day
    );
    assert!(
        r.median_delay_events.is_some_and(|d| d <= 2.0),
        "median delay {:?}\n{summary}",
        r.median_delay_events
    );
}

#[test]
fn the_engine_beats_the_naive_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SimConfig {
        agents: 40,
        days: 8,
        seed: 7,
        attack_share: 0.4,
        out: dir.path().to_path_buf(),
        ..SimConfig::default()
    };
    simulate(&cfg).expect("simulate");
    let ds = load_dataset(dir.path()).expect("dataset");
    let settings = Settings::default();
    let engine = run(&ds, &Scorer::Engine(Box::new(settings.clone())));
    let naive = run(&ds, &Scorer::Naive(Box::new(settings)));
    assert!(
        engine.pr_auc > naive.pr_auc + 0.2,
        "engine {} vs naive {}",
        engine.pr_auc,
        naive.pr_auc
    );
    assert!(
        engine.benign_findings_per_agent_day < naive.benign_findings_per_agent_day,
        "engine {} vs naive {} benign findings per agent-day",
        engine.benign_findings_per_agent_day,
        naive.benign_findings_per_agent_day
    );
}
