//! Seeded random streams: one root seed, one ChaCha8 stream per purpose.
//!
//! Each purpose (network, faults, workload, each node) gets its own stream
//! of the same key, so turning one fault kind off never shifts the draws of
//! another stream. The seed expansion and the bounded draws are our own code,
//! pinned here, so that a `rand` release cannot change a run.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use crate::hash::mix64;

/// What a random stream is for. Each variant maps to a fixed stream number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stream {
    /// Latency, drops and duplicates.
    Network,
    /// Drawing the fault schedule (swarm mode).
    Faults,
    /// The workload a scenario generates.
    Workload,
    /// One node's own draws, by node index.
    Node(u32),
    /// Anything else a user of the simulator needs, by number.
    Custom(u32),
}

impl Stream {
    fn number(self) -> u64 {
        match self {
            Stream::Network => 1,
            Stream::Faults => 2,
            Stream::Workload => 3,
            Stream::Node(index) => (1 << 32) | u64::from(index),
            Stream::Custom(index) => (2 << 32) | u64::from(index),
        }
    }
}

/// A deterministic random stream with the few bounded draws we need.
#[derive(Clone, Debug)]
pub struct SimRng {
    inner: ChaCha8Rng,
}

impl SimRng {
    /// The stream for `purpose` under `root_seed`.
    pub fn derive(root_seed: u64, purpose: Stream) -> Self {
        // Expand the u64 seed into a 256-bit key with splitmix64: fixed here,
        // not delegated to `SeedableRng::seed_from_u64`, whose expansion is a
        // library detail.
        let mut key = [0u8; 32];
        let mut state = root_seed;
        for chunk in key.chunks_exact_mut(8) {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            chunk.copy_from_slice(&mix64(state).to_le_bytes());
        }
        let mut inner = ChaCha8Rng::from_seed(key);
        inner.set_stream(purpose.number());
        Self { inner }
    }

    /// A uniformly random u64.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Uniform in `0..bound`. `bound` must be positive.
    ///
    /// Lemire's multiply-shift with rejection: unbiased, usually one draw.
    #[inline]
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "SimRng::below needs a positive bound");
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
    pub fn range_inclusive(&mut self, low: u64, high: u64) -> u64 {
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
    pub fn chance_ppm(&mut self, ppm: u32) -> bool {
        let roll = self.next_u64() % 1_000_000;
        roll < u64::from(ppm)
    }

    /// A uniformly chosen index into a slice of length `len` (> 0).
    #[inline]
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_stream_give_same_draws() {
        let mut a = SimRng::derive(7, Stream::Network);
        let mut b = SimRng::derive(7, Stream::Network);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn streams_differ_by_purpose_and_seed() {
        let first = |seed, stream| SimRng::derive(seed, stream).next_u64();
        assert_ne!(first(7, Stream::Network), first(7, Stream::Faults));
        assert_ne!(first(7, Stream::Node(0)), first(7, Stream::Node(1)));
        assert_ne!(first(7, Stream::Network), first(8, Stream::Network));
    }

    #[test]
    fn below_stays_in_bounds_and_covers_the_range() {
        let mut rng = SimRng::derive(1, Stream::Custom(0));
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
        let mut rng = SimRng::derive(2, Stream::Custom(0));
        let hits = (0..100_000).filter(|_| rng.chance_ppm(100_000)).count();
        assert!((9_000..11_000).contains(&hits), "hits = {hits}");
        assert!(!(0..1_000).any(|_| rng.chance_ppm(0)));
        assert!((0..1_000).all(|_| rng.chance_ppm(1_000_000)));
    }
}
