//! Analyst feedback and suppressions. A finding marked false positive (by whom and why)
//! creates an expiring suppression for its agent, detectors and resource patterns: later
//! anomalous events it covers open no finding, the baseline learns them as normal, and each
//! finding it hides is named in the audit stream.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::aggregate::{finding_id, finding_number};
use crate::detect::Verdict;
use crate::grants::usage::Name;
use crate::output::OutputRecord;
use crate::output::audit::{Audit, AuditEvent};
use crate::output::time::rfc3339_ms;
use crate::profile::counter::reserve_gently;
use crate::vocab::DetectorId;

/// Errors reading feedback.
#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    /// The file could not be read.
    #[error("cannot read feedback {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A record is not valid feedback.
    #[error("invalid feedback {origin}: {message}")]
    Invalid {
        /// Where it came from (path and line, or topic, partition and offset).
        origin: String,
        /// What is wrong.
        message: String,
    },
}

/// The analyst's verdict on a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackVerdict {
    /// Not an attack: suppress it and learn it as normal.
    FalsePositive,
    /// Confirmed: recorded in the audit stream only.
    TruePositive,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackWire {
    #[serde(default)]
    kind: Option<String>,
    finding_id: String,
    agent_id: String,
    verdict: FeedbackVerdict,
    analyst: String,
    reason: String,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
}

/// One feedback record: `{"finding_id", "agent_id", "verdict", "analyst", "reason"}`, with
/// optional `time` (RFC 3339; when it takes effect in event time, default at once) and
/// `expires_at` (RFC 3339; default `feedback.suppression_days` after `time`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Feedback {
    /// The finding judged.
    pub finding_id: String,
    /// Its agent.
    pub agent_id: String,
    /// The verdict.
    pub verdict: FeedbackVerdict,
    /// Who judged it.
    pub analyst: String,
    /// Why.
    pub reason: String,
    /// When it takes effect (event time, epoch ms); `None`: at once.
    pub time_ms: Option<i64>,
    /// When the suppression lapses (epoch ms), if given.
    pub expires_ms: Option<i64>,
}

impl Feedback {
    /// Parses one record.
    pub fn parse(line: &str, origin: &str) -> Result<Feedback, FeedbackError> {
        let bad = |message: String| FeedbackError::Invalid {
            origin: origin.to_string(),
            message,
        };
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        if !v.is_object() {
            return Err(bad("a feedback record is a JSON object".into()));
        }
        let w: FeedbackWire = serde_json::from_value(v).map_err(|e| bad(e.to_string()))?;
        if let Some(k) = &w.kind
            && k != "feedback"
        {
            return Err(bad(format!("kind is {k:?}, expected \"feedback\"")));
        }
        for (name, v) in [
            ("finding_id", &w.finding_id),
            ("agent_id", &w.agent_id),
            ("analyst", &w.analyst),
            ("reason", &w.reason),
        ] {
            if v.trim().is_empty() {
                return Err(bad(format!("{name} is empty")));
            }
        }
        let time = |v: &Option<String>, name: &str| -> Result<Option<i64>, FeedbackError> {
            v.as_deref()
                .map(|s| {
                    crate::event::time::parse_rfc3339_ms(s)
                        .filter(|t| (0..4_102_444_800_000).contains(t))
                        .ok_or_else(|| {
                            bad(format!(
                                "{name} is not an RFC 3339 time between 1970 and 2100: {s:?}"
                            ))
                        })
                })
                .transpose()
        };
        Ok(Feedback {
            time_ms: time(&w.time, "time")?,
            expires_ms: time(&w.expires_at, "expires_at")?,
            finding_id: w.finding_id,
            agent_id: w.agent_id,
            verdict: w.verdict,
            analyst: w.analyst,
            reason: w.reason,
        })
    }

    /// Parses JSON lines of feedback (`origin` names them in errors), in event-time order (records without a time
    /// first, in file order).
    pub fn parse_lines(text: &str, origin: &str) -> Result<Vec<Feedback>, FeedbackError> {
        let mut v = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            v.push(Feedback::parse(line, &format!("{origin} line {}", i + 1))?);
        }
        v.sort_by_key(|f| f.time_ms.unwrap_or(i64::MIN));
        Ok(v)
    }
}

/// An expiring suppression of one agent's detectors on resource patterns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Suppression {
    /// Stable id.
    pub suppression_id: String,
    /// The agent.
    pub agent_id: String,
    /// The detectors it covers.
    pub detectors: Vec<DetectorId>,
    /// The generalised resource patterns it covers.
    pub patterns: Vec<String>,
    /// The finding marked false positive.
    pub finding_id: String,
    /// Who marked it.
    pub analyst: String,
    /// Why.
    pub reason: String,
    /// Created (event time, epoch ms).
    pub created_ms: i64,
    /// Lapses (event time, epoch ms).
    pub expires_ms: i64,
    /// Anomalous events it hid.
    pub hidden_events: u64,
    /// Findings it hid.
    pub hidden_findings: u64,
    /// Event time of the last event it hid.
    last_hidden_ms: i64,
}

