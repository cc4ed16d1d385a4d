//! Per-node clocks: a monotonic clock with rate drift, and a wall clock that
//! also jumps. Nodes read only these; true simulated time stays hidden.

use serde::{Deserialize, Serialize};

const PPM: u128 = 1_000_000;

/// The largest drift a clock may be configured with: 10 %.
pub const DRIFT_PPM_LIMIT: i32 = 100_000;

/// How one node's clocks relate to true simulated time.
///
/// `drift_ppm` is the rate error: one local nanosecond takes
/// `1 + drift_ppm / 1e6` true nanoseconds. A positive drift is a slow clock,
/// so a timer of 10 s on a +50 ppm clock fires 500 µs late in true time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClockConfig {
    /// Rate error in parts per million, within ±[`DRIFT_PPM_LIMIT`].
    pub drift_ppm: i32,
    /// The monotonic clock's reading at true time zero.
    pub mono_offset_ns: u64,
    /// The wall clock's reading at true time zero.
    pub wall_offset_ns: u64,
}

/// A node's clock state during a run.
#[derive(Clone, Debug)]
pub(crate) struct NodeClock {
    config: ClockConfig,
    /// Sum of all wall-clock jumps applied so far.
    wall_jump_ns: i64,
    /// After a reboot: the monotonic reading the new boot started from, and
    /// the local time elapsed at that moment.
    mono_restart: Option<(u64, u64)>,
}

impl NodeClock {
    pub(crate) fn new(config: ClockConfig) -> Self {
        assert!(config.drift_ppm.abs() <= DRIFT_PPM_LIMIT);
        Self {
            config,
            wall_jump_ns: 0,
            mono_restart: None,
        }
    }

    fn rate_parts(&self) -> u128 {
        (PPM as i128 + i128::from(self.config.drift_ppm)) as u128
    }

    /// Local nanoseconds elapsed after `true_ns` true nanoseconds.
    pub(crate) fn local_elapsed_ns(&self, true_ns: u64) -> u64 {
        if self.config.drift_ppm == 0 {
            return true_ns; // no drift: no division at all
        }
        // The same quotient in 64 bits while the product fits (the first
        // five simulated hours), which is most of the cost of every
        // handler's frozen clock readings; 128 bits beyond.
        let rate = self.rate_parts() as u64;
        match true_ns.checked_mul(PPM as u64) {
            Some(scaled) => scaled / rate,
            None => (u128::from(true_ns) * PPM / u128::from(rate)) as u64,
        }
    }

    /// True nanoseconds needed for `local_ns` local nanoseconds to pass,
    /// rounded up so a timer never fires before its local deadline.
    pub(crate) fn true_duration_ns(&self, local_ns: u64) -> u64 {
        let scaled = u128::from(local_ns) * self.rate_parts();
        scaled.div_ceil(PPM).min(u128::from(u64::MAX)) as u64
    }

    #[cfg(test)]
    pub(crate) fn mono_ns(&self, true_ns: u64) -> u64 {
        self.mono_from_elapsed_ns(self.local_elapsed_ns(true_ns))
    }

    /// Both readings at once, for a handler's frozen inputs: one division.
    #[inline]
    pub(crate) fn readings_ns(&self, true_ns: u64) -> (u64, u64) {
        let elapsed_ns = self.local_elapsed_ns(true_ns);
        (
            self.mono_from_elapsed_ns(elapsed_ns),
            self.wall_from_elapsed_ns(elapsed_ns),
        )
    }

    #[inline]
    fn mono_from_elapsed_ns(&self, elapsed_ns: u64) -> u64 {
        match self.mono_restart {
            None => self.config.mono_offset_ns.saturating_add(elapsed_ns),
            Some((origin_ns, elapsed_at_restart_ns)) => {
                origin_ns.saturating_add(elapsed_ns.saturating_sub(elapsed_at_restart_ns))
            }
        }
    }

