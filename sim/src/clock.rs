//! Per-node clocks: a monotonic clock with rate drift, and a wall clock that
//! also jumps. Nodes read only these; true simulated time stays hidden.
//!
//! A clock is piecewise linear in true time: it runs at its configured rate
//! until a drift fault changes the rate, and each change starts a new piece
//! where the last one ended, so no reading ever jumps at a change and the
//! monotonic clock never goes back. Time gained or lost while a drift fault
//! lasts stays gained or lost after it heals.

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

/// A node's clock state during a run: the clock layer every engine shares
/// (the simulator, and the turmoil and madsim engines, which have no clock
/// drift of their own).
#[derive(Clone, Debug)]
pub struct NodeClock {
    config: ClockConfig,
    /// The rate error in force: the configured one, or a drift fault's.
    drift_ppm: i32,
    /// Where the piece at the current rate starts: the true time and the
    /// local time elapsed then. Both zero until a drift fault changes the
    /// rate, so a run without one computes exactly what it always did.
    piece_true_ns: u64,
    piece_elapsed_ns: u64,
    /// Whether the rate ever changed in this run: a timer set before a
    /// change is checked against the node's clock when it fires.
    rate_changed: bool,
    /// Sum of all wall-clock jumps applied so far.
    wall_jump_ns: i64,
    /// After a reboot: the monotonic reading the new boot started from, and
    /// the local time elapsed at that moment.
    mono_restart: Option<(u64, u64)>,
}

impl NodeClock {
    /// A clock as `config` sets it, at true time zero.
    ///
    /// # Panics
    /// If the drift is beyond ±[`DRIFT_PPM_LIMIT`].
    pub fn new(config: ClockConfig) -> Self {
        assert!(config.drift_ppm.abs() <= DRIFT_PPM_LIMIT);
        Self {
            config,
            drift_ppm: config.drift_ppm,
            piece_true_ns: 0,
            piece_elapsed_ns: 0,
            rate_changed: false,
            wall_jump_ns: 0,
            mono_restart: None,
        }
    }

    fn rate_parts(&self) -> u128 {
        (PPM as i128 + i128::from(self.drift_ppm)) as u128
    }

    /// Local nanoseconds elapsed after `true_ns` true nanoseconds (never
    /// asked about a moment before the current rate took over).
    #[inline]
    pub fn local_elapsed_ns(&self, true_ns: u64) -> u64 {
        debug_assert!(true_ns >= self.piece_true_ns, "clocks are read forwards");
        let since_ns = true_ns.saturating_sub(self.piece_true_ns);
        let local_ns = if self.drift_ppm == 0 {
            since_ns // no drift: no division at all
        } else {
            // The same quotient in 64 bits while the product fits (the
            // first five simulated hours), which is most of the cost of
            // every handler's frozen clock readings; 128 bits beyond.
            let rate = self.rate_parts() as u64;
            match since_ns.checked_mul(PPM as u64) {
                Some(scaled) => scaled / rate,
                None => (u128::from(since_ns) * PPM / u128::from(rate)) as u64,
            }
        };
        self.piece_elapsed_ns.saturating_add(local_ns)
    }

    /// From `true_ns` on, run at a rate error of `drift_ppm`. The new rate
    /// starts from the reading at `true_ns`, so the clock is continuous and
    /// time gained or lost so far is kept.
    ///
    /// # Panics
    /// If `drift_ppm` is beyond ±[`DRIFT_PPM_LIMIT`].
    pub fn set_drift(&mut self, true_ns: u64, drift_ppm: i32) {
        assert!(
            drift_ppm.abs() <= DRIFT_PPM_LIMIT,
            "drift_ppm {drift_ppm} is beyond ±{DRIFT_PPM_LIMIT}"
        );
        if drift_ppm == self.drift_ppm {
            return; // same rate: a new piece would only add rounding
        }
        let elapsed_ns = self.local_elapsed_ns(true_ns);
        self.piece_true_ns = true_ns;
        self.piece_elapsed_ns = elapsed_ns;
        self.drift_ppm = drift_ppm;
        self.rate_changed = true;
        debug_assert_eq!(self.local_elapsed_ns(true_ns), elapsed_ns, "no jump");
    }

    /// The rate error the node was configured with (what a healed drift
    /// fault returns to).
    pub fn configured_drift_ppm(&self) -> i32 {
        self.config.drift_ppm
    }

    /// Whether the rate ever changed in this run.
    #[inline]
    pub fn rate_changed(&self) -> bool {
        self.rate_changed
    }

