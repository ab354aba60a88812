//! The numbers the models read: an agent's behaviour profile (for peer groups) and one event's
//! feature vector (for the event model). Both are defined here once, named in
//! [`PROFILE_FEATURES`] and [`EVENT_FEATURES`], and recorded in every model file, so a model
//! trained on one schema is never applied to another.

use serde::{Deserialize, Serialize};

use super::math::{ln, ln_1p};
use crate::event::AccessEvent;
use crate::profile::Observation;
use crate::profile::keys::{EventKeys, key, ns};

/// Classes of action verbs, in profile-vector order.
pub(crate) const VERB_CLASSES: [&str; 7] = [
    "read",
    "list",
    "write",
    "delete",
    "privilege",
    "execute",
    "other",
];

/// Buckets the actions' services (`s3` in `s3:GetObject`) are hashed into.
pub(crate) const SERVICE_BUCKETS: usize = 16;

/// Time-of-day blocks (four hours each, UTC).
pub(crate) const HOUR_BLOCKS: usize = 6;

/// Names of the behaviour-profile features, in vector order.
pub(crate) const PROFILE_FEATURES: [&str; 35] = [
    "verb_share:read",
    "verb_share:list",
    "verb_share:write",
    "verb_share:delete",
    "verb_share:privilege",
    "verb_share:execute",
    "verb_share:other",
    "service_share:0",
    "service_share:1",
    "service_share:2",
    "service_share:3",
    "service_share:4",
    "service_share:5",
    "service_share:6",
    "service_share:7",
    "service_share:8",
    "service_share:9",
    "service_share:10",
    "service_share:11",
    "service_share:12",
    "service_share:13",
    "service_share:14",
    "service_share:15",
    "hour_share:00-04",
    "hour_share:04-08",
    "hour_share:08-12",
    "hour_share:12-16",
    "hour_share:16-20",
    "hour_share:20-24",
    "weekend_share",
    "log10_events_per_active_day",
    "mean_log_bytes",
    "log_events_per_session",
    "session_share",
    "failed_share",
];

/// Names of the per-event features, in vector order.
pub(crate) const EVENT_FEATURES: [&str; 9] = [
    "hour_sin",
    "hour_cos",
    "log_bytes",
    "log_window_events",
    "log_window_distinct",
    "log_action_familiarity",
    "log_pattern_familiarity",
    "log_hour_share",
    "log_window_failed",
];

/// Length of a profile vector.
pub const PROFILE_DIM: usize = PROFILE_FEATURES.len();
/// Length of an event vector.
pub const EVENT_DIM: usize = EVENT_FEATURES.len();

/// The class of an action's verb: the last word of the action (after `:`, `/` or `.`), judged by
/// its leading verb (`GetObject` reads, `ListObjects` lists, `AttachRolePolicy` changes privilege).
pub(crate) fn verb_class(action: &str) -> usize {
    let verb = action
        .rsplit([':', '/', '.'])
        .next()
        .unwrap_or(action)
        .as_bytes();
    let starts =
        |p: &str| verb.len() >= p.len() && verb[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    const CLASSES: [(usize, &[&str]); 6] = [
        (
            4,
            &[
                "assume",
                "attach",
                "detach",
                "pass",
                "grant",
                "putrole",
                "putuserpolicy",
                "createaccesskey",
                "createrole",
                "createuser",
                "addrole",
                "adduser",
                "impersonate",
                "escalate",
                "bind",
                "approve",
            ],
        ),
        (
            0,
            &[
                "get", "read", "describe", "head", "watch", "pull", "clone", "select", "fetch",
                "download", "view", "lookup", "retrieve", "decrypt", "export",
            ],
        ),
        (
            1,
            &[
                "list",
                "search",
                "query",
                "scan",
                "find",
                "browse",
                "enumerate",
            ],
        ),
        (
            3,
            &[
                "delete",
                "remove",
                "terminate",
                "drop",
                "destroy",
                "purge",
                "revoke",
                "stop",
            ],
        ),
        (
            5,
            &[
                "invoke", "run", "exec", "trigger", "start", "execute", "call", "deploy",
            ],
        ),
        (
            2,
            &[
                "put", "write", "update", "create", "load", "push", "post", "insert", "upload",
                "send", "modify", "set", "patch", "copy", "commit", "merge", "tag", "publish",
                "restore", "apply",
            ],
        ),
    ];
    for (class, verbs) in CLASSES {
        if verbs.iter().any(|v| starts(v)) {
            return class;
        }
    }
    6
}

/// The name of the class of an action's verb (`read`, `list`, `write`, `delete`, `privilege`,
/// `execute` or `other`).
pub(crate) fn verb_name(action: &str) -> &'static str {
    VERB_CLASSES[verb_class(action)]
}

/// The bucket of an action's service (the part before the first `:`).
pub(crate) fn service_bucket(action: &str) -> usize {
    let service = action.split(':').next().unwrap_or(action);
    (key(ns::ACTION, service) % SERVICE_BUCKETS as u64) as usize
}

/// What an agent did overall, accumulated event by event: the input of its behaviour profile.
/// A few hundred bytes, kept with the agent's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Behaviour {
    events: u32,
    failed: u32,
    log_bytes: f64,
    verbs: [u32; VERB_CLASSES.len()],
    services: [u32; SERVICE_BUCKETS],
    hours: [u32; HOUR_BLOCKS],
    weekend: u32,
    sessions: u32,
    with_session: u32,
    last_session: u64,
    active_days: u32,
    last_day: i64,
    first_ms: i64,
    last_ms: i64,
}

