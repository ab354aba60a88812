//! Replay: decode a file (or stdin) record by record, run the engine in input order, and write
//! findings, score lines and dead letters to files.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::counts::InputCounts;
use std::sync::Arc;

use crate::config::Settings;
use crate::decide::suppress::{Feedback, Suppression};
use crate::detect::Verdict;
use crate::drive::input::{InputSpec, Message, SourceError, for_each_message};
use crate::drive::step::{Outputs, deliver, score_line, step};
use crate::engine::Partitioned;
use crate::event::{AccessEvent, Decoder, Rejected};
use crate::grants::Entitlements;
use crate::output::OutputRecord;
use crate::output::dead_letter::DeadLetter;
use crate::output::sign::Signer;
use crate::vocab::FindingFormat;

/// Errors that stop a replay (bad records never do).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The input could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// An output could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The output.
        path: String,
        /// The cause.
        source: io::Error,
    },
}

/// What to replay and where the results go.
#[derive(Clone, Debug, Default)]
pub struct ReplayOptions {
    /// Input path, or `-` for stdin.
    pub input: PathBuf,
    /// Findings and other decision records; stdout when `None`.
    pub out: Option<PathBuf>,
    /// One score line per valid event.
    pub scores_out: Option<PathBuf>,
    /// Dead letters; same destination as `out` when `None`.
    pub dead_letter: Option<PathBuf>,
    /// Audit records; same destination as `out` when `None`.
    pub audit: Option<PathBuf>,
    /// Entitlements of the agents (unknown for every agent when `None`).
    pub entitlements: Option<Entitlements>,
    /// The key that signs commands (an ephemeral one is made when `None`).
    pub signer: Option<Arc<Signer>>,
    /// Analyst feedback, applied in event-time order.
    pub feedback: Vec<Feedback>,
    /// The learned model to apply, if any.
    pub model: Option<std::sync::Arc<crate::ml::Model>>,
    /// Show a progress spinner on stderr.
    pub progress: bool,
    /// Engines, one per partition, that agents are spread over as a Kafka producer keyed by
    /// agent id would spread them (at least one).
    pub partitions: usize,
    /// Whether the engines hold fleet knowledge each for its own partition instead of merging
    /// it (as instances without a shared fleet would).
    pub split_fleet: bool,
    /// Threads that share the partitions out (at most one: all on the calling thread).
    pub threads: usize,
}

