//! Sessions as OpenTelemetry GenAI spans: one OTLP JSON export request a line
//! (`{"resourceSpans": [...]}`, as the Collector's file exporter writes), holding one session's
//! `invoke_agent` span, its `chat` spans and its `execute_tool` spans; and `labels.csv`, a row
//! per `execute_tool` span in the order the engine reads them.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

use super::super::SimError;
use super::Timed;
use super::content::input_messages;
use super::tools::push_str;
use super::world::{Agent, World};

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SimError + '_ {
    move |source| SimError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn create(path: &Path) -> Result<BufWriter<File>, SimError> {
    File::create(path)
        .map(|f| BufWriter::with_capacity(1 << 20, f))
        .map_err(io_err(path))
}

enum Sink {
    Plain(BufWriter<File>),
    Gzip(GzEncoder<BufWriter<File>>),
}

impl Sink {
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(buf),
            Sink::Gzip(w) => w.write_all(buf),
        }
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            Sink::Plain(mut w) => w.flush(),
            Sink::Gzip(w) => w.finish()?.flush(),
        }
    }
}

/// A bijection of `u64` (the SplitMix64 finaliser): distinct keys give distinct ids.
fn mix(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Ids of one run: span ids unique per (agent, day, span number), trace ids per session.
pub(crate) struct Ids {
    span_key: u64,
    trace_key: (u64, u64),
}

impl Ids {
    /// The ids of a run with `seed`.
    pub(crate) fn new(seed: u64) -> Ids {
        Ids {
            span_key: mix(seed ^ 0x5350_414e),
            trace_key: (mix(seed ^ 0x5452_4331), mix(seed ^ 0x5452_4332)),
        }
    }

    fn key(agent: u32, day: u32, n: u32) -> u64 {
        (u64::from(agent) << 40) | (u64::from(day & 0xffff) << 24) | u64::from(n & 0xff_ffff)
    }

    /// The id of span `n` of an agent's day.
    pub(crate) fn span(&self, agent: u32, day: u32, n: u32) -> u64 {
        // XOR with a constant then a bijection: still one id per key.
        mix(Ids::key(agent, day, n) ^ self.span_key)
    }

    /// The trace id of session `n` of an agent's day.
    pub(crate) fn trace(&self, agent: u32, day: u32, n: u32) -> (u64, u64) {
        let k = Ids::key(agent, day, n);
        (mix(k ^ self.trace_key.0), mix(k ^ self.trace_key.1))
    }
}

fn hex16(out: &mut String, v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..16).rev() {
        out.push(HEX[((v >> (i * 4)) & 0xf) as usize] as char);
    }
}

fn attr(out: &mut String, first: &mut bool, key: &str, value: &str) {
    if !*first {
        out.push_str(", ");
    }
    *first = false;
    out.push_str("{\"key\": \"");
    out.push_str(key);
    out.push_str("\", \"value\": {\"stringValue\": ");
    push_str(out, value);
    out.push_str("}}");
}

fn int_attr(out: &mut String, first: &mut bool, key: &str, value: u32) {
    if !*first {
        out.push_str(", ");
    }
    *first = false;
    out.push_str("{\"key\": \"");
    out.push_str(key);
    out.push_str("\", \"value\": {\"intValue\": \"");
    out.push_str(&value.to_string());
    out.push_str("\"}}");
}

/// Running totals of what was written.
#[derive(Clone, Debug, Default)]
pub(crate) struct Stats {
    /// Export requests (lines).
    pub requests: u64,
    /// Spans of every kind.
    pub spans: u64,
    /// Tool-call spans (events).
    pub tool_calls: u64,
    /// Of which made for an attacker.
    pub attack_calls: u64,
    /// Tool-call spans with an error status.
    pub errors: u64,
    /// Sessions.
    pub sessions: u64,
    /// Time of the first and last tool call.
    pub first_ms: Option<i64>,
    /// Time of the last tool call.
    pub last_ms: Option<i64>,
}

/// Writes `spans.jsonl[.gz]` and `labels.csv` in one pass.
pub(crate) struct SpanWriter {
    sink: Sink,
    path: PathBuf,
    labels: BufWriter<File>,
    labels_path: PathBuf,
    buf: String,
    lbuf: String,
    ids: Ids,
    attack_ids: Vec<String>,
    scenarios: Vec<&'static str>,
    /// Totals.
    pub stats: Stats,
}

