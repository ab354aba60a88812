//! Finance reconciliation agents: a daily reconciliation run before the working day, ad-hoc
//! investigations during it, and a spike at month end.
//!
//! Chain: ledger:Read -> payments:ListTransactions+ -> [payments:GetPayout | GetBalance]
//! -> [ledger:PostAdjustment] -> report:Write.

use rand::Rng;
use rand::seq::SliceRandom;

use super::{Built, Plan, growth_day, num};
use crate::sim::clock::{DAY, HOUR, LocalTime, date_parts, local_midnight};
use crate::sim::event::Attr;
use crate::sim::fleet::{Agent, Params, World};
use crate::sim::grants::{Grant, Unused};
use crate::sim::rng::{SimRng, gap_ms, pick, volume, weighted, zipf_index};
use crate::sim::sessions::{Emitter, Session, session_starts};

/// Stated purposes of finance sessions.
pub(crate) const INTENTS: [(&str, f64); 4] = [
    ("daily reconciliation", 0.3),
    ("variance investigation", 0.35),
    ("vendor payment review", 0.2),
    ("month-end close", 0.15),
];

/// Legal entities.
pub(crate) const ENTITIES: [&str; 5] = ["us-inc", "eu-gmbh", "uk-ltd", "apac-pte", "ca-corp"];
/// Payment providers.
pub(crate) const PROVIDERS: [&str; 4] = ["stripe", "adyen", "jpm", "wise"];

const G_PAY: u8 = 0;
const G_LEDGER: u8 = 1;
const G_REPORTS: u8 = 2;

