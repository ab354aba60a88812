//! `cinch replay --threads N`: the partitions shared out over N threads.
//!
//! The calling thread reads the input into batches of messages and hands every batch to every
//! worker. Each worker decodes every message (so each knows the time of every event, and when
//! a fleet tick is due) and scores only the events of the partitions it holds; dead letters are
//! the first worker's. At each fleet tick the workers meet at a barrier, merge the fleet
//! changes their engines queued and apply the same merged window, as one thread holding every
//! partition does. Each worker formats its outputs, tagged with the input position of the record
//! that produced them, and a writer thread puts them back in input order: the outputs are byte
//! for byte those of `--partitions N` on one thread.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use super::counts::InputCounts;
use super::input::{InputSpec, Message, MessageKind, for_each_message};
use super::replay::{
    FileOutputs, ReplayError, ReplayOptions, ReplaySummary, Stream, command_signer, prepare,
    source_name, summarise,
};
use super::step::{Outputs, score_line, step};
use crate::config::Settings;
use crate::detect::Verdict;
use crate::engine::Partitioned;
use crate::event::{AccessEvent, Decoder, Rejected};
use crate::fleet::Window;
use crate::output::OutputRecord;
use crate::output::dead_letter::DeadLetter;
use crate::profile::counter::minute_of;
use crate::vocab::FindingFormat;

/// Messages handed to the workers at a time.
const BATCH_MESSAGES: usize = 2048;
/// Bytes of messages handed to the workers at a time (a batch ends at whichever comes first).
const BATCH_BYTES: usize = 1 << 20;
/// Batches queued for each worker, and chunks of output queued from each.
const QUEUE: usize = 4;

/// Messages read from the input, owned, for every worker to decode.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    messages: Vec<Held>,
}

/// A message of a batch.
struct Held {
    line: u64,
    offset: u64,
    start: usize,
    end: usize,
    kind: MessageKind,
}

/// A worker's formatted outputs for one batch (or for the end of the input): lines, each
/// tagged with the input position of the record that produced it.
#[derive(Default)]
struct Chunk {
    marks: Vec<Mark>,
    bytes: Vec<u8>,
}

/// Where some lines of a chunk go, and the record they came from.
#[derive(Clone, Copy)]
struct Mark {
    seq: u64,
    stream: Stream,
    end: usize,
}

/// Positions given to the records of [`Partitioned::finish`], after every input record, in
/// partition order.
const FINISH: u64 = u64::MAX / 2;

/// Outputs formatted into a chunk.
struct ChunkOutputs {
    chunk: Chunk,
    /// The first record that could not be formatted.
    error: Option<ReplayError>,
    seq: u64,
    findings: FindingFormat,
    scores: bool,
    source: String,
    line: u64,
    offset: u64,
}

impl ChunkOutputs {
    fn mark(&mut self, stream: Stream) {
        self.chunk.bytes.push(b'\n');
        self.chunk.marks.push(Mark {
            seq: self.seq,
            stream,
            end: self.chunk.bytes.len(),
        });
    }
}

impl Outputs for ChunkOutputs {
    type Error = ReplayError;

    fn scored(&mut self, ev: &AccessEvent<'_>, verdict: &Verdict) -> Result<(), ReplayError> {
        if self.scores {
            serde_json::to_writer(&mut self.chunk.bytes, &score_line(ev, verdict))
                .map_err(|e| format_error("scores", e))?;
            self.mark(Stream::Scores);
        }
        Ok(())
    }

    fn record(&mut self, rec: &OutputRecord) -> Result<(), ReplayError> {
        rec.write_json(&mut self.chunk.bytes, self.findings)
            .map_err(|e| format_error("out", e))?;
        let stream = match rec {
            OutputRecord::Audit(_) => Stream::Audit,
            _ => Stream::Out,
        };
        self.mark(stream);
        Ok(())
    }

    fn dead_letter(&mut self, rej: &Rejected<'_>) -> Result<(), ReplayError> {
        let dl = DeadLetter::new(rej, &self.source, Some(self.line)).in_input(self.offset);
        serde_json::to_writer(&mut self.chunk.bytes, &dl)
            .map_err(|e| format_error("dead letters", e))?;
        self.mark(Stream::Dead);
        Ok(())
    }
}

/// Hands the chunk gathered so far to the writer. A writer that stopped has its reason (an
/// output it could not write); the workers run on so that none is left waiting at a tick.
fn hand_over(chunks: &SyncSender<Chunk>, outputs: &mut ChunkOutputs) {
    // Refused only once the writer stopped, which reports why.
    let _ = chunks.send(std::mem::take(&mut outputs.chunk));
}

