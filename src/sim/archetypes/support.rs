//! Customer-support chat agents: one session per ticket, driven by customers' working hours.
//!
//! Chain: kb:Search -> crm:GetCustomer -> tickets:Read -> [crm:ListOrders -> crm:GetOrder]
//! -> tickets:Update [-> mail:Send to the customer's own address].

use rand::Rng;

use super::{Built, Plan, num};
use crate::sim::event::Attr;
use crate::sim::fleet::{Agent, Params, World};
use crate::sim::grants::{Grant, Unused};
use crate::sim::rng::{SimRng, gap_ms, pick, volume, weighted};
use crate::sim::sessions::{Emitter, Session, session_starts};

/// Stated purposes of support sessions.
pub(crate) const INTENTS: [(&str, f64); 5] = [
    ("answer customer ticket", 0.45),
    ("refund request", 0.2),
    ("order status inquiry", 0.2),
    ("account access issue", 0.1),
    ("shipping delay complaint", 0.05),
];

/// Carriers' claims desks, mailed about lost or damaged parcels (external, but routine).
pub(crate) const PARTNERS: [&str; 3] = [
    "mailto:claims@shipfast.example",
    "mailto:returns@parcelnet.example",
    "mailto:support@roadrunner-freight.example",
];

const G_CRM: u8 = 0;
const G_TICKETS: u8 = 1;
const G_KB: u8 = 2;
const G_MAIL: u8 = 3;

/// Working set of a support agent.
#[derive(Clone, Debug)]
pub(crate) struct SupportProfile {
    /// Lowest customer number of the agent's region.
    pub cust_lo: u32,
    /// Customers it has served before and may see again.
    pub regulars: Vec<u32>,
    /// Probability a finished ticket ends with a mail to the customer.
    pub mail_rate: f64,
}

/// Builds the `k`-th support agent.
pub(crate) fn build(rng: &mut SimRng, k: u32, _p: &Params) -> Built {
    let cust_lo = 100_000 + rng.gen_range(0..8) * 100_000;
    let regulars = (0..rng.gen_range(10..40))
        .map(|_| cust_lo + rng.gen_range(0..100_000))
        .collect();
    let broad_mail = rng.gen_bool(0.5);
    let mail_res: Vec<String> = if broad_mail {
        vec!["mailto:*".to_string()]
    } else {
        std::iter::once("mailto:*@customer.example")
            .chain(PARTNERS)
            .map(str::to_string)
            .collect()
    };
    let grants = vec![
        Grant::new(
            "crm-read",
            &["crm:GetCustomer", "crm:ListOrders", "crm:GetOrder"],
            &["crm://customers/*".to_string()],
        ),
        Grant::new(
            "tickets-rw",
            &["tickets:Read", "tickets:Update"],
            &["tickets://support/*".to_string()],
        ),
        Grant::new("kb-search", &["kb:*"], &["kb://*".to_string()]),
        Grant::new("customer-mail", &["mail:Send"], &mail_res),
    ];
    const NARROW: [Unused; 5] = [
        Unused::MailAny,
        Unused::CrmAll,
        Unused::PaymentsTransfer,
        Unused::IamAdmin,
        Unused::DbAllRead,
    ];
    const BROAD: [Unused; 4] = [
        Unused::CrmAll,
        Unused::PaymentsTransfer,
        Unused::IamAdmin,
        Unused::DbAllRead,
    ];
    Built {
        id: format!("support-bot-{}", num(k + 1, 3)),
        profile: super::Profile::Support(SupportProfile {
            cust_lo,
            regulars,
            mail_rate: rng.gen_range(0.15..0.45),
        }),
        grants,
        unused: if broad_mail { &BROAD } else { &NARROW },
    }
}

