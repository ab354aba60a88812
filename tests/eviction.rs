//! Idle agents leave memory after `profile.evict_idle_days`, at hours of event time, so that a
//! restored engine evicts the same agents as the one that kept running.

use std::borrow::Cow;

use cinch::config::Settings;
use cinch::engine::Engine;
use cinch::event::{AccessEvent, Format, Outcome};
use cinch::output::OutputRecord;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// Monday 2026-01-05 00:00 UTC.
const T0: i64 = 1_767_571_200_000;

struct Ev {
    id: String,
    t: i64,
    agent: &'static str,
    resource: String,
}

impl Ev {
    fn event(&self) -> AccessEvent<'_> {
        AccessEvent {
            format: Format::Native,
            event_id: Cow::Borrowed(&self.id),
            time_ms: self.t,
            agent_id: Cow::Borrowed(self.agent),
            agent_kind: Some(Cow::Borrowed("service_account")),
            action: Cow::Borrowed("s3:GetObject"),
            resource: Cow::Borrowed(&self.resource),
            outcome: Outcome::Success,
            session_id: None,
            source_ip: Some(Cow::Borrowed("10.0.0.5")),
            bytes: Some(2_000),
            grant: None,
            intent: None,
            attributes: None,
            tool: None,
        }
    }
}

/// Two agents busy every hour for eight days; `etl-idle-1` busy on days 0 and 1, silent, then
/// back on day 6.
fn stream() -> Vec<Ev> {
    let mut v = Vec::new();
    for h in 0..8 * 24 {
        let t = T0 + h * HOUR + 7 * 60_000;
        for agent in ["etl-busy-1", "etl-busy-2"] {
            v.push(Ev {
                id: format!("{agent}-{h}"),
                t,
                agent,
                resource: format!("s3://orders/part-{}.parquet", h % 12),
            });
        }
        if !(2 * 24..6 * 24).contains(&h) {
            v.push(Ev {
                id: format!("idle-{h}"),
                t: t + 60_000,
                agent: "etl-idle-1",
                resource: format!("s3://orders/part-{}.parquet", h % 12),
            });
        }
    }
    v
}

fn settings(idle_days: f64) -> Settings {
    let mut s = Settings::default();
    s.profile.evict_idle_days = idle_days;
    s
}

const AGENTS: [&str; 3] = ["etl-busy-1", "etl-busy-2", "etl-idle-1"];

#[test]
fn an_idle_agent_leaves_memory_and_returns_as_new() {
    let events = stream();
    let mut engine = Engine::new(settings(2.0));
    let mut out = Vec::new();
    let mut held_on = Vec::new();
    for e in &events {
        engine.process(&e.event(), &mut out);
        held_on.push((e.t, engine.agents()));
    }
    let held_at = |t: i64| held_on.iter().rev().find(|(at, _)| *at <= t).unwrap().1;
    // Last event of the idle agent: day 2 minus an hour. Two days later (at the next hour of
    // event time) it is gone; it comes back on day 6.
    assert_eq!(held_at(T0 + 3 * DAY), 3);
    assert_eq!(held_at(T0 + 4 * DAY + 2 * HOUR), 2);
    assert_eq!(held_at(T0 + 6 * DAY - HOUR), 2);
    assert_eq!(held_at(T0 + 8 * DAY), 3);
    assert_eq!(engine.stats().evicted, 1);

    // Never evicted with 0, nor within the default of 90 days.
    for idle in [0.0, Settings::default().profile.evict_idle_days] {
        let mut engine = Engine::new(settings(idle));
        for e in &events {
            engine.process(&e.event(), &mut out);
        }
        assert_eq!((engine.agents(), engine.stats().evicted), (3, 0));
    }
}

/// Runs `events` through `engine`, returning every verdict and what it wrote, rendered.
fn run(engine: &mut Engine, events: &[Ev]) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for e in events {
        let verdict = engine.process(&e.event(), &mut out);
        seen.push(format!("{} {verdict:?}", e.id));
    }
    engine.finish(&mut out);
    seen.extend(out.iter().map(render));
    seen
}

fn render(r: &OutputRecord) -> String {
    format!("{r:?}")
}

#[test]
fn a_restored_engine_evicts_what_the_live_one_did() {
    let events = stream();
    let mut live = Engine::new(settings(2.0));
    let mut sink = Vec::new();
    // The idle agent's last checkpoint, as the state topic keeps it after its eviction.
    let split = |t: i64| events.iter().position(|e| e.t > t).unwrap();
    let early = split(T0 + 2 * DAY);
    for e in &events[..early] {
        live.process(&e.event(), &mut sink);
    }
    let idle_checkpoint = live.export_agent("etl-idle-1").unwrap().unwrap();
    // Restore at several points: before the eviction, just after the idle agent crossed its two
    // days but before the next hour, and after the eviction.
    for at in [T0 + 3 * DAY, T0 + 4 * DAY + 30 * 60_000, T0 + 5 * DAY] {
        let cut = split(at);
        let mut live = Engine::new(settings(2.0));
        let mut before = Vec::new();
        for e in &events[..cut] {
            live.process(&e.event(), &mut before);
        }
        let mut restored = Engine::new(settings(2.0));
        restored
            .import_shared(&live.export_shared().unwrap())
            .unwrap();
        for agent in AGENTS {
            let bytes = match live.export_agent(agent) {
                Some(b) => b.unwrap(),
                None => idle_checkpoint.clone(),
            };
            restored
                .import_agent(agent, Some("service_account"), &bytes)
                .unwrap();
        }
        assert_eq!(live.agents(), restored.agents(), "restored at {at}");
        let rest = &events[cut..];
        let (a, b) = (run(&mut live, rest), run(&mut restored, rest));
        assert!(!a.is_empty());
        assert_eq!(a, b, "restored at {at}");
        assert_eq!(live.agents(), restored.agents());
    }
}
