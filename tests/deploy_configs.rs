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
