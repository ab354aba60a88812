//! A simulated fleet of LLM agents, written as OpenTelemetry GenAI spans (`cinch simulate
//! --kind llm`).
//!
//! | file | content |
//! |---|---|
//! | `spans.jsonl` (`.gz`) | OTLP JSON export requests, one a line, one session each, in time order |
//! | `labels.csv` | `event_id,label,attack_id,scenario`, one row per `execute_tool` span (the span id in hex), in the order the engine reads them |
//! | `attacks.csv` | `attack_id,agent_id,scenario,first_time,last_time,events` |
//! | `manifest.json` | arguments, counts per role and scenario, where benign destinations came from, the campaign's destinations |
//!
//! # The fleet
//!
//! Agents of five roles (`banking-assistant-001`, `mail-assistant-…`, `workspace-assistant-…`,
//! `travel-assistant-…`, `research-assistant-…`), each serving one user of one of a few
//! organisations. A user has colleagues (shared with other users of the organisation), outside
//! contacts (some of them staff of other organisations), payees (people with their own
//! accounts, and companies every customer pays on one account), channels, documents, favourite
//! sites and cities. Every session is an `invoke_agent` span with the user's request
//! (`gen_ai.input.messages`) and a `gen_ai.conversation.id`, two `chat` spans and its
//! `execute_tool` spans with full arguments and results. Benign sessions include ordinary
//! novelty (a new payee with the account in the request, mail to an address the user types, a
//! site the user names) and a minority whose destination only comes from data the user pointed
//! to (a bill to pay, an enquiry to answer, a colleague looked up in the address book).
//!
//! # Injections
//!
//! [`LlmScenario`]: instructions planted in a tool result make the agent pay or write to the
//! attacker (`destination_swap`), send private data out (`data_sent_out`), post a phishing link
//! (`link_posted`), open a file, the workspace or a meeting to the attacker (`share_granted`), or
//! call a tool it never uses (`privileged_tool`). One injection per victim, a share of the
//! agents (`--attack-share`), never in the first 40% of the period; every other injection sends
//! to one campaign's account, address or host. Only the calls made for the attacker are
//! labelled `attack`; the read that carried the planted text is the user's task.
//!
//! # Determinism
//!
//! Every agent-day and every injection draws from its own ChaCha stream: the same settings give
//! byte-identical files.

mod content;
mod injections;
mod otlp;
mod sessions;
mod tools;
mod world;

use std::collections::BTreeMap;
use std::io::Write;

use rand::Rng;
use serde::Serialize;

pub(crate) use content::input_messages;
pub use injections::LlmScenario;
pub use world::Role;

use super::clock::{DAY, HOUR, LocalTime, MIN, SEC, local_midnight, rfc3339_ms};
use super::rng::{Domain, gap_ms, poisson, stream};
use super::{ATTACKS_FILE, LABELS_FILE, MANIFEST_FILE, SimConfig, SimError, SimKind, SimSummary};
use content::Ctx;
use injections::Plan;
use sessions::Session;
use tools::Dest;
use world::{Agent, World};

/// Spans file name.
pub const SPANS_FILE: &str = "spans.jsonl";
/// Spans file name when compressed.
pub const SPANS_GZ_FILE: &str = "spans.jsonl.gz";

/// A session placed in time, with the numbers its ids derive from.
pub(crate) struct Timed {
    /// Agent index.
    pub agent: u32,
    /// Day of the period.
    pub day: u32,
    /// Session number within the agent's day.
    pub seq: u32,
    /// Number of its first span within the agent's day.
    pub first_span: u32,
    /// Start of the `invoke_agent` span.
    pub start_ms: i64,
    /// Its end.
    pub end_ms: i64,
    /// The injection it belongs to.
    pub plan: Option<usize>,
    /// Whether the agent followed the planted instructions.
    pub complied: bool,
    /// The request and calls.
    pub session: Session,
    /// `chat` spans: start, end, input and output tokens.
    pub chats: Vec<(i64, i64, u32, u32)>,
    /// Start and end of every tool call.
    pub call_times: Vec<(i64, i64)>,
}

impl Timed {
    /// Sub-millisecond nanoseconds of span `k`, for realistic timestamps.
    pub(crate) fn ns(&self, k: usize) -> u32 {
        let x = (self.start_ms as u64)
            .wrapping_mul(0x9e37_79b9)
            .wrapping_add(k as u64 * 0x85eb_ca6b);
        (x % 1_000_000) as u32
    }

    fn spans(&self) -> u32 {
        1 + self.chats.len() as u32 + self.session.calls.len() as u32
    }
}

