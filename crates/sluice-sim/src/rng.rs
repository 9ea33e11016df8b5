//! A tiny seeded random source (splitmix64, as the simulated backend uses) and the
//! distributions the trace generator draws from. Deterministic: the same seed gives the same
//! numbers on every machine.

/// The splitmix64 generator (Steele, Lea and Flood, 2014): one 64-bit state, full period.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        let mut g = SplitMix64(seed ^ 0x5151_1ce5_eed0_0000);
        g.next_u64();
        g
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform number in (0, 1) (never 0, so that its logarithm is finite).
    pub fn next_open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A standard normal number (Box-Muller).
    pub fn next_normal(&mut self) -> f64 {
        let u1 = self.next_open01();
        let u2 = self.next_open01();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// An exponential number with the given mean.
    pub fn next_exp(&mut self, mean: f64) -> f64 {
        -mean * self.next_open01().ln()
    }

    /// A log-normal number: `median * exp(sigma * z)`.
    pub fn next_lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.next_normal()).exp()
    }

    /// A whole number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// An index drawn by the given weights (which need not sum to 1; all zero gives 0).
    pub fn pick(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        if total <= 0.0 {
            return 0;
        }
        let mut x = self.next_open01() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len().saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_numbers() {
        let a: Vec<u64> = {
            let mut g = SplitMix64::new(7);
            (0..4).map(|_| g.next_u64()).collect()
        };
        let mut g = SplitMix64::new(7);
        assert_eq!(a, (0..4).map(|_| g.next_u64()).collect::<Vec<_>>());
        assert_ne!(a[0], SplitMix64::new(8).next_u64());
    }

    #[test]
    fn distributions_have_their_centres() {
        let mut g = SplitMix64::new(1);
        let n = 20_000;
        let mean: f64 = (0..n).map(|_| g.next_exp(10.0)).sum::<f64>() / n as f64;
        assert!((9.5..10.5).contains(&mean), "{mean}");
        let below = (0..n)
            .filter(|_| g.next_lognormal(60.0, 0.5) < 60.0)
            .count();
        assert!((9_500..10_500).contains(&below), "{below}");
        for _ in 0..1000 {
            assert!((3..=5).contains(&g.range(3, 5)));
        }
        let picks = (0..n).filter(|_| g.pick(&[1.0, 3.0]) == 1).count();
        assert!((14_500..15_500).contains(&picks), "{picks}");
    }
}
