//! `cinch eval`: detection quality on a labelled dataset.

use std::fmt::Write as _;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::eval::metrics::{self, Report, ScoredEvent};
use crate::eval::{
    AblationRow, Scorer, ablation, load_dataset, read_attacks, read_labels, run as run_scorer,
};

/// Arguments of `cinch eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// A dataset directory written by `cinch simulate`: the engine runs over it itself.
    #[arg(long, conflicts_with_all = ["scores", "findings"])]
    pub dataset: Option<PathBuf>,
    /// Score lines written by `cinch replay --scores-out`.
    #[arg(long, requires_all = ["findings", "labels", "attacks"])]
    pub scores: Option<PathBuf>,
    /// Findings written by `cinch replay --out`.
    #[arg(long)]
    pub findings: Option<PathBuf>,
    /// Labels (`labels.csv`); default: the dataset's.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Attacks (`attacks.csv`); default: the dataset's.
    #[arg(long)]
    pub attacks: Option<PathBuf>,
    /// Settings file (TOML) for the engine.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Model file from `cinch train` to apply (switches the learned models on; overrides
    /// `ml.model_path`). With `--ablation`, a row without it is added.
    #[arg(long, requires = "dataset")]
    pub model: Option<PathBuf>,
    /// Also run with each detector switched off in turn, and the naive baseline.
    #[arg(long, requires = "dataset")]
    pub ablation: bool,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Runs the subcommand.
pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let mut settings = super::load_settings(args.config.as_deref())?;
    if let Some(dir) = &args.dataset {
        let model = super::load_model(&mut settings, args.model.as_deref(), "cinch eval")?
            .map(std::sync::Arc::new);
        let ds = load_dataset(dir).with_context(|| format!("loading dataset {}", dir.display()))?;
        let rows = if args.ablation {
            ablation(&ds, &settings, model.as_ref())
        } else {
            let scorer = match model {
                Some(m) => Scorer::Learned(Box::new(settings), m),
                None => Scorer::Engine(Box::new(settings)),
            };
            vec![AblationRow {
                variant: "all detectors".into(),
                report: run_scorer(&ds, &scorer),
            }]
        };
        if args.json {
            println!("{}", serde_json::to_string_pretty(&rows)?);
        } else {
            print!("{}", render_report(&rows[0].report));
            if rows.len() > 1 {
                print!("\n{}", render_ablation(&rows));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(scores), Some(findings), Some(labels), Some(attacks)) =
        (&args.scores, &args.findings, &args.labels, &args.attacks)
    else {
        bail!("give either --dataset DIR, or --scores, --findings, --labels and --attacks");
    };
    let events = read_scores(scores)?;
    let found = read_findings(findings)?;
    let report = metrics::evaluate(
        &events,
        &read_labels(labels)?,
        &read_attacks(attacks)?,
        &found,
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_report(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn read_lines(
    path: &Path,
) -> anyhow::Result<impl Iterator<Item = (usize, std::io::Result<String>)>> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(std::io::BufReader::new(f).lines().enumerate())
}

fn read_scores(path: &Path) -> anyhow::Result<Vec<ScoredEvent>> {
    let mut out = Vec::new();
    for (i, line) in read_lines(path)? {
        let line = line?;
        let v: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))?;
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let (Some(event_id), Some(agent_id), Some(score)) = (
            field("event_id"),
            field("agent_id"),
            v.get("score").and_then(|s| s.as_f64()),
        ) else {
            bail!(
                "{}:{}: a score line needs event_id, agent_id and score",
                path.display(),
                i + 1
            );
        };
        let time_ms = v
            .get("time")
            .and_then(|t| t.as_str())
            .and_then(crate::event::time::parse_rfc3339_ms)
            .unwrap_or(0);
        out.push(ScoredEvent {
            event_id,
            agent_id,
            time_ms,
            score: score as f32,
        });
    }
    Ok(out)
}

fn read_findings(path: &Path) -> anyhow::Result<Vec<Vec<String>>> {
    let mut out = Vec::new();
    for (i, line) in read_lines(path)? {
        let line = line?;
        let v: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))?;
        if v.get("kind").and_then(|k| k.as_str()) != Some("finding") {
            continue;
        }
        let ids = v.get("event_ids").and_then(|e| e.as_array()).map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect::<Vec<_>>()
        });
        // A finding without `event_ids` names no events.
        out.push(ids.unwrap_or_default());
    }
    Ok(out)
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.1}"))
}

/// The report as a table.
pub(crate) fn render_report(r: &Report) -> String {
    let mut s = String::new();
    // A String never fails to take a write.
    let _ = write_report(&mut s, r);
    s
}

