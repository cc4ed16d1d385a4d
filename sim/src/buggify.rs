//! BUGGIFY, as FoundationDB has it: nodes mark the code points where a
//! fault matters most ([`node::Context::buggify`]), each seed turns a few of
//! them on (swarm), and an active point fires on some of its hits. When one
//! fires, the simulator acts right there: it delays or drops the sends the
//! handler issues after the point, or crashes or pauses the node just after
//! the handler.
//!
//! Every decision is a hash of (seed, point, node, hit number), drawn from
//! no random stream, so buggify shifts no other draw; with it disabled the
//! simulator does exactly what it did before buggify existed.

use serde::{Deserialize, Serialize};

use node::{NodeId, mix64, stable_hash};

/// What a fired point does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuggifyAction {
    /// Hold the handler's sends after the point for a drawn extra latency.
    Delay,
    /// Drop the handler's sends after the point.
    Drop,
    /// Crash the node right after the handler (1 ns later), restart it
    /// after a drawn downtime. Durable state is already persisted.
    Crash,
    /// Pause the node right after the handler (1 ns later) for a drawn time.
    Pause,
}

impl BuggifyAction {
    /// Its name in reports and scenario files.
    pub fn name(self) -> &'static str {
        match self {
            BuggifyAction::Delay => "delay",
            BuggifyAction::Drop => "drop",
            BuggifyAction::Crash => "crash",
            BuggifyAction::Pause => "pause",
        }
    }
}

/// A run's BUGGIFY settings. The default is off.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BuggifyConfig {
    /// Off: points are ignored, nothing is counted.
    pub enabled: bool,
    /// Swarm: each point is active for a seed with this probability
    /// (parts per million), decided by a hash of (seed, point name), since
    /// the set of points is only known as they are hit.
    pub active_ppm: u32,
    /// An active point fires on a hit with this probability (FoundationDB
    /// uses 25 %).
    pub fire_ppm: u32,
    /// The actions a firing picks from (uniformly, by hash). Empty: none.
    pub actions: Vec<BuggifyAction>,
    /// Most crashes and pauses fired in one run (delays and drops are not
    /// counted); further crash or pause decisions do not fire.
    pub max_faults: u32,
    /// Extra latency of delayed sends, uniform in `delay_min_ns..=delay_max_ns`.
    pub delay_min_ns: u64,
    /// See `delay_min_ns`.
    pub delay_max_ns: u64,
    /// Pause length, uniform in `pause_min_ns..=pause_max_ns`.
    pub pause_min_ns: u64,
    /// See `pause_min_ns`.
    pub pause_max_ns: u64,
    /// Downtime after a crash, uniform in `downtime_min_ns..=downtime_max_ns`.
    pub downtime_min_ns: u64,
    /// See `downtime_min_ns`.
    pub downtime_max_ns: u64,
    /// Points fire only before this true time (the end of the fault
    /// window): the liveness phase stays calm.
    pub until_ns: u64,
    /// Whether fired crashes and pauses are injected as faults. A run given
    /// its fault list (replay, shrinking) already holds the ones an earlier
    /// run injected, as ordinary faults 1 ns after their handler; it turns
    /// this off and decides everything else the same way, so the replay is
    /// the same run and shrinking can remove those faults like any other.
    pub inject_faults: bool,
}

/// How one point fared in a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BuggifyPointStats {
    /// Whether the seed turned the point on.
    pub active: bool,
    /// How many times nodes reached it.
    pub hits: u64,
    /// How many of those hits fired.
    pub fired: u64,
}

/// What a fired point asks of the simulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Firing {
    Delay(u64),
    Drop,
    Crash(u64),
    Pause(u64),
}

const SALT_ACTIVE: u64 = 0xB0_66_1F_00_AC_71_7E_00;
const SALT_FIRE: u64 = 0xB0_66_1F_00_F1_2E_00_00;

impl BuggifyConfig {
    /// Whether `point` is on for `seed`.
    pub fn is_active(&self, seed: u64, point: &str) -> bool {
        self.is_active_hashed(seed, stable_hash(point))
    }