fn format_error(what: &str, e: serde_json::Error) -> ReplayError {
    ReplayError::Write {
        path: what.to_string(),
        source: std::io::Error::other(e),
    }
}

/// Where the workers meet at each fleet tick. Unlike `std::sync::Barrier`, a worker that
/// stops (it panicked) releases the others instead of leaving them waiting for ever.
struct Meeting {
    state: Mutex<MeetingState>,
    turn: Condvar,
    workers: usize,
}

#[derive(Default)]
struct MeetingState {
    windows: Vec<Window>,
    merged: Option<Arc<Window>>,
    round: u64,
    broken: bool,
}

impl Meeting {
    fn new(workers: usize) -> Meeting {
        Meeting {
            state: Mutex::new(MeetingState::default()),
            turn: Condvar::new(),
            workers,
        }
    }

    /// Hands in a worker's window and returns every worker's merged, or `None` when a worker
    /// stopped.
    fn exchange(&self, window: Window) -> Option<Arc<Window>> {
        // A poisoned lock means a worker panicked: the meeting is over, and the panic is raised
        // again when the worker is joined.
        let mut st = self.state.lock().ok()?;
        let round = st.round;
        st.windows.push(window);
        if st.windows.len() == self.workers {
            let windows = std::mem::take(&mut st.windows);
            st.merged = Some(Arc::new(Window::merge(windows)));
            st.round += 1;
            self.turn.notify_all();
        } else {
            while st.round == round && !st.broken {
                // Poisoned: a worker panicked (see above).
                st = self.turn.wait(st).ok()?;
            }
        }
        if st.broken {
            return None;
        }
        st.merged.clone()
    }

    fn stop(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.broken = true;
        }
        self.turn.notify_all();
    }
}

/// Releases the other workers when a worker ends, however it ends.
struct Leaving<'a>(&'a Meeting);

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stop();
        }
    }
}

/// What a worker hands back at the end.
struct Done {
    engine: Partitioned,
    decoder: Decoder,
    counts: InputCounts,
    /// The first record it could not format.
    error: Option<ReplayError>,
}

fn work(
    me: usize,
    mut engine: Partitioned,
    decoder: Decoder,
    batches: Receiver<Arc<Batch>>,
    chunks: SyncSender<Chunk>,
    meeting: &Meeting,
    mut outputs: ChunkOutputs,
) -> Done {
    let _leaving = Leaving(meeting);
    let mut counts = InputCounts::default();
    let mut records: Vec<OutputRecord> = Vec::new();
    let mut take = |engine: &mut Partitioned,
                    outputs: &mut ChunkOutputs,
                    counts: &mut InputCounts,
                    decoded: Result<AccessEvent<'_>, Rejected<'_>>| {
        outputs.seq += 1;
        let mine = match &decoded {
            Ok(ev) => {
                // Every worker sees every event's time, so all meet at the same ticks.
                engine.tick_fleet(minute_of(ev.time_ms), |w| meeting.exchange(w));
                engine.holder(&ev.agent_id).is_some()
            }
            Err(_) => me == 0,
        };
        if mine {
            // Outputs are formatted into memory: the only error is a record that cannot be
            // formatted, kept (the first one) and returned when the worker ends.
            if let Err(e) = step(engine, decoded, counts, &mut records, outputs) {
                outputs.error.get_or_insert(e);
            }
            records.clear();
        }
    };
    for batch in batches {
        for m in &batch.messages {
            outputs.line = m.line;
            outputs.offset = m.offset;
            let msg = Message {
                line: m.line,
                offset: m.offset,
                bytes: &batch.bytes[m.start..m.end],
                kind: m.kind.clone(),
            };
            decoder.decode_input(&msg, &mut |decoded| {
                take(&mut engine, &mut outputs, &mut counts, decoded)
            });
        }
        hand_over(&chunks, &mut outputs);
    }
    decoder.flush_spans(&mut |decoded| take(&mut engine, &mut outputs, &mut counts, decoded));
    hand_over(&chunks, &mut outputs);
    // The records of the end, after every input record, in partition order.
    engine.finish_each(|p, records| {
        outputs.seq = FINISH + p as u64;
        for r in records.iter() {
            if let Err(e) = outputs.record(r) {
                outputs.error.get_or_insert(e);
            }
        }
    });
    hand_over(&chunks, &mut outputs);
    Done {
        engine,
        decoder,
        counts,
        error: outputs.error.take(),
    }
}

