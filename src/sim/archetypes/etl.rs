//! Scheduled data pipelines: an hourly ingest (raw parts to curated tables and the warehouse)
//! and a nightly compaction, every day of the week.

use rand::Rng;
use rand::seq::SliceRandom;

use super::{Built, Plan, growth_day, num};
use crate::sim::clock::{DAY, HOUR, MIN, date_parts, local_midnight};
use crate::sim::event::Attr;
use crate::sim::fleet::{Agent, Params, World};
use crate::sim::grants::{Grant, Unused};
use crate::sim::rng::{SimRng, gap_ms, pick, volume};
use crate::sim::sessions::{Emitter, Session};

/// Job name of the hourly ingest.
pub(crate) const HOURLY: &str = "hourly-ingest";
/// Job name of the nightly compaction.
pub(crate) const NIGHTLY: &str = "nightly-compaction";

/// Data teams, each with its raw and curated buckets.
pub(crate) const TEAMS: [(&str, &[&str]); 6] = [
    ("orders", &["orders", "order_items", "refunds"]),
    ("billing", &["invoices", "charges", "credits"]),
    ("clickstream", &["pageviews", "sessions", "searches"]),
    ("inventory", &["stock_levels", "shipments", "suppliers"]),
    ("marketing", &["campaigns", "leads", "touchpoints"]),
    ("logistics", &["routes", "deliveries", "carriers"]),
];

const G_RAW: u8 = 0;
const G_CURATED: u8 = 1;
const G_WAREHOUSE: u8 = 2;
const G_ROLE: u8 = 3;

/// Schedule and working set of a pipeline.
#[derive(Clone, Debug)]
pub(crate) struct EtlProfile {
    /// Team (names the buckets).
    pub team: &'static str,
    /// Curated tables it produces, with the first day it produces each.
    pub tables: Vec<(&'static str, u32)>,
    /// Minute past the hour of the hourly run.
    pub minute: i64,
    /// Raw parts read per hourly run (inclusive range).
    pub parts: (u32, u32),
    /// Median size of a raw part, bytes.
    pub part_bytes: f64,
    /// Local hour of the nightly compaction.
    pub nightly_h: f64,
}

impl EtlProfile {
    pub(crate) fn growth(&self) -> Vec<(u32, String)> {
        self.tables
            .iter()
            .filter(|t| t.1 > 0)
            .map(|t| (t.1, format!("s3://{}-curated/{}/", self.team, t.0)))
            .collect()
    }
}

/// Builds the `k`-th pipeline.
pub(crate) fn build(rng: &mut SimRng, k: u32, p: &Params) -> Built {
    let (team, team_tables) = TEAMS[k as usize % TEAMS.len()];
    let mut pool = team_tables.to_vec();
    pool.shuffle(rng);
    let n = rng.gen_range(1..=2);
    let mut tables: Vec<(&str, u32)> = pool.iter().take(n).map(|t| (*t, 0)).collect();
    if rng.gen_bool(0.35) {
        tables.push((pool[n], growth_day(rng, p)));
    }
    let lo = rng.gen_range(3..=6);
    let grants = vec![
        Grant::new(
            "raw-read",
            &["s3:GetObject", "s3:ListObjects"],
            &[format!("s3://{team}-raw/*")],
        ),
        Grant::new(
            "curated-rw",
            &["s3:GetObject", "s3:PutObject", "s3:ListObjects"],
            &[format!("s3://{team}-curated/*")],
        ),
        Grant::new(
            "warehouse-load",
            &["warehouse:Load"],
            &["warehouse://analytics/*".to_string()],
        ),
        Grant::new(
            "pipeline-role",
            &["sts:AssumeRole"],
            &[format!("iam://roles/etl-{team}-*")],
        ),
    ];
    const UNUSED: [Unused; 6] = [
        Unused::DataLakeRead,
        Unused::IamAdmin,
        Unused::ProdSecrets,
        Unused::MailAny,
        Unused::FinanceSecure,
        Unused::DbAllRead,
    ];
    Built {
        id: format!("etl-{team}-{}", num(k / TEAMS.len() as u32 + 1, 2)),
        profile: super::Profile::Pipeline(EtlProfile {
            team,
            tables,
            minute: rng.gen_range(0..60),
            parts: (lo, lo + rng.gen_range(1..=4)),
            part_bytes: rng.gen_range(8e6..40e6),
            nightly_h: rng.gen_range(1.0..4.5),
        }),
        grants,
        unused: &UNUSED,
    }
}

/// Every hourly run and the nightly compaction falling on the day.
pub(crate) fn day(
    w: &World,
    a: &Agent,
    p: &EtlProfile,
    day: u32,
    rng: &mut SimRng,
    em: &mut Emitter,
) {
    let ds = w.day_start(day);
    let mut runs: Vec<(i64, bool)> = (0..24)
        .map(|h| {
            (
                ds + h * HOUR + p.minute * MIN + gap_ms(rng, 8_000.0, 0.8),
                false,
            )
        })
        .collect();
    for off in [-1i64, 0, 1] {
        let t = local_midnight(ds + off * DAY, a.tz_off_ms)
            + (p.nightly_h * HOUR as f64) as i64
            + gap_ms(rng, 8_000.0, 0.8);
        if t >= ds && t < ds + DAY {
            runs.push((t, true));
        }
    }
    runs.sort_unstable_by_key(|r| r.0);
    for (t, nightly) in runs {
        if nightly {
            nightly_run(w, a, p, rng, t, em);
        } else {
            hourly_run(w, a, p, rng, t, em);
        }
    }
}

fn tables_at<'p>(w: &World, p: &'p EtlProfile, t: i64) -> Vec<&'p str> {
    let day = w.day_of(t);
    p.tables
        .iter()
        .filter(|x| x.1 <= day)
        .map(|x| x.0)
        .collect()
}

