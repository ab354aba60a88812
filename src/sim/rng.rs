//! Deterministic random streams.
//!
//! Every piece of the fleet draws from its own ChaCha stream, keyed by the run's seed, a domain
//! tag and one or two indices (agent, day, attack). Output therefore never depends on the order
//! in which agents or days happen to be generated.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Poisson};

/// The random generator used throughout the simulator.
pub(crate) type SimRng = ChaCha8Rng;

/// Domain tags, so that streams for different purposes never coincide.
#[derive(Clone, Copy, Debug)]
#[repr(u64)]
pub(crate) enum Domain {
    /// Fleet composition and agent profiles.
    Profile = 0x5052_4f46,
    /// One agent's benign traffic on one day.
    Day = 0x4441_5953,
    /// Attack planning.
    AttackPlan = 0x504c_414e,
    /// One attack's events.
    Attack = 0x4154_4b53,
    /// The LLM fleet: organisations, users and their agents.
    LlmWorld = 0x4c4c_4d57,
    /// One LLM agent's benign sessions on one day.
    LlmDay = 0x4c4c_4d44,
    /// One injection's sessions.
    LlmAttack = 0x4c4c_4d41,
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A stream for `(seed, domain, a, b)`.
pub(crate) fn stream(seed: u64, domain: Domain, a: u64, b: u64) -> SimRng {
    let mut key = [0u8; 32];
    let mut h = splitmix(seed ^ splitmix(domain as u64));
    h = splitmix(h ^ splitmix(a.wrapping_add(0x1234_5678)));
    h = splitmix(h ^ splitmix(b.wrapping_add(0x8765_4321)));
    for chunk in key.chunks_mut(8) {
        h = splitmix(h);
        chunk.copy_from_slice(&h.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// Picks an item with probability proportional to its weight.
pub(crate) fn weighted<T: Copy>(rng: &mut SimRng, items: &[(T, f64)]) -> T {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.r#gen::<f64>() * total;
    for &(item, w) in items {
        if x < w {
            return item;
        }
        x -= w;
    }
    items[items.len() - 1].0
}

/// Picks an element uniformly.
pub(crate) fn pick<'a, T>(rng: &mut SimRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

/// Picks an index with a Zipf-like preference for the first elements.
pub(crate) fn zipf_index(rng: &mut SimRng, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let total: f64 = (1..=n).map(|k| 1.0 / k as f64).sum();
    let mut x = rng.r#gen::<f64>() * total;
    for k in 1..=n {
        let w = 1.0 / k as f64;
        if x < w {
            return k - 1;
        }
        x -= w;
    }
    n - 1
}

/// A log-normal draw given its median and the sigma of the underlying normal.
pub(crate) fn lognormal(rng: &mut SimRng, median: f64, sigma: f64) -> f64 {
    match LogNormal::new(median.max(1e-9).ln(), sigma) {
        Ok(d) => d.sample(rng),
        Err(_) => median,
    }
}

/// A data volume in bytes: log-normal body with an occasional Pareto-like tail.
pub(crate) fn volume(rng: &mut SimRng, median: f64, sigma: f64) -> u64 {
    let mut v = lognormal(rng, median, sigma);
    if rng.gen_bool(0.01) {
        // Heavy tail: a rare object one or two orders of magnitude larger.
        let u: f64 = rng.gen_range(0.0001..1.0);
        v *= u.powf(-1.0 / 1.3).min(200.0);
    }
    v.round().max(1.0) as u64
}

/// A Poisson count.
pub(crate) fn poisson(rng: &mut SimRng, mean: f64) -> u64 {
    if mean <= 0.0 {
        return 0;
    }
    match Poisson::new(mean) {
        Ok(d) => {
            let x: f64 = d.sample(rng);
            x as u64
        }
        Err(_) => 0,
    }
}

/// An integer drawn log-uniformly from `lo..=hi` (many small, a few large).
pub(crate) fn log_uniform(rng: &mut SimRng, lo: u64, hi: u64) -> u64 {
    let (lo, hi) = (lo.max(1) as f64, hi.max(lo.max(1)) as f64);
    let x = rng.gen_range(lo.ln()..=hi.ln()).exp();
    (x.round() as u64).clamp(lo as u64, hi as u64)
}

/// A time gap in milliseconds, log-normal around `median_ms`.
pub(crate) fn gap_ms(rng: &mut SimRng, median_ms: f64, sigma: f64) -> i64 {
    lognormal(rng, median_ms, sigma).round().max(1.0) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: u64 = stream(7, Domain::Day, 1, 2).r#gen();
        let b: u64 = stream(7, Domain::Day, 1, 2).r#gen();
        let c: u64 = stream(7, Domain::Day, 2, 1).r#gen();
        let d: u64 = stream(8, Domain::Day, 1, 2).r#gen();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn log_uniform_stays_in_range() {
        let mut rng = stream(1, Domain::Attack, 0, 0);
        for _ in 0..1000 {
            let x = log_uniform(&mut rng, 3, 300);
            assert!((3..=300).contains(&x));
        }
    }
}