/// What starts a session: the user (benign) or an injection's planted data.
#[derive(Clone, Copy)]
enum Slot {
    Benign,
    Injected { plan: usize, k: usize, comply: bool },
}

/// Places a session's spans in time from `start`; `at` gives the agent, day, session number
/// and first span number its ids derive from.
fn place(
    rng: &mut super::rng::SimRng,
    session: Session,
    at: (u32, u32, u32, u32),
    start: i64,
    slot: Slot,
) -> Timed {
    let (agent, day, seq, first_span) = at;
    let mut t = start + rng.gen_range(200..1500);
    let think = gap_ms(rng, 1800.0, 0.5);
    let chat0 = (
        t,
        t + think,
        rng.gen_range(400..3000),
        rng.gen_range(20..200),
    );
    t += think;
    let mut call_times = Vec::with_capacity(session.calls.len());
    for c in &session.calls {
        t += gap_ms(rng, 900.0, 0.6);
        let dur = if c.error {
            gap_ms(rng, 120.0, 0.5)
        } else {
            gap_ms(rng, 350.0, 0.8)
        };
        call_times.push((t, t + dur));
        t += dur;
    }
    t += rng.gen_range(100..800);
    let answer = gap_ms(rng, 2500.0, 0.5);
    let chat1 = (
        t,
        t + answer,
        rng.gen_range(800..6000),
        rng.gen_range(40..600),
    );
    t += answer + rng.gen_range(20..200);
    let (plan, complied) = match slot {
        Slot::Benign => (None, false),
        Slot::Injected { plan, comply, .. } => (Some(plan), comply),
    };
    Timed {
        agent,
        day,
        seq,
        first_span,
        start_ms: start,
        end_ms: t,
        plan,
        complied,
        session,
        chats: vec![chat0, chat1],
        call_times,
    }
}

/// One agent's sessions on day `d`, benign and injected, in time order and never overlapping.
fn agent_day(
    w: &World,
    a: &Agent,
    d: u32,
    plans: &[Plan],
    injected: &[(usize, usize)],
) -> Vec<Timed> {
    let mut rng = stream(w.seed, Domain::LlmDay, u64::from(a.idx), u64::from(d));
    let day0 = w.day_start(d);
    let last_start = day0 + DAY - 20 * MIN;
    let midnight = local_midnight(day0 + DAY / 2, a.tz_off_ms);
    let local = LocalTime::at(day0 + DAY / 2, a.tz_off_ms);
    let mean = a.sessions_per_day * if local.is_weekend() { 0.2 } else { 1.0 };
    let work0 = midnight + (a.work_start_h * HOUR as f64) as i64;
    let work_len = (a.work_len_h * HOUR as f64) as i64;
    let mut slots: Vec<(i64, Slot)> = Vec::new();
    for _ in 0..poisson(&mut rng, mean) {
        let t = if rng.gen_bool(0.06) {
            // Evening use.
            midnight + rng.gen_range(19 * HOUR..23 * HOUR)
        } else {
            work0 + rng.gen_range(0..work_len)
        };
        slots.push((t, Slot::Benign));
    }
    for &(p, k) in injected {
        let mut r = stream(w.seed, Domain::LlmAttack, p as u64, 1 + k as u64);
        let t = work0 + r.gen_range(0..work_len);
        let comply = plans[p].sessions[k].1;
        slots.push((t, Slot::Injected { plan: p, k, comply }));
    }
    for s in &mut slots {
        s.0 = s.0.clamp(day0, last_start);
    }
    slots.sort_by_key(|s| s.0);
    let mut out: Vec<Timed> = Vec::with_capacity(slots.len());
    let mut free_from = day0;
    let mut span_no = 0u32;
    for (seq, (t, slot)) in slots.into_iter().enumerate() {
        let start = t.max(free_from);
        if start > day0 + DAY - 5 * MIN {
            // No room left today.
            continue;
        }
        let ctx = Ctx { w, a, t_ms: start };
        let timed = match slot {
            Slot::Benign => {
                let s = sessions::benign(&ctx, &mut rng);
                place(&mut rng, s, (a.idx, d, seq as u32, span_no), start, slot)
            }
            Slot::Injected { plan, k, comply } => {
                let mut r = stream(w.seed, Domain::LlmAttack, plan as u64, 100 + k as u64);
                let s = injections::session(&ctx, &mut r, &plans[plan], comply);
                place(&mut r, s, (a.idx, d, seq as u32, span_no), start, slot)
            }
        };
        span_no += timed.spans();
        free_from = timed.end_ms + gap_ms(&mut rng, 20.0 * SEC as f64, 0.5).max(5 * SEC);
        out.push(timed);
    }
    out
}