/// Counts of a finished replay. `records == events + dead_letters` always holds.
#[derive(Clone, Debug, Default)]
pub struct ReplaySummary {
    /// Records read, valid events (all of them scored) and dead letters.
    pub input: InputCounts,
    /// Agents seen.
    pub agents: usize,
    /// Events at or above the finding threshold.
    pub anomalous: u64,
    /// Findings written.
    pub findings: u64,
    /// Recommendations written.
    pub recommendations: u64,
    /// Commands written.
    pub commands: u64,
    /// Commands withheld (learning period, cool-down, circuit breaker).
    pub commands_withheld: u64,
    /// Times the circuit breaker opened.
    pub breaker_trips: u64,
    /// Anomalous events hidden by suppressions.
    pub suppressed: u64,
    /// Suppressions in force at the end.
    pub suppressions: Vec<Suppression>,
    /// Key id of the key that signed the commands.
    pub key_id: Option<String>,
    /// Anomalous events folded into an earlier report (same agent, detectors and pattern).
    pub repeats: u64,
    /// Held findings absorbed by a roll-out.
    pub absorbed: u64,
    /// Events later than the allowed lateness.
    pub late: u64,
    /// Agents evicted from memory after `profile.evict_idle_days` without an event.
    pub evicted_agents: u64,
    /// OpenTelemetry spans that were not tool calls, skipped.
    pub skipped_spans: u64,
    /// Tool call spans whose agent was taken from the resource's `service.name`.
    pub agent_from_resource: u64,
    /// Tool call spans released when an ancestor arrived in a later export request.
    pub joined_spans: u64,
    /// Tool call spans released without their ancestor (it did not arrive in time, too many
    /// waited, or the input ended).
    pub join_fallbacks: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        write!(
            f,
            "cinch replay: {} records read: {} events processed, {} dead-lettered{}",
            self.input.records,
            self.input.events,
            self.input.dead_letters,
            self.input.dead_reasons()
        )?;
        let formats: Vec<String> = self
            .input
            .by_format()
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        write!(
            f,
            "\n  formats: {}\n  {} agents{}, {} anomalous events, {} findings ({} repeats of reported behaviour, {} absorbed by a roll-out), {} late events\n  {:.2} s, {:.0} records/s",
            if formats.is_empty() {
                "none".to_string()
            } else {
                formats.join(", ")
            },
            self.agents,
            evicted_note(self.evicted_agents),
            self.anomalous,
            self.findings,
            self.repeats,
            self.absorbed,
            self.late,
            secs,
            self.input.records as f64 / secs
        )?;
        write!(
            f,
            "\n  {} recommendations, {} commands ({} withheld), circuit breaker opened {} times, {} events suppressed",
            self.recommendations,
            self.commands,
            self.commands_withheld,
            self.breaker_trips,
            self.suppressed
        )?;
        if self.skipped_spans > 0
            || self.agent_from_resource > 0
            || self.joined_spans > 0
            || self.join_fallbacks > 0
        {
            write!(
                f,
                "\n  OpenTelemetry: {} spans that are not tool calls skipped; {} tool calls took their agent from the resource; {} joined with an ancestor from a later request, {} released without it",
                self.skipped_spans,
                self.agent_from_resource,
                self.joined_spans,
                self.join_fallbacks
            )?;
        }
        if let Some(k) = &self.key_id
            && self.commands > 0
        {
            write!(f, "\n  commands signed with key {k}")?;
        }
        for s in &self.suppressions {
            write!(
                f,
                "\n  suppression {}: agent {}, {} on {}, by {} ({}), until {}, hid {} findings",
                s.suppression_id,
                s.agent_id,
                s.detectors
                    .iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join("+"),
                s.patterns.join(", "),
                s.analyst,
                s.reason,
                crate::output::time::rfc3339_ms(s.expires_ms),
                s.hidden_findings
            )?;
        }
        Ok(())
    }
}

struct Sink {
    path: String,
    w: BufWriter<Box<dyn Write>>,
}

impl Sink {
    fn open(path: Option<&Path>) -> Result<Sink, ReplayError> {
        let (name, w): (String, Box<dyn Write>) = match path {
            None => ("stdout".into(), Box::new(io::stdout().lock())),
            Some(p) if p.as_os_str() == "-" => ("stdout".into(), Box::new(io::stdout().lock())),
            Some(p) => {
                let f = File::create(p).map_err(|source| ReplayError::Write {
                    path: p.display().to_string(),
                    source,
                })?;
                (p.display().to_string(), Box::new(f))
            }
        };
        Ok(Sink {
            path: name,
            w: BufWriter::with_capacity(1 << 16, w),
        })
    }

    fn line<T: serde::Serialize>(&mut self, v: &T) -> Result<(), ReplayError> {
        serde_json::to_writer(&mut self.w, v)
            .map_err(io::Error::from)
            .and_then(|_| self.w.write_all(b"\n"))
            .map_err(|source| ReplayError::Write {
                path: self.path.clone(),
                source,
            })
    }

    fn record(&mut self, rec: &OutputRecord, findings: FindingFormat) -> Result<(), ReplayError> {
        rec.write_json(&mut self.w, findings)
            .map_err(io::Error::from)
            .and_then(|_| self.w.write_all(b"\n"))
            .map_err(|source| ReplayError::Write {
                path: self.path.clone(),
                source,
            })
    }

