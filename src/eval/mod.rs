//! Evaluation of detection quality on a labelled dataset (as written by `cinch simulate`), and
//! the ablation that shows what each detector contributes.

pub(crate) mod metrics;
pub(crate) mod naive;
pub(crate) mod response;
pub mod trajectories;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::config::Settings;
use crate::decide::Decider;
use crate::detect::Verdict;
use crate::drive::input::{InputSpec, for_each_message};
use crate::engine::Engine;
use crate::event::{AccessEvent, DecodeConfig, Decoder};
use crate::output::OutputRecord;
use crate::vocab::DetectorId;
use metrics::{Attack, Label, Report, ScoredEvent};

/// Errors reading a dataset.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be read.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A file has an unexpected shape.
    #[error("{path}:{line}: {message}")]
    Format {
        /// The file.
        path: String,
        /// Line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
}

/// A labelled dataset loaded in memory.
pub struct Dataset {
    /// Events in file order.
    pub events: Vec<AccessEvent<'static>>,
    /// Labels by event id.
    pub labels: HashMap<String, Label>,
    /// Attacks.
    pub attacks: Vec<Attack>,
    /// Records that failed to decode.
    pub rejected: u64,
    /// The entitlements written with the dataset, if any.
    pub entitlements: Option<crate::grants::Entitlements>,
}