impl Behaviour {
    /// Adds one event.
    pub fn add(&mut self, ev: &AccessEvent<'_>, keys: &EventKeys<'_>) {
        if self.events == 0 {
            self.first_ms = ev.time_ms;
            self.last_day = i64::MIN;
        }
        self.events = self.events.saturating_add(1);
        if keys.failed {
            self.failed += 1;
        }
        self.log_bytes += (ev.bytes.unwrap_or(0) as f64).ln_1p();
        self.verbs[verb_class(&ev.action)] += 1;
        self.services[service_bucket(&ev.action)] += 1;
        let hour = (keys.hour_of_week % 24) as usize;
        self.hours[hour / (24 / HOUR_BLOCKS)] += 1;
        if keys.hour_of_week >= 5 * 24 {
            self.weekend += 1;
        }
        if let Some(s) = keys.session {
            self.with_session += 1;
            if s != self.last_session {
                self.sessions += 1;
                self.last_session = s;
            }
        }
        let day = ev.time_ms.div_euclid(86_400_000);
        if day != self.last_day {
            self.active_days += 1;
            self.last_day = day;
        }
        self.first_ms = self.first_ms.min(ev.time_ms);
        self.last_ms = self.last_ms.max(ev.time_ms);
    }

    /// Events added.
    pub fn events(&self) -> u32 {
        self.events
    }

    /// Whether there is enough of it to assign the agent to a learned peer group.
    pub fn ready(&self, settings: &crate::ml::settings::MlSettings) -> bool {
        self.events >= settings.assign_min_events && self.span_days() >= settings.assign_min_days
    }

    /// Days between the first and the newest event.
    pub fn span_days(&self) -> f64 {
        (self.last_ms - self.first_ms) as f64 / 86_400_000.0
    }

    /// The profile vector (see [`PROFILE_FEATURES`]).
    pub fn vector(&self) -> [f64; PROFILE_DIM] {
        let mut v = [0.0; PROFILE_DIM];
        let n = self.events.max(1) as f64;
        let mut i = 0;
        for c in self.verbs.iter().chain(&self.services).chain(&self.hours) {
            v[i] = *c as f64 / n;
            i += 1;
        }
        v[i] = self.weekend as f64 / n;
        v[i + 1] = (n / self.active_days.max(1) as f64).log10();
        v[i + 2] = self.log_bytes / n;
        v[i + 3] = if self.with_session == 0 {
            0.0
        } else {
            (self.with_session as f64 / self.sessions.max(1) as f64).ln()
        };
        v[i + 4] = self.with_session as f64 / n;
        v[i + 5] = self.failed as f64 / n;
        v
    }
}

/// The hour of the day on the unit circle, per minute of the day.
static HOUR_CIRCLE: std::sync::LazyLock<Vec<(f32, f32)>> = std::sync::LazyLock::new(|| {
    (0..1440)
        .map(|m| {
            let angle = m as f32 / 1440.0 * std::f32::consts::TAU;
            (angle.sin(), angle.cos())
        })
        .collect()
});

/// One event's feature vector (see [`EVENT_FEATURES`]): when, how much, how fast, how familiar.
/// Read from the observation the detectors see, before the event is learned.
pub fn event_vector(ev: &AccessEvent<'_>, obs: &Observation) -> [f32; EVENT_DIM] {
    let (sin, cos) = HOUR_CIRCLE[(ev.time_ms.rem_euclid(86_400_000) / 60_000) as usize];
    [
        sin,
        cos,
        ln_1p(ev.bytes.unwrap_or(0) as f32),
        ln_1p(obs.window.events as f32),
        ln_1p(obs.distinct as f32),
        ln_1p(obs.action.count.max(0.0)),
        ln_1p(obs.pattern.count.max(0.0)),
        ln(obs.hour_share.max(0.0) + 1e-3),
        ln_1p(obs.window.failed as f32),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_classed_by_their_leading_word() {
        assert_eq!(VERB_CLASSES[verb_class("s3:GetObject")], "read");
        assert_eq!(VERB_CLASSES[verb_class("s3:ListObjects")], "list");
        assert_eq!(VERB_CLASSES[verb_class("k8s:list")], "list");
        assert_eq!(VERB_CLASSES[verb_class("s3:PutObject")], "write");
        assert_eq!(
            VERB_CLASSES[verb_class("iam:AttachRolePolicy")],
            "privilege"
        );
        assert_eq!(VERB_CLASSES[verb_class("sts:AssumeRole")], "privilege");
        assert_eq!(VERB_CLASSES[verb_class("ec2:TerminateInstances")], "delete");
        assert_eq!(VERB_CLASSES[verb_class("lambda:InvokeFunction")], "execute");
        assert_eq!(VERB_CLASSES[verb_class("mail:Send")], "write");
        assert_eq!(VERB_CLASSES[verb_class("weird")], "other");
    }

    #[test]
    fn the_schema_names_every_feature_once() {
        let mut p = PROFILE_FEATURES.to_vec();
        p.sort_unstable();
        p.dedup();
        assert_eq!(p.len(), PROFILE_DIM);
        assert_eq!(
            PROFILE_DIM,
            VERB_CLASSES.len() + SERVICE_BUCKETS + HOUR_BLOCKS + 6
        );
    }
}