const FLUSH_AT: usize = 1 << 22;

impl SpanWriter {
    /// Creates both files.
    pub(crate) fn create(
        dir: &Path,
        gzip: bool,
        seed: u64,
        attack_ids: Vec<String>,
        scenarios: Vec<&'static str>,
    ) -> Result<SpanWriter, SimError> {
        let path = dir.join(if gzip {
            super::SPANS_GZ_FILE
        } else {
            super::SPANS_FILE
        });
        let file = create(&path)?;
        let sink = if gzip {
            Sink::Gzip(GzEncoder::new(file, Compression::fast()))
        } else {
            Sink::Plain(file)
        };
        let labels_path = dir.join(super::super::LABELS_FILE);
        let mut labels = create(&labels_path)?;
        labels
            .write_all(b"event_id,label,attack_id,scenario\n")
            .map_err(io_err(&labels_path))?;
        Ok(SpanWriter {
            sink,
            path,
            labels,
            labels_path,
            buf: String::with_capacity(FLUSH_AT + 65536),
            lbuf: String::with_capacity(FLUSH_AT / 8),
            ids: Ids::new(seed),
            attack_ids,
            scenarios,
            stats: Stats::default(),
        })
    }

    /// Appends one session as an export request.
    pub(crate) fn write(&mut self, w: &World, t: &Timed) -> Result<(), SimError> {
        let a: &Agent = &w.agents[t.agent as usize];
        let (th, tl) = self.ids.trace(a.idx, t.day, t.seq);
        let mut trace = String::with_capacity(32);
        hex16(&mut trace, th);
        hex16(&mut trace, tl);
        let mut n = t.first_span;
        let mut next_id = |ids: &Ids| {
            let id = ids.span(a.idx, t.day, n);
            n += 1;
            let mut s = String::with_capacity(16);
            hex16(&mut s, id);
            s
        };
        let root = next_id(&self.ids);
        let conversation = format!("conv_{}", &trace[..24]);
        let b = &mut self.buf;
        b.push_str("{\"resourceSpans\": [{\"resource\": {\"attributes\": [");
        let mut first = true;
        attr(b, &mut first, "service.name", a.role.service());
        attr(b, &mut first, "service.version", "2.3.1");
        attr(
            b,
            &mut first,
            "service.instance.id",
            &format!("{}-{}", a.role.service(), a.idx % 3),
        );
        attr(b, &mut first, "deployment.environment.name", "production");
        b.push_str("]}, \"scopeSpans\": [{\"scope\": {\"name\": \"agent-framework\", \"version\": \"1.4.2\"}, \"spans\": [");

        // The agent's invocation.
        span_head(
            b,
            &trace,
            &root,
            None,
            &format!("invoke_agent {}", a.id),
            1,
            t.start_ms,
            t.end_ms,
            t.ns(0),
        );
        let mut first = true;
        attr(b, &mut first, "gen_ai.operation.name", "invoke_agent");
        attr(b, &mut first, "gen_ai.provider.name", a.provider);
        attr(b, &mut first, "gen_ai.agent.id", &a.id);
        attr(b, &mut first, "gen_ai.agent.name", a.role.display());
        attr(b, &mut first, "gen_ai.conversation.id", &conversation);
        attr(b, &mut first, "gen_ai.request.model", a.model);
        attr(
            b,
            &mut first,
            "gen_ai.input.messages",
            &input_messages(&t.session.request),
        );
        b.push_str("], \"status\": {\"code\": 1}}");
        self.stats.spans += 1;

        // The model's turns: before the first tool call and after the last.
        for (k, &(s0, s1, tokens_in, tokens_out)) in t.chats.iter().enumerate() {
            let id = next_id(&self.ids);
            b.push_str(", ");
            span_head(
                b,
                &trace,
                &id,
                Some(&root),
                &format!("chat {}", a.model),
                3,
                s0,
                s1,
                t.ns(k + 1),
            );
            let mut first = true;
            attr(b, &mut first, "gen_ai.operation.name", "chat");
            attr(b, &mut first, "gen_ai.provider.name", a.provider);
            attr(b, &mut first, "gen_ai.request.model", a.model);
            int_attr(b, &mut first, "gen_ai.usage.input_tokens", tokens_in);
            int_attr(b, &mut first, "gen_ai.usage.output_tokens", tokens_out);
            b.push_str("], \"status\": {}}");
            self.stats.spans += 1;
        }

        // The tool calls.
        for (k, (call, &(s0, s1))) in t.session.calls.iter().zip(&t.call_times).enumerate() {
            let id = next_id(&self.ids);
            b.push_str(", ");
            span_head(
                b,
                &trace,
                &id,
                Some(&root),
                &format!("execute_tool {}", call.tool),
                1,
                s0,
                s1,
                t.ns(k + 3),
            );
            let mut first = true;
            attr(b, &mut first, "gen_ai.operation.name", "execute_tool");
            attr(b, &mut first, "gen_ai.tool.name", call.tool);
            attr(b, &mut first, "gen_ai.tool.type", "function");
            attr(
                b,
                &mut first,
                "gen_ai.tool.call.id",
                &format!("call_{}", &id[..12]),
            );
            attr(b, &mut first, "gen_ai.tool.call.arguments", &call.args);
            attr(b, &mut first, "gen_ai.tool.call.result", &call.result);
            if call.error {
                b.push_str("], \"status\": {\"code\": 2, \"message\": ");
                push_str(b, &call.result);
                b.push_str("}}");
                self.stats.errors += 1;
            } else {
                b.push_str("], \"status\": {\"code\": 1}}");
            }
            self.stats.spans += 1;
            self.stats.tool_calls += 1;
            self.stats.first_ms.get_or_insert(s0);
            self.stats.last_ms = Some(s0);

            self.lbuf.push_str(&id);
            match t.plan.filter(|_| call.attack) {
                Some(p) => {
                    self.lbuf.push_str(",attack,");
                    self.lbuf.push_str(&self.attack_ids[p]);
                    self.lbuf.push(',');
                    self.lbuf.push_str(self.scenarios[p]);
                    self.lbuf.push('\n');
                    self.stats.attack_calls += 1;
                }
                None => self.lbuf.push_str(",benign,,\n"),
            }
        }
        b.push_str("]}]}]}\n");
        self.stats.requests += 1;
        self.stats.sessions += 1;
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SimError> {
        self.sink
            .write_all(self.buf.as_bytes())
            .map_err(io_err(&self.path))?;
        self.buf.clear();
        self.labels
            .write_all(self.lbuf.as_bytes())
            .map_err(io_err(&self.labels_path))?;
        self.lbuf.clear();
        Ok(())
    }

    /// Flushes and closes both files.
    pub(crate) fn finish(mut self) -> Result<(Stats, PathBuf), SimError> {
        self.flush()?;
        let path = self.path.clone();
        self.sink.finish().map_err(io_err(&path))?;
        self.labels.flush().map_err(io_err(&self.labels_path))?;
        Ok((self.stats, path))
    }
}

/// A span's opening fields up to and including `"attributes": [`.
#[allow(clippy::too_many_arguments)]
fn span_head(
    b: &mut String,
    trace: &str,
    id: &str,
    parent: Option<&str>,
    name: &str,
    kind: u8,
    start_ms: i64,
    end_ms: i64,
    sub_ms_ns: u32,
) {
    b.push_str("{\"traceId\": \"");
    b.push_str(trace);
    b.push_str("\", \"spanId\": \"");
    b.push_str(id);
    if let Some(p) = parent {
        b.push_str("\", \"parentSpanId\": \"");
        b.push_str(p);
    }
    b.push_str("\", \"name\": ");
    push_str(b, name);
    b.push_str(", \"kind\": ");
    b.push_str(&kind.to_string());
    b.push_str(", \"startTimeUnixNano\": \"");
    b.push_str(&nanos(start_ms, sub_ms_ns));
    b.push_str("\", \"endTimeUnixNano\": \"");
    b.push_str(&nanos(end_ms, sub_ms_ns / 2));
    b.push_str("\", \"attributes\": [");
}

fn nanos(ms: i64, sub: u32) -> String {
    (ms as i128 * 1_000_000 + i128::from(sub % 1_000_000)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_ids_are_distinct() {
        let ids = Ids::new(7);
        let mut seen = std::collections::HashSet::new();
        for a in 0..20 {
            for d in 0..20 {
                for n in 0..50 {
                    assert!(seen.insert(ids.span(a, d, n)));
                }
            }
        }
        assert_ne!(ids.trace(1, 2, 3), ids.trace(1, 2, 4));
    }
}
