//! Infrastructure bots: poll a few namespaces of a cluster on a fixed period, around the clock,
//! and keep an hourly watch on events.

use rand::Rng;
use rand::seq::SliceRandom;

use super::{Built, Plan, growth_day, num};
use crate::sim::clock::{DAY, HOUR, MIN, SEC};
use crate::sim::event::Attr;
use crate::sim::fleet::{Agent, Params, World};
use crate::sim::grants::{Grant, Unused};
use crate::sim::rng::{SimRng, gap_ms, log_uniform, pick, volume, weighted};
use crate::sim::sessions::{Emitter, Session};

/// Component name of the polling loop.
pub(crate) const POLLER: &str = "poller";
/// Component name of the event watcher.
pub(crate) const WATCHER: &str = "watcher";

/// Application namespaces.
pub(crate) const NAMESPACES: [&str; 11] = [
    "payments",
    "checkout",
    "search",
    "auth",
    "ingest",
    "ml-serving",
    "monitoring",
    "web",
    "batch",
    "notifications",
    "data",
];

const KINDS: [&str; 5] = [
    "pods",
    "deployments",
    "services",
    "replicasets",
    "endpoints",
];
const COMPONENTS: [&str; 4] = ["api", "worker", "cron", "gateway"];

const G_CLUSTER: u8 = 0;
const G_ROLE: u8 = 1;
const G_EC2: u8 = 2;

/// Working set and schedule of an infrastructure bot.
#[derive(Clone, Debug)]
pub(crate) struct InfraProfile {
    /// Namespaces watched, with the first day each is watched.
    pub namespaces: Vec<(&'static str, u32)>,
    /// Resource kinds listed.
    pub kinds: Vec<&'static str>,
    /// Polling period.
    pub period_ms: i64,
    /// Offset of the polling grid.
    pub phase_ms: i64,
    /// Minute past the hour the watch is renewed.
    pub watch_minute: i64,
    /// Cloud region whose instances it inventories every six hours, if any.
    pub inventory: Option<&'static str>,
}

impl InfraProfile {
    pub(crate) fn growth(&self) -> Vec<(u32, String)> {
        self.namespaces
            .iter()
            .filter(|n| n.1 > 0)
            .map(|n| (n.1, format!("k8s://{}/", n.0)))
            .collect()
    }

    fn active(&self, day: u32) -> Vec<&'static str> {
        self.namespaces
            .iter()
            .filter(|n| n.1 <= day)
            .map(|n| n.0)
            .collect()
    }
}

/// Builds the `k`-th infrastructure bot.
pub(crate) fn build(rng: &mut SimRng, k: u32, p: &Params) -> Built {
    let mut pool = NAMESPACES.to_vec();
    pool.shuffle(rng);
    let n = rng.gen_range(2..=4);
    let mut namespaces: Vec<(&str, u32)> = pool.iter().take(n).map(|x| (*x, 0)).collect();
    if rng.gen_bool(0.3) {
        namespaces.push((pool[n], growth_day(rng, p)));
    }
    let mut kinds = KINDS.to_vec();
    kinds.shuffle(rng);
    kinds.truncate(rng.gen_range(2..=4));
    let period_s = weighted(rng, &[(60, 0.1), (120, 0.25), (300, 0.4), (600, 0.25)]);
    let resources: Vec<String> = if rng.gen_bool(0.3) {
        vec!["k8s://*".to_string()]
    } else {
        namespaces
            .iter()
            .map(|x| format!("k8s://{}/*", x.0))
            .collect()
    };
    let inventory = rng
        .gen_bool(0.4)
        .then(|| *pick(rng, &["us-east-1", "eu-west-1", "us-west-2"]));
    let mut grants = vec![
        Grant::new(
            "cluster-read",
            &["k8s:get", "k8s:list", "k8s:watch"],
            &resources,
        ),
        Grant::new(
            "reader-role",
            &["sts:AssumeRole"],
            &["iam://roles/cluster-reader".to_string()],
        ),
    ];
    if inventory.is_some() {
        grants.push(Grant::new(
            "ec2-describe",
            &["ec2:Describe*"],
            &["ec2://*".to_string()],
        ));
    }
    const UNUSED: [Unused; 4] = [
        Unused::K8sAdmin,
        Unused::ProdSecrets,
        Unused::IamAdmin,
        Unused::DataLakeRead,
    ];
    Built {
        id: format!("infra-bot-{}", num(k + 1, 2)),
        profile: super::Profile::Infra(InfraProfile {
            namespaces,
            kinds,
            period_ms: period_s * SEC,
            phase_ms: rng.gen_range(0..period_s * SEC),
            watch_minute: rng.gen_range(0..60),
            inventory,
        }),
        grants,
        unused: &UNUSED,
    }
}