    /// [`is_active`](Self::is_active), given the stable hash of the
    /// point's name (the simulator works it out once per point and run).
    pub(crate) fn is_active_hashed(&self, seed: u64, point_hash: u64) -> bool {
        self.enabled
            && mix64(mix64(seed ^ SALT_ACTIVE) ^ point_hash) % 1_000_000
                < u64::from(self.active_ppm)
    }

    /// What hit number `hit` (from 0) of `point` on `node` does, if it
    /// fires (the simulator calls [`decide_hashed`](Self::decide_hashed)).
    #[cfg(test)]
    pub(crate) fn decide(
        &self,
        seed: u64,
        point: &str,
        node: NodeId,
        hit: u64,
        now_ns: u64,
    ) -> Option<Firing> {
        let point_hash = stable_hash(point);
        let active = self.is_active_hashed(seed, point_hash);
        self.decide_hashed(seed, point_hash, active, node, hit, now_ns)
    }

    /// [`decide`](Self::decide), given the stable hash of the point's name
    /// and whether the point is active for `seed`.
    pub(crate) fn decide_hashed(
        &self,
        seed: u64,
        point_hash: u64,
        active: bool,
        node: NodeId,
        hit: u64,
        now_ns: u64,
    ) -> Option<Firing> {
        if now_ns >= self.until_ns || self.actions.is_empty() || !active {
            return None;
        }
        let draw =
            mix64(mix64(mix64(seed ^ SALT_FIRE) ^ point_hash) ^ (u64::from(node.0) << 40) ^ hit);
        if draw % 1_000_000 >= u64::from(self.fire_ppm) {
            return None;
        }
        let action = self.actions[(mix64(draw ^ 1) % self.actions.len() as u64) as usize];
        let within = |min: u64, max: u64| {
            let max = max.max(min);
            min + mix64(draw ^ 2) % (max - min).saturating_add(1).max(1)
        };
        Some(match action {
            BuggifyAction::Delay => Firing::Delay(within(self.delay_min_ns, self.delay_max_ns)),
            BuggifyAction::Drop => Firing::Drop,
            BuggifyAction::Crash => {
                Firing::Crash(within(self.downtime_min_ns, self.downtime_max_ns))
            }
            BuggifyAction::Pause => Firing::Pause(within(self.pause_min_ns, self.pause_max_ns)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BuggifyConfig {
        BuggifyConfig {
            enabled: true,
            active_ppm: 500_000,
            fire_ppm: 250_000,
            actions: vec![BuggifyAction::Delay, BuggifyAction::Crash],
            delay_min_ns: 10,
            delay_max_ns: 20,
            downtime_min_ns: 100,
            downtime_max_ns: 100,
            until_ns: u64::MAX,
            max_faults: 10,
            ..BuggifyConfig::default()
        }
    }

    #[test]
    fn activation_is_per_seed_and_point_and_off_when_disabled() {
        let config = config();
        let active: Vec<bool> = (0..64).map(|seed| config.is_active(seed, "a.b")).collect();
        assert!(active.iter().any(|&a| a) && active.iter().any(|&a| !a));
        let off = BuggifyConfig {
            enabled: false,
            ..config
        };
        assert!((0..64).all(|seed| !off.is_active(seed, "a.b")));
    }

    #[test]
    fn firings_are_a_function_of_their_inputs_and_stay_in_range() {
        let config = config();
        let seed = (0..64)
            .find(|&seed| config.is_active(seed, "a.b"))
            .expect("one active");
        let fired: Vec<Option<Firing>> = (0..400)
            .map(|hit| config.decide(seed, "a.b", NodeId(3), hit, 0))
            .collect();
        let again: Vec<Option<Firing>> = (0..400)
            .map(|hit| config.decide(seed, "a.b", NodeId(3), hit, 0))
            .collect();
        assert_eq!(fired, again);
        let count = fired.iter().flatten().count();
        assert!((50..150).contains(&count), "about a quarter fire: {count}");
        for firing in fired.iter().flatten() {
            match *firing {
                Firing::Delay(ns) => assert!((10..=20).contains(&ns)),
                Firing::Crash(ns) => assert_eq!(ns, 100),
                other => panic!("not an allowed action: {other:?}"),
            }
        }
        // Past the window nothing fires.
        assert!((0..400).all(|hit| {
            config
                .decide(seed, "a.b", NodeId(3), hit, u64::MAX)
                .is_none()
        }));
    }
}