    fn flush(&mut self) -> Result<(), ReplayError> {
        self.w.flush().map_err(|source| ReplayError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

/// The input's name in dead letters.
pub(super) fn source_name(opts: &ReplayOptions) -> String {
    if opts.input.as_os_str() == "-" {
        "stdin".to_string()
    } else {
        opts.input.display().to_string()
    }
}

/// Which output a line goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stream {
    /// Findings, recommendations and commands (`--out`).
    Out,
    /// Audit records (`--audit`, else `--out`).
    Audit,
    /// Score lines (`--scores-out`).
    Scores,
    /// Dead letters (`--dead-letter`, else `--out`).
    Dead,
}

/// Where a replay's outputs go: decision records to `out` (audit records to `audit` when
/// given), score lines to `scores`, dead letters to `dead` (else `out`).
pub(super) struct FileOutputs {
    out: Sink,
    audit: Option<Sink>,
    scores: Option<Sink>,
    dead: Option<Sink>,
    findings: FindingFormat,
    /// The input's name, and the line and input offset of the message being decoded, for dead
    /// letters.
    source: String,
    line: u64,
    offset: u64,
}

impl Outputs for FileOutputs {
    type Error = ReplayError;

    fn scored(&mut self, ev: &AccessEvent<'_>, verdict: &Verdict) -> Result<(), ReplayError> {
        match self.scores.as_mut() {
            Some(s) => s.line(&score_line(ev, verdict)),
            None => Ok(()),
        }
    }

    fn record(&mut self, rec: &OutputRecord) -> Result<(), ReplayError> {
        match (rec, self.audit.as_mut()) {
            (OutputRecord::Audit(_), Some(a)) => a.record(rec, self.findings),
            _ => self.out.record(rec, self.findings),
        }
    }

    fn dead_letter(&mut self, rej: &Rejected<'_>) -> Result<(), ReplayError> {
        let dl = DeadLetter::new(rej, &self.source, Some(self.line)).in_input(self.offset);
        match self.dead.as_mut() {
            Some(d) => d.line(&dl),
            None => self.out.line(&dl),
        }
    }
}

impl FileOutputs {
    /// Opens the outputs the options name.
    pub(super) fn open(
        settings: &Settings,
        opts: &ReplayOptions,
    ) -> Result<FileOutputs, ReplayError> {
        let open = |p: &Option<PathBuf>| p.as_deref().map(|p| Sink::open(Some(p))).transpose();
        Ok(FileOutputs {
            out: Sink::open(opts.out.as_deref())?,
            audit: open(&opts.audit)?,
            scores: open(&opts.scores_out)?,
            dead: open(&opts.dead_letter)?,
            findings: settings.output.finding_format,
            source: source_name(opts),
            line: 0,
            offset: 0,
        })
    }

    /// Writes bytes already formatted as lines to one of the outputs.
    pub(super) fn write_lines(&mut self, stream: Stream, bytes: &[u8]) -> Result<(), ReplayError> {
        let sink = match stream {
            Stream::Out => &mut self.out,
            Stream::Audit => self.audit.as_mut().unwrap_or(&mut self.out),
            Stream::Scores => match self.scores.as_mut() {
                Some(s) => s,
                None => return Ok(()),
            },
            Stream::Dead => self.dead.as_mut().unwrap_or(&mut self.out),
        };
        sink.w
            .write_all(bytes)
            .map_err(|source| ReplayError::Write {
                path: sink.path.clone(),
                source,
            })
    }

    pub(super) fn flush(&mut self) -> Result<(), ReplayError> {
        self.out.flush()?;
        for s in [&mut self.audit, &mut self.scores, &mut self.dead]
            .into_iter()
            .flatten()
        {
            s.flush()?;
        }
        Ok(())
    }
}

/// Runs the engine over the input and writes the results.
pub fn replay(settings: Settings, opts: &ReplayOptions) -> Result<ReplaySummary, ReplayError> {
    let started = Instant::now();
    if opts.threads > 1 {
        return super::sharded::replay_sharded(settings, opts, started);
    }
    let decoder = Decoder::new(settings.decode.decoder());
    let mut engine = Partitioned::new(settings.clone(), opts.partitions, !opts.split_fleet);
    prepare(&mut engine, opts, command_signer(opts));
    let mut outputs = FileOutputs::open(&settings, opts)?;
    let spec = InputSpec::from_arg(&opts.input.to_string_lossy());
    let bar = opts.progress.then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        b
    });