/// Per-injection totals: tool calls, first and last time.
type PerAttack = Vec<(u64, i64, i64)>;

/// `manifest.json` of an LLM fleet.
#[derive(Serialize)]
struct Manifest<'a> {
    generator: &'static str,
    format_version: u32,
    kind: &'static str,
    args: &'a SimConfig,
    time_range: TimeRange,
    baseline_days: u32,
    counts: Counts,
    campaign_destinations: &'a injections::Destinations,
    attacks: Vec<AttackEntry<'a>>,
    tools: BTreeMap<&'static str, RoleTools>,
    files: Files,
}

/// One injection as planned.
#[derive(Serialize)]
struct AttackEntry<'a> {
    attack_id: &'a str,
    agent_id: &'a str,
    scenario: &'static str,
    campaign: bool,
    destinations: &'a injections::Destinations,
    /// Its sessions: day of the period and whether the agent followed the planted text.
    sessions: Vec<(u32, bool)>,
}

/// The tools of a role's deployment.
#[derive(Serialize)]
struct RoleTools {
    ordinary: &'static [&'static str],
    never_used: &'static [&'static str],
}

#[derive(Serialize)]
struct TimeRange {
    start: String,
    end: String,
    attacks_from: String,
    first_event: Option<String>,
    last_event: Option<String>,
}

#[derive(Serialize, Default)]
struct Counts {
    /// Tool-call spans (the events the engine scores).
    events: u64,
    benign_events: u64,
    attack_events: u64,
    /// Spans of every kind (`invoke_agent`, `chat`, `execute_tool`).
    spans: u64,
    sessions: u64,
    agents: u32,
    attacks: usize,
    agents_per_role: BTreeMap<&'static str, u32>,
    events_per_role: BTreeMap<&'static str, u64>,
    tools_per_role: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    attacks_per_scenario: BTreeMap<&'static str, usize>,
    attack_events_per_scenario: BTreeMap<&'static str, u64>,
    /// Sessions that read planted instructions: followed, and resisted (all calls benign).
    injected_sessions_followed: u64,
    injected_sessions_resisted: u64,
    /// Benign calls that send, share or pay outward, by where the destination came from: the
    /// user's request, a lookup of someone the user named (address book, past transactions,
    /// a mail thread), or only data the user pointed to (a bill, an enquiry).
    benign_outward_destination_in_request: u64,
    benign_outward_destination_of_named_contact: u64,
    benign_outward_destination_only_in_data: u64,
    /// Tool calls that failed.
    errors: u64,
}

#[derive(Serialize)]
struct Files {
    events: String,
    labels: &'static str,
    attacks: &'static str,
}