impl Suppression {
    fn covers(&self, pattern: &str, verdict: &Verdict) -> bool {
        let mut strong = verdict.reasons.iter().filter(|r| r.score >= 0.5).peekable();
        let detectors_covered = if strong.peek().is_some() {
            strong.all(|r| self.detectors.contains(&r.detector))
        } else {
            verdict
                .reasons
                .first()
                .is_some_and(|r| self.detectors.contains(&r.detector))
        };
        detectors_covered && self.patterns.iter().any(|p| p == pattern)
    }
}

/// A recently reported finding: what a suppression of it would cover. Held compactly (the
/// id's number, the patterns interned), as every agent keeps up to [`RECENT`] of them;
/// serialised as its id, detectors and patterns in full.
#[derive(Clone, Debug)]
struct Recent {
    /// The number in the finding id (`fnd-` and 16 hex digits, see [`finding_number`]).
    id: u64,
    detectors: Box<[DetectorId]>,
    patterns: Box<[Name]>,
}

/// A [`Recent`] as serialised.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Recent")]
struct StoredRecent {
    finding_id: String,
    detectors: Vec<DetectorId>,
    patterns: Vec<Name>,
}

impl Serialize for Recent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        StoredRecent {
            finding_id: finding_id(self.id),
            detectors: self.detectors.to_vec(),
            patterns: self.patterns.to_vec(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Recent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = StoredRecent::deserialize(d)?;
        let id = finding_number(&r.finding_id).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "finding id {:?} is not of the form fnd-<16 hex digits>",
                r.finding_id
            ))
        })?;
        Ok(Recent {
            id,
            detectors: r.detectors.into(),
            patterns: r.patterns.into(),
        })
    }
}

/// Most recent findings remembered per agent for feedback.
const RECENT: usize = 32;

/// Suppressions of every agent, and the recent findings feedback may name.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Suppressions {
    by_agent: FxHashMap<Box<str>, Vec<Suppression>>,
    recent: FxHashMap<Box<str>, Vec<Recent>>,
    /// Anomalous events hidden.
    pub hidden_events: u64,
    /// Earliest expiry of a suppression in force.
    #[serde(default = "never")]
    next_expiry: i64,
}

fn never() -> i64 {
    i64::MAX
}

impl Default for Suppressions {
    fn default() -> Self {
        Suppressions {
            by_agent: FxHashMap::default(),
            recent: FxHashMap::default(),
            hidden_events: 0,
            next_expiry: never(),
        }
    }
}

impl Suppressions {
    /// Ends the suppressions that lapsed by event time `now`, each said in the audit stream.
    pub fn expire(&mut self, now: i64, out: &mut Vec<OutputRecord>) {
        if now < self.next_expiry {
            return;
        }
        let mut agents: Vec<&Box<str>> = self
            .by_agent
            .iter()
            .filter(|(_, l)| l.iter().any(|s| s.expires_ms <= now))
            .map(|(a, _)| a)
            .collect();
        agents.sort_unstable();
        let agents: Vec<Box<str>> = agents.into_iter().cloned().collect();
        for agent in agents {
            let Some(list) = self.by_agent.get_mut(&agent) else {
                continue;
            };
            for s in list.iter().filter(|s| s.expires_ms <= now) {
                out.push(OutputRecord::Audit(Audit::new(
                    AuditEvent::SuppressionExpired,
                    s.expires_ms,
                    Some(&agent),
                    format!(
                        "suppression {} of finding {} lapsed after hiding {} findings ({} events)",
                        s.suppression_id, s.finding_id, s.hidden_findings, s.hidden_events
                    ),
                    json!({"suppression_id": s.suppression_id, "hidden_findings": s.hidden_findings, "hidden_events": s.hidden_events}),
                )));
            }
            list.retain(|s| s.expires_ms > now);
            if list.is_empty() {
                self.by_agent.remove(&agent);
            }
        }
        self.next_expiry = self
            .by_agent
            .values()
            .flatten()
            .map(|s| s.expires_ms)
            .min()
            .unwrap_or(i64::MAX);
    }