/// A day of tickets.
pub(crate) fn day(
    w: &World,
    a: &Agent,
    p: &SupportProfile,
    day: u32,
    rng: &mut SimRng,
    em: &mut Emitter,
) {
    let starts = session_starts(a, w.day_start(day), rng);
    let first_rollout_day = day == w.drift.rollout.day;
    for (i, t) in starts.into_iter().enumerate() {
        session(w, a, p, rng, t, first_rollout_day && i == 0, em);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum St {
    Kb,
    Customer,
    Orders,
    Order,
    Read,
    Update,
    Mail,
    End,
}

fn next(s: St, rng: &mut SimRng, mail_rate: f64) -> St {
    use St::*;
    match s {
        Kb => weighted(
            rng,
            &[(Customer, 0.5), (Read, 0.3), (Kb, 0.15), (Update, 0.05)],
        ),
        Customer => weighted(rng, &[(Read, 0.5), (Orders, 0.3), (Kb, 0.1), (Update, 0.1)]),
        Orders => weighted(rng, &[(Order, 0.4), (Read, 0.2), (Update, 0.3), (Kb, 0.1)]),
        Order => weighted(rng, &[(Update, 0.6), (Orders, 0.2), (Kb, 0.2)]),
        Read => weighted(
            rng,
            &[(Customer, 0.3), (Kb, 0.3), (Update, 0.3), (Orders, 0.1)],
        ),
        Update => weighted(
            rng,
            &[(Mail, mail_rate), (End, 0.9 - mail_rate), (Read, 0.1)],
        ),
        Mail => weighted(rng, &[(End, 0.9), (Update, 0.1)]),
        End => End,
    }
}

/// One ticket. `force_new_tool` makes the session open with the rolled-out search.
pub(crate) fn session(
    w: &World,
    a: &Agent,
    p: &SupportProfile,
    rng: &mut SimRng,
    start: i64,
    force_new_tool: bool,
    em: &mut Emitter,
) {
    let intent = Session::intent(rng, &INTENTS);
    let mut s = Session::open(rng, a, start, intent, Attr::Tool);
    let customer = if rng.gen_bool(0.25) {
        *pick(rng, &p.regulars)
    } else {
        p.cust_lo + rng.gen_range(0..100_000)
    };
    let ticket: u32 = rng.gen_range(1_000_000..10_000_000);
    let rollout = w.drift.rollout;
    let mut st = weighted(rng, &[(St::Kb, 0.5), (St::Customer, 0.2), (St::Read, 0.3)]);
    if force_new_tool {
        st = St::Kb;
    }
    let mut t = start;
    for n in 0..24 {
        if st == St::End {
            break;
        }
        let (action, resource, grant, bytes) = match st {
            St::Kb => {
                let semantic =
                    t >= rollout.from_ms && ((force_new_tool && n == 0) || rng.gen_bool(0.8));
                let action = if semantic {
                    rollout.action
                } else {
                    "kb:Search"
                };
                (
                    action,
                    "kb://support-articles".to_string(),
                    G_KB,
                    volume(rng, 6_000.0, 0.6),
                )
            }
            St::Customer => (
                "crm:GetCustomer",
                format!("crm://customers/c{customer}"),
                G_CRM,
                volume(rng, 3_000.0, 0.5),
            ),
            St::Orders => (
                "crm:ListOrders",
                format!("crm://customers/c{customer}/orders"),
                G_CRM,
                volume(rng, 12_000.0, 0.8),
            ),
            St::Order => (
                "crm:GetOrder",
                format!(
                    "crm://customers/c{customer}/orders/o{}",
                    rng.gen_range(10_000_000..99_999_999u32)
                ),
                G_CRM,
                volume(rng, 4_000.0, 0.5),
            ),
            St::Read => (
                "tickets:Read",
                format!("tickets://support/T-{ticket}"),
                G_TICKETS,
                volume(rng, 5_000.0, 0.7),
            ),
            St::Update => (
                "tickets:Update",
                format!("tickets://support/T-{ticket}"),
                G_TICKETS,
                volume(rng, 2_000.0, 0.6),
            ),
            St::Mail => {
                let to = match intent {
                    Some("refund request" | "shipping delay complaint") if rng.gen_bool(0.3) => {
                        pick(rng, &PARTNERS).to_string()
                    }
                    _ => format!("mailto:c{customer}@customer.example"),
                };
                ("mail:Send", to, G_MAIL, volume(rng, 9_000.0, 0.7))
            }
            St::End => break,
        };
        em.routine(rng, &mut s, t, action, resource, grant, bytes);
        t += gap_ms(rng, 7_000.0, 0.8);
        st = next(st, rng, p.mail_rate);
    }
}

/// Bulk export of customer records.
pub(crate) fn bulk_reads(p: &SupportProfile, rng: &mut SimRng, n: usize) -> Plan {
    Plan {
        action: "crm:GetCustomer",
        resources: (0..n)
            .map(|_| format!("crm://customers/c{}", p.cust_lo + rng.gen_range(0..100_000)))
            .collect(),
        bytes_median: 3_000.0 * rng.gen_range(3.0..15.0),
        gap_ms: 7_000.0,
    }
}

/// Another team's queue: HR cases and escalations.
pub(crate) fn lateral(rng: &mut SimRng, n: usize) -> Plan {
    let queue = *pick(
        rng,
        &["hr-cases", "legal-escalations", "security-incidents"],
    );
    Plan {
        action: "tickets:Read",
        resources: (0..n)
            .map(|_| {
                format!(
                    "tickets://{queue}/T-{}",
                    rng.gen_range(1_000_000..10_000_000u32)
                )
            })
            .collect(),
        bytes_median: 5_000.0,
        gap_ms: 7_000.0,
    }
}