    /// A reboot: from `true_ns` on, the monotonic clock reads `origin_ns`
    /// and counts up from there at the same rate. The wall clock goes on.
    pub(crate) fn restart_mono(&mut self, true_ns: u64, origin_ns: u64) {
        self.mono_restart = Some((origin_ns, self.local_elapsed_ns(true_ns)));
    }

    #[cfg(test)]
    pub(crate) fn wall_ns(&self, true_ns: u64) -> u64 {
        self.wall_from_elapsed_ns(self.local_elapsed_ns(true_ns))
    }

    #[inline]
    fn wall_from_elapsed_ns(&self, elapsed_ns: u64) -> u64 {
        let base = self.config.wall_offset_ns.saturating_add(elapsed_ns);
        base.saturating_add_signed(self.wall_jump_ns)
    }

    pub(crate) fn jump_wall(&mut self, delta_ns: i64) {
        self.wall_jump_ns = self.wall_jump_ns.saturating_add(delta_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(drift_ppm: i32) -> NodeClock {
        NodeClock::new(ClockConfig {
            drift_ppm,
            ..ClockConfig::default()
        })
    }

    #[test]
    fn the_64_bit_path_and_the_128_bit_path_agree() {
        for drift in [-100_000, -7, 3, 99_999] {
            let c = clock(drift);
            let wide = |true_ns: u64| (u128::from(true_ns) * PPM / c.rate_parts()) as u64;
            for true_ns in [
                1,
                999_999_937,
                3_600_000_000_000,
                18_446_744_073_709,
                u64::MAX / 3,
            ] {
                assert_eq!(
                    c.local_elapsed_ns(true_ns),
                    wide(true_ns),
                    "drift {drift} at {true_ns}"
                );
            }
        }
    }

    #[test]
    fn a_slow_clock_needs_more_true_time() {
        let slow = clock(50);
        assert_eq!(slow.true_duration_ns(10_000_000_000), 10_000_500_000);
        let fast = clock(-50);
        assert_eq!(fast.true_duration_ns(10_000_000_000), 9_999_500_000);
    }

    #[test]
    fn local_time_never_reaches_the_deadline_early() {
        for drift in [-100_000, -7, 0, 3, 99_999] {
            let c = clock(drift);
            for local in [1, 999, 1_000_001, 10_000_000_007] {
                let true_ns = c.true_duration_ns(local);
                assert!(
                    c.local_elapsed_ns(true_ns) >= local,
                    "drift {drift} local {local}"
                );
                assert!(
                    c.local_elapsed_ns(true_ns - 1) < local,
                    "drift {drift} local {local}"
                );
            }
        }
    }

    #[test]
    fn a_reboot_restarts_mono_from_its_origin_and_keeps_wall() {
        let mut c = clock(1_000);
        let wall = c.wall_ns(5_000_000_000);
        c.restart_mono(5_000_000_000, 42);
        assert_eq!(c.mono_ns(5_000_000_000), 42);
        assert_eq!(c.wall_ns(5_000_000_000), wall);
        // The drifting rate stays: 1.001 true seconds make one local second.
        assert_eq!(c.mono_ns(5_000_000_000 + 1_001_000_000), 42 + 1_000_000_000);
    }

    #[test]
    fn readings_agree_with_each_clock_alone() {
        for drift in [-3_000, 0, 77] {
            let mut c = clock(drift);
            c.jump_wall(-1_234);
            for true_ns in [0, 1, 999_999_937, 86_400_000_000_000] {
                assert_eq!(
                    c.readings_ns(true_ns),
                    (c.mono_ns(true_ns), c.wall_ns(true_ns))
                );
            }
        }
    }

    #[test]
    fn a_jump_moves_wall_but_not_mono() {
        let mut c = clock(0);
        let (mono, wall) = (c.mono_ns(1_000), c.wall_ns(1_000));
        c.jump_wall(-500);
        assert_eq!(c.mono_ns(1_000), mono);
        assert_eq!(c.wall_ns(1_000), wall - 500);
    }
}