    /// Remembers a finding (open or closed) so feedback can name it.
    pub fn remember(&mut self, agent: &str, finding_id: &str, sig: (Vec<DetectorId>, &[String])) {
        let Some(id) = finding_number(finding_id) else {
            // Every finding id is written `fnd-` and 16 hex digits; another could not be named.
            return;
        };
        let list = self.recent.entry(agent.into()).or_default();
        if let Some(r) = list.iter_mut().find(|r| r.id == id) {
            r.detectors = sig.0.into();
            if !r
                .patterns
                .iter()
                .map(|p| p.as_ref())
                .eq(sig.1.iter().map(String::as_str))
            {
                r.patterns = sig.1.iter().map(|p| Name::new(p)).collect();
            }
            return;
        }
        if list.len() >= RECENT {
            list.remove(0);
        }
        reserve_gently(list, RECENT);
        list.push(Recent {
            id,
            detectors: sig.0.into(),
            patterns: sig.1.iter().map(|p| Name::new(p)).collect(),
        });
    }

    /// Whether the engine knows the finding (feedback naming it belongs here).
    pub fn knows(&self, agent: &str, finding_id: &str) -> bool {
        self.recent
            .get(agent)
            .zip(finding_number(finding_id))
            .is_some_and(|(l, id)| l.iter().any(|r| r.id == id))
    }

    /// Applies feedback at event time `now`.
    pub fn apply(&mut self, fb: &Feedback, now: i64, days: u32, out: &mut Vec<OutputRecord>) {
        let at = fb.time_ms.unwrap_or(now);
        let details = json!({
            "finding_id": fb.finding_id,
            "verdict": fb.verdict,
            "analyst": fb.analyst,
            "reason": fb.reason,
        });
        let Some(found) = self
            .recent
            .get(fb.agent_id.as_str())
            .zip(finding_number(&fb.finding_id))
            .and_then(|(l, id)| l.iter().find(|r| r.id == id))
        else {
            out.push(OutputRecord::Audit(Audit::new(
                AuditEvent::FeedbackRejected,
                at,
                Some(&fb.agent_id),
                format!(
                    "feedback on {} by {} not applied: the finding is unknown for agent {}",
                    fb.finding_id, fb.analyst, fb.agent_id
                ),
                details,
            )));
            return;
        };
        if fb.verdict == FeedbackVerdict::TruePositive {
            out.push(OutputRecord::Audit(Audit::new(
                AuditEvent::FeedbackConfirmed,
                at,
                Some(&fb.agent_id),
                format!(
                    "finding {} confirmed by {}: nothing suppressed",
                    fb.finding_id, fb.analyst
                ),
                details,
            )));
            return;
        }
        let h = xxhash_rust::xxh3::xxh3_64(
            format!("{}\u{1f}{}\u{1f}{}", fb.agent_id, fb.finding_id, fb.analyst).as_bytes(),
        );
        let id = format!("sup-{h:016x}");
        if self
            .by_agent
            .get(fb.agent_id.as_str())
            .is_some_and(|l| l.iter().any(|s| s.suppression_id == id))
        {
            // The same feedback again (a redelivery or a restart): already in force.
            return;
        }
        let expires = fb.expires_ms.unwrap_or(at + i64::from(days) * 86_400_000);
        let s = Suppression {
            suppression_id: id,
            agent_id: fb.agent_id.clone(),
            detectors: found.detectors.to_vec(),
            patterns: found.patterns.iter().map(|p| p.to_string()).collect(),
            finding_id: fb.finding_id.clone(),
            analyst: fb.analyst.clone(),
            reason: fb.reason.clone(),
            created_ms: at,
            expires_ms: expires,
            hidden_events: 0,
            hidden_findings: 0,
            last_hidden_ms: i64::MIN,
        };
        out.push(OutputRecord::Audit(Audit::new(
            AuditEvent::SuppressionCreated,
            at,
            Some(&fb.agent_id),
            format!(
                "{} marked {} false positive ({}): {} on {} suppressed for agent {} until {}",
                fb.analyst,
                fb.finding_id,
                fb.reason,
                s.detectors
                    .iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                s.patterns.join(", "),
                fb.agent_id,
                rfc3339_ms(expires)
            ),
            json!({
                "suppression_id": s.suppression_id,
                "finding_id": fb.finding_id,
                "analyst": fb.analyst,
                "reason": fb.reason,
                "detectors": s.detectors,
                "patterns": s.patterns,
                "expires_at": rfc3339_ms(expires),
            }),
        )));
        self.next_expiry = self.next_expiry.min(s.expires_ms);
        self.by_agent
            .entry(fb.agent_id.as_str().into())
            .or_default()
            .push(s);
    }

