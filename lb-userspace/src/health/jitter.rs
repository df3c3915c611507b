//! Probe scheduling jitter, so probes of many targets do not arrive in bursts.
//!
//! Each target's first probe is at a uniformly random offset within its
//! interval; every later round waits the interval ±10%. A small splitmix64
//! generator (seeded per target from the standard library's random hasher
//! keys) is enough: this is load spreading, not cryptography.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

/// Relative spread of each round's delay around the interval (±10%).
pub const ROUND_JITTER: f64 = 0.10;

/// A per-target jitter source.
#[derive(Clone, Debug)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    /// A generator with a fixed seed (deterministic, for tests).
    pub fn from_seed(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator with a random seed.
    pub fn random() -> Self {
        Self::from_seed(RandomState::new().hash_one(0x6c62_u64))
    }

    fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Delay before a target's first probe: uniform in [0, interval).
    pub fn first_delay(&mut self, interval: Duration) -> Duration {
        interval.mul_f64(self.next_unit())
    }

    /// Delay between two rounds: uniform in [interval × 0.9, interval × 1.1).
    pub fn round_delay(&mut self, interval: Duration) -> Duration {
        let factor = 1.0 - ROUND_JITTER + 2.0 * ROUND_JITTER * self.next_unit();
        interval.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_delay_spreads_over_the_interval() {
        let interval = Duration::from_millis(1000);
        let mut j = Jitter::from_seed(1);
        let mut buckets = [0u32; 10];
        for _ in 0..10_000 {
            let d = j.first_delay(interval);
            assert!(d < interval);
            buckets[(d.as_millis() / 100) as usize] += 1;
        }
        // Each tenth of the interval gets roughly a tenth of the probes.
        for (i, &b) in buckets.iter().enumerate() {
            assert!((800..1200).contains(&b), "bucket {i}: {b}");
        }
    }

    #[test]
    fn round_delay_within_ten_percent_and_varies() {
        let interval = Duration::from_millis(1000);
        let mut j = Jitter::from_seed(7);
        let delays: Vec<_> = (0..1000).map(|_| j.round_delay(interval)).collect();
        for d in &delays {
            assert!(
                *d >= Duration::from_millis(900) && *d < Duration::from_millis(1100),
                "{d:?}"
            );
        }
        let min = delays.iter().min().unwrap();
        let max = delays.iter().max().unwrap();
        assert!(*max - *min > Duration::from_millis(150), "{min:?}..{max:?}");
    }

    #[test]
    fn random_seeds_differ() {
        let a = Jitter::random().next_u64();
        let b = Jitter::random().next_u64();
        assert_ne!(a, b);
    }
}
