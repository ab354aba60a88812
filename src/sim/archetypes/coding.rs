//! Coding agents: sessions on a few repositories during their developers' working hours.
//!
//! Chain: git:Clone|git:Pull -> [artifact:Get] -> [secrets:Get own CI secret] -> git:Push
//! -> ci:Trigger -> ci:GetStatus* (-> fix loop).

use rand::Rng;
use rand::seq::SliceRandom;

use super::{Built, Plan, growth_day, num};
use crate::sim::clock::MIN;
use crate::sim::event::Attr;
use crate::sim::fleet::{Agent, Params, World};
use crate::sim::grants::{Grant, Unused};
use crate::sim::rng::{SimRng, gap_ms, pick, volume, weighted, zipf_index};
use crate::sim::sessions::{Emitter, Session, session_starts};

/// Stated purposes of coding sessions.
pub(crate) const INTENTS: [(&str, f64); 5] = [
    ("fix failing test", 0.3),
    ("implement feature", 0.3),
    ("dependency upgrade", 0.15),
    ("refactor module", 0.15),
    ("review pull request", 0.1),
];

/// Repositories coding agents work in.
pub(crate) const REPOS: [&str; 20] = [
    "web-frontend",
    "mobile-app",
    "checkout-service",
    "billing-service",
    "search-api",
    "notification-service",
    "inventory-service",
    "data-pipeline",
    "ml-platform",
    "docs-site",
    "design-system",
    "analytics-sdk",
    "order-service",
    "recommendation-engine",
    "admin-portal",
    "customer-portal",
    "feature-flags",
    "api-gateway",
    "shipping-service",
    "load-tests",
];

/// Repositories owned by other, more sensitive teams.
pub(crate) const OTHER_TEAM_REPOS: [&str; 6] = [
    "payments-core",
    "infra-terraform",
    "auth-gateway",
    "hr-portal",
    "fraud-detection",
    "secrets-rotation",
];

const G_REPO: u8 = 0;
const G_CI: u8 = 1;
const G_ART: u8 = 2;
const G_SECRET: u8 = 3;

