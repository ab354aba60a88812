//! Detection-quality metrics over a labelled dataset: ROC-AUC and PR-AUC over events, attacks
//! detected per scenario, benign findings per agent-day and detection delay.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

/// The label of one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// Whether the event belongs to an attack.
    pub attack: bool,
    /// The attack it belongs to.
    pub attack_id: Option<String>,
}

/// One injected attack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attack {
    /// Id.
    pub attack_id: String,
    /// The agent attacked.
    pub agent_id: String,
    /// Scenario name.
    pub scenario: String,
}

/// A scored event, in input order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ScoredEvent {
    /// Event id.
    pub event_id: String,
    /// Agent.
    pub agent_id: String,
    /// Event time, epoch ms.
    pub time_ms: i64,
    /// Score.
    pub score: f32,
}

/// Per-scenario detection.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ScenarioResult {
    /// Attacks with at least one finding containing one of their events.
    pub detected: u32,
    /// Attacks in all.
    pub total: u32,
    /// Median delay in attack events (1 = caught on its first event).
    pub median_delay_events: Option<f64>,
    /// Median day of the attack on which the first event in a finding came, in UTC calendar
    /// days counted from the day of its first event (1 = the day it began).
    pub median_delay_days: Option<f64>,
    /// The latest such day.
    pub max_delay_days: Option<u32>,
    /// Median share of the attack's events that came before its first event in a finding.
    pub median_share_before: Option<f64>,
    /// The largest such share.
    pub max_share_before: Option<f64>,
}

/// The evaluation report.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Report {
    /// Events scored.
    pub events: u64,
    /// Attack events.
    pub attack_events: u64,
    /// Area under the ROC curve over events.
    pub roc_auc: f64,
    /// Average precision (area under the precision-recall curve) over events.
    pub pr_auc: f64,
    /// Per scenario.
    pub scenarios: BTreeMap<String, ScenarioResult>,
    /// Attacks detected in all.
    pub detected: u32,
    /// Attacks in all.
    pub attacks: u32,
    /// Findings in all.
    pub findings: u64,
    /// Findings containing no attack event.
    pub benign_findings: u64,
    /// Agents in the data.
    pub agents: u64,
    /// Days covered.
    pub days: f64,
    /// Benign findings per agent-day.
    pub benign_findings_per_agent_day: f64,
    /// Median detection delay in attack events (1 = the first attack event is in a finding).
    pub median_delay_events: Option<f64>,
    /// Median detection delay in seconds from the attack's first event.
    pub median_delay_secs: Option<f64>,
    /// Commands and recommendations, when the engine ran over the dataset itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<super::response::ResponseReport>,
}

impl Report {
    /// Share of attacks detected.
    pub fn detection_rate(&self) -> f64 {
        if self.attacks == 0 {
            0.0
        } else {
            self.detected as f64 / self.attacks as f64
        }
    }

    /// The lowest per-scenario detection rate.
    pub fn worst_scenario_rate(&self) -> f64 {
        self.scenarios
            .values()
            .filter(|s| s.total > 0)
            .map(|s| s.detected as f64 / s.total as f64)
            .fold(1.0, f64::min)
    }
}

/// ROC-AUC by the rank-sum (Mann-Whitney) statistic, ties counted half.
pub fn roc_auc(scores: &[(f32, bool)]) -> f64 {
    let mut v: Vec<(f32, bool)> = scores.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let pos = v.iter().filter(|x| x.1).count() as f64;
    let neg = v.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return 0.5;
    }
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j].0 == v[i].0 {
            j += 1;
        }
        let avg_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += avg_rank * v[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// Average precision: the mean of precision at each positive, thresholds taken at distinct
/// scores (tied events enter together).
pub(crate) fn average_precision(scores: &[(f32, bool)]) -> f64 {
    let mut v: Vec<(f32, bool)> = scores.to_vec();
    v.sort_by(|a, b| b.0.total_cmp(&a.0));
    let pos = v.iter().filter(|x| x.1).count() as f64;
    if pos == 0.0 {
        return 0.0;
    }
    let (mut tp, mut fp, mut ap, mut prev_recall) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j].0 == v[i].0 {
            if v[j].1 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            j += 1;
        }
        let recall = tp / pos;
        let precision = tp / (tp + fp);
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
        i = j;
    }
    ap
}

const DAY_MS: i64 = 86_400_000;

