//! End-to-end replay throughput: a simulated fleet of about 200k native events read from a
//! file, decoded, scored, decided, with findings and every score line written to files; then
//! the same with the fleet's entitlements and a signing key (grant attribution, usage ledger,
//! recommendations and signed commands); then with the built-in learned model as well; then
//! that over 12 partitions with fleet knowledge merged (`cinch replay --partitions 12`).

use cinch::config::Settings;
use cinch::drive::replay::{ReplayOptions, replay};
use cinch::sim::{self, SimConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fleet");
    let summary = sim::simulate(&SimConfig {
        agents: 70,
        days: 15,
        seed: 7,
        out: data.clone(),
        ..SimConfig::default()
    })
    .unwrap();
    let opts = ReplayOptions {
        input: data.join(sim::EVENTS_FILE),
        out: Some(dir.path().join("findings.jsonl")),
        scores_out: Some(dir.path().join("scores.jsonl")),
        dead_letter: Some(dir.path().join("dead_letters.jsonl")),
        progress: false,
        ..Default::default()
    };
    // Sanity: every simulated event is valid.
    let first = replay(Settings::default(), &opts).unwrap();
    assert_eq!(first.input.events, summary.events);
    assert_eq!(first.input.dead_letters, 0);

    let mut g = c.benchmark_group("replay");
    g.throughput(Throughput::Elements(summary.events));
    g.sample_size(10);
    g.bench_function(format!("simulated fleet, {} events", summary.events), |b| {
        b.iter(|| replay(Settings::default(), &opts).unwrap())
    });
    let with_grants = ReplayOptions {
        entitlements: Some(
            cinch::drive::files::entitlements(&data.join("entitlements.json")).unwrap(),
        ),
        signer: Some(std::sync::Arc::new(cinch::drive::files::fresh_signer())),
        ..opts.clone()
    };
    let first = replay(Settings::default(), &with_grants).unwrap();
    assert!(first.recommendations > 0 && first.commands > 0);
    g.bench_function(
        format!(
            "simulated fleet with entitlements, {} events",
            summary.events
        ),
        |b| b.iter(|| replay(Settings::default(), &with_grants).unwrap()),
    );
    let with_model = ReplayOptions {
        model: Some(std::sync::Arc::new(
            cinch::ml::Model::embedded().expect("the built-in model loads"),
        )),
        ..with_grants.clone()
    };
    g.bench_function(
        format!(
            "simulated fleet with entitlements and the built-in model, {} events",
            summary.events
        ),
        |b| b.iter(|| replay(Settings::default(), &with_model).unwrap()),
    );
    // The same over 12 partitions with fleet knowledge merged at every tick (one thread): what
    // routing and the merge cost.
    let partitioned = ReplayOptions {
        partitions: 12,
        ..with_model.clone()
    };
    g.bench_function(
        format!(
            "simulated fleet with entitlements and the built-in model, 12 partitions merged, {} events",
            summary.events
        ),
        |b| b.iter(|| replay(Settings::default(), &partitioned).unwrap()),
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
