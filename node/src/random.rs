//! Bounded random draws, pinned here so that every host draws alike.
//!
//! A host hands each node a random stream; which generator backs it is the
//! host's choice (the simulator derives a ChaCha8 stream per node from the
//! run's seed). The draws on top of it are our own code, so that a library
//! release cannot change what a seed does.

/// A source of uniformly random `u64`s, with the few bounded draws nodes
/// need. Implemented for every [`rand_core::Rng`].
pub trait Random {
    /// A uniformly random u64.
    fn next_u64(&mut self) -> u64;

    /// Uniform in `0..bound`. `bound` must be positive.
    ///
    /// Lemire's multiply-shift with rejection: unbiased, usually one draw.
    #[inline]
    fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "Random::below needs a positive bound");
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(bound);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }

    /// Uniform in `low..=high`; `low` when the range is empty.
    #[inline]
    fn range_inclusive(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            // Draw anyway so the stream advances the same way for any bounds.
            self.next_u64();
            return low;
        }
        match (high - low).checked_add(1) {
            Some(span) => low + self.below(span),
            None => self.next_u64(),
        }
    }

    /// True with probability `ppm` parts per million. Always draws once, so
    /// the stream's alignment does not depend on the probability.
    #[inline]
    fn chance_ppm(&mut self, ppm: u32) -> bool {
        let roll = self.next_u64() % 1_000_000;
        roll < u64::from(ppm)
    }

    /// A uniformly chosen index into a slice of length `len` (> 0).
    #[inline]
    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }
}

impl<R: rand_core::Rng + ?Sized> Random for R {
    #[inline]
    fn next_u64(&mut self) -> u64 {
        rand_core::Rng::next_u64(self)
    }
}

/// splitmix64: a tiny seeded generator for tests and for hosts that need
/// no more (the [`Harness`](crate::testing::Harness) uses it).
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }
}

impl Random for SplitMix64 {
    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        crate::mix64(self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_bounds_and_covers_the_range() {
        let mut rng = SplitMix64::new(1);
        let mut seen = [false; 7];
        for _ in 0..1_000 {
            let value = rng.below(7);
            assert!(value < 7);
            seen[value as usize] = true;
        }
        assert!(seen.iter().all(|&hit| hit));
    }

    #[test]
    fn chance_ppm_hits_near_its_rate() {
        let mut rng = SplitMix64::new(2);
        let hits = (0..100_000).filter(|_| rng.chance_ppm(100_000)).count();
        assert!((9_000..11_000).contains(&hits), "hits = {hits}");
        assert!(!(0..1_000).any(|_| rng.chance_ppm(0)));
        assert!((0..1_000).all(|_| rng.chance_ppm(1_000_000)));
    }

    #[test]
    fn range_inclusive_draws_once_even_when_empty() {
        let mut a = SplitMix64::new(3);
        let mut b = SplitMix64::new(3);
        assert_eq!(a.range_inclusive(5, 5), 5);
        b.next_u64();
        assert_eq!(a.next_u64(), b.next_u64());
    }
}
