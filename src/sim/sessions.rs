//! What every archetype's sessions share: opening a session, emitting events with realistic
//! noise (denials, errors, grants missing from some log sources), and when human-driven agents
//! start their sessions.

use rand::Rng;

use super::clock::{HOUR, LocalTime};
use super::event::{Attr, SimEvent};
use super::fleet::Agent;
use super::rng::{SimRng, poisson};
use crate::event::Outcome;

/// Share of events whose log source carries the grant id.
pub(crate) const GRANT_PRESENT: f64 = 0.9;
/// Benign denials (stale permissions, resource policies, races).
pub(crate) const BENIGN_DENIED: f64 = 0.008;
/// Benign errors (timeouts, throttling).
pub(crate) const BENIGN_ERROR: f64 = 0.005;
/// Share of AI-agent sessions opened without a stated intent (warm-ups, health checks).
pub(crate) const NO_INTENT: f64 = 0.03;

/// One task or run of an agent.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    /// Session id.
    pub id: u64,
    /// The address every call of the session comes from.
    pub ip: u32,
    /// Stated purpose.
    pub intent: Option<&'static str>,
    /// Attribute style.
    pub attr: Attr,
    /// Number of events emitted so far.
    pub steps: u16,
}

impl Session {
    /// Opens a session at `t` from one of the agent's current addresses.
    pub(crate) fn open(
        rng: &mut SimRng,
        agent: &Agent,
        t: i64,
        intent: Option<&'static str>,
        attr: Attr,
    ) -> Session {
        let ip = agent.ip_at(t, rng);
        Session {
            id: rng.r#gen(),
            ip,
            intent,
            attr,
            steps: 0,
        }
    }

    /// Picks an intent for an AI-agent session (a few sessions state none).
    pub(crate) fn intent(
        rng: &mut SimRng,
        intents: &[(&'static str, f64)],
    ) -> Option<&'static str> {
        if rng.gen_bool(NO_INTENT) {
            None
        } else {
            Some(super::rng::weighted(rng, intents))
        }
    }
}

/// Collects the events of one agent, numbering them for a stable order.
pub(crate) struct Emitter<'a> {
    /// Where events go.
    pub out: &'a mut Vec<SimEvent>,
    agent: u32,
    seq_base: u64,
    n: u64,
    /// Attack index stamped on every event emitted (ground truth only).
    pub label: Option<u16>,
    /// Overrides the session's address (replays from elsewhere).
    pub ip_override: Option<u32>,
}

impl<'a> Emitter<'a> {
    /// An emitter for an agent's benign events generated for `day`.
    pub(crate) fn for_day(out: &'a mut Vec<SimEvent>, agent: u32, day: u32) -> Emitter<'a> {
        Emitter {
            out,
            agent,
            seq_base: (day as u64) << 32,
            n: 0,
            label: None,
            ip_override: None,
        }
    }

    /// An emitter for one part of an attack (its own events, or a benign session hosting it).
    pub(crate) fn for_attack(
        out: &'a mut Vec<SimEvent>,
        agent: u32,
        attack: u16,
        part: u8,
    ) -> Emitter<'a> {
        Emitter {
            out,
            agent,
            seq_base: (1u64 << 63) | ((attack as u64) << 32) | ((part as u64) << 24),
            n: 0,
            label: None,
            ip_override: None,
        }
    }

    /// Emits a routine call: usually a success carrying its grant, sometimes denied or failed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn routine(
        &mut self,
        rng: &mut SimRng,
        s: &mut Session,
        t: i64,
        action: &'static str,
        resource: String,
        grant: u8,
        bytes: u64,
    ) {
        let x: f64 = rng.r#gen();
        let outcome = if x < BENIGN_DENIED {
            Outcome::Denied
        } else if x < BENIGN_DENIED + BENIGN_ERROR {
            Outcome::Error
        } else {
            Outcome::Success
        };
        let grant = (outcome != Outcome::Denied).then_some(grant);
        self.event(rng, s, t, action, resource, outcome, grant, bytes);
    }

    /// Emits an event with an explicit outcome and grant; the grant id is dropped for the share
    /// of log sources that do not carry it. Denied calls move no data, failed ones little.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn event(
        &mut self,
        rng: &mut SimRng,
        s: &mut Session,
        t: i64,
        action: &'static str,
        resource: String,
        outcome: Outcome,
        grant: Option<u8>,
        bytes: u64,
    ) {
        let grant = grant.filter(|_| rng.gen_bool(GRANT_PRESENT));
        let bytes = match outcome {
            Outcome::Success => bytes,
            Outcome::Denied => 0,
            Outcome::Error => bytes.min(rng.gen_range(0..512)),
        };
        s.steps = s.steps.saturating_add(1);
        self.out.push(SimEvent {
            time_ms: t,
            agent: self.agent,
            seq: self.seq_base | self.n,
            action,
            resource,
            outcome,
            session: s.id,
            ip: self.ip_override.unwrap_or(s.ip),
            bytes,
            grant,
            intent: s.intent,
            attr: s.attr,
            step: s.steps,
            attack: self.label,
        });
        self.n += 1;
    }
}

/// How busy a human-driven agent is at a local time, relative to its peak (0..=1, more at
/// month end for agents that close the books).
pub(crate) fn activity(agent: &Agent, lt: &LocalTime) -> f64 {
    let (h, s) = (lt.hour, agent.work_start_h);
    let e = s + agent.work_len_h;
    let mut w = if h >= s && h < e {
        if (h - (s + 4.0)).abs() < 0.5 {
            0.6
        } else {
            1.0
        }
    } else if (h >= s - 1.0 && h < s) || (h >= e && h < e + 1.5) {
        0.25
    } else {
        0.015
    };
    if lt.is_weekend() {
        w *= agent.weekend_factor;
    }
    if lt.is_month_end() {
        w *= agent.month_end_factor;
    }
    w
}

/// Session start times within `[day_start, day_start + 1 day)`: a Poisson process whose rate
/// follows the agent's local working hours.
pub(crate) fn session_starts(agent: &Agent, day_start: i64, rng: &mut SimRng) -> Vec<i64> {
    let mut starts = Vec::new();
    for h in 0..24 {
        let t0 = day_start + h * HOUR;
        let lt = LocalTime::at(t0 + HOUR / 2, agent.tz_off_ms);
        let mean = agent.peak_rate * activity(agent, &lt);
        for _ in 0..poisson(rng, mean) {
            starts.push(t0 + rng.gen_range(0..HOUR));
        }
    }
    starts.sort_unstable();
    starts
}

/// A time inside the agent's working hours on the local day containing `t`, or `t` itself for
/// agents that work around the clock.
pub(crate) fn working_time(agent: &Agent, t: i64, rng: &mut SimRng) -> i64 {
    if !agent.archetype.human_driven() {
        return t;
    }
    let midnight = super::clock::local_midnight(t, agent.tz_off_ms);
    let h = agent.work_start_h + rng.gen_range(0.5..(agent.work_len_h - 0.5).max(1.0));
    midnight + (h * HOUR as f64) as i64
}