    /// Whether a suppression covers an anomalous event of `agent` at `t`; when one does, counts
    /// it and, for the first event of a hidden burst (no hidden event within `gap_ms` before),
    /// says so in the audit stream.
    #[allow(clippy::too_many_arguments)]
    pub fn hides(
        &mut self,
        agent: &str,
        event_id: &str,
        pattern: &str,
        verdict: &Verdict,
        t: i64,
        gap_ms: i64,
        out: &mut Vec<OutputRecord>,
    ) -> bool {
        let Some(list) = self.by_agent.get_mut(agent) else {
            return false;
        };
        // Lapsed ones are ended by `expire` as event time passes.
        let Some(s) = list
            .iter_mut()
            .find(|s| s.expires_ms > t && s.covers(pattern, verdict))
        else {
            return false;
        };
        s.hidden_events += 1;
        self.hidden_events += 1;
        if t > s.last_hidden_ms.saturating_add(gap_ms) {
            s.hidden_findings += 1;
            out.push(OutputRecord::Audit(Audit::new(
                AuditEvent::SuppressionApplied,
                t,
                Some(agent),
                format!(
                    "suppression {} ({} marked {} false positive) hid a finding starting at event {event_id} (score {:.2})",
                    s.suppression_id, s.analyst, s.finding_id, verdict.score
                ),
                json!({
                    "suppression_id": s.suppression_id,
                    "finding_id": s.finding_id,
                    "event_id": event_id,
                    "score": (f64::from(verdict.score) * 1e4).round() / 1e4,
                    "pattern": pattern,
                }),
            )));
        }
        s.last_hidden_ms = t;
        true
    }

    /// Every suppression in force, by agent then id.
    pub fn list(&self) -> Vec<&Suppression> {
        let mut v: Vec<&Suppression> = self.by_agent.values().flatten().collect();
        v.sort_by(|a, b| {
            a.agent_id
                .cmp(&b.agent_id)
                .then(a.suppression_id.cmp(&b.suppression_id))
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::audit::AuditEvent;

    const ID: &str = "fnd-00c0ffee12345678";

    fn feedback(finding_id: &str) -> Feedback {
        Feedback {
            finding_id: finding_id.into(),
            agent_id: "agent-1".into(),
            verdict: FeedbackVerdict::FalsePositive,
            analyst: "ana".into(),
            reason: "expected".into(),
            time_ms: Some(1_000),
            expires_ms: None,
        }
    }

    fn remembered() -> Suppressions {
        let mut s = Suppressions::default();
        let patterns = vec!["s3://bucket-<n>/*".to_string(), "iam:role/x".to_string()];
        s.remember(
            "agent-1",
            ID,
            (vec![DetectorId::Novelty, DetectorId::Rate], &patterns),
        );
        s
    }

    fn events(out: &[OutputRecord]) -> Vec<AuditEvent> {
        out.iter()
            .filter_map(|r| match r {
                OutputRecord::Audit(a) => Some(a.event),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_remembered_finding_is_stored_whole_and_named_after_a_restore() {
        let s = remembered();
        let stored = serde_json::to_value(&s).unwrap();
        assert_eq!(
            stored["recent"]["agent-1"][0],
            serde_json::json!({
                "finding_id": ID,
                "detectors": ["novelty", "rate"],
                "patterns": ["s3://bucket-<n>/*", "iam:role/x"],
            })
        );
        let mut restored: Suppressions = serde_json::from_value(stored).unwrap();
        assert!(restored.knows("agent-1", ID));
        assert!(!restored.knows("agent-1", "fnd-00c0ffee12345679"));
        assert!(!restored.knows("agent-2", ID));
        let mut out = Vec::new();
        restored.apply(&feedback(ID), 1_000, 7, &mut out);
        assert_eq!(events(&out), [AuditEvent::SuppressionCreated]);
        let s = &restored.by_agent["agent-1"][0];
        assert_eq!(s.patterns, ["s3://bucket-<n>/*", "iam:role/x"]);
        assert_eq!(s.detectors, [DetectorId::Novelty, DetectorId::Rate]);
    }

    #[test]
    fn feedback_naming_text_that_is_no_finding_id_is_rejected() {
        let mut s = remembered();
        for id in [
            "fnd-00C0FFEE12345678",
            "fnd-00c0ffee1234567",
            "fnd-+0c0ffee12345678",
            "00c0ffee12345678",
            "fnd-00c0ffee12345678 ",
        ] {
            assert!(!s.knows("agent-1", id), "{id}");
            let mut out = Vec::new();
            s.apply(&feedback(id), 1_000, 7, &mut out);
            assert_eq!(events(&out), [AuditEvent::FeedbackRejected], "{id}");
        }
    }

    #[test]
    fn a_checkpoint_with_a_malformed_finding_id_is_refused_by_name() {
        let mut stored = serde_json::to_value(remembered()).unwrap();
        stored["recent"]["agent-1"][0]["finding_id"] = "fnd-xyz".into();
        let err = serde_json::from_value::<Suppressions>(stored)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"fnd-xyz\" is not of the form fnd-<16 hex digits>"),
            "{err}"
        );
    }
}
