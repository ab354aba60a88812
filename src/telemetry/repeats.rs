//! Keeps a log line that repeats (a broker that stays unreachable is reported by librdkafka many
//! times a second) from flooding stderr: the first line of its kind is logged at once, the
//! identical lines after it are counted, and one summary line with their count is logged at most
//! every [`REPEAT_SUMMARY_SECS`] seconds. The metrics count every one of them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Seconds between two lines of one repeated log line at most.
pub const REPEAT_SUMMARY_SECS: u64 = 10;

/// Kinds of lines followed at most; past that (thousands of distinct errors), lines are logged
/// without limit until the kinds seen are forgotten.
const MAX_KINDS: usize = 256;

/// Decides which log lines are written (see the module documentation).
pub struct RepeatLimiter {
    interval: Duration,
    kinds: Mutex<HashMap<String, Repeats>>,
}

/// One kind of line: when it was last written, and how many identical ones were held back since.
struct Repeats {
    written: Instant,
    held: u64,
}

impl Default for RepeatLimiter {
    fn default() -> Self {
        RepeatLimiter::new(Duration::from_secs(REPEAT_SUMMARY_SECS))
    }
}

impl RepeatLimiter {
    /// A limiter that writes a line of each kind at most every `interval`.
    pub fn new(interval: Duration) -> Self {
        RepeatLimiter {
            interval,
            kinds: Mutex::new(HashMap::new()),
        }
    }

    /// The lines to write now that `line` happened at `now`: `line` itself the first time, a
    /// summary of it once `interval` has passed since it was last written, nothing in between.
    /// The summaries of other lines held back for longer than `interval` come along, so that a
    /// count is not lost when its line stops repeating and something else is logged.
    pub fn admit(&self, line: &str, now: Instant) -> Vec<String> {
        let mut kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        let interval = self.interval;
        let mut out = Vec::new();
        for (other, r) in kinds.iter_mut() {
            if other != line && r.held > 0 && now.saturating_duration_since(r.written) >= interval {
                out.push(summary(
                    other,
                    r.held,
                    now.saturating_duration_since(r.written),
                ));
                r.written = now;
                r.held = 0;
            }
        }
        match kinds.get_mut(line) {
            Some(r) if now.saturating_duration_since(r.written) < interval => r.held += 1,
            Some(r) => {
                out.push(if r.held == 0 {
                    line.to_owned()
                } else {
                    summary(line, r.held + 1, now.saturating_duration_since(r.written))
                });
                r.written = now;
                r.held = 0;
            }
            None => {
                if kinds.len() >= MAX_KINDS {
                    kinds.retain(|_, r| {
                        r.held > 0 || now.saturating_duration_since(r.written) < interval
                    });
                }
                if kinds.len() < MAX_KINDS {
                    kinds.insert(
                        line.to_owned(),
                        Repeats {
                            written: now,
                            held: 0,
                        },
                    );
                }
                out.push(line.to_owned());
            }
        }
        out
    }
}

fn summary(line: &str, times: u64, over: Duration) -> String {
    let times = match times {
        1 => "once".to_owned(),
        n => format!("{n} times"),
    };
    format!(
        "{line} (repeated {times} in the last {} s)",
        over.as_secs().max(1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_line_is_written_once_then_summarised_every_interval() {
        let limiter = RepeatLimiter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let down = "consumer: all brokers are down";
        assert_eq!(limiter.admit(down, at(0)), [down]);
        // 20 a second for ten seconds: nothing more is written...
        for i in 1..200 {
            assert!(limiter.admit(down, at(i * 50)).is_empty(), "at {i}");
        }
        // ...until the interval has passed: one line with the count, this one included.
        assert_eq!(
            limiter.admit(down, at(10_000)),
            [format!("{down} (repeated 200 times in the last 10 s)")]
        );
        assert!(limiter.admit(down, at(10_050)).is_empty());
        // Another line is written at once, whatever the first one does.
        let other = "consumer: unknown topic";
        assert_eq!(limiter.admit(other, at(10_100)), [other]);
        // A line that stopped repeating has its count written with the next line logged.
        assert_eq!(
            limiter.admit(other, at(25_000)),
            [
                format!("{down} (repeated once in the last 15 s)"),
                other.to_owned()
            ]
        );
        // Once the count is written, a line that comes back after a while is written as it is.
        assert_eq!(limiter.admit(down, at(40_000)), [down]);
    }

    #[test]
    fn many_kinds_of_lines_are_all_written() {
        let limiter = RepeatLimiter::new(Duration::from_secs(10));
        let now = Instant::now();
        for i in 0..2 * MAX_KINDS {
            let line = format!("error {i}");
            assert_eq!(limiter.admit(&line, now), std::slice::from_ref(&line));
        }
        assert!(limiter.kinds.lock().unwrap().len() <= MAX_KINDS);
    }
}