    /// True nanoseconds needed for `local_ns` local nanoseconds to pass at
    /// the current rate, rounded up so a timer never fires before its local
    /// deadline while the rate holds.
    pub fn true_duration_ns(&self, local_ns: u64) -> u64 {
        if self.drift_ppm == 0 {
            return local_ns; // the rate is exactly 1
        }
        let rate = self.rate_parts();
        // In 64 bits while the product fits (any delay under four hours):
        // a 128-bit division is a library call, on every timer set.
        match local_ns.checked_mul(rate as u64) {
            Some(scaled) => scaled.div_ceil(PPM as u64),
            None => (u128::from(local_ns) * rate)
                .div_ceil(PPM)
                .min(u128::from(u64::MAX)) as u64,
        }
    }

    #[cfg(test)]
    pub(crate) fn mono_ns(&self, true_ns: u64) -> u64 {
        self.mono_from_elapsed_ns(self.local_elapsed_ns(true_ns))
    }

    /// Both readings at once, for a handler's frozen inputs, after the
    /// local time elapsed they derive from: one division.
    #[inline]
    pub fn readings_ns(&self, true_ns: u64) -> (u64, u64, u64) {
        let elapsed_ns = self.local_elapsed_ns(true_ns);
        (
            elapsed_ns,
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
    pub fn restart_mono(&mut self, true_ns: u64, origin_ns: u64) {
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

    /// Moves the wall clock by `delta_ns` (either way); monotonic time is
    /// untouched.
    pub fn jump_wall(&mut self, delta_ns: i64) {
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
    fn a_true_duration_is_the_same_in_64_and_128_bits() {
        for drift in [-100_000, -7, 0, 3, 99_999] {
            let c = clock(drift);
            let wide = |local_ns: u64| {
                (u128::from(local_ns) * c.rate_parts())
                    .div_ceil(PPM)
                    .min(u128::from(u64::MAX)) as u64
            };
            for local_ns in [
                0,
                1,
                999_999,
                1_000_001,
                3_600_000_000_000,
                16_769_000_000_000,
                u64::MAX / 1_100_000,
                u64::MAX / 1_100_000 + 1,
                u64::MAX / 3,
                u64::MAX,
            ] {
                assert_eq!(
                    c.true_duration_ns(local_ns),
                    wide(local_ns),
                    "drift {drift} local {local_ns}"
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
                    (
                        c.local_elapsed_ns(true_ns),
                        c.mono_ns(true_ns),
                        c.wall_ns(true_ns)
                    )
                );
            }
        }
    }

    #[test]
    fn a_drift_change_is_continuous_and_runs_at_the_new_rate() {
        let mut c = clock(0);
        c.jump_wall(7);
        let at_ns = 3_000_000_001;
        let before = (c.mono_ns(at_ns), c.wall_ns(at_ns));
        c.set_drift(at_ns, 100_000);
        assert_eq!((c.mono_ns(at_ns), c.wall_ns(at_ns)), before, "no jump");
        // 1.1 true seconds make one local second from here on.
        assert_eq!(c.mono_ns(at_ns + 1_100_000_000), before.0 + 1_000_000_000);
        assert_eq!(c.true_duration_ns(1_000_000_000), 1_100_000_000);
        // Back to the configured rate: the lost 0.1 s stays lost.
        let heal_ns = at_ns + 1_100_000_000;
        c.set_drift(heal_ns, c.configured_drift_ppm());
        assert_eq!(c.mono_ns(heal_ns + 5), before.0 + 1_000_000_005);
        assert!(c.rate_changed());
    }

    #[test]
    fn monotonic_never_goes_back_across_rate_changes() {
        let mut c = clock(-3);
        let mut last = 0;
        let mut true_ns = 0;
        for (step, drift) in [(1, 99_999), (999_999_937, -100_000), (7, 5), (3, 0)]
            .into_iter()
            .cycle()
            .take(40)
        {
            for _ in 0..5 {
                true_ns += step;
                let mono = c.mono_ns(true_ns);
                assert!(mono >= last, "at {true_ns}: {mono} < {last}");
                last = mono;
            }
            c.set_drift(true_ns, drift);
            assert_eq!(c.mono_ns(true_ns), last, "continuous at {true_ns}");
        }
    }

    #[test]
    fn a_reboot_during_a_drift_keeps_the_drifting_rate() {
        let mut c = clock(0);
        c.set_drift(1_000, -50_000);
        c.restart_mono(2_000_000_000, 42);
        assert_eq!(c.mono_ns(2_000_000_000), 42);
        assert_eq!(c.mono_ns(2_000_000_000 + 950_000_000), 42 + 1_000_000_000);
    }

    #[test]
    #[should_panic(expected = "beyond")]
    fn a_drift_beyond_the_limit_is_refused() {
        clock(0).set_drift(0, DRIFT_PPM_LIMIT + 1);
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