/// Working set of a coding agent.
#[derive(Clone, Debug)]
pub(crate) struct CodingProfile {
    /// Repositories and the day each joins the working set.
    pub repos: Vec<(&'static str, u32)>,
}

impl CodingProfile {
    pub(crate) fn growth(&self) -> Vec<(u32, String)> {
        self.repos
            .iter()
            .filter(|r| r.1 > 0)
            .map(|r| (r.1, format!("git://org/{}", r.0)))
            .collect()
    }
}

/// Builds the `k`-th coding agent.
pub(crate) fn build(rng: &mut SimRng, k: u32, p: &Params) -> Built {
    let mut pool = REPOS.to_vec();
    pool.shuffle(rng);
    let n = rng.gen_range(2..=4);
    let mut repos: Vec<(&'static str, u32)> = pool.iter().take(n).map(|r| (*r, 0)).collect();
    if rng.gen_bool(0.4) {
        repos.push((pool[n], growth_day(rng, p)));
    }
    let grants = vec![
        Grant::new(
            "repo-rw",
            &["git:Clone", "git:Pull", "git:Push"],
            &["git://org/*".to_string()],
        ),
        Grant::new(
            "ci-run",
            &["ci:Trigger", "ci:GetStatus"],
            &["ci://org/*".to_string()],
        ),
        Grant::new(
            "artifacts-read",
            &["artifact:Get"],
            &["artifact://org/*".to_string()],
        ),
        Grant::new(
            "ci-secrets",
            &["secrets:Get"],
            &["secrets://ci/*".to_string()],
        ),
    ];
    const UNUSED: [Unused; 5] = [
        Unused::ProdSecrets,
        Unused::IamAdmin,
        Unused::MailAny,
        Unused::K8sAdmin,
        Unused::DataLakeRead,
    ];
    Built {
        id: format!("code-agent-{}", num(k + 1, 3)),
        profile: super::Profile::Coding(CodingProfile { repos }),
        grants,
        unused: &UNUSED,
    }
}

/// A day of coding sessions.
pub(crate) fn day(
    w: &World,
    a: &Agent,
    p: &CodingProfile,
    day: u32,
    rng: &mut SimRng,
    em: &mut Emitter,
) {
    for t in session_starts(a, w.day_start(day), rng) {
        session(w, a, p, rng, t, em);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum St {
    Clone,
    Pull,
    Artifact,
    Secret,
    Push,
    Trigger,
    Status,
    End,
}

fn next(s: St, rng: &mut SimRng) -> St {
    use St::*;
    match s {
        Clone | Pull => weighted(rng, &[(Artifact, 0.5), (Secret, 0.15), (Push, 0.35)]),
        Artifact => weighted(rng, &[(Artifact, 0.2), (Secret, 0.2), (Push, 0.6)]),
        Secret => weighted(rng, &[(Trigger, 0.7), (Push, 0.3)]),
        Push => weighted(rng, &[(Trigger, 0.85), (End, 0.15)]),
        Trigger => Status,
        Status => weighted(
            rng,
            &[(Status, 0.4), (Pull, 0.15), (Push, 0.15), (End, 0.3)],
        ),
        End => End,
    }
}

/// One coding session on one repository.
pub(crate) fn session(
    w: &World,
    a: &Agent,
    p: &CodingProfile,
    rng: &mut SimRng,
    start: i64,
    em: &mut Emitter,
) {
    let day = w.day_of(start);
    let active: Vec<&str> = p.repos.iter().filter(|r| r.1 <= day).map(|r| r.0).collect();
    let repo = active[zipf_index(rng, active.len())];
    let intent = Session::intent(rng, &INTENTS);
    let mut s = Session::open(rng, a, start, intent, Attr::Tool);
    let mut st = if rng.gen_bool(0.3) {
        St::Clone
    } else {
        St::Pull
    };
    let mut t = start;
    let mut run: u32 = rng.gen_range(10_000..900_000);
    let build = 1000 + (start / (6 * 60 * MIN)) as u32 % 9000;
    for _ in 0..30 {
        let (action, resource, grant, bytes, gap) = match st {
            St::Clone => (
                "git:Clone",
                format!("git://org/{repo}"),
                G_REPO,
                volume(rng, 80e6, 1.0),
                20_000.0,
            ),
            St::Pull => (
                "git:Pull",
                format!("git://org/{repo}"),
                G_REPO,
                volume(rng, 2e6, 1.2),
                15_000.0,
            ),
            St::Artifact => (
                "artifact:Get",
                format!(
                    "artifact://org/{repo}/builds/{}",
                    build - rng.gen_range(0..5)
                ),
                G_ART,
                volume(rng, 30e6, 0.8),
                10_000.0,
            ),
            St::Secret => (
                "secrets:Get",
                format!("secrets://ci/{repo}/deploy-token"),
                G_SECRET,
                volume(rng, 200.0, 0.2),
                5_000.0,
            ),
            St::Push => (
                "git:Push",
                format!("git://org/{repo}"),
                G_REPO,
                volume(rng, 500e3, 1.0),
                5_000.0,
            ),
            St::Trigger => {
                run += 1;
                (
                    "ci:Trigger",
                    format!("ci://org/{repo}/pipelines"),
                    G_CI,
                    volume(rng, 2_000.0, 0.4),
                    60_000.0,
                )
            }
            St::Status => (
                "ci:GetStatus",
                format!("ci://org/{repo}/pipelines/{run}"),
                G_CI,
                volume(rng, 1_500.0, 0.4),
                60_000.0,
            ),
            St::End => break,
        };
        em.routine(rng, &mut s, t, action, resource, grant, bytes);
        let next_state = next(st, rng);
        // Editing code takes minutes before a push.
        let think = if next_state == St::Push {
            4.0 * MIN as f64
        } else {
            gap
        };
        t += gap_ms(rng, think, 0.7);
        st = next_state;
    }
}

/// Cloning many repositories.
pub(crate) fn bulk_reads(rng: &mut SimRng, n: usize) -> Plan {
    let mut all: Vec<&str> = REPOS
        .iter()
        .chain(OTHER_TEAM_REPOS.iter())
        .copied()
        .collect();
    all.shuffle(rng);
    Plan {
        action: "git:Clone",
        resources: (0..n)
            .map(|i| format!("git://org/{}", all[i % all.len()]))
            .collect(),
        bytes_median: 80e6 * rng.gen_range(1.0..3.0),
        gap_ms: 20_000.0,
    }
}

/// Another team's repositories.
pub(crate) fn lateral(p: &CodingProfile, rng: &mut SimRng, n: usize) -> Plan {
    let own: Vec<&str> = p.repos.iter().map(|r| r.0).collect();
    let targets: Vec<&str> = OTHER_TEAM_REPOS
        .iter()
        .copied()
        .filter(|r| !own.contains(r))
        .collect();
    Plan {
        action: if rng.gen_bool(0.5) {
            "git:Clone"
        } else {
            "git:Pull"
        },
        resources: (0..n)
            .map(|_| format!("git://org/{}", pick(rng, &targets)))
            .collect(),
        bytes_median: 40e6,
        gap_ms: 15_000.0,
    }
}
