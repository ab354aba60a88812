//! Output: native events as JSON lines (written by hand into a reused buffer), labels, attacks,
//! entitlements and the manifest.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

use super::SimError;
use super::archetypes::Archetype;
use super::attacks::AttackPlan;
use super::clock::{rfc3339_ms, write_rfc3339_ms};
use super::event::{Attr, SimEvent};
use super::fleet::World;
use super::grants::GrantSpec;
use crate::event::Outcome;

/// Where a write failed.
fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SimError + '_ {
    move |source| SimError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn create(path: &Path) -> Result<BufWriter<File>, SimError> {
    File::create(path)
        .map(|f| BufWriter::with_capacity(1 << 20, f))
        .map_err(io_err(path))
}

enum Sink {
    Plain(BufWriter<File>),
    Gzip(GzEncoder<BufWriter<File>>),
}

impl Sink {
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(buf),
            Sink::Gzip(w) => w.write_all(buf),
        }
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            Sink::Plain(mut w) => w.flush(),
            Sink::Gzip(w) => w.finish()?.flush(),
        }
    }
}

/// Running totals of what was written.
#[derive(Clone, Debug, Default)]
pub(crate) struct Stats {
    /// Events written.
    pub events: u64,
    /// Of which attack events.
    pub attack_events: u64,
    /// Events per archetype (fleet order).
    pub per_archetype: [u64; 6],
    /// Per attack: events, first and last time.
    pub per_attack: Vec<(u64, i64, i64)>,
    /// Outcomes: success, denied, error.
    pub outcomes: [u64; 3],
    /// Events carrying a grant id.
    pub with_grant: u64,
    /// Time of the first and last event.
    pub first_ms: Option<i64>,
    /// Time of the last event.
    pub last_ms: Option<i64>,
}

/// Writes `events.jsonl[.gz]` and `labels.csv` in one pass.
pub(crate) struct EventWriter {
    events: Sink,
    events_path: PathBuf,
    labels: BufWriter<File>,
    labels_path: PathBuf,
    buf: Vec<u8>,
    lbuf: Vec<u8>,
    id_prefix: Vec<u8>,
    attack_ids: Vec<String>,
    attack_scenarios: Vec<&'static str>,
    /// Totals so far.
    pub stats: Stats,
}

const FLUSH_AT: usize = 1 << 22;

impl EventWriter {
    /// Creates the two files.
    pub(crate) fn create(
        dir: &Path,
        gzip: bool,
        seed: u64,
        attacks: &[AttackPlan],
    ) -> Result<EventWriter, SimError> {
        let events_path = dir.join(if gzip {
            super::EVENTS_GZ_FILE
        } else {
            super::EVENTS_FILE
        });
        let file = create(&events_path)?;
        let events = if gzip {
            Sink::Gzip(GzEncoder::new(file, Compression::fast()))
        } else {
            Sink::Plain(file)
        };
        let labels_path = dir.join(super::LABELS_FILE);
        let mut labels = create(&labels_path)?;
        labels
            .write_all(b"event_id,label,attack_id,scenario\n")
            .map_err(io_err(&labels_path))?;
        Ok(EventWriter {
            events,
            events_path,
            labels,
            labels_path,
            buf: Vec::with_capacity(FLUSH_AT + 8192),
            lbuf: Vec::with_capacity(FLUSH_AT / 4),
            id_prefix: format!("e-{seed}-").into_bytes(),
            attack_ids: attacks.iter().map(|a| a.id.clone()).collect(),
            attack_scenarios: attacks.iter().map(|a| a.scenario.name()).collect(),
            stats: Stats {
                per_attack: vec![(0, i64::MAX, i64::MIN); attacks.len()],
                ..Stats::default()
            },
        })
    }

