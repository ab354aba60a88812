//! `cinch run` against brokers none of which answers: it stops within
//! `kafka.startup_timeout_secs` with exit status 2 and one error naming the brokers and
//! librdkafka's reason, instead of retrying forever.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cinch-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `cinch run` with these brokers and a start-up timeout of 2 s; its exit status, how long it
/// took and its stderr. Killed (and the test failed) if it runs for more than `bound`.
fn run_against(brokers: &str, bound: Duration) -> (Option<i32>, Duration, String) {
    let dir = temp_dir("startup");
    let config = dir.join(format!("cinch-{}.toml", brokers.replace([':', '.'], "-")));
    std::fs::write(&config, "[kafka]\nstartup_timeout_secs = 2\n").unwrap();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cinch"))
        .args(["run", "--config"])
        .arg(&config)
        .args(["--brokers", brokers, "--metrics-addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cinch runs");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("cinch run against {brokers} still running after {bound:?}; stderr:\n{err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = started.elapsed();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let _ = std::fs::remove_file(&config);
    (status.code(), took, err)
}

#[test]
fn unreachable_brokers_stop_the_run_with_status_2() {
    // A port nothing listens on: the connection is refused.
    let (code, took, err) = run_against("127.0.0.1:1", Duration::from_secs(30));
    assert_eq!(code, Some(2), "{err}");
    assert!(took >= Duration::from_secs(2), "gave up after {took:?}");
    let errors: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one error, not a flood:\n{err}");
    let error = errors[0];
    assert!(error.starts_with("cinch: error: "), "{error}");
    assert!(
        error.contains("127.0.0.1:1"),
        "the brokers are named: {error}"
    );
    assert!(
        error.contains("within 2 s (kafka.startup_timeout_secs)"),
        "{error}"
    );
    assert!(
        error.contains("Connection refused"),
        "librdkafka's reason is given: {error}"
    );
    assert!(err.lines().count() <= 5, "{err}");
}

#[test]
fn a_broker_name_that_does_not_resolve_stops_the_run_with_status_2() {
    let (code, _, err) = run_against("no-such-broker.invalid:9092", Duration::from_secs(40));
    assert_eq!(code, Some(2), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one error, not a flood:\n{err}");
    assert!(
        errors[0].contains("no-such-broker.invalid:9092"),
        "{}",
        errors[0]
    );
}
