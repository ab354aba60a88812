//! The example deployment settings under `configs/deploy/` stay valid as the settings evolve.

#[test]
fn every_deployment_example_is_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/deploy");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("configs/deploy") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let s = cinch::drive::files::settings(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                s.kafka
                    .properties
                    .get("security.protocol")
                    .map(String::as_str),
                Some("SASL_SSL"),
                "{} sets up TLS and SASL",
                path.display()
            );
            seen += 1;
        }
    }
    assert!(
        seen >= 2,
        "the SASL/SCRAM and SASL/PLAIN examples are there"
    );
}

/// The OpenTelemetry Collector example writes OTLP protobuf to the topic, and on the brokers,
/// that the cinch example reads as `otlp_proto`.
#[test]
fn the_collector_example_feeds_the_cinch_example() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/deploy");
    let text = std::fs::read_to_string(dir.join("otel-collector.yaml")).expect("collector config");
    let otel: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("valid YAML");
    let kafka = &otel["exporters"]["kafka"];
    let topic = kafka["traces"]["topic"].as_str().expect("traces.topic");
    assert_eq!(kafka["traces"]["encoding"].as_str(), Some("otlp_proto"));
    let pipeline = &otel["service"]["pipelines"]["traces"];
    for (list, name) in [("receivers", "otlp"), ("exporters", "kafka")] {
        assert!(
            pipeline[list]
                .as_sequence()
                .is_some_and(|l| l.iter().any(|v| v.as_str() == Some(name))),
            "the traces pipeline's {list} include {name}"
        );
    }
    let brokers: Vec<&str> = kafka["brokers"]
        .as_sequence()
        .expect("brokers")
        .iter()
        .map(|b| b.as_str().expect("a broker"))
        .collect();

    let s = cinch::drive::files::settings(&dir.join("cinch-otlp.toml")).expect("cinch config");
    assert_eq!(s.kafka.brokers.split(',').collect::<Vec<_>>(), brokers);
    assert!(s.kafka.input_topics.iter().any(|t| t == topic));
    assert!(s.kafka.otlp_proto_topics.iter().any(|t| t == topic));
    assert!(
        s.kafka.unkeyed_topics.iter().any(|t| t == topic),
        "spans keyed by trace id are re-keyed by agent"
    );
    assert_eq!(
        kafka["partition_traces_by_id"].as_bool(),
        Some(true),
        "the Collector keeps a trace's spans together"
    );
}
