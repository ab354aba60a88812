//! Analyst agents: query a working set of tables and write reports; busier at month end.
//!
//! Chain: [report:Read] -> db:Select+ -> report:Write.

use rand::Rng;
use rand::seq::SliceRandom;

use super::{Built, Plan, growth_day, num};
use crate::sim::clock::{LocalTime, date_parts};
use crate::sim::event::Attr;
use crate::sim::fleet::{Agent, Params, World};
use crate::sim::grants::{Grant, Unused};
use crate::sim::rng::{SimRng, gap_ms, pick, volume, weighted, zipf_index};
use crate::sim::sessions::{Emitter, Session, session_starts};

/// Stated purposes of analyst sessions.
pub(crate) const INTENTS: [(&str, f64); 5] = [
    ("weekly sales summary", 0.2),
    ("monthly variance report", 0.15),
    ("churn analysis", 0.15),
    ("ad-hoc data question", 0.35),
    ("cohort retention report", 0.15),
];

/// Databases analysts work in, with their tables.
pub(crate) const DBS: [(&str, &[&str]); 5] = [
    (
        "sales",
        &[
            "orders",
            "order_items",
            "customers",
            "regions",
            "quotas",
            "pipeline",
        ],
    ),
    (
        "product",
        &[
            "catalog",
            "pricing",
            "inventory_snapshots",
            "reviews",
            "returns",
        ],
    ),
    (
        "marketing",
        &["campaigns", "attribution", "leads", "email_events", "spend"],
    ),
    (
        "support",
        &[
            "tickets_daily",
            "csat_scores",
            "sla_breaches",
            "agent_stats",
        ],
    ),
    (
        "growth",
        &[
            "signups",
            "activation_funnel",
            "churn_scores",
            "experiments",
        ],
    ),
];

/// Other teams' databases.
pub(crate) const OTHER_DBS: [(&str, &[&str]); 3] = [
    ("hr", &["employees", "payroll", "compensation", "reviews"]),
    (
        "finance",
        &["gl_entries", "revenue_recognition", "vendor_payments"],
    ),
    ("security", &["access_reviews", "incidents"]),
];

const G_DB: u8 = 0;
const G_REPORTS: u8 = 1;

/// Working set of an analyst agent.
#[derive(Clone, Debug)]
pub(crate) struct AnalystProfile {
    /// Team (names the report space).
    pub team: &'static str,
    /// Databases it may read.
    pub dbs: Vec<usize>,
    /// Tables `(db, table)` and the day each joins the working set.
    pub tables: Vec<(&'static str, &'static str, u32)>,
}

impl AnalystProfile {
    pub(crate) fn growth(&self) -> Vec<(u32, String)> {
        self.tables
            .iter()
            .filter(|t| t.2 > 0)
            .map(|t| (t.2, format!("postgres://{}/{}", t.0, t.1)))
            .collect()
    }
}

/// Builds the `k`-th analyst agent.
pub(crate) fn build(rng: &mut SimRng, k: u32, p: &Params) -> Built {
    let team_db = k as usize % DBS.len();
    let team = DBS[team_db].0;
    let mut dbs = vec![team_db];
    if rng.gen_bool(0.5) {
        let other = (team_db + rng.gen_range(1..DBS.len())) % DBS.len();
        dbs.push(other);
    }
    let mut all: Vec<(&'static str, &'static str)> = dbs
        .iter()
        .flat_map(|&d| DBS[d].1.iter().map(move |t| (DBS[d].0, *t)))
        .collect();
    all.shuffle(rng);
    let n = rng.gen_range(3..=5).min(all.len());
    let mut tables: Vec<_> = all.iter().take(n).map(|&(d, t)| (d, t, 0)).collect();
    for &(d, t) in all.iter().skip(n).take(rng.gen_range(1..=3)) {
        tables.push((d, t, growth_day(rng, p)));
    }
    let grants = vec![
        Grant::new(
            "db-read",
            &["db:Select", "db:DescribeTable"],
            &dbs.iter()
                .map(|&d| format!("postgres://{}/*", DBS[d].0))
                .collect::<Vec<_>>(),
        ),
        Grant::new(
            "reports-rw",
            &["report:Read", "report:Write"],
            &[format!("reports://{team}/*")],
        ),
    ];
    const UNUSED: [Unused; 5] = [
        Unused::HrRead,
        Unused::DbAllRead,
        Unused::FinanceSecure,
        Unused::MailAny,
        Unused::PaymentsTransfer,
    ];
    Built {
        id: format!("analyst-{team}-{}", num(k / DBS.len() as u32 + 1, 2)),
        profile: super::Profile::Analyst(AnalystProfile { team, dbs, tables }),
        grants,
        unused: &UNUSED,
    }
}

