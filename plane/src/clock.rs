//! Node time that survives reboots: the last reading a node made durable,
//! plus the monotonic time elapsed since this boot began.
//!
//! The node contract lets the monotonic clock restart anywhere on a new
//! boot, so a raw `mono_ns` reading kept in durable state means nothing
//! after a reboot: a deadline taken before it may lie far in the past or
//! the future of the new clock. A node that keeps times durably (the store's
//! lease expiries, the client's key reuse windows) counts them on a
//! [`BootClock`] instead. On every start the clock resumes one millisecond
//! after the latest reading the node made durable, and counts this boot's
//! monotonic time from there; the origin reading of this boot is volatile.
//!
//! What this clock promises, and what it does not:
//!
//! - It never goes back, across boots too, and every reading of a boot is
//!   strictly later than every durable reading of an earlier boot
//!   ([`BootClock::began_ms`] separates them).
//! - It never runs faster than the node's monotonic clock: time while the
//!   node was down is not counted. So "expires `ttl` after now" on this
//!   clock never expires sooner in true time than on the monotonic clock,
//!   which is what leases need.
//! - It may run *behind* true time after a restart, by the time the node was
//!   down. A node that needs "at least this long has passed since a reading
//!   of an earlier boot" cannot get it from here and must treat such a
//!   reading conservatively (the client never reuses an old key).
//! - On a node's first boot it reads the monotonic clock in whole
//!   milliseconds, exactly as nodes did before they kept a durable clock, so
//!   a node that never restarts keeps the times it always had.

use node::MILLISECOND_NS;

/// One boot's clock: where this boot's monotonic clock was when the node
/// started, and the node's time (ms) at that point. Volatile: rebuilt by
/// [`BootClock::resume`] on every start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BootClock {
    /// The monotonic reading this boot's time is counted from.
    origin_mono_ns: u64,
    /// The node's time at `origin_mono_ns`: the first millisecond of this
    /// boot.
    began_ms: u64,
}

impl BootClock {
    /// Starts this boot's clock at the monotonic reading `mono_ns`.
    /// `last_ms` is the latest time the node made durable, `None` if it never
    /// kept one (its first start).
    pub(crate) fn resume(mono_ns: u64, last_ms: Option<u64>) -> Self {
        let clock = match last_ms {
            // Aligned to the millisecond, so the first boot reads exactly
            // `mono_ns / 1 ms`, as nodes always did.
            None => {
                let began_ms = mono_ns / MILLISECOND_NS;
                BootClock {
                    origin_mono_ns: began_ms * MILLISECOND_NS,
                    began_ms,
                }
            }
            // One past the last durable reading, so no reading of this boot
            // can be mistaken for one of an earlier boot.
            Some(last_ms) => BootClock {
                origin_mono_ns: mono_ns,
                began_ms: last_ms.checked_add(1).expect("node time lasts"),
            },
        };
        debug_assert!(clock.origin_mono_ns <= mono_ns);
        debug_assert!(last_ms.is_none_or(|last_ms| clock.began_ms > last_ms));
        clock
    }

    /// The node's time (ms) at the monotonic reading `mono_ns` of this boot.
    pub(crate) fn now_ms(&self, mono_ns: u64) -> u64 {
        assert!(
            mono_ns >= self.origin_mono_ns,
            "the monotonic clock went back within a boot"
        );
        self.began_ms + (mono_ns - self.origin_mono_ns) / MILLISECOND_NS
    }

    /// The first millisecond of this boot: readings below it were taken by
    /// an earlier boot.
    pub(crate) fn began_ms(&self) -> u64 {
        self.began_ms
    }

    /// A timer delay, from the monotonic reading `mono_ns`, after which this
    /// clock reads at least `at_ms` (zero when it already does). Never
    /// early, so a timer set for an expiry finds it due.
    pub(crate) fn delay_until_ns(&self, mono_ns: u64, at_ms: u64) -> u64 {
        let due_ns = at_ms
            .saturating_sub(self.began_ms)
            .saturating_mul(MILLISECOND_NS)
            .saturating_add(self.origin_mono_ns);
        due_ns.saturating_sub(mono_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = MILLISECOND_NS;

    #[test]
    fn the_first_boot_reads_the_monotonic_clock_in_whole_milliseconds() {
        let clock = BootClock::resume(5_700_000, None);
        assert_eq!(clock.began_ms(), 5);
        assert_eq!(clock.now_ms(5_700_000), 5);
        assert_eq!(clock.now_ms(5_999_999), 5);
        assert_eq!(clock.now_ms(6_000_000), 6);
        assert_eq!(clock.now_ms(1_234 * MS + 1), 1_234);
    }

    #[test]
    fn a_later_boot_resumes_after_the_last_durable_reading_wherever_its_clock_starts() {
        for origin_ns in [0, 3 * MS + 17, 900_000 * MS] {
            let clock = BootClock::resume(origin_ns, Some(40_000));
            assert_eq!(clock.began_ms(), 40_001);
            assert_eq!(clock.now_ms(origin_ns), 40_001);
            assert_eq!(clock.now_ms(origin_ns + 250 * MS), 40_251);
        }
    }

    #[test]
    fn a_timer_delay_makes_the_clock_read_the_wanted_time_never_early() {
        let clock = BootClock::resume(7 * MS + 400_000, Some(100));
        let mono_ns = 9 * MS + 999;
        let now_ms = clock.now_ms(mono_ns);
        for at_ms in [now_ms, now_ms + 1, now_ms + 500] {
            let delay_ns = clock.delay_until_ns(mono_ns, at_ms);
            assert!(clock.now_ms(mono_ns + delay_ns) >= at_ms);
            if delay_ns > 0 {
                assert!(clock.now_ms(mono_ns + delay_ns - 1) < at_ms, "not late");
            }
        }
        assert_eq!(clock.delay_until_ns(mono_ns, now_ms - 1), 0);
    }
}