/// When detected attacks of one scenario were first caught.
#[derive(Default)]
struct Onsets {
    /// Attack events up to and including the first in a finding.
    events: Vec<f64>,
    /// Day of the attack of that event (1 = its first day).
    days: Vec<f64>,
    /// Share of the attack's events before it.
    shares: Vec<f64>,
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Computes the report. `findings` lists each finding's event ids.
pub(crate) fn evaluate(
    events: &[ScoredEvent],
    labels: &HashMap<String, Label>,
    attacks: &[Attack],
    findings: &[Vec<String>],
) -> Report {
    let mut r = Report::default();
    let pairs: Vec<(f32, bool)> = events
        .iter()
        .map(|e| (e.score, labels.get(&e.event_id).is_some_and(|l| l.attack)))
        .collect();
    r.events = pairs.len() as u64;
    r.attack_events = pairs.iter().filter(|p| p.1).count() as u64;
    r.roc_auc = roc_auc(&pairs);
    r.pr_auc = average_precision(&pairs);
    let agents: HashSet<&str> = events.iter().map(|e| e.agent_id.as_str()).collect();
    r.agents = agents.len() as u64;
    if let (Some(lo), Some(hi)) = (
        events.iter().map(|e| e.time_ms).min(),
        events.iter().map(|e| e.time_ms).max(),
    ) {
        r.days = ((hi - lo) as f64 / 86_400_000.0).max(1.0 / 24.0);
    }

    let in_finding: HashSet<&str> = findings.iter().flatten().map(String::as_str).collect();
    r.findings = findings.len() as u64;
    r.benign_findings = findings
        .iter()
        .filter(|f| !f.iter().any(|id| labels.get(id).is_some_and(|l| l.attack)))
        .count() as u64;
    r.benign_findings_per_agent_day = if r.agents == 0 {
        0.0
    } else {
        r.benign_findings as f64 / (r.agents as f64 * r.days)
    };

    // Each attack's events in input (time) order.
    let mut by_attack: HashMap<&str, Vec<&ScoredEvent>> = HashMap::new();
    for e in events {
        if let Some(Label {
            attack: true,
            attack_id: Some(a),
        }) = labels.get(&e.event_id)
        {
            by_attack.entry(a.as_str()).or_default().push(e);
        }
    }
    let mut delays_ev = Vec::new();
    let mut delays_s = Vec::new();
    let mut per_scenario: BTreeMap<&str, Onsets> = BTreeMap::new();
    for a in attacks {
        let s = r.scenarios.entry(a.scenario.clone()).or_default();
        s.total += 1;
        r.attacks += 1;
        let evs = by_attack
            .get(a.attack_id.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if let Some(pos) = evs
            .iter()
            .position(|e| in_finding.contains(e.event_id.as_str()))
        {
            s.detected += 1;
            r.detected += 1;
            delays_ev.push((pos + 1) as f64);
            delays_s.push((evs[pos].time_ms - evs[0].time_ms) as f64 / 1000.0);
            let o = per_scenario.entry(a.scenario.as_str()).or_default();
            o.events.push((pos + 1) as f64);
            o.days.push(
                (evs[pos].time_ms.div_euclid(DAY_MS) - evs[0].time_ms.div_euclid(DAY_MS) + 1)
                    as f64,
            );
            o.shares.push(pos as f64 / evs.len() as f64);
        }
    }
    for (name, mut o) in per_scenario {
        if let Some(s) = r.scenarios.get_mut(name) {
            s.median_delay_events = median(&mut o.events);
            s.median_delay_days = median(&mut o.days);
            s.max_delay_days = o.days.iter().copied().reduce(f64::max).map(|d| d as u32);
            s.median_share_before = median(&mut o.shares);
            s.max_share_before = o.shares.iter().copied().reduce(f64::max);
        }
    }
    r.median_delay_events = median(&mut delays_ev);
    r.median_delay_secs = median(&mut delays_s);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_and_inverted_rankings() {
        let perfect = [(0.9, true), (0.8, true), (0.2, false), (0.1, false)];
        assert_eq!(roc_auc(&perfect), 1.0);
        assert_eq!(average_precision(&perfect), 1.0);
        let inverted = [(0.1, true), (0.2, true), (0.8, false), (0.9, false)];
        assert_eq!(roc_auc(&inverted), 0.0);
        assert!((average_precision(&inverted) - (0.5 * (1.0 / 3.0) + 0.5 * 0.5)).abs() < 1e-9);
        let ties = [(0.5, true), (0.5, false)];
        assert_eq!(roc_auc(&ties), 0.5);
        assert_eq!(average_precision(&ties), 0.5);
    }

    #[test]
    fn detection_and_delay() {
        let ev = |id: &str, t: i64, s: f32| ScoredEvent {
            event_id: id.into(),
            agent_id: "a".into(),
            time_ms: t,
            score: s,
        };
        let events = vec![
            ev("b1", 0, 0.1),
            ev("x1", 1000, 0.2),
            ev("x2", 2000, 0.9),
            ev("y1", 3000, 0.1),
            ev("b2", 86_400_000, 0.7),
        ];
        let mut labels = HashMap::new();
        labels.insert(
            "b1".to_string(),
            Label {
                attack: false,
                attack_id: None,
            },
        );
        labels.insert(
            "b2".to_string(),
            Label {
                attack: false,
                attack_id: None,
            },
        );
        labels.insert(
            "x1".to_string(),
            Label {
                attack: true,
                attack_id: Some("A1".into()),
            },
        );
        labels.insert(
            "x2".to_string(),
            Label {
                attack: true,
                attack_id: Some("A1".into()),
            },
        );
        labels.insert(
            "y1".to_string(),
            Label {
                attack: true,
                attack_id: Some("A2".into()),
            },
        );
        let attacks = vec![
            Attack {
                attack_id: "A1".into(),
                agent_id: "a".into(),
                scenario: "s1".into(),
            },
            Attack {
                attack_id: "A2".into(),
                agent_id: "a".into(),
                scenario: "s2".into(),
            },
        ];
        let findings = vec![vec!["x2".to_string()], vec!["b2".to_string()]];
        let r = evaluate(&events, &labels, &attacks, &findings);
        assert_eq!(r.detected, 1);
        assert_eq!(r.scenarios["s1"].detected, 1);
        assert_eq!(r.scenarios["s2"].detected, 0);
        assert_eq!(r.median_delay_events, Some(2.0));
        assert_eq!(r.median_delay_secs, Some(1.0));
        let s1 = &r.scenarios["s1"];
        assert_eq!(
            (s1.median_delay_days, s1.max_delay_days),
            (Some(1.0), Some(1))
        );
        assert_eq!(s1.median_share_before, Some(0.5));
        assert_eq!(r.benign_findings, 1);
        assert!((r.benign_findings_per_agent_day - 1.0).abs() < 1e-9);
    }
}
