//! What agents cost: bytes per agent (a new or quiet agent after one and three events, at a
//! million agents; a mature agent after weeks of simulated history) and events per second on
//! young and on mature agents.
//!
//! The byte figures are printed first (heap bytes counted by a counting allocator, the profile
//! share by `Engine::state_bytes`, and the process's resident set), then criterion times the
//! events. `CINCH_BENCH_AGENTS` sets the number of new agents (default 1,000,000),
//! `CINCH_BENCH_MATURE_AGENTS` the number of agents of the mature fleet (default 250).

use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::hint::black_box;
use std::io::BufRead;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use cinch::config::Settings;
use cinch::engine::Engine;
use cinch::event::{AccessEvent, DecodeConfig, Decoder, Format, Outcome};
use criterion::{Criterion, Throughput};

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Resident set of the process, in bytes.
fn rss() -> isize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: isize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// An engine as `cinch replay` runs it by default (the built-in model, verdicts explained only
/// when they reach a finding).
fn engine(settings: Settings) -> Engine {
    let mut e = Engine::new(settings);
    e.set_explain_all(false);
    let model = cinch::ml::Model::embedded().expect("the built-in model loads");
    e.set_model(Some(std::sync::Arc::new(model)));
    e
}

const T0: i64 = 1_767_571_200_000; // 2026-01-05T00:00:00Z

/// Event `n` of a stream of new agents: agents `first..first + agents`, three events each
/// (all agents' first events, then their second, then their third), 10 ms apart.
struct Young {
    id: String,
    agent: String,
    resource: String,
    ip: String,
}

impl Young {
    fn new() -> Self {
        Young {
            id: String::new(),
            agent: String::new(),
            resource: String::new(),
            ip: String::new(),
        }
    }

    fn event(&mut self, n: u64, first: u64, agents: u64, t0: i64) -> AccessEvent<'_> {
        use std::fmt::Write as _;
        let i = first + n % agents;
        let round = n / agents;
        self.id.clear();
        let _ = write!(self.id, "e{first}-{n}");
        self.agent.clear();
        let _ = write!(self.agent, "agent-{i}");
        self.resource.clear();
        let _ = write!(self.resource, "s3://bucket-{}/k{}-{n}", i % 50, first);
        self.ip.clear();
        let _ = write!(self.ip, "10.0.0.{}", (i * 7 + round) % 250);
        AccessEvent {
            format: Format::Native,
            event_id: Cow::Borrowed(&self.id),
            time_ms: t0 + n as i64 * 10,
            agent_id: Cow::Borrowed(&self.agent),
            agent_kind: None,
            action: Cow::Borrowed("s3:GetObject"),
            resource: Cow::Borrowed(&self.resource),
            outcome: Outcome::Success,
            session_id: None,
            source_ip: Some(Cow::Borrowed(&self.ip)),
            bytes: None,
            grant: None,
            intent: None,
            attributes: None,
            tool: None,
        }
    }
}

/// The events of a simulated fleet (`cinch simulate --agents N --days 24 --seed 7`, N from
/// `CINCH_BENCH_MATURE_AGENTS`, default 250), as native JSON lines.
fn simulated_fleet() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let agents = std::env::var("CINCH_BENCH_MATURE_AGENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250);
    let cfg = cinch::sim::SimConfig {
        agents,
        days: 24,
        seed: 7,
        out: dir.path().to_path_buf(),
        ..Default::default()
    };
    cinch::sim::simulate(&cfg).expect("simulate");
    let path = dir.path().join("events.jsonl");
    (dir, path)
}