    /// Appends one event (events must come in output order).
    pub(crate) fn write(&mut self, w: &World, e: &SimEvent) -> Result<(), SimError> {
        self.stats.events += 1;
        let n = self.stats.events;
        let agent = &w.agents[e.agent as usize];
        let b = &mut self.buf;
        let id_start = b.len() + b"{\"event_id\":\"".len();
        b.extend_from_slice(b"{\"event_id\":\"");
        b.extend_from_slice(&self.id_prefix);
        push_padded(b, n, 10);
        let id_end = b.len();
        self.lbuf.extend_from_slice(&b[id_start..id_end]);
        b.extend_from_slice(b"\",\"time\":\"");
        write_rfc3339_ms(b, e.time_ms);
        b.extend_from_slice(b"\",\"agent_id\":");
        push_json_str(b, &agent.id);
        b.extend_from_slice(b",\"agent_kind\":\"");
        b.extend_from_slice(agent.kind().as_bytes());
        b.extend_from_slice(b"\",\"action\":");
        push_json_str(b, e.action);
        b.extend_from_slice(b",\"resource\":");
        push_json_str(b, &e.resource);
        b.extend_from_slice(b",\"outcome\":\"");
        b.extend_from_slice(e.outcome.as_str().as_bytes());
        b.extend_from_slice(b"\",\"session_id\":\"s-");
        push_hex16(b, e.session);
        b.extend_from_slice(b"\",\"source_ip\":\"");
        push_ip(b, e.ip);
        b.extend_from_slice(b"\",\"bytes\":");
        b.extend_from_slice(itoa::Buffer::new().format(e.bytes).as_bytes());
        if let Some(g) = e.grant {
            b.extend_from_slice(b",\"grant\":");
            push_json_str(b, &agent.grants[g as usize].id);
            self.stats.with_grant += 1;
        }
        if let Some(i) = e.intent {
            b.extend_from_slice(b",\"intent\":");
            push_json_str(b, i);
        }
        b.extend_from_slice(b",\"attributes\":{");
        match e.attr {
            Attr::Tool => {
                b.extend_from_slice(b"\"tool\":\"");
                push_tool_name(b, e.action);
                b.extend_from_slice(b"\",\"step\":");
                b.extend_from_slice(itoa::Buffer::new().format(e.step).as_bytes());
            }
            Attr::Job(j) => {
                b.extend_from_slice(b"\"job\":");
                push_json_str(b, j);
            }
            Attr::Component(c) => {
                b.extend_from_slice(b"\"component\":");
                push_json_str(b, c);
            }
        }
        b.extend_from_slice(b"}}\n");

        match e.attack {
            None => self.lbuf.extend_from_slice(b",benign,,\n"),
            Some(k) => {
                let k = k as usize;
                self.lbuf.extend_from_slice(b",attack,");
                self.lbuf.extend_from_slice(self.attack_ids[k].as_bytes());
                self.lbuf.push(b',');
                self.lbuf
                    .extend_from_slice(self.attack_scenarios[k].as_bytes());
                self.lbuf.push(b'\n');
                self.stats.attack_events += 1;
                let s = &mut self.stats.per_attack[k];
                s.0 += 1;
                s.1 = s.1.min(e.time_ms);
                s.2 = s.2.max(e.time_ms);
            }
        }
        let arch = Archetype::ALL
            .iter()
            .position(|&a| a == agent.archetype)
            .unwrap_or(0);
        self.stats.per_archetype[arch] += 1;
        self.stats.outcomes[match e.outcome {
            Outcome::Success => 0,
            Outcome::Denied => 1,
            Outcome::Error => 2,
        }] += 1;
        self.stats.first_ms.get_or_insert(e.time_ms);
        self.stats.last_ms = Some(e.time_ms);
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SimError> {
        self.events
            .write_all(&self.buf)
            .map_err(io_err(&self.events_path))?;
        self.buf.clear();
        self.labels
            .write_all(&self.lbuf)
            .map_err(io_err(&self.labels_path))?;
        self.lbuf.clear();
        Ok(())
    }

    /// Flushes and closes both files.
    pub(crate) fn finish(mut self) -> Result<(Stats, PathBuf), SimError> {
        self.flush()?;
        let path = self.events_path.clone();
        self.events.finish().map_err(io_err(&path))?;
        self.labels.flush().map_err(io_err(&self.labels_path))?;
        Ok((self.stats, path))
    }
}

fn push_padded(b: &mut Vec<u8>, n: u64, width: usize) {
    let mut tmp = itoa::Buffer::new();
    let s = tmp.format(n);
    for _ in s.len()..width {
        b.push(b'0');
    }
    b.extend_from_slice(s.as_bytes());
}

fn push_hex16(b: &mut Vec<u8>, v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..16).rev() {
        b.push(HEX[((v >> (i * 4)) & 0xf) as usize]);
    }
}

