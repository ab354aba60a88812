//! Scoring throughput: the engine alone (profile, detectors, fusion, decisions) on pre-decoded
//! events of a mixed fleet.

use std::borrow::Cow;
use std::hint::black_box;

use cinch::config::Settings;
use cinch::engine::Engine;
use cinch::event::{AccessEvent, Format, Outcome};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

struct Owned {
    id: String,
    t: i64,
    agent: String,
    action: &'static str,
    resource: String,
    session: String,
    ip: String,
    bytes: u64,
}

fn fleet(n: usize) -> Vec<Owned> {
    let actions = [
        "s3:GetObject",
        "db:Select",
        "crm:GetCustomer",
        "tickets:Read",
        "kb:Search",
        "k8s:list",
    ];
    let t0 = 1_767_571_200_000i64;
    (0..n)
        .map(|i| {
            let agent = i % 200;
            let a = actions[(i / 7 + agent) % actions.len()];
            Owned {
                id: format!("e-{i}"),
                t: t0 + i as i64 * 50,
                agent: format!("agent-{agent:03}"),
                action: a,
                resource: format!("svc://team-{}/{}/obj-{}", agent % 9, a.len(), i % 5000),
                session: format!("s-{}-{}", agent, i / 2000),
                ip: format!("10.{}.{}.{}", agent % 4, agent % 50, 1 + agent % 3),
                bytes: 1000 + (i as u64 * 7919) % 100_000,
            }
        })
        .collect()
}

fn view(o: &Owned) -> AccessEvent<'_> {
    AccessEvent {
        format: Format::Native,
        event_id: Cow::Borrowed(&o.id),
        time_ms: o.t,
        agent_id: Cow::Borrowed(&o.agent),
        agent_kind: Some(Cow::Borrowed("ai_agent")),
        action: Cow::Borrowed(o.action),
        resource: Cow::Borrowed(&o.resource),
        outcome: Outcome::Success,
        session_id: Some(Cow::Borrowed(&o.session)),
        source_ip: Some(Cow::Borrowed(&o.ip)),
        bytes: Some(o.bytes),
        grant: None,
        intent: Some(Cow::Borrowed("answer customer ticket")),
        attributes: None,
        tool: None,
    }
}

/// Scores 100,000 events per iteration on a warmed-up engine, with or without the learned model.
fn score(
    c: &mut Criterion,
    name: &str,
    settings: Settings,
    model: Option<std::sync::Arc<cinch::ml::Model>>,
) {
    let warm = fleet(400_000);
    let evs = fleet(500_000);
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(100_000));
    g.sample_size(10);
    g.bench_function(name, |b| {
        let mut engine = Engine::new(settings.clone());
        // As `cinch run` without a scores topic: only verdicts that reach a finding are
        // explained (the replay bench writes score lines, and so explains every verdict).
        engine.set_explain_all(false);
        if let Some(m) = &model {
            engine.set_model(Some(m.clone()));
        }
        let mut out = Vec::new();
        for o in &warm {
            engine.process(&view(o), &mut out);
        }
        let shift = warm.len() as i64 * 50;
        let mut round = 0i64;
        b.iter(|| {
            round += 1;
            for o in &evs[..100_000] {
                let mut e = view(o);
                e.time_ms += shift * round;
                black_box(engine.process(&e, &mut out));
            }
            out.clear();
        });
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    // The learned model judges agents past their learning period; the bench's agents have
    // hours of history, so the benches below end the learning period at once to measure it.
    let mut mature = Settings::default();
    mature.profile.learning_days = 0.0;
    mature.profile.learning_events = 0;
    // A model trained on this fleet's own history, as a deployment would train it (trained
    // before anything is timed: training keeps both cores busy)...
    let trained = trained_on_the_fleet(&mature);
    score(c, "score_100k_events", Settings::default(), None);
    score(c, "score_100k_events_mature", mature.clone(), None);
    score(
        c,
        "score_100k_events_mature_with_model_of_this_fleet",
        mature.clone(),
        Some(std::sync::Arc::new(trained)),
    );
    // ...and the built-in model, trained on other traffic, to which nearly every event of this
    // synthetic fleet is rare.
    let model = cinch::ml::Model::embedded().expect("the built-in model loads");
    score(
        c,
        "score_100k_events_mature_with_builtin_model",
        mature,
        Some(std::sync::Arc::new(model)),
    );
}

/// Trains a model on the warm-up part of the bench fleet, written as native JSON lines.
fn trained_on_the_fleet(settings: &Settings) -> cinch::ml::Model {
    use std::io::Write as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.jsonl");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&path).expect("history file"));
    for o in fleet(400_000) {
        let line = serde_json::json!({
            "event_id": o.id, "time": cinch::output::time::rfc3339_ms(o.t), "agent_id": o.agent,
            "agent_kind": "ai_agent", "action": o.action, "resource": o.resource,
            "outcome": "success", "session_id": o.session, "source_ip": o.ip, "bytes": o.bytes,
            "intent": "answer customer ticket",
        });
        writeln!(w, "{line}").expect("write history");
    }
    drop(w);
    let opts = cinch::ml::train::TrainOptions {
        settings: settings.clone(),
        ..Default::default()
    };
    let mut history =
        cinch::drive::history::FileHistory::new(&[path], settings).expect("the bench history");
    let progress = cinch::drive::history::StderrProgress::start(true);
    let (file, _) = cinch::ml::train::train(&mut history, &opts, &progress)
        .expect("training on the bench fleet");
    cinch::ml::Model::new(file, 1).expect("the trained model loads")
}

/// What the learned model adds to one event: its feature vector and its rarity under a group's
/// mixture (the peer-group assignment happens once per agent).
fn model_per_event(c: &mut Criterion) {
    let model = cinch::ml::Model::embedded().expect("the built-in model loads");
    let evs = fleet(1_000);
    let obs: Vec<cinch::profile::Observation> = (0..1_000)
        .map(|i| {
            let mut o = cinch::profile::Observation::default();
            o.window.events = (i % 40) as u32;
            o.distinct = (i % 13) as u32;
            o.action.count = (i % 200) as f32;
            o.pattern.count = (i % 50) as f32;
            o.hour_share = (i % 10) as f32 / 40.0;
            o
        })
        .collect();
    let groups = model.groups() as u16;
    let mut g = c.benchmark_group("model");
    g.throughput(Throughput::Elements(1_000));
    g.bench_function("features_and_rarity_1k_events", |b| {
        b.iter(|| {
            for (i, (o, ob)) in evs.iter().zip(&obs).enumerate() {
                let ev = view(o);
                let f = cinch::ml::event_vector(&ev, ob);
                black_box(model.rarity(Some(i as u16 % groups), &f));
            }
        });
    });
    g.finish();
}

criterion_group!(benches, bench, model_per_event);
criterion_main!(benches);