fn read_csv(path: &Path) -> Result<Vec<csv::StringRecord>, EvalError> {
    let mut rdr = csv::Reader::from_path(path).map_err(|e| EvalError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    rdr.records()
        .enumerate()
        .map(|(i, r)| {
            r.map_err(|e| EvalError::Format {
                path: path.display().to_string(),
                line: i as u64 + 2,
                message: e.to_string(),
            })
        })
        .collect()
}

/// Reads `labels.csv` (event_id,label,attack_id,scenario).
pub(crate) fn read_labels(path: &Path) -> Result<HashMap<String, Label>, EvalError> {
    let mut labels = HashMap::new();
    for (i, r) in read_csv(path)?.into_iter().enumerate() {
        let (Some(id), Some(label)) = (r.get(0), r.get(1)) else {
            return Err(EvalError::Format {
                path: path.display().to_string(),
                line: i as u64 + 2,
                message: "expected event_id,label,...".into(),
            });
        };
        let attack = match label {
            "attack" => true,
            "benign" => false,
            other => {
                return Err(EvalError::Format {
                    path: path.display().to_string(),
                    line: i as u64 + 2,
                    message: format!("label must be attack or benign, got {other:?}"),
                });
            }
        };
        let attack_id = r.get(2).filter(|s| !s.is_empty()).map(str::to_string);
        labels.insert(id.to_string(), Label { attack, attack_id });
    }
    Ok(labels)
}

/// Reads `attacks.csv` (attack_id,agent_id,scenario,...).
pub(crate) fn read_attacks(path: &Path) -> Result<Vec<Attack>, EvalError> {
    read_csv(path)?
        .into_iter()
        .enumerate()
        .map(|(i, r)| match (r.get(0), r.get(1), r.get(2)) {
            (Some(a), Some(g), Some(s)) => Ok(Attack {
                attack_id: a.into(),
                agent_id: g.into(),
                scenario: s.into(),
            }),
            _ => Err(EvalError::Format {
                path: path.display().to_string(),
                line: i as u64 + 2,
                message: "expected attack_id,agent_id,scenario,...".into(),
            }),
        })
        .collect()
}

/// Finds the events file of a dataset directory: `events.jsonl[.gz]` (native events), else
/// `spans.jsonl[.gz]` (OpenTelemetry spans of `cinch simulate --kind llm`).
pub(crate) fn events_path(dir: &Path) -> PathBuf {
    [
        "events.jsonl.gz",
        "events.jsonl",
        "spans.jsonl.gz",
        "spans.jsonl",
    ]
    .iter()
    .map(|f| dir.join(f))
    .find(|p| p.exists())
    .unwrap_or_else(|| dir.join("events.jsonl"))
}

/// Loads a dataset directory written by `cinch simulate`.
pub fn load_dataset(dir: &Path) -> Result<Dataset, EvalError> {
    let path = events_path(dir);
    let decoder = Decoder::new(DecodeConfig::default());
    let mut events = Vec::new();
    let mut rejected = 0;
    for_each_message(&InputSpec::file(&path), |msg| {
        decoder.decode_input(&msg, &mut |d| match d {
            Ok(ev) => events.push(ev.into_owned()),
            Err(_) => rejected += 1,
        })
    })
    .map_err(|e| EvalError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    decoder.flush_spans(&mut |d| {
        if let Ok(ev) = d {
            events.push(ev.into_owned());
        }
    });
    let ents_path = dir.join("entitlements.json");
    let entitlements = if ents_path.exists() {
        Some(
            crate::drive::files::entitlements(&ents_path).map_err(|e| EvalError::Read {
                path: ents_path.display().to_string(),
                message: e.to_string(),
            })?,
        )
    } else {
        None
    };
    Ok(Dataset {
        events,
        labels: read_labels(&dir.join("labels.csv"))?,
        attacks: read_attacks(&dir.join("attacks.csv"))?,
        rejected,
        entitlements,
    })
}

/// Which scorer to evaluate.
#[derive(Clone, Debug)]
pub enum Scorer {
    /// The engine with these settings.
    Engine(Box<Settings>),
    /// The engine with these settings and a learned model.
    Learned(Box<Settings>, std::sync::Arc<crate::ml::Model>),
    /// The naive baseline: per-agent frequency rarity of action and resource.
    Naive(Box<Settings>),
}

/// Runs a scorer over the dataset and evaluates it.
pub fn run(ds: &Dataset, scorer: &Scorer) -> Report {
    let mut scored = Vec::with_capacity(ds.events.len());
    let mut out: Vec<OutputRecord> = Vec::new();
    match scorer {
        Scorer::Engine(settings) | Scorer::Learned(settings, _) => {
            let mut engine = Engine::new((**settings).clone());
            engine.set_explain_all(false);
            engine.set_signer(Arc::new(crate::drive::files::fresh_signer()));
            if let Scorer::Learned(_, m) = scorer {
                engine.set_model(Some(m.clone()));
            }
            if let Some(e) = &ds.entitlements {
                engine.set_entitlements(Arc::new(e.clone()));
            }
            for ev in &ds.events {
                let v = engine.process(ev, &mut out);
                scored.push(scored_event(ev, &v));
            }
            engine.finish(&mut out);
        }
        Scorer::Naive(settings) => {
            let mut naive = naive::Naive::default();
            let mut decider = Decider::default();
            // The naive scorer has no fleet: none of its findings is held for a roll-out.
            let closing = crate::decide::Closing::new(&settings.commands, &|_: u64, _: u64| 0u32);
            for ev in &ds.events {
                let v = naive.score(ev);
                decider.advance(&settings.decide, &closing, ev.time_ms, &mut out);
                decider.on_event(
                    &settings.decide,
                    ev,
                    &ev.resource,
                    &v,
                    ev.grant.as_deref(),
                    false,
                    &mut out,
                );
                scored.push(scored_event(ev, &v));
            }
            let last = ds.events.iter().map(|e| e.time_ms).max().unwrap_or(0);
            decider.finish(&settings.decide, &closing, last, &mut out);
        }
    }
    let findings: Vec<Vec<String>> = out
        .iter()
        .filter_map(|r| match r {
            OutputRecord::Finding(f) => Some(f.event_ids.clone()),
            _ => None,
        })
        .collect();
    let mut report = metrics::evaluate(&scored, &ds.labels, &ds.attacks, &findings);
    if !matches!(scorer, Scorer::Naive(_)) {
        report.response = Some(response::evaluate(
            &ds.events,
            &ds.labels,
            &ds.attacks,
            ds.entitlements.as_ref(),
            &out,
            report.days,
        ));
    }
    report
}

fn scored_event(ev: &AccessEvent<'_>, v: &Verdict) -> ScoredEvent {
    ScoredEvent {
        event_id: ev.event_id.to_string(),
        agent_id: ev.agent_id.to_string(),
        time_ms: ev.time_ms,
        score: v.score,
    }
}

/// One row of an ablation.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct AblationRow {
    /// What was run: `all`, `without <detector>`, `naive baseline`.
    pub variant: String,
    /// Its report.
    pub report: Report,
}

/// The full engine, the engine with each detector off in turn, and the naive baseline.
///
/// With a model, the first row applies it, and a row "without the learned model" runs the
/// statistical detectors alone (no learned groups, `model` detector or calibration).
pub(crate) fn ablation(
    ds: &Dataset,
    settings: &Settings,
    model: Option<&std::sync::Arc<crate::ml::Model>>,
) -> Vec<AblationRow> {
    let scorer = |s: Settings| match model {
        Some(m) => Scorer::Learned(Box::new(s), m.clone()),
        None => Scorer::Engine(Box::new(s)),
    };
    let mut rows = vec![AblationRow {
        variant: "all detectors".into(),
        report: run(ds, &scorer(settings.clone())),
    }];
    for id in DetectorId::ALL {
        if !settings.detect.enabled.contains(&id) {
            continue;
        }
        if id == DetectorId::Model {
            if model.is_some() {
                rows.push(AblationRow {
                    variant: "without the learned model".into(),
                    report: run(ds, &Scorer::Engine(Box::new(settings.clone()))),
                });
            }
            continue;
        }
        let mut s = settings.clone();
        s.detect.enabled.retain(|d| *d != id);
        rows.push(AblationRow {
            variant: format!("without {}", id.as_str()),
            report: run(ds, &scorer(s)),
        });
    }
    rows.push(AblationRow {
        variant: "naive baseline".into(),
        report: run(ds, &Scorer::Naive(Box::new(settings.clone()))),
    });
    rows
}