/// Working set of a finance agent.
#[derive(Clone, Debug)]
pub(crate) struct FinanceProfile {
    /// Entities whose books it keeps.
    pub entities: Vec<&'static str>,
    /// Provider accounts `(provider, account, first day)`.
    pub accounts: Vec<(&'static str, String, u32)>,
    /// Local hour of the daily reconciliation run.
    pub recon_h: f64,
}

impl FinanceProfile {
    pub(crate) fn growth(&self) -> Vec<(u32, String)> {
        self.accounts
            .iter()
            .filter(|a| a.2 > 0)
            .map(|a| (a.2, format!("payments://{}/accounts/{}", a.0, a.1)))
            .collect()
    }
}

fn account(rng: &mut SimRng) -> String {
    format!("acct_{:08x}", rng.r#gen::<u32>())
}

/// Builds the `k`-th finance agent.
pub(crate) fn build(rng: &mut SimRng, k: u32, p: &Params) -> Built {
    let mut ents = ENTITIES.to_vec();
    ents.shuffle(rng);
    let entities: Vec<&str> = ents.into_iter().take(rng.gen_range(1..=2)).collect();
    let mut accounts: Vec<(&'static str, String, u32)> = (0..rng.gen_range(3..=7))
        .map(|_| (*pick(rng, &PROVIDERS), account(rng), 0))
        .collect();
    if rng.gen_bool(0.5) {
        let day = growth_day(rng, p);
        accounts.push((*pick(rng, &PROVIDERS), account(rng), day));
    }
    let grants = vec![
        Grant::new(
            "payments-read",
            &["payments:List*", "payments:Get*"],
            &["payments://*".to_string()],
        ),
        Grant::new(
            "ledger-rw",
            &["ledger:Read", "ledger:PostAdjustment"],
            &entities
                .iter()
                .map(|e| format!("ledger://{e}/*"))
                .collect::<Vec<_>>(),
        ),
        Grant::new(
            "finance-reports",
            &["report:Write"],
            &["reports://finance/*".to_string()],
        ),
    ];
    const UNUSED: [Unused; 5] = [
        Unused::PaymentsTransfer,
        Unused::MailAny,
        Unused::HrRead,
        Unused::IamAdmin,
        Unused::FinanceSecure,
    ];
    Built {
        id: format!("finance-recon-{}", num(k + 1, 2)),
        profile: super::Profile::Finance(FinanceProfile {
            entities,
            accounts,
            recon_h: rng.gen_range(5.5..7.5),
        }),
        grants,
        unused: &UNUSED,
    }
}

/// A day: the reconciliation run on weekdays, then ad-hoc sessions.
pub(crate) fn day(
    w: &World,
    a: &Agent,
    p: &FinanceProfile,
    day: u32,
    rng: &mut SimRng,
    em: &mut Emitter,
) {
    let ds = w.day_start(day);
    let mut starts = Vec::new();
    for off in [-1i64, 0, 1] {
        let t = local_midnight(ds + off * DAY, a.tz_off_ms)
            + (p.recon_h * HOUR as f64) as i64
            + rng.gen_range(0..120_000);
        if t >= ds && t < ds + DAY && !LocalTime::at(t, a.tz_off_ms).is_weekend() {
            starts.push((t, true));
        }
    }
    starts.extend(session_starts(a, ds, rng).into_iter().map(|t| (t, false)));
    starts.sort_unstable_by_key(|s| s.0);
    for (t, recon) in starts {
        if recon {
            reconciliation(w, a, p, rng, t, em);
        } else {
            session(w, a, p, rng, t, em);
        }
    }
}

fn period(t: i64, off: i64) -> String {
    let (y, m, _) = date_parts(t, off);
    format!("{y:04}-{m:02}")
}

fn active<'p>(w: &World, p: &'p FinanceProfile, t: i64) -> Vec<&'p (&'static str, String, u32)> {
    let day = w.day_of(t);
    p.accounts.iter().filter(|a| a.2 <= day).collect()
}

/// The scheduled daily reconciliation: every account, the ledger, one report.
fn reconciliation(
    w: &World,
    a: &Agent,
    p: &FinanceProfile,
    rng: &mut SimRng,
    start: i64,
    em: &mut Emitter,
) {
    let intent = Session::intent(rng, &[("daily reconciliation", 1.0)]);
    let mut s = Session::open(rng, a, start, intent, Attr::Tool);
    let mut t = start;
    let per = period(t, a.tz_off_ms);
    let accounts = active(w, p, start);
    let mut providers: Vec<&str> = accounts.iter().map(|x| x.0).collect();
    providers.sort_unstable();
    providers.dedup();
    for pr in providers {
        let b = volume(rng, 20e3, 0.6);
        let r = format!("payments://{pr}/accounts/");
        em.routine(rng, &mut s, t, "payments:ListAccounts", r, G_PAY, b);
        t += gap_ms(rng, 3_000.0, 0.6);
    }
    for e in &p.entities {
        let b = volume(rng, 300e3, 0.8);
        em.routine(
            rng,
            &mut s,
            t,
            "ledger:Read",
            format!("ledger://{e}/{per}"),
            G_LEDGER,
            b,
        );
        t += gap_ms(rng, 4_000.0, 0.6);
    }
    for acct in accounts {
        let b = volume(rng, 150e3, 1.2);
        em.routine(
            rng,
            &mut s,
            t,
            "payments:ListTransactions",
            format!("payments://{}/accounts/{}", acct.0, acct.1),
            G_PAY,
            b,
        );
        t += gap_ms(rng, 4_000.0, 0.6);
    }
    let (y, m, d) = date_parts(t, a.tz_off_ms);
    let e = p.entities[0];
    let b = volume(rng, 60e3, 0.6);
    em.routine(
        rng,
        &mut s,
        t,
        "report:Write",
        format!("reports://finance/recon-{e}-{y:04}-{m:02}-{d:02}.csv"),
        G_REPORTS,
        b,
    );
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum St {
    Ledger,
    List,
    Payout,
    Balance,
    Adjust,
    Report,
    End,
}

fn next(s: St, rng: &mut SimRng) -> St {
    use St::*;
    match s {
        Ledger => weighted(rng, &[(List, 0.7), (Adjust, 0.1), (Report, 0.2)]),
        List => weighted(
            rng,
            &[
                (List, 0.4),
                (Payout, 0.2),
                (Balance, 0.1),
                (Ledger, 0.2),
                (Report, 0.1),
            ],
        ),
        Payout => weighted(rng, &[(List, 0.4), (Ledger, 0.4), (Report, 0.2)]),
        Balance => weighted(rng, &[(List, 0.5), (Ledger, 0.3), (Report, 0.2)]),
        Adjust => weighted(rng, &[(Ledger, 0.3), (Report, 0.5), (End, 0.2)]),
        Report => weighted(rng, &[(End, 0.85), (List, 0.15)]),
        End => End,
    }
}

/// One ad-hoc finance session.
pub(crate) fn session(
    w: &World,
    a: &Agent,
    p: &FinanceProfile,
    rng: &mut SimRng,
    start: i64,
    em: &mut Emitter,
) {
    let month_end = LocalTime::at(start, a.tz_off_ms).is_month_end();
    let intent = if month_end && rng.gen_bool(0.6) {
        Some("month-end close")
    } else {
        Session::intent(rng, &INTENTS)
    };
    let mut s = Session::open(rng, a, start, intent, Attr::Tool);
    let accounts = active(w, p, start);
    let entity = *pick(rng, &p.entities);
    let per = period(start, a.tz_off_ms);
    let mut st = if rng.gen_bool(0.5) {
        St::Ledger
    } else {
        St::List
    };
    let mut t = start;
    for _ in 0..25 {
        let acct = accounts[zipf_index(rng, accounts.len())];
        let (action, resource, grant, bytes) = match st {
            St::Ledger => (
                "ledger:Read",
                format!("ledger://{entity}/{per}"),
                G_LEDGER,
                volume(rng, 300e3, 0.8),
            ),
            St::List => (
                "payments:ListTransactions",
                format!("payments://{}/accounts/{}", acct.0, acct.1),
                G_PAY,
                volume(rng, 150e3, 1.2),
            ),
            St::Payout => (
                "payments:GetPayout",
                format!(
                    "payments://{}/payouts/po_{:010x}",
                    acct.0,
                    rng.r#gen::<u64>() >> 24
                ),
                G_PAY,
                volume(rng, 3e3, 0.5),
            ),
            St::Balance => (
                "payments:GetBalance",
                format!("payments://{}/accounts/{}/balance", acct.0, acct.1),
                G_PAY,
                volume(rng, 1e3, 0.3),
            ),
            St::Adjust => (
                "ledger:PostAdjustment",
                format!("ledger://{entity}/{per}/adjustments"),
                G_LEDGER,
                volume(rng, 2e3, 0.5),
            ),
            St::Report => {
                let (y, m, d) = date_parts(t, a.tz_off_ms);
                (
                    "report:Write",
                    format!("reports://finance/variance-{entity}-{y:04}-{m:02}-{d:02}.csv"),
                    G_REPORTS,
                    volume(rng, 60e3, 0.6),
                )
            }
            St::End => break,
        };
        em.routine(rng, &mut s, t, action, resource, grant, bytes);
        t += gap_ms(rng, 12_000.0, 0.8);
        st = next(st, rng);
    }
}

/// Transaction histories of many accounts.
pub(crate) fn bulk_reads(p: &FinanceProfile, rng: &mut SimRng, n: usize) -> Plan {
    Plan {
        action: "payments:ListTransactions",
        resources: (0..n)
            .map(|i| match p.accounts.get(i) {
                Some(a) if rng.gen_bool(0.3) => format!("payments://{}/accounts/{}", a.0, a.1),
                _ => format!(
                    "payments://{}/accounts/{}",
                    pick(rng, &PROVIDERS),
                    account(rng)
                ),
            })
            .collect(),
        bytes_median: 150e3 * rng.gen_range(5.0..20.0),
        gap_ms: 12_000.0,
    }
}

/// Another entity's books.
pub(crate) fn lateral(p: &FinanceProfile, rng: &mut SimRng, n: usize) -> Plan {
    let others: Vec<&str> = ENTITIES
        .iter()
        .copied()
        .filter(|e| !p.entities.contains(e))
        .collect();
    let e = *pick(rng, &others);
    if rng.gen_bool(0.5) {
        Plan {
            action: "ledger:Read",
            resources: (0..n)
                .map(|_| format!("ledger://{e}/2025-{:02}", rng.gen_range(1..=12)))
                .collect(),
            bytes_median: 300e3,
            gap_ms: 12_000.0,
        }
    } else {
        let accts: Vec<String> = (0..rng.gen_range(2..6)).map(|_| account(rng)).collect();
        Plan {
            action: "payments:ListTransactions",
            resources: (0..n)
                .map(|_| {
                    format!(
                        "payments://{}/accounts/{}",
                        pick(rng, &PROVIDERS),
                        pick(rng, &accts)
                    )
                })
                .collect(),
            bytes_median: 150e3,
            gap_ms: 12_000.0,
        }
    }
}