fn push_ip(b: &mut Vec<u8>, ip: u32) {
    let mut tmp = itoa::Buffer::new();
    for (i, octet) in ip.to_be_bytes().iter().enumerate() {
        if i > 0 {
            b.push(b'.');
        }
        b.extend_from_slice(tmp.format(*octet).as_bytes());
    }
}

/// `crm:GetCustomer` -> `crm.get_customer`.
fn push_tool_name(b: &mut Vec<u8>, action: &str) {
    let mut prev_lower = false;
    for c in action.bytes() {
        match c {
            b':' => {
                b.push(b'.');
                prev_lower = false;
            }
            b'A'..=b'Z' => {
                if prev_lower {
                    b.push(b'_');
                }
                b.push(c.to_ascii_lowercase());
                prev_lower = false;
            }
            b'"' | b'\\' | 0..=0x1f => {}
            _ => {
                b.push(c);
                prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            }
        }
    }
}

/// A JSON string literal.
fn push_json_str(b: &mut Vec<u8>, s: &str) {
    b.push(b'"');
    if s.bytes().all(|c| c >= 0x20 && c != b'"' && c != b'\\') {
        b.extend_from_slice(s.as_bytes());
    } else {
        for c in s.chars() {
            match c {
                '"' => b.extend_from_slice(b"\\\""),
                '\\' => b.extend_from_slice(b"\\\\"),
                c if (c as u32) < 0x20 => {
                    b.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
                }
                c => {
                    let mut tmp = [0u8; 4];
                    b.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
    }
    b.push(b'"');
}

/// Writes `attacks.csv`.
pub(crate) fn write_attacks(
    dir: &Path,
    w: &World,
    plans: &[AttackPlan],
    stats: &Stats,
) -> Result<PathBuf, SimError> {
    let path = dir.join(super::ATTACKS_FILE);
    let mut out = create(&path)?;
    let mut text = String::from("attack_id,agent_id,scenario,first_time,last_time,events\n");
    for (p, &(n, first, last)) in plans.iter().zip(&stats.per_attack) {
        if n == 0 {
            continue;
        }
        text.push_str(&format!(
            "{},{},{},{},{},{}\n",
            p.id,
            w.agents[p.agent as usize].id,
            p.scenario.name(),
            rfc3339_ms(first),
            rfc3339_ms(last),
            n
        ));
    }
    out.write_all(text.as_bytes()).map_err(io_err(&path))?;
    out.flush().map_err(io_err(&path))?;
    Ok(path)
}

/// Writes `entitlements.json` (CONTRACT.md section 2).
pub(crate) fn write_entitlements(dir: &Path, w: &World) -> Result<PathBuf, SimError> {
    let path = dir.join(super::ENTITLEMENTS_FILE);
    let doc: BTreeMap<&str, BTreeMap<&str, &GrantSpec>> = w
        .agents
        .iter()
        .map(|a| {
            (
                a.id.as_str(),
                a.grants.iter().map(|g| (g.id.as_str(), &g.spec)).collect(),
            )
        })
        .collect();
    write_json(&path, &doc)?;
    Ok(path)
}

/// Writes a pretty JSON document.
pub(crate) fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), SimError> {
    let mut out = create(path)?;
    serde_json::to_writer_pretty(&mut out, value).map_err(|source| SimError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    out.write_all(b"\n").map_err(io_err(path))?;
    out.flush().map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names() {
        let mut b = Vec::new();
        push_tool_name(&mut b, "crm:GetCustomer");
        assert_eq!(b, b"crm.get_customer");
        b.clear();
        push_tool_name(&mut b, "kb:SemanticSearch");
        assert_eq!(b, b"kb.semantic_search");
        b.clear();
        push_tool_name(&mut b, "s3:GetObject");
        assert_eq!(b, b"s3.get_object");
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut b = Vec::new();
        push_json_str(&mut b, "a\"b\\c\n");
        let back: String = serde_json::from_slice(&b).unwrap_or_default();
        assert_eq!(back, "a\"b\\c\n");
    }

    #[test]
    fn ips_and_hex() {
        let mut b = Vec::new();
        push_ip(&mut b, (10 << 24) | (20 << 16) | (3 << 8) | 254);
        assert_eq!(b, b"10.20.3.254");
        b.clear();
        push_hex16(&mut b, 0xab);
        assert_eq!(b, b"00000000000000ab");
    }
}