/// Every run starts by assuming the team's pipeline role.
fn assume_role(rng: &mut SimRng, p: &EtlProfile, s: &mut Session, t: i64, em: &mut Emitter) {
    let b = volume(rng, 1_200.0, 0.2);
    let role = format!("iam://roles/etl-{}-pipeline", p.team);
    em.routine(rng, s, t, "sts:AssumeRole", role, G_ROLE, b);
}

fn raw_part(team: &str, t: i64, part: u32) -> String {
    let (y, m, d) = date_parts(t, 0);
    format!("s3://{team}-raw/{y:04}/{m:02}/{d:02}/part-{part:04}.json.gz")
}

/// The hourly ingest starting at `start`, processing the previous hour's raw parts.
pub(crate) fn hourly_run(
    w: &World,
    a: &Agent,
    p: &EtlProfile,
    rng: &mut SimRng,
    start: i64,
    em: &mut Emitter,
) {
    let mut s = Session::open(rng, a, start, None, Attr::Job(HOURLY));
    assume_role(rng, p, &mut s, start, em);
    let data_t = start - HOUR;
    let hour = (data_t.rem_euclid(DAY) / HOUR) as u32;
    let (y, m, d) = date_parts(data_t, 0);
    let team = p.team;
    let mut t = start + gap_ms(rng, 300.0, 0.5);
    let b = volume(rng, 8e3, 0.5);
    em.routine(
        rng,
        &mut s,
        t,
        "s3:ListObjects",
        format!("s3://{team}-raw/{y:04}/{m:02}/{d:02}/"),
        G_RAW,
        b,
    );
    let k = rng.gen_range(p.parts.0..=p.parts.1);
    let mut total = 0u64;
    for i in 0..k {
        t += gap_ms(rng, 600.0, 0.7);
        let b = volume(rng, p.part_bytes, 0.5);
        total += b;
        em.routine(
            rng,
            &mut s,
            t,
            "s3:GetObject",
            raw_part(team, data_t, hour * 50 + i),
            G_RAW,
            b,
        );
    }
    let tables = tables_at(w, p, start);
    for table in &tables {
        t += gap_ms(rng, 20_000.0, 0.5);
        let out = ((total as f64 * 0.3) / tables.len() as f64) as u64 + 1;
        em.routine(
            rng,
            &mut s,
            t,
            "s3:PutObject",
            format!("s3://{team}-curated/{table}/dt={y:04}-{m:02}-{d:02}/hour={hour:02}/part-0000.parquet"),
            G_CURATED,
            out,
        );
        t += gap_ms(rng, 3_000.0, 0.5);
        em.routine(
            rng,
            &mut s,
            t,
            "warehouse:Load",
            format!("warehouse://analytics/{team}.{table}"),
            G_WAREHOUSE,
            out,
        );
    }
}