/// Runs the LLM fleet simulation into `cfg.out` (the settings are already validated).
pub(crate) fn simulate(cfg: &SimConfig, start_ms: i64) -> Result<SimSummary, SimError> {
    let dir = cfg.out.as_path();
    let w = World::build(cfg.seed, start_ms, cfg.days, cfg.agents);
    let campaign = injections::campaign(cfg.seed);
    let plans = injections::plan(&w, cfg.attack_share, &campaign);
    let mut injected: BTreeMap<(u32, u32), Vec<(usize, usize)>> = BTreeMap::new();
    for (p, plan) in plans.iter().enumerate() {
        for (k, &(day, _)) in plan.sessions.iter().enumerate() {
            injected.entry((plan.agent, day)).or_default().push((p, k));
        }
    }
    let mut out = otlp::SpanWriter::create(
        dir,
        cfg.gzip,
        cfg.seed,
        plans.iter().map(|p| p.id.clone()).collect(),
        plans.iter().map(|p| p.scenario.name()).collect(),
    )?;
    let mut counts = Counts::default();
    let mut per_attack: PerAttack = vec![(0, i64::MAX, i64::MIN); plans.len()];
    for d in 0..w.days {
        let mut day: Vec<Timed> = Vec::new();
        for a in &w.agents {
            let inj = injected.get(&(a.idx, d)).map_or(&[][..], Vec::as_slice);
            day.extend(agent_day(&w, a, d, &plans, inj));
        }
        day.sort_by_key(|t| (t.start_ms, t.agent, t.seq));
        for t in &day {
            count(&w, t, &mut counts, &mut per_attack);
            out.write(&w, t)?;
        }
    }
    let (stats, spans_path) = out.finish()?;

    let attacks_path = dir.join(ATTACKS_FILE);
    let mut text = String::from("attack_id,agent_id,scenario,first_time,last_time,events\n");
    let mut attacks = 0;
    for (p, &(n, first, last)) in plans.iter().zip(&per_attack) {
        if n == 0 {
            continue;
        }
        attacks += 1;
        let name = p.scenario.name();
        *counts.attacks_per_scenario.entry(name).or_default() += 1;
        *counts.attack_events_per_scenario.entry(name).or_default() += n;
        text.push_str(&format!(
            "{},{},{name},{},{},{n}\n",
            p.id,
            w.agents[p.agent as usize].id,
            rfc3339_ms(first),
            rfc3339_ms(last),
        ));
    }
    write_file(&attacks_path, text.as_bytes())?;

    for s in LlmScenario::ALL {
        counts.attacks_per_scenario.entry(s.name()).or_default();
        counts
            .attack_events_per_scenario
            .entry(s.name())
            .or_default();
    }
    for r in Role::ALL {
        counts.agents_per_role.insert(
            r.name(),
            w.agents.iter().filter(|a| a.role == r).count() as u32,
        );
    }
    counts.events = stats.tool_calls;
    counts.attack_events = stats.attack_calls;
    counts.benign_events = stats.tool_calls - stats.attack_calls;
    counts.spans = stats.spans;
    counts.sessions = stats.sessions;
    counts.agents = cfg.agents;
    counts.attacks = attacks;
    counts.errors = stats.errors;
    let events_file = spans_path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        // The writer names the file it wrote: it has a name.
        .unwrap_or_default();
    let baseline = super::attacks::baseline_days(cfg.days);
    let manifest = Manifest {
        generator: "cinch simulate",
        format_version: 1,
        kind: "llm",
        args: cfg,
        time_range: TimeRange {
            start: rfc3339_ms(start_ms),
            end: rfc3339_ms(w.end_ms()),
            attacks_from: rfc3339_ms(start_ms + i64::from(baseline) * DAY),
            first_event: stats.first_ms.map(rfc3339_ms),
            last_event: stats.last_ms.map(rfc3339_ms),
        },
        baseline_days: baseline,
        counts,
        campaign_destinations: &campaign,
        attacks: plans
            .iter()
            .map(|p| AttackEntry {
                attack_id: &p.id,
                agent_id: &w.agents[p.agent as usize].id,
                scenario: p.scenario.name(),
                campaign: p.campaign,
                destinations: &p.dest,
                sessions: p.sessions.clone(),
            })
            .collect(),
        tools: Role::ALL
            .iter()
            .map(|&r| {
                (
                    r.name(),
                    RoleTools {
                        ordinary: tools::tools(r),
                        never_used: tools::privileged(r),
                    },
                )
            })
            .collect(),
        files: Files {
            events: events_file,
            labels: LABELS_FILE,
            attacks: ATTACKS_FILE,
        },
    };
    let manifest_path = dir.join(MANIFEST_FILE);
    super::writer::write_json(&manifest_path, &manifest)?;
    let c = &manifest.counts;
    Ok(SimSummary {
        kind: SimKind::Llm,
        events: c.events,
        attack_events: c.attack_events,
        agents: cfg.agents,
        attacks,
        days: cfg.days,
        events_per_archetype: c.events_per_role.iter().map(|(k, v)| (*k, *v)).collect(),
        attacks_per_scenario: c
            .attacks_per_scenario
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect(),
        files: vec![
            spans_path,
            dir.join(LABELS_FILE),
            attacks_path,
            manifest_path,
        ],
    })
}

fn count(w: &World, t: &Timed, c: &mut Counts, per_attack: &mut PerAttack) {
    let a = &w.agents[t.agent as usize];
    *c.events_per_role.entry(a.role.name()).or_default() += t.session.calls.len() as u64;
    let tools = c.tools_per_role.entry(a.role.name()).or_default();
    for call in &t.session.calls {
        *tools.entry(call.tool).or_default() += 1;
    }
    if let Some(p) = t.plan {
        if t.complied {
            c.injected_sessions_followed += 1;
        } else {
            c.injected_sessions_resisted += 1;
        }
        for (call, &(s0, _)) in t.session.calls.iter().zip(&t.call_times) {
            if call.attack {
                let e = &mut per_attack[p];
                e.0 += 1;
                e.1 = e.1.min(s0);
                e.2 = e.2.max(s0);
            }
        }
    }
    for call in &t.session.calls {
        match call.dest {
            Some(Dest::Request) if !call.attack => c.benign_outward_destination_in_request += 1,
            Some(Dest::Contact) if !call.attack => {
                c.benign_outward_destination_of_named_contact += 1
            }
            Some(Dest::Data) if !call.attack => c.benign_outward_destination_only_in_data += 1,
            _ => {}
        }
    }
}

fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<(), SimError> {
    let io = |source| SimError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::create(path).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    Ok(())
}