#[allow(clippy::too_many_arguments)]
fn poll(
    p: &InfraProfile,
    active: &[&'static str],
    k: i64,
    t: i64,
    rng: &mut SimRng,
    s: &mut Session,
    em: &mut Emitter,
) {
    let targets = active.len() * p.kinds.len();
    let i = k.rem_euclid(targets as i64) as usize;
    let (ns, kind) = (active[i / p.kinds.len()], p.kinds[i % p.kinds.len()]);
    let b = volume(rng, 40e3, 0.4);
    em.routine(
        rng,
        s,
        t,
        "k8s:list",
        format!("k8s://{ns}/{kind}"),
        G_CLUSTER,
        b,
    );
    if rng.gen_bool(0.04) {
        let name = format!("{ns}-{}", pick(rng, &COMPONENTS));
        let at = t + rng.gen_range(50..400);
        let b = volume(rng, 4e3, 0.3);
        em.routine(
            rng,
            s,
            at,
            "k8s:get",
            format!("k8s://{ns}/deployments/{name}"),
            G_CLUSTER,
            b,
        );
    }
}

/// A day of polling. The process restarts (new session) each day and at a redeploy.
pub(crate) fn day(
    w: &World,
    a: &Agent,
    p: &InfraProfile,
    day: u32,
    rng: &mut SimRng,
    em: &mut Emitter,
) {
    let ds = w.day_start(day);
    let end = ds + DAY;
    let active = p.active(day);
    let redeploy_at = a
        .redeploy
        .as_ref()
        .map(|r| r.time_ms)
        .filter(|&t| t > ds && t < end);
    let mut s = Session::open(rng, a, ds, None, Attr::Component(POLLER));
    let mut switched = false;
    let mut k = (ds - p.phase_ms + p.period_ms - 1).div_euclid(p.period_ms);
    loop {
        let base = p.phase_ms + k * p.period_ms;
        if base >= end {
            break;
        }
        let t = base + rng.gen_range(0..(p.period_ms / 30).max(1));
        if let Some(r) = redeploy_at
            && !switched
            && t >= r
        {
            s = Session::open(rng, a, t, None, Attr::Component(POLLER));
            switched = true;
        }
        poll(p, &active, k, t, rng, &mut s, em);
        k += 1;
    }
    let mut watch = Session::open(rng, a, ds, None, Attr::Component(WATCHER));
    let mut watch_switched = false;
    for h in 0..24 {
        let t = ds + h * HOUR + p.watch_minute * MIN + rng.gen_range(0..5_000);
        if let Some(r) = redeploy_at
            && !watch_switched
            && t >= r
        {
            watch = Session::open(rng, a, t, None, Attr::Component(WATCHER));
            watch_switched = true;
        }
        // Credentials are refreshed before the watch is renewed.
        let b = volume(rng, 1_200.0, 0.2);
        let role = "iam://roles/cluster-reader".to_string();
        em.routine(rng, &mut watch, t, "sts:AssumeRole", role, G_ROLE, b);
        if let Some(region) = p.inventory
            && h % 6 == 0
        {
            let b = volume(rng, 250e3, 0.6);
            let r = format!("ec2://{region}/instances");
            let at = t + gap_ms(rng, 900.0, 0.5);
            em.routine(rng, &mut watch, at, "ec2:DescribeInstances", r, G_EC2, b);
        }
        let ns = active[h as usize % active.len()];
        let b = volume(rng, 1_500.0, 0.5);
        let at = t + gap_ms(rng, 2_000.0, 0.4);
        em.routine(
            rng,
            &mut watch,
            at,
            "k8s:watch",
            format!("k8s://{ns}/events"),
            G_CLUSTER,
            b,
        );
    }
}

/// A burst of ordinary polls starting at `start` (a few minutes to an hour of the loop).
pub(crate) fn burst(
    w: &World,
    a: &Agent,
    p: &InfraProfile,
    rng: &mut SimRng,
    start: i64,
    em: &mut Emitter,
) {
    let active = p.active(w.day_of(start));
    let mut s = Session::open(rng, a, start, None, Attr::Component(POLLER));
    let n = log_uniform(rng, 3, 40) as i64;
    let k0 = rng.gen_range(0..1000);
    for k in 0..n {
        let t = start + k * p.period_ms + rng.gen_range(0..(p.period_ms / 30).max(1));
        poll(p, &active, k0 + k, t, rng, &mut s, em);
    }
}

/// Many config maps and secrets of its namespaces.
pub(crate) fn bulk_reads(p: &InfraProfile, rng: &mut SimRng, n: usize) -> Plan {
    Plan {
        action: "k8s:get",
        resources: (0..n)
            .map(|_| {
                let ns = pick(rng, &p.namespaces).0;
                let kind = if rng.gen_bool(0.5) {
                    "configmaps"
                } else {
                    "secrets"
                };
                format!(
                    "k8s://{ns}/{kind}/{ns}-{}-{:04x}",
                    pick(rng, &COMPONENTS),
                    rng.r#gen::<u16>()
                )
            })
            .collect(),
        bytes_median: 4e3 * rng.gen_range(3.0..10.0),
        gap_ms: 2_000.0,
    }
}

/// Namespaces it does not watch, listed at its polling pace.
pub(crate) fn lateral(p: &InfraProfile, rng: &mut SimRng, n: usize) -> Plan {
    let own: Vec<&str> = p.namespaces.iter().map(|x| x.0).collect();
    let mut others: Vec<&str> = NAMESPACES
        .iter()
        .copied()
        .filter(|x| !own.contains(x))
        .collect();
    others.push("kube-system");
    let ns = *pick(rng, &others);
    Plan {
        action: "k8s:list",
        resources: (0..n)
            .map(|_| {
                format!(
                    "k8s://{ns}/{}",
                    pick(
                        rng,
                        &[
                            "pods",
                            "secrets",
                            "configmaps",
                            "serviceaccounts",
                            "deployments"
                        ]
                    )
                )
            })
            .collect(),
        bytes_median: 40e3,
        gap_ms: p.period_ms as f64,
    }
}