/// Writes the report's table to `s`.
fn write_report(s: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(
        s,
        "events {} (attack {}), agents {}, days {:.1}",
        r.events, r.attack_events, r.agents, r.days
    )?;
    writeln!(s, "ROC-AUC {:.4}   PR-AUC {:.4}", r.roc_auc, r.pr_auc)?;
    writeln!(
        s,
        "attacks detected {}/{} ({:.1}%), findings {} of which benign {} ({:.3} per agent-day)",
        r.detected,
        r.attacks,
        100.0 * r.detection_rate(),
        r.findings,
        r.benign_findings,
        r.benign_findings_per_agent_day
    )?;
    writeln!(
        s,
        "median detection delay: {} events, {} seconds",
        opt(r.median_delay_events),
        opt(r.median_delay_secs)
    )?;
    writeln!(
        s,
        "\n{:<28} {:>9} {:>8} {:>13} {:>16} {:>26}",
        "scenario",
        "detected",
        "rate",
        "median delay",
        "day (median/max)",
        "events before (median/max)"
    )?;
    for (name, sc) in &r.scenarios {
        let rate = if sc.total == 0 {
            0.0
        } else {
            100.0 * sc.detected as f64 / sc.total as f64
        };
        let pct = |v: Option<f64>| v.map_or("-".into(), |x| format!("{:.0}%", 100.0 * x));
        writeln!(
            s,
            "{:<28} {:>4}/{:<4} {:>7.1}% {:>13} {:>16} {:>26}",
            name,
            sc.detected,
            sc.total,
            rate,
            opt(sc.median_delay_events),
            format!(
                "{}/{}",
                opt(sc.median_delay_days),
                sc.max_delay_days.map_or("-".into(), |d| d.to_string())
            ),
            format!(
                "{}/{}",
                pct(sc.median_share_before),
                pct(sc.max_share_before)
            )
        )?;
    }
    if let Some(resp) = &r.response {
        write_response(s, resp)?;
    }
    Ok(())
}

/// Commands and recommendations.
fn write_response(s: &mut String, r: &crate::eval::response::ResponseReport) -> std::fmt::Result {
    writeln!(
        s,
        "\ncommands {} ({} on findings without attack events); benign agents {}: {} commands, {:.4} per agent-day",
        r.commands,
        r.benign_commands,
        r.benign_agents,
        r.commands_on_benign_agents,
        r.benign_agent_commands_per_agent_day
    )?;
    let by_action: Vec<String> = r
        .benign_agent_actions
        .iter()
        .map(|(a, n)| format!("{a} {n}"))
        .collect();
    writeln!(
        s,
        "commands on benign agents by step: {}; benign agents with a command above narrow: {}",
        if by_action.is_empty() {
            "none".to_owned()
        } else {
            by_action.join(", ")
        },
        r.benign_agents_above_narrow
    )?;
    writeln!(
        s,
        "{:<28} {:>9} {:>14} {:>22}  actions",
        "scenario", "contained", "unused grant", "revoke_grant on it"
    )?;
    for (name, sc) in &r.scenarios {
        let actions: Vec<String> = sc.actions.iter().map(|(a, n)| format!("{a} {n}")).collect();
        writeln!(
            s,
            "{:<28} {:>4}/{:<4} {:>14} {:>22}  {}",
            name,
            sc.contained,
            sc.attacks,
            sc.fresh_grant_attacks,
            format!("{}/{}", sc.revoke_grant_on_fresh, sc.fresh_grant_attacks),
            actions.join(", ")
        )?;
    }
    if r.grants > 0 {
        writeln!(
            s,
            "\nrecommendations: {} grants, {} permissions (action x resource pattern); {} grants to remove, {} to narrow; {} permissions removed ({:.1}%)",
            r.grants,
            r.permissions,
            r.grants_removed,
            r.grants_narrowed,
            r.permissions_removed,
            100.0 * r.permissions_removed_share
        )?;
        writeln!(
            s,
            "recommendations that would have blocked a later benign event: {} ({} events)",
            r.recommendations_blocking_benign, r.benign_events_blocked
        )?;
    }
    Ok(())
}

/// The ablation as a table.
pub(crate) fn render_ablation(rows: &[AblationRow]) -> String {
    let mut s = String::new();
    // A String never fails to take a write.
    let _ = write_ablation(&mut s, rows);
    s
}

/// Writes the ablation's table to `s`.
fn write_ablation(s: &mut String, rows: &[AblationRow]) -> std::fmt::Result {
    writeln!(
        s,
        "{:<27} {:>7} {:>7} {:>9} {:>11} {:>12} {:>7}",
        "variant", "PR-AUC", "ROC-AUC", "detected", "worst scen.", "benign/a-d", "delay"
    )?;
    for row in rows {
        let r = &row.report;
        writeln!(
            s,
            "{:<27} {:>7.4} {:>7.4} {:>8.1}% {:>10.1}% {:>12.3} {:>7}",
            row.variant,
            r.pr_auc,
            r.roc_auc,
            100.0 * r.detection_rate(),
            100.0 * r.worst_scenario_rate(),
            r.benign_findings_per_agent_day,
            opt(r.median_delay_events)
        )?;
    }
    Ok(())
}
