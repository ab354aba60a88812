//! The fleet: which agents exist, where they run, when they work and what they are granted.

use rand::Rng;
use rand::seq::SliceRandom;

use super::SimConfig;
use super::archetypes::{self, Archetype, Profile};
use super::clock::{DAY, HOUR, MIN};
use super::drift::DriftPlan;
use super::grants::{Grant, Unused};
use super::rng::{Domain, SimRng, pick, stream};

/// A new deployment of an agent: from `time_ms` on it calls from other addresses.
#[derive(Clone, Debug)]
pub(crate) struct Redeploy {
    /// When the new deployment took over.
    pub time_ms: i64,
    /// Its addresses.
    pub ips: Vec<u32>,
}

/// One simulated agent.
#[derive(Clone, Debug)]
pub(crate) struct Agent {
    /// Position in the fleet.
    pub idx: u32,
    /// Agent id, e.g. `support-bot-017`.
    pub id: String,
    /// Behavioural archetype.
    pub archetype: Archetype,
    /// Fixed UTC offset of the agent's working day.
    pub tz_off_ms: i64,
    /// Local hour the working day starts.
    pub work_start_h: f64,
    /// Length of the working day in hours.
    pub work_len_h: f64,
    /// Sessions per hour at the busiest time (human-driven agents).
    pub peak_rate: f64,
    /// Activity multiplier at weekends.
    pub weekend_factor: f64,
    /// Activity multiplier at month end.
    pub month_end_factor: f64,
    /// Stable source addresses (IPv4, packed).
    pub ips: Vec<u32>,
    /// A redeploy to new addresses part-way through the period.
    pub redeploy: Option<Redeploy>,
    /// Grants: the ones its work uses first, then the ones it never uses.
    pub grants: Vec<Grant>,
    /// How many of `grants` (from the front) are used by benign traffic.
    pub used_grants: usize,
    /// Archetype-specific working set and schedule.
    pub profile: Profile,
}

impl Agent {
    /// `ai_agent`, `service_account` or `workload`.
    pub(crate) fn kind(&self) -> &'static str {
        self.archetype.agent_kind()
    }

    /// The addresses in use at `t`.
    pub(crate) fn ips_at(&self, t: i64) -> &[u32] {
        match &self.redeploy {
            Some(r) if t >= r.time_ms => &r.ips,
            _ => &self.ips,
        }
    }

    /// One of the addresses in use at `t`.
    pub(crate) fn ip_at(&self, t: i64, rng: &mut SimRng) -> u32 {
        *pick(rng, self.ips_at(t))
    }

    /// The grant that allows `action` on `resource`: the first used grant that fits, else the
    /// first unused one that fits.
    pub(crate) fn grant_for(&self, action: &str, resource: &str) -> Option<u8> {
        self.grants
            .iter()
            .position(|g| g.spec.covers(action, resource))
            .map(|i| i as u8)
    }
}

/// Fleet-wide parameters the archetypes need while building agents.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    /// Number of days simulated.
    pub days: u32,
}

/// The whole simulated world.
pub(crate) struct World {
    /// Seed of the run.
    pub seed: u64,
    /// Start of the period, epoch ms.
    pub start_ms: i64,
    /// Days simulated.
    pub days: u32,
    /// The agents, in id order within each archetype.
    pub agents: Vec<Agent>,
    /// Fleet-wide drift.
    pub drift: DriftPlan,
}

impl World {
    /// Builds the fleet for a configuration.
    pub(crate) fn build(cfg: &SimConfig, start_ms: i64) -> World {
        let params = Params { days: cfg.days };
        let counts = archetype_counts(cfg.agents);
        let mut agents = Vec::with_capacity(cfg.agents as usize);
        for (arch, n) in Archetype::ALL.into_iter().zip(counts) {
            for k in 0..n {
                let idx = agents.len() as u32;
                let mut rng = stream(cfg.seed, Domain::Profile, idx as u64, 0);
                agents.push(build_agent(&mut rng, idx, arch, k, &params, start_ms));
            }
        }
        World {
            seed: cfg.seed,
            start_ms,
            days: cfg.days,
            drift: DriftPlan::plan(start_ms, cfg.days),
            agents,
        }
    }

    /// Start of day `d` of the period.
    pub(crate) fn day_start(&self, d: u32) -> i64 {
        self.start_ms + d as i64 * DAY
    }

    /// End of the period (exclusive).
    pub(crate) fn end_ms(&self) -> i64 {
        self.day_start(self.days)
    }

    /// The day of the period containing `t` (clamped to the period).
    pub(crate) fn day_of(&self, t: i64) -> u32 {
        ((t - self.start_ms).div_euclid(DAY)).clamp(0, self.days as i64 - 1) as u32
    }
}