/// Feeds every line of a native JSON-lines file to `f`, decoded.
fn for_each_event(path: &std::path::Path, mut f: impl FnMut(&AccessEvent<'_>)) {
    let decoder = Decoder::new(DecodeConfig::default());
    let file = std::io::BufReader::new(std::fs::File::open(path).expect("events"));
    for line in file.lines() {
        let line = line.expect("line");
        if let Ok(ev) = decoder.decode_record(&line) {
            f(&ev);
        }
    }
}

/// The mean size of the checkpoints of up to `most` of the engine's agents.
fn checkpoint_bytes(e: &mut Engine, most: usize) -> f64 {
    let ids = e.take_touched();
    let sizes: Vec<usize> = ids
        .iter()
        .take(most)
        .filter_map(|id| e.export_agent(id))
        .map(|b| b.map_or(0, |b| b.len()))
        .collect();
    sizes.iter().sum::<usize>() as f64 / sizes.len().max(1) as f64
}

fn per(bytes: isize, n: usize) -> f64 {
    bytes as f64 / n.max(1) as f64
}

/// Prints the bytes per agent, new and mature, and the replay rates they come with.
fn report(agents: usize) {
    println!("agents: bytes per agent and events per second");

    // New agents: one, then three events each.
    // Counted from an engine with its model loaded: what the agents add.
    let mut e = engine(Settings::default());
    let (heap0, rss0) = (live(), rss());
    let mut out = Vec::new();
    let mut y = Young::new();
    let started = Instant::now();
    let n = agents as u64;
    for k in 0..3 * n {
        e.process(&y.event(k, 0, n, T0), &mut out);
        out.clear();
        if k + 1 == n {
            println!(
                "  new agent after 1 event  ({agents} agents): {:.0} heap bytes/agent ({:.0} in profiles), {:.0} resident bytes/agent",
                per(live() - heap0, agents),
                per(e.state_bytes() as isize, agents),
                per(rss() - rss0, agents),
            );
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  new agent after 3 events ({agents} agents): {:.0} heap bytes/agent ({:.0} in profiles), {:.0} resident bytes/agent",
        per(live() - heap0, agents),
        per(e.state_bytes() as isize, agents),
        per(rss() - rss0, agents),
    );
    println!(
        "  young agents: {:.0} events/s ({} events, engine only, one thread)",
        3.0 * n as f64 / secs,
        3 * n
    );
    println!(
        "  new agent after 3 events: {:.0} checkpoint bytes/agent (serialised state, before the state topic's base64)",
        checkpoint_bytes(&mut e, 10_000)
    );
    drop(e);

    // Mature agents: a simulated fleet, 24 days of history (about 4,000 varied events each).
    let (_dir, path) = simulated_fleet();
    let mut e = engine(Settings::default());
    let heap0 = live();
    let mut count = 0u64;
    let mut late = (0u64, Duration::ZERO);
    let mut last = Instant::now();
    let half = T0 + 12 * 86_400_000;
    for_each_event(&path, |ev| {
        let t = Instant::now();
        e.process(ev, &mut out);
        out.clear();
        count += 1;
        if ev.time_ms >= half {
            late.0 += 1;
            late.1 += t.elapsed();
        }
        last = t;
    });
    let _ = last;
    let mature = e.agents();
    let cache = e.resource_cache_bytes() as isize;
    println!(
        "  mature agent after {:.0} events ({mature} agents, 24 simulated days): {:.0} heap bytes/agent ({:.0} in profiles; the rest includes the fleet's and open findings' state), not counting the engine's resource cache ({cache} bytes, {:.0} per agent here, the same for any number of agents)",
        count as f64 / mature as f64,
        per(live() - heap0 - cache, mature),
        per(e.state_bytes() as isize, mature),
        per(cache, mature),
    );
    println!(
        "  mature agent: {:.0} checkpoint bytes/agent (serialised state, before the state topic's base64)",
        checkpoint_bytes(&mut e, usize::MAX)
    );
    println!(
        "  mature agents (days 12-24): {:.0} events/s (engine only, one thread)",
        late.0 as f64 / late.1.as_secs_f64().max(1e-9)
    );
}

/// Times events of new agents (three each, on an engine already holding many) and of mature
/// agents.
fn timings(c: &mut Criterion) {
    let mut g = c.benchmark_group("agents");
    g.sample_size(10);
    const BATCH: u64 = 10_000;
    g.throughput(Throughput::Elements(3 * BATCH));
    g.bench_function("young_agents_3_events_each", |b| {
        let mut e = engine(Settings::default());
        let mut out = Vec::new();
        let mut y = Young::new();
        let mut first = 0u64;
        let mut t0 = T0;
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                for k in 0..3 * BATCH {
                    black_box(e.process(&y.event(k, first, BATCH, t0), &mut out));
                    out.clear();
                }
                spent += t.elapsed();
                first += BATCH;
                t0 += 3 * BATCH as i64 * 10;
            }
            spent
        });
    });

    let (_dir, path) = simulated_fleet();
    let decoder = Decoder::new(DecodeConfig::default());
    let lines: Vec<String> = std::io::BufReader::new(std::fs::File::open(&path).expect("events"))
        .lines()
        .map(|l| l.expect("line"))
        .collect();
    let events: Vec<AccessEvent<'_>> = lines
        .iter()
        .filter_map(|l| decoder.decode_record(l).ok())
        .collect();
    let split = events.partition_point(|ev| ev.time_ms < T0 + 12 * 86_400_000);
    g.throughput(Throughput::Elements(3 * BATCH));
    g.bench_function("mature_agents", |b| {
        let mut e = engine(Settings::default());
        let mut out = Vec::new();
        for ev in &events[..split] {
            e.process(ev, &mut out);
            out.clear();
        }
        let span = events.last().map_or(0, |l| l.time_ms) - events[split].time_ms + 60_000;
        let mut at = split;
        let mut shift = 0i64;
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                for _ in 0..3 * BATCH {
                    if at == events.len() {
                        at = split;
                        shift += span;
                    }
                    let mut ev = events[at].clone();
                    ev.time_ms += shift;
                    black_box(e.process(&ev, &mut out));
                    out.clear();
                    at += 1;
                }
                spent += t.elapsed();
            }
            spent
        });
    });
    g.finish();
}

fn main() {
    let agents = std::env::var("CINCH_BENCH_AGENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut c = Criterion::default().configure_from_args();
    // `cargo test --benches` runs each bench once, quickly: no figures then.
    if !std::env::args().any(|a| a == "--test") {
        report(agents);
    }
    timings(&mut c);
    c.final_summary();
}
