//! `cinch plan`: a deployment sized from the figures the benches measure.

fn plan(args: &[&str]) -> (Option<i32>, String, String) {
    let out = assert_cmd::cargo::cargo_bin_cmd!("cinch")
        .arg("plan")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn a_plan_names_instances_memory_partitions_and_the_state_topic_with_its_sources() {
    let (code, out, err) = plan(&["--agents", "100000", "--events-per-sec", "50000"]);
    assert_eq!(code, Some(0), "{err}");
    for line in ["instances:", "memory:", "partitions:", "state topic:"] {
        assert!(out.contains(line), "{line} in {out}");
    }
    assert!(out.contains("cargo bench --bench agents"), "{out}");
    assert!(out.contains("taskset -c 0 cinch replay"), "{out}");
}

#[test]
fn more_load_needs_more_instances_and_too_few_partitions_fail() {
    let instances = |rate: &str| {
        let (_, out, _) = plan(&["--agents", "1000", "--events-per-sec", rate]);
        let line = out.lines().find(|l| l.contains("instances:")).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u32>()
            .unwrap()
    };
    assert!(instances("5000000") > instances("50000"));
    let (code, out, _) = plan(&[
        "--agents",
        "1000",
        "--events-per-sec",
        "5000000",
        "--partitions",
        "2",
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("2 are too few"), "{out}");
}

#[test]
fn every_bad_argument_is_named_at_once() {
    let (code, _, err) = plan(&[
        "--agents",
        "0",
        "--events-per-sec",
        "0",
        "--utilisation",
        "1.5",
    ]);
    assert_eq!(code, Some(2));
    for flag in ["--agents", "--events-per-sec", "--utilisation"] {
        assert!(err.contains(flag), "{flag} in {err}");
    }
}
