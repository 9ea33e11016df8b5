//! A tiny seeded random source (splitmix64) and the duration distributions sampled from it.
//! Deterministic: the same (seed, job id, attempt) always gives the same duration.

/// The splitmix64 generator (Steele, Lea and Flood, 2014): one 64-bit state, full period.
#[derive(Debug, Clone)]
pub(super) struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator keyed by the configured seed, a job id and an attempt.
    pub(super) fn keyed(seed: u64, job_id: &str, attempt: u32) -> Self {
        // FNV-1a over the job id, mixed with the seed and the attempt.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in job_id.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let mut g = SplitMix64(seed ^ h.rotate_left(17) ^ u64::from(attempt).rotate_left(41));
        // Decorrelate nearby keys.
        g.next_u64();
        g
    }

    /// The next 64 random bits.
    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform number in (0, 1) (never 0, so that its logarithm is finite).
    pub(super) fn next_open01(&mut self) -> f64 {
        // 53 random bits, shifted by half a step away from 0.
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A standard normal number (Box-Muller).
    pub(super) fn next_normal(&mut self) -> f64 {
        let u1 = self.next_open01();
        let u2 = self.next_open01();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// How long a job runs when it does not say: a distribution of milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distribution {
    /// Always this long.
    Fixed {
        /// Milliseconds.
        ms: u64,
    },
    /// Uniform between `min_ms` and `max_ms`.
    Uniform {
        /// Shortest, in milliseconds.
        min_ms: u64,
        /// Longest, in milliseconds.
        max_ms: u64,
    },
    /// Log-normal: `median_ms * exp(sigma * z)`, z standard normal.
    LogNormal {
        /// The median, in milliseconds.
        median_ms: u64,
        /// The spread (standard deviation of the logarithm).
        sigma: f64,
    },
}

impl Distribution {
    /// A duration in milliseconds (at least 1).
    pub(super) fn sample(&self, rng: &mut SplitMix64) -> u64 {
        let ms = match *self {
            Distribution::Fixed { ms } => ms as f64,
            Distribution::Uniform { min_ms, max_ms } => {
                min_ms as f64 + rng.next_open01() * (max_ms.saturating_sub(min_ms)) as f64
            }
            Distribution::LogNormal { median_ms, sigma } => {
                median_ms as f64 * (sigma * rng.next_normal()).exp()
            }
        };
        // `as` saturates (and maps NaN to 0) when converting a float to an integer.
        (ms.round() as u64).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_numbers_other_key_other_numbers() {
        let a: Vec<u64> = {
            let mut g = SplitMix64::keyed(7, "job-a", 1);
            (0..4).map(|_| g.next_u64()).collect()
        };
        let mut g = SplitMix64::keyed(7, "job-a", 1);
        assert_eq!(a, (0..4).map(|_| g.next_u64()).collect::<Vec<_>>());
        for (seed, id, attempt) in [(8, "job-a", 1), (7, "job-b", 1), (7, "job-a", 2)] {
            let mut g = SplitMix64::keyed(seed, id, attempt);
            assert_ne!(a[0], g.next_u64(), "{seed} {id} {attempt}");
        }
    }

    #[test]
    fn distributions_stay_in_their_range() {
        let mut g = SplitMix64::keyed(1, "x", 1);
        let u = Distribution::Uniform {
            min_ms: 1_000,
            max_ms: 2_000,
        };
        let ln = Distribution::LogNormal {
            median_ms: 60_000,
            sigma: 0.5,
        };
        let mut below = 0;
        for _ in 0..2_000 {
            let d = u.sample(&mut g);
            assert!((1_000..=2_000).contains(&d), "{d}");
            if ln.sample(&mut g) < 60_000 {
                below += 1;
            }
        }
        // Half the log-normal samples fall below the median (within sampling noise).
        assert!((850..1_150).contains(&below), "{below}");
        assert_eq!(Distribution::Fixed { ms: 5 }.sample(&mut g), 5);
        assert_eq!(Distribution::Fixed { ms: 0 }.sample(&mut g), 1);
    }
}
