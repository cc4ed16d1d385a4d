//! The simulated network: latency, loss, duplication, partitions and clogs.

use serde::{Deserialize, Serialize};

use crate::rng::SimRng;
use node::Random;

/// Per-message network behaviour. Probabilities are integer parts per million.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Smallest one-way latency.
    pub latency_min_ns: u64,
    /// Largest ordinary one-way latency. Latency is uniform in min..=max,
    /// which also reorders messages on one link.
    pub latency_max_ns: u64,
    /// Chance that a message takes the slow tail instead.
    pub tail_ppm: u32,
    /// The tail's latency is uniform in `latency_max_ns..=tail_max_ns`.
    pub tail_max_ns: u64,
    /// Chance that a message is lost.
    pub drop_ppm: u32,
    /// Chance that a message is delivered twice (each copy its own latency).
    pub duplicate_ppm: u32,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            latency_min_ns: 1_000_000,
            latency_max_ns: 10_000_000,
            tail_ppm: 0,
            tail_max_ns: 10_000_000,
            drop_ppm: 0,
            duplicate_ppm: 0,
        }
    }
}

impl NetworkConfig {
    /// Checks the bounds; the error names the field and what is allowed.
    pub fn validate(&self) -> Result<(), String> {
        if self.latency_min_ns > self.latency_max_ns {
            return Err(format!(
                "latency_min_ns ({}) must be at most latency_max_ns ({})",
                self.latency_min_ns, self.latency_max_ns
            ));
        }
        if self.tail_max_ns < self.latency_max_ns {
            return Err(format!(
                "tail_max_ns ({}) must be at least latency_max_ns ({})",
                self.tail_max_ns, self.latency_max_ns
            ));
        }
        for (name, value) in [
            ("tail_ppm", self.tail_ppm),
            ("drop_ppm", self.drop_ppm),
            ("duplicate_ppm", self.duplicate_ppm),
        ] {
            if value > 1_000_000 {
                return Err(format!("{name} ({value}) must be at most 1000000"));
            }
        }
        Ok(())
    }

    /// Draws one message's latency. Always draws the same number of values.
    #[inline]
    pub(crate) fn draw_latency_ns(&self, rng: &mut SimRng) -> u64 {
        let tail = rng.chance_ppm(self.tail_ppm);
        let (low, high) = if tail {
            (self.latency_max_ns, self.tail_max_ns)
        } else {
            (self.latency_min_ns, self.latency_max_ns)
        };
        rng.range_inclusive(low, high)
    }
}

/// Directed link state as dense per-pair counters, so overlapping faults
/// compose: a link is cut while any partition covering it is active.
#[derive(Clone, Debug, Default)]
pub(crate) struct LinkMatrix {
    node_count: usize,
    counts: Vec<u16>,
}

impl LinkMatrix {
    pub(crate) fn new(node_count: usize) -> Self {
        Self {
            node_count,
            counts: vec![0; node_count * node_count],
        }
    }

    #[inline]
    pub(crate) fn is_set(&self, from: usize, to: usize) -> bool {
        self.counts[from * self.node_count + to] > 0
    }

    pub(crate) fn add(&mut self, from: usize, to: usize) {
        let slot = &mut self.counts[from * self.node_count + to];
        *slot = slot
            .checked_add(1)
            .expect("too many overlapping link faults");
    }

    /// Returns true when the link became clear.
    pub(crate) fn remove(&mut self, from: usize, to: usize) -> bool {
        let slot = &mut self.counts[from * self.node_count + to];
        assert!(*slot > 0, "link fault healed twice");
        *slot -= 1;
        *slot == 0
    }
}
