//! Decision latency of `cinch authorize`: the Cedar evaluation alone (criterion), then whole
//! decisions over HTTP on loopback at a fixed offered rate, with their p50, p99 and p99.9
//! printed.
//!
//! The fleet is 1,000 agents with 5 grants each and 200 commands (suspensions, revoked grants
//! and sessions, some needing approval, some dry runs). The HTTP run offers
//! `CINCH_BENCH_RATE` requests per second (default 10,000) for `CINCH_BENCH_SECS` seconds
//! (default 5) over `CINCH_BENCH_CONNS` keep-alive connections (default 8), each request sent at its scheduled time; a
//! latency runs from that time to the last byte of the answer, so a server that falls behind
//! pays for the queue (no coordinated omission). The server runs in-process with the binary's
//! defaults (`CINCH_BENCH_WORKERS` worker threads, default 2 as `cinch authorize --threads`;
//! audit records written to a file).

use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cinch::authorize::{self, AppliedCommand, AuthzRequest, Mode, PolicyStore, UnknownAgents};
use cinch::drive::authorize::{AuditSink, Pdp, serve};
use cinch::grants::Entitlements;
use cinch::output::command::Action;
use criterion::Criterion;

const AGENTS: usize = 1000;
const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const HOUR: i64 = 3_600_000;

fn entitlements() -> Entitlements {
    let mut doc = serde_json::Map::new();
    for a in 0..AGENTS {
        doc.insert(
            format!("agent-{a:04}"),
            serde_json::json!({
                "lake": {"actions": ["s3:Get*", "s3:List*"], "resources": [format!("s3://lake-{}/*", a % 20)]},
                "db": {"actions": ["db:Select", "db:DescribeTable"], "resources": ["postgres://sales/*", "postgres://marketing/*"]},
                "mail": {"actions": ["mail:Send"], "resources": ["mailto:*@corp.example"]},
                "tickets": {"actions": ["tickets:Read", "tickets:Update"], "resources": ["tickets://support/*"]},
                "kb": {"actions": ["kb:*"], "resources": ["kb://*"]},
            }),
        );
    }
    Entitlements::parse(&serde_json::Value::Object(doc).to_string(), "bench").unwrap()
}

fn store() -> PolicyStore {
    let ents = entitlements();
    let mut store = PolicyStore::new(Some(&ents), UnknownAgents::Deny).unwrap();
    for i in 0..200usize {
        let agent = format!("agent-{:04}", i * 5);
        let (action, target) = match i % 3 {
            0 => (Action::SuspendAgent, agent.clone()),
            1 => (Action::RevokeGrant, "mail".to_owned()),
            _ => (Action::RevokeSession, format!("s-{i}")),
        };
        store
            .apply(
                &AppliedCommand {
                    command_id: format!("cmd-{i:016x}"),
                    agent_id: agent,
                    action,
                    target,
                    finding_ids: vec![format!("fnd-{i:016x}")],
                    reason: "finding (high; novelty, volume)".to_owned(),
                    severity: Some("high".to_owned()),
                    issued_at_ms: T0,
                    expires_at_ms: T0 + 24 * HOUR,
                    requires_approval: i % 7 == 0,
                    dry_run: i % 11 == 0,
                    grant: None,
                    line: i as u64 + 1,
                },
                Some(&ents),
            )
            .unwrap();
    }
    store
}

fn request(agent: usize, action: &str, resource: &str) -> AuthzRequest {
    AuthzRequest {
        principal: format!("agent-{agent:04}"),
        action: action.to_owned(),
        resource: resource.to_owned(),
        session_id: Some("s-1".to_owned()),
        grant: None,
        time_ms: Some(T0 + HOUR),
    }
}

/// The request bodies the HTTP run cycles through: allowed, denied by a suspension, outside
/// every grant, a revoked grant.
fn bodies() -> Vec<String> {
    let mut out = Vec::new();
    for a in 0..AGENTS {
        let (action, resource) = match a % 4 {
            0 => ("s3:GetObject", format!("s3://lake-{}/k/{a}.json", a % 20)),
            1 => ("db:Select", "postgres://sales/orders".to_owned()),
            2 => ("s3:PutObject", "s3://elsewhere/x".to_owned()),
            _ => ("mail:Send", "mailto:ops@corp.example".to_owned()),
        };
        out.push(
            serde_json::json!({
                "principal": format!("agent-{a:04}"), "action": action, "resource": resource,
                "context": {"session_id": format!("s-{a}"), "time": "2026-01-01T01:00:00Z"}
            })
            .to_string(),
        );
    }
    out
}