/// Writes the workers' chunks in input order: one chunk from each worker at a time, merged by
/// the position of the record each line came from.
fn write(chunks: Vec<Receiver<Chunk>>, mut outputs: FileOutputs) -> Result<(), ReplayError> {
    let mut result = Ok(());
    loop {
        // A closed queue is a worker that has handed over all it had.
        let round: Vec<Chunk> = chunks.iter().filter_map(|c| c.recv().ok()).collect();
        if round.is_empty() {
            break;
        }
        if result.is_err() {
            continue; // drain, so that no worker waits on a full queue
        }
        let mut next = vec![0usize; round.len()];
        loop {
            let pick = round
                .iter()
                .zip(&next)
                .enumerate()
                .filter_map(|(w, (c, &i))| c.marks.get(i).map(|m| (m.seq, w)))
                .min();
            let Some((_, w)) = pick else { break };
            let c = &round[w];
            let i = next[w];
            let start = if i == 0 { 0 } else { c.marks[i - 1].end };
            let m = c.marks[i];
            next[w] += 1;
            if let Err(e) = outputs.write_lines(m.stream, &c.bytes[start..m.end]) {
                result = Err(e);
                break;
            }
        }
    }
    result?;
    outputs.flush()
}

/// Replays with the partitions shared out over `opts.threads` threads.
pub(super) fn replay_sharded(
    settings: Settings,
    opts: &ReplayOptions,
    started: Instant,
) -> Result<ReplaySummary, ReplayError> {
    let threads = opts.threads.max(1);
    let partitions = opts.partitions.max(threads);
    let shared_fleet = !opts.split_fleet;
    let signer = command_signer(opts);
    let outputs = FileOutputs::open(&settings, opts)?;
    let meeting = Meeting::new(threads);
    let spec = InputSpec::from_arg(&opts.input.to_string_lossy());
    let source = source_name(opts);
    std::thread::scope(|scope| {
        let mut to_workers = Vec::new();
        let mut from_workers = Vec::new();
        let mut workers = Vec::new();
        for me in 0..threads {
            let (batch_tx, batch_rx) = sync_channel::<Arc<Batch>>(QUEUE);
            let (chunk_tx, chunk_rx) = sync_channel::<Chunk>(QUEUE);
            to_workers.push(batch_tx);
            from_workers.push(chunk_rx);
            let mut engine = Partitioned::owning(
                settings.clone(),
                partitions,
                |p| p % threads == me,
                shared_fleet,
            );
            prepare(&mut engine, opts, Arc::clone(&signer));
            let out = ChunkOutputs {
                chunk: Chunk::default(),
                error: None,
                seq: 0,
                findings: settings.output.finding_format,
                scores: opts.scores_out.is_some(),
                source: source.clone(),
                line: 0,
                offset: 0,
            };
            let decoder = Decoder::new(settings.decode.decoder());
            let meeting = &meeting;
            workers.push(
                scope.spawn(move || work(me, engine, decoder, batch_rx, chunk_tx, meeting, out)),
            );
        }
        // The outputs may be stdout, which only this thread may hold: it writes, and a
        // thread of its own reads.
        let reader = scope.spawn(move || {
            let mut batch = Batch::default();
            let send = |batch: Batch| {
                let batch = Arc::new(batch);
                for tx in &to_workers {
                    // Refused only by a worker that panicked, which its join reports.
                    let _ = tx.send(Arc::clone(&batch));
                }
            };
            let read = for_each_message(&spec, |msg: Message<'_>| {
                let start = batch.bytes.len();
                batch.bytes.extend_from_slice(msg.bytes);
                batch.messages.push(Held {
                    line: msg.line,
                    offset: msg.offset,
                    start,
                    end: batch.bytes.len(),
                    kind: msg.kind,
                });
                if batch.messages.len() >= BATCH_MESSAGES || batch.bytes.len() >= BATCH_BYTES {
                    send(std::mem::take(&mut batch));
                }
            });
            if !batch.messages.is_empty() {
                send(batch);
            }
            read
        });
        let written = write(from_workers, outputs);
        let read = match reader.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let mut done = Vec::new();
        for w in workers {
            match w.join() {
                Ok(d) => done.push(d),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        read?;
        written?;
        if let Some(e) = done.iter_mut().find_map(|d| d.error.take()) {
            return Err(e);
        }
        let mut summary = ReplaySummary::default();
        for d in &done {
            summary.input.add(&d.counts);
        }
        let engines: Vec<&Partitioned> = done.iter().map(|d| &d.engine).collect();
        summarise(&mut summary, &engines, &done[0].decoder);
        summary.elapsed = started.elapsed();
        Ok(summary)
    })
}
