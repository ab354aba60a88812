//! One step of every driver: a decoded record through the engine to its outputs, counted.
//!
//! Replay (files) and the Kafka worker both call [`step`]; they differ only in where the
//! outputs go ([`Outputs`]).

use crate::detect::Verdict;
use crate::drive::counts::InputCounts;
use crate::engine::{Engine, Partitioned};
use crate::event::{AccessEvent, Rejected};
use crate::output::OutputRecord;
use crate::output::score::ScoreLine;

/// Where a driver's outputs go.
pub trait Outputs {
    /// Why an output could not be delivered (stops the driver).
    type Error;

    /// Called once per scored event with its verdict (score lines, per-event metrics).
    fn scored(&mut self, ev: &AccessEvent<'_>, verdict: &Verdict) -> Result<(), Self::Error>;

    /// A record the engine completed (finding, recommendation, command, audit).
    fn record(&mut self, rec: &OutputRecord) -> Result<(), Self::Error>;

    /// A record that could not be decoded.
    fn dead_letter(&mut self, rej: &Rejected<'_>) -> Result<(), Self::Error>;
}

/// What scores events: one engine, or engines per partition.
pub trait Process {
    /// Scores one event and appends the records it completes to `out`.
    fn process(&mut self, ev: &AccessEvent<'_>, out: &mut Vec<OutputRecord>) -> Verdict;
}

impl Process for Engine {
    fn process(&mut self, ev: &AccessEvent<'_>, out: &mut Vec<OutputRecord>) -> Verdict {
        Engine::process(self, ev, out)
    }
}

impl Process for Partitioned {
    fn process(&mut self, ev: &AccessEvent<'_>, out: &mut Vec<OutputRecord>) -> Verdict {
        Partitioned::process(self, ev, out)
    }
}

/// Takes one decoded record through the engine: a valid event is scored and what it completes
/// is delivered; a rejected record is dead-lettered. Either way it is counted in `counts`.
/// `records` is scratch space, empty between calls.
pub fn step<P: Process, O: Outputs>(
    engine: &mut P,
    decoded: Result<AccessEvent<'_>, Rejected<'_>>,
    counts: &mut InputCounts,
    records: &mut Vec<OutputRecord>,
    outputs: &mut O,
) -> Result<(), O::Error> {
    match decoded {
        Ok(ev) => {
            counts.event();
            counts.scored(ev.format);
            let verdict = engine.process(&ev, records);
            outputs.scored(&ev, &verdict)?;
            deliver(records, outputs)
        }
        Err(rej) => {
            counts.dead_letter(rej.reason.code());
            outputs.dead_letter(&rej)
        }
    }
}

/// Delivers the records in `records` in order, leaving it empty.
pub fn deliver<O: Outputs>(
    records: &mut Vec<OutputRecord>,
    outputs: &mut O,
) -> Result<(), O::Error> {
    let res = records.iter().try_for_each(|r| outputs.record(r));
    records.clear();
    res
}

/// A score line for a scored event.
pub fn score_line<'a>(ev: &'a AccessEvent<'_>, verdict: &'a Verdict) -> ScoreLine<'a> {
    ScoreLine {
        event_id: &ev.event_id,
        agent_id: &ev.agent_id,
        time: crate::output::time::rfc3339_ms_inline(ev.time_ms),
        score: verdict.score,
        reasons: &verdict.reasons,
    }
}