/// A keep-alive HTTP/1.1 client of one connection.
struct Client {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    addr: SocketAddr,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        Client {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
            addr,
        }
    }

    /// Posts `body`; returns the status.
    fn post(&mut self, body: &str) -> u16 {
        let req = format!(
            "POST /v1/authorize HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        self.writer.write_all(req.as_bytes()).unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status = line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut len = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0u8; len];
        self.reader.read_exact(&mut body).unwrap();
        status
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Offers `rate` requests a second for `secs` seconds over `conns` connections; prints the
/// latency percentiles.
fn http_run(addr: SocketAddr, rate: u64, secs: u64, conns: usize) {
    let bodies = Arc::new(bodies());
    let per_conn = rate as f64 / conns as f64;
    let interval = Duration::from_secs_f64(1.0 / per_conn);
    let total = (per_conn * secs as f64) as usize;
    let start = Instant::now() + Duration::from_millis(100);
    let handles: Vec<_> = (0..conns)
        .map(|c| {
            let bodies = Arc::clone(&bodies);
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                // Warm the connection up.
                for b in bodies.iter().take(50) {
                    client.post(b);
                }
                let offset = interval.mul_f64(c as f64 / conns as f64);
                let mut lat = Vec::with_capacity(total);
                for i in 0..total {
                    let due = start + offset + interval.mul_f64(i as f64);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    let status = client.post(&bodies[(i * conns + c) % bodies.len()]);
                    assert_eq!(status, 200);
                    lat.push(due.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let elapsed = start.elapsed();
    all.sort_unstable();
    println!(
        "authorize over HTTP: {} requests offered at {rate}/s over {conns} connections in {:.2} s ({:.0}/s achieved): p50 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs, max {:.0} µs",
        all.len(),
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
        percentile(&all, 0.50).as_secs_f64() * 1e6,
        percentile(&all, 0.99).as_secs_f64() * 1e6,
        percentile(&all, 0.999).as_secs_f64() * 1e6,
        all.last().unwrap().as_secs_f64() * 1e6,
    );
}

fn main() {
    let store = store();
    let counts = store.counts();
    println!(
        "policy set: {} agents, {} permits, {} forbids, {} dry-run forbids",
        counts.agents, counts.permits, counts.forbids, counts.dry_run_forbids
    );

    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group("authorize");
        for (name, req) in [
            (
                "decide_allow",
                request(1, "db:Select", "postgres://sales/orders"),
            ),
            (
                "decide_deny_suspended",
                request(15, "s3:GetObject", "s3://lake-15/k"),
            ),
            (
                "decide_deny_no_grant",
                request(2, "s3:PutObject", "s3://x/y"),
            ),
            (
                "decide_revoked_grant",
                request(5, "mail:Send", "mailto:a@corp.example"),
            ),
        ] {
            g.bench_function(name, |b| {
                b.iter(|| authorize::answer(&store, Mode::Enforce, black_box(&req), T0, (1, T0)))
            });
        }
        g.finish();
    }

    // Over HTTP.
    let dir = tempfile::tempdir().unwrap();
    let sink = AuditSink::open(Some(&dir.path().join("audit.jsonl"))).unwrap();
    let pdp = Arc::new(Pdp::new(store, Mode::Enforce, None, sink.sender()));
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(env("CINCH_BENCH_WORKERS", 2) as usize)
        .enable_all()
        .build()
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (addr, server) = runtime
        .block_on(serve(
            "127.0.0.1:0".parse().unwrap(),
            Arc::clone(&pdp),
            256,
            async move {
                let _ = stop_rx.await;
            },
        ))
        .unwrap();
    {
        let mut client = Client::connect(addr);
        let bodies = bodies();
        let mut i = 0;
        c.bench_function("authorize/http_round_trip", |b| {
            b.iter(|| {
                i += 1;
                client.post(&bodies[i % bodies.len()])
            })
        });
    }
    http_run(
        addr,
        env("CINCH_BENCH_RATE", 10_000),
        env("CINCH_BENCH_SECS", 5),
        env("CINCH_BENCH_CONNS", 8) as usize,
    );
    let _ = stop_tx.send(());
    let _ = runtime.block_on(server);
    drop(pdp);
    sink.close().unwrap();
    c.final_summary();
}