/// A day of analysis.
pub(crate) fn day(
    w: &World,
    a: &Agent,
    p: &AnalystProfile,
    day: u32,
    rng: &mut SimRng,
    em: &mut Emitter,
) {
    for t in session_starts(a, w.day_start(day), rng) {
        session(w, a, p, rng, t, em);
    }
}

fn slug(intent: Option<&str>) -> &'static str {
    match intent {
        Some("weekly sales summary") => "weekly-sales",
        Some("monthly variance report") => "monthly-variance",
        Some("churn analysis") => "churn",
        Some("cohort retention report") => "cohort-retention",
        _ => "adhoc",
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum St {
    ReadReport,
    Select,
    Write,
    End,
}

/// One analysis session.
pub(crate) fn session(
    w: &World,
    a: &Agent,
    p: &AnalystProfile,
    rng: &mut SimRng,
    start: i64,
    em: &mut Emitter,
) {
    let day = w.day_of(start);
    let active: Vec<(&str, &str)> = p
        .tables
        .iter()
        .filter(|t| t.2 <= day)
        .map(|t| (t.0, t.1))
        .collect();
    let month_end = LocalTime::at(start, a.tz_off_ms).is_month_end();
    let intent = if month_end && rng.gen_bool(0.5) {
        Some("monthly variance report")
    } else {
        Session::intent(rng, &INTENTS)
    };
    let mut s = Session::open(rng, a, start, intent, Attr::Tool);
    let (y, m, d) = date_parts(start, a.tz_off_ms);
    let report = format!(
        "reports://{}/{}-{y:04}-{m:02}-{d:02}.html",
        p.team,
        slug(intent)
    );
    let mut st = if rng.gen_bool(0.2) {
        St::ReadReport
    } else {
        St::Select
    };
    let mut t = start;
    for _ in 0..25 {
        let (action, resource, grant, bytes) = match st {
            St::ReadReport => (
                "report:Read",
                report.clone(),
                G_REPORTS,
                volume(rng, 150e3, 0.6),
            ),
            St::Select => {
                let (db, table) = active[zipf_index(rng, active.len())];
                if rng.gen_bool(0.08) {
                    let b = volume(rng, 3e3, 0.4);
                    let r = format!("postgres://{db}/{table}");
                    em.routine(rng, &mut s, t, "db:DescribeTable", r, G_DB, b);
                    t += gap_ms(rng, 8_000.0, 0.6);
                }
                (
                    "db:Select",
                    format!("postgres://{db}/{table}"),
                    G_DB,
                    volume(rng, 400e3, 1.5),
                )
            }
            St::Write => (
                "report:Write",
                report.clone(),
                G_REPORTS,
                volume(rng, 200e3, 0.7),
            ),
            St::End => break,
        };
        em.routine(rng, &mut s, t, action, resource, grant, bytes);
        t += gap_ms(rng, 25_000.0, 0.9);
        st = match st {
            St::ReadReport => St::Select,
            St::Select => weighted(
                rng,
                &[(St::Select, 0.65), (St::Write, 0.28), (St::End, 0.07)],
            ),
            St::Write => weighted(rng, &[(St::End, 0.85), (St::Select, 0.15)]),
            St::End => St::End,
        };
    }
}

/// Full dumps of every table it can read.
pub(crate) fn bulk_reads(p: &AnalystProfile, rng: &mut SimRng, n: usize) -> Plan {
    let all: Vec<String> = p
        .dbs
        .iter()
        .flat_map(|&d| {
            DBS[d]
                .1
                .iter()
                .map(move |t| format!("postgres://{}/{t}", DBS[d].0))
        })
        .collect();
    Plan {
        action: "db:Select",
        resources: (0..n).map(|_| pick(rng, &all).clone()).collect(),
        bytes_median: 400e3 * rng.gen_range(10.0..50.0),
        gap_ms: 25_000.0,
    }
}

/// Another team's database.
pub(crate) fn lateral(_p: &AnalystProfile, rng: &mut SimRng, n: usize) -> Plan {
    let (db, tables) = *pick(rng, &OTHER_DBS);
    Plan {
        action: "db:Select",
        resources: (0..n)
            .map(|_| format!("postgres://{db}/{}", pick(rng, tables)))
            .collect(),
        bytes_median: 400e3,
        gap_ms: 25_000.0,
    }
}