    let mut summary = ReplaySummary::default();
    let mut records: Vec<OutputRecord> = Vec::new();
    let mut err: Option<ReplayError> = None;
    for_each_message(&spec, |msg: Message<'_>| {
        if err.is_some() {
            return;
        }
        outputs.line = msg.line;
        outputs.offset = msg.offset;
        decoder.decode_input(&msg, &mut |decoded| {
            if err.is_some() {
                return;
            }
            let res = step(
                &mut engine,
                decoded,
                &mut summary.input,
                &mut records,
                &mut outputs,
            );
            if let Err(e) = res {
                err = Some(e);
            }
            if let Some(b) = &bar
                && summary.input.records % 65_536 == 0
            {
                b.set_message(format!(
                    "{} records, {} findings",
                    summary.input.records,
                    engine.stats().findings
                ));
                b.tick();
            }
        });
    })?;
    if let Some(e) = err {
        return Err(e);
    }
    // Tool calls still waiting for ancestors that never came are scored as they are.
    decoder.flush_spans(&mut |decoded| {
        if err.is_none()
            && let Err(e) = step(
                &mut engine,
                decoded,
                &mut summary.input,
                &mut records,
                &mut outputs,
            )
        {
            err = Some(e);
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    engine.finish(&mut records);
    deliver(&mut records, &mut outputs)?;
    outputs.flush()?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    summarise(&mut summary, &[&engine], &decoder);
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// The key the options give, or an ephemeral one (the summary names it).
pub(super) fn command_signer(opts: &ReplayOptions) -> Arc<Signer> {
    opts.signer
        .clone()
        .unwrap_or_else(|| Arc::new(crate::drive::files::fresh_signer()))
}

/// Hands the engines what the options give: entitlements, the signer, feedback, the model.
pub(super) fn prepare(engine: &mut Partitioned, opts: &ReplayOptions, signer: Arc<Signer>) {
    engine.set_explain_all(opts.scores_out.is_some());
    if let Some(e) = &opts.entitlements {
        engine.set_entitlements(Arc::new(e.clone()));
    }
    engine.set_signer(signer);
    for fb in &opts.feedback {
        engine.add_feedback(fb.clone());
    }
    engine.set_model(opts.model.clone());
}

/// Fills a summary's engine and decoder counts from `engines` (the shares of the partitions
/// that threads held) and the decoder.
pub(super) fn summarise(summary: &mut ReplaySummary, engines: &[&Partitioned], decoder: &Decoder) {
    let mut st = crate::engine::EngineStats::default();
    for engine in engines {
        st.add(&engine.stats());
        summary.agents += engine.agents();
        summary
            .suppressions
            .extend(engine.suppressions().into_iter().cloned());
        if summary.key_id.is_none() {
            summary.key_id = engine.signer().map(|s| s.key_id().to_string());
        }
    }
    summary.anomalous = st.anomalous;
    summary.findings = st.findings;
    summary.recommendations = st.recommendations;
    summary.commands = st.commands;
    summary.commands_withheld = st.commands_withheld;
    summary.breaker_trips = st.breaker_trips;
    summary.suppressed = st.suppressed;
    summary.repeats = st.repeats;
    summary.absorbed = st.absorbed;
    summary.late = st.late;
    summary.evicted_agents = st.evicted;
    summary.skipped_spans = decoder.skipped_spans();
    summary.agent_from_resource = decoder.agent_from_resource();
    (_, summary.joined_spans, summary.join_fallbacks) = decoder.join_counts();
}

/// `" (N more evicted after idling)"` when agents were evicted, else nothing.
pub(crate) fn evicted_note(evicted: u64) -> String {
    if evicted == 0 {
        String::new()
    } else {
        format!(" ({evicted} more evicted after idling)")
    }
}