/// How many agents of each archetype (largest remainder; every archetype present from six
/// agents on).
pub(crate) fn archetype_counts(agents: u32) -> Vec<u32> {
    let shares: Vec<f64> = Archetype::ALL.iter().map(|a| a.share()).collect();
    let total: f64 = shares.iter().sum();
    let exact: Vec<f64> = shares.iter().map(|s| s / total * agents as f64).collect();
    let mut counts: Vec<u32> = exact.iter().map(|x| x.floor() as u32).collect();
    if agents as usize >= counts.len() {
        for c in counts.iter_mut() {
            *c = (*c).max(1);
        }
    }
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by(|&a, &b| {
        let ra = exact[a] - exact[a].floor();
        let rb = exact[b] - exact[b].floor();
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let mut i = 0;
    while counts.iter().sum::<u32>() < agents {
        counts[order[i % order.len()]] += 1;
        i += 1;
    }
    while counts.iter().sum::<u32>() > agents {
        // Only reachable through the minimum of one per archetype: take from the largest.
        let big = (0..counts.len())
            .max_by_key(|&j| (counts[j], j))
            .unwrap_or(0);
        counts[big] -= 1;
    }
    counts
}

/// Time zones of human-driven agents (hours east of UTC).
const TZ_HOURS: [f64; 12] = [
    -8.0, -7.0, -6.0, -5.0, -5.0, -3.0, 0.0, 1.0, 1.0, 2.0, 5.5, 9.0,
];

/// Base second octet of each archetype's deployment networks.
pub(crate) fn subnet_base(arch: Archetype) -> u32 {
    match arch {
        Archetype::DataPipeline => 20,
        Archetype::SupportAgent => 30,
        Archetype::CodingAgent => 40,
        Archetype::AnalystAgent => 50,
        Archetype::InfraBot => 60,
        Archetype::FinanceAgent => 70,
    }
}

/// A deployment: one to three hosts in one /24 of the archetype's network.
pub(crate) fn deployment_ips(rng: &mut SimRng, arch: Archetype) -> Vec<u32> {
    let second = subnet_base(arch) + rng.gen_range(0..4);
    let third: u32 = rng.gen_range(0..=255);
    let n = *pick(rng, &[1usize, 1, 2, 2, 3]);
    let mut hosts: Vec<u32> = (2..=254).collect();
    hosts.shuffle(rng);
    hosts
        .into_iter()
        .take(n)
        .map(|h| (10 << 24) | (second << 16) | (third << 8) | h)
        .collect()
}

fn build_agent(
    rng: &mut SimRng,
    idx: u32,
    arch: Archetype,
    k: u32,
    params: &Params,
    start_ms: i64,
) -> Agent {
    let built = archetypes::build(arch, rng, k, params);
    let human = arch.human_driven();
    let tz_h = if human {
        *pick(rng, &TZ_HOURS)
    } else if arch == Archetype::DataPipeline {
        *pick(rng, &[-5.0, 0.0, 1.0])
    } else {
        0.0
    };
    let (lo, hi) = match arch {
        Archetype::SupportAgent => (1.4, 3.0),
        Archetype::CodingAgent => (0.6, 1.4),
        Archetype::AnalystAgent => (0.5, 1.2),
        Archetype::FinanceAgent => (0.4, 1.0),
        _ => (0.0, 0.0),
    };
    let peak_rate = if hi > 0.0 { rng.gen_range(lo..hi) } else { 0.0 };
    let month_end_factor = match arch {
        Archetype::AnalystAgent | Archetype::FinanceAgent => rng.gen_range(2.5..4.0),
        _ => 1.0,
    };
    let weekend_factor = match arch {
        Archetype::FinanceAgent => rng.gen_range(0.02..0.08),
        _ if human => rng.gen_range(0.1..0.3),
        _ => 1.0,
    };
    let ips = deployment_ips(rng, arch);
    let redeploy = if rng.gen_bool(0.15) && params.days >= 4 {
        let at = start_ms
            + (rng.gen_range(0.25..0.85) * params.days as f64 * DAY as f64) as i64
            + rng.gen_range(0..60) * MIN;
        Some(Redeploy {
            time_ms: at,
            ips: deployment_ips(rng, arch),
        })
    } else {
        None
    };
    let mut grants = built.grants;
    let used_grants = grants.len();
    let mut pool: Vec<Unused> = built.unused.to_vec();
    pool.shuffle(rng);
    let n_unused = rng.gen_range(1..=3usize).min(pool.len());
    for u in pool.into_iter().take(n_unused) {
        let g = u.grant();
        if !grants.iter().any(|x| x.id == g.id) {
            grants.push(g);
        }
    }
    Agent {
        idx,
        id: built.id,
        archetype: arch,
        tz_off_ms: (tz_h * HOUR as f64) as i64,
        work_start_h: rng.gen_range(7.0..10.0),
        work_len_h: rng.gen_range(8.0..10.0),
        peak_rate,
        weekend_factor,
        month_end_factor,
        ips,
        redeploy,
        grants,
        used_grants,
        profile: built.profile,
    }
}

/// Formats a packed IPv4 address.
pub(crate) fn ip_string(ip: u32) -> String {
    let b = ip.to_be_bytes();
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_cover_every_archetype() {
        for n in [1u32, 5, 6, 7, 10, 100, 1000, 1001] {
            let c = archetype_counts(n);
            assert_eq!(c.iter().sum::<u32>(), n);
            if n >= 6 {
                assert!(c.iter().all(|&x| x >= 1), "{n}: {c:?}");
            }
        }
    }
}