/// The nightly compaction of yesterday's hourly parts.
fn nightly_run(
    w: &World,
    a: &Agent,
    p: &EtlProfile,
    rng: &mut SimRng,
    start: i64,
    em: &mut Emitter,
) {
    let mut s = Session::open(rng, a, start, None, Attr::Job(NIGHTLY));
    assume_role(rng, p, &mut s, start, em);
    let (y, m, d) = date_parts(start - DAY, a.tz_off_ms);
    let team = p.team;
    let mut t = start + gap_ms(rng, 300.0, 0.5);
    for table in tables_at(w, p, start) {
        let prefix = format!("s3://{team}-curated/{table}/dt={y:04}-{m:02}-{d:02}");
        let b = volume(rng, 6e3, 0.4);
        em.routine(
            rng,
            &mut s,
            t,
            "s3:ListObjects",
            format!("{prefix}/"),
            G_CURATED,
            b,
        );
        let mut total = 0;
        for h in 0..24 {
            t += gap_ms(rng, 400.0, 0.6);
            let b = volume(rng, p.part_bytes * 0.3, 0.5);
            total += b;
            em.routine(
                rng,
                &mut s,
                t,
                "s3:GetObject",
                format!("{prefix}/hour={h:02}/part-0000.parquet"),
                G_CURATED,
                b,
            );
        }
        t += gap_ms(rng, 60_000.0, 0.5);
        em.routine(
            rng,
            &mut s,
            t,
            "s3:PutObject",
            format!("{prefix}/compacted.parquet"),
            G_CURATED,
            total / 2,
        );
        t += gap_ms(rng, 3_000.0, 0.5);
        em.routine(
            rng,
            &mut s,
            t,
            "warehouse:Load",
            format!("warehouse://analytics/{team}.{table}"),
            G_WAREHOUSE,
            total / 2,
        );
    }
}

/// Raw parts of many past days.
pub(crate) fn bulk_reads(w: &World, p: &EtlProfile, rng: &mut SimRng, n: usize, t: i64) -> Plan {
    let back = (t - w.start_ms).max(DAY);
    Plan {
        action: "s3:GetObject",
        resources: (0..n)
            .map(|_| {
                let when = t - rng.gen_range(HOUR..back + 90 * DAY);
                raw_part(p.team, when, rng.gen_range(0..1200))
            })
            .collect(),
        bytes_median: p.part_bytes * rng.gen_range(1.5..4.0),
        gap_ms: 600.0,
    }
}

/// Another team's buckets.
pub(crate) fn lateral(_w: &World, p: &EtlProfile, rng: &mut SimRng, n: usize, t: i64) -> Plan {
    let others: Vec<&(&str, &[&str])> = TEAMS.iter().filter(|x| x.0 != p.team).collect();
    let (other, tables) = **pick(rng, &others);
    let curated = rng.gen_bool(0.5);
    Plan {
        action: "s3:GetObject",
        resources: (0..n)
            .map(|i| {
                let when = t - (i as i64 % 24) * HOUR;
                if curated {
                    let (y, m, d) = date_parts(when, 0);
                    let hh = (when.rem_euclid(DAY) / HOUR) as u32;
                    format!(
                        "s3://{other}-curated/{}/dt={y:04}-{m:02}-{d:02}/hour={hh:02}/part-0000.parquet",
                        pick(rng, tables)
                    )
                } else {
                    raw_part(other, when, rng.gen_range(0..1200))
                }
            })
            .collect(),
        bytes_median: p.part_bytes,
        gap_ms: 600.0,
    }
}
