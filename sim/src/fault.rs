//! Drawing fault schedules from a seed. The fault type itself is the
//! contract's ([`node::fault`]), shared with every other host.

use serde::{Deserialize, Serialize};

use crate::NodeId;
use crate::rng::SimRng;
use node::Random;
pub use node::fault::{Fault, ScheduledFault, all_healed_at_ns};

/// How many faults of one kind to draw and how long each lasts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultRate {
    /// Number of faults of this kind, uniform in `count_min..=count_max`.
    pub count_min: u32,
    /// See `count_min`.
    pub count_max: u32,
    /// Duration (or, for clock jumps, the magnitude), uniform in
    /// `duration_min_ns..=duration_max_ns`.
    pub duration_min_ns: u64,
    /// See `duration_min_ns`.
    pub duration_max_ns: u64,
}

/// The knobs from which a fault schedule is drawn.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultKnobs {
    /// Faults start uniformly in `window_start_ns..window_end_ns`.
    pub window_start_ns: u64,
    /// See `window_start_ns`.
    pub window_end_ns: u64,
    /// Symmetric partitions between a random subset and the rest.
    pub partition: FaultRate,
    /// One-way partitions.
    pub partition_one_way: FaultRate,
    /// Link clogs.
    pub clog: FaultRate,
    /// Crashes followed by a restart after the drawn duration.
    pub crash: FaultRate,
    /// Process pauses.
    pub pause: FaultRate,
    /// Wall-clock jumps, forwards or backwards by the drawn magnitude.
    pub clock_jump: FaultRate,
    /// Machine reboots (of the crash targets), back after the drawn
    /// duration on a new boot with a restarted monotonic clock.
    pub reboot: FaultRate,
}

/// Which nodes each kind of fault may hit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FaultTargets {
    /// Nodes that partitions and clogs split.
    pub network: Vec<NodeId>,
    /// Nodes that may crash.
    pub crash: Vec<NodeId>,
    /// Nodes that may pause.
    pub pause: Vec<NodeId>,
    /// Nodes whose wall clocks may jump.
    pub clock: Vec<NodeId>,
}

impl FaultKnobs {
    /// Checks the ranges; the error names the field and what is allowed.
    pub fn validate(&self) -> Result<(), String> {
        if self.window_start_ns > self.window_end_ns {
            return Err(format!(
                "window_start_ns ({}) must be at most window_end_ns ({})",
                self.window_start_ns, self.window_end_ns
            ));
        }
        for (name, rate) in self.rates() {
            if rate.count_min > rate.count_max {
                return Err(format!("{name}.count_min must be at most {name}.count_max"));
            }
            if rate.duration_min_ns > rate.duration_max_ns {
                return Err(format!(
                    "{name}.duration_min_ns must be at most {name}.duration_max_ns"
                ));
            }
            if rate.count_max > 10_000 {
                return Err(format!("{name}.count_max must be at most 10000"));
            }
        }
        Ok(())
    }

    fn rates(&self) -> [(&'static str, &FaultRate); 7] {
        [
            ("partition", &self.partition),
            ("partition_one_way", &self.partition_one_way),
            ("clog", &self.clog),
            ("crash", &self.crash),
            ("pause", &self.pause),
            ("clock_jump", &self.clock_jump),
            // Last, so adding it shifted no earlier kind's stream.
            ("reboot", &self.reboot),
        ]
    }

    /// Swarm testing: keep each fault kind with probability one half, and
    /// draw how many of it (at least one when kept), so different seeds
    /// explore different fault mixes instead of the same dense average.
    /// Kinds with `count_max == 0` stay off.
    pub fn swarm(&self, rng: &mut SimRng) -> FaultKnobs {
        let mut out = self.clone();
        let mut rates = [
            &mut out.partition,
            &mut out.partition_one_way,
            &mut out.clog,
            &mut out.crash,
            &mut out.pause,
            &mut out.clock_jump,
        ];
        // Draw every value first, so the stream is the same whatever is on.
        let mut drawn = [(false, 0u32); 6];
        for (slot, rate) in drawn.iter_mut().zip(rates.iter()) {
            let low = u64::from(rate.count_min.max(1));
            let count = rng.range_inclusive(low, u64::from(rate.count_max).max(low)) as u32;
            *slot = (rng.chance_ppm(500_000) && rate.count_max > 0, count);
        }
        // A swarm run with every kind off would be no chaos at all.
        let possible: Vec<usize> = (0..6).filter(|&i| rates[i].count_max > 0).collect();
        let rescue = (!possible.is_empty()).then(|| possible[rng.index(possible.len())]);
        // Reboots came later. They draw after everything above, and only
        // when they may happen at all, because the caller goes on drawing
        // from `rng`: a scenario without reboots sees the very draws it saw
        // before reboots existed.
        let (reboot_on, reboot_count) = if out.reboot.count_max > 0 {
            let low = u64::from(out.reboot.count_min.max(1));
            let count = rng.range_inclusive(low, u64::from(out.reboot.count_max).max(low)) as u32;
            (rng.chance_ppm(500_000), count)
        } else {
            (false, 0)
        };
        if !drawn.iter().any(|&(on, _)| on) && !reboot_on {
            if let Some(index) = rescue {
                drawn[index].0 = true;
            }
        }
        for (rate, (on, count)) in rates.iter_mut().zip(drawn) {
            let count = if on { count } else { 0 };
            rate.count_min = count;
            rate.count_max = count;
        }
        let reboot_on = reboot_on || (rescue.is_none() && out.reboot.count_max > 0);
        let count = if reboot_on { reboot_count } else { 0 };
        out.reboot.count_min = count;
        out.reboot.count_max = count;
        out
    }

    /// Draws a schedule, sorted by start time. Each kind draws from its own
    /// child stream of `rng`'s seed so kinds do not shift one another.
    pub fn generate(&self, root_seed: u64, targets: &FaultTargets) -> Vec<ScheduledFault> {
        let mut faults = Vec::new();
        for (index, (name, rate)) in self.rates().into_iter().enumerate() {
            let mut rng = SimRng::derive(root_seed, crate::Stream::Custom(0x_FA00 + index as u32));
            let count = rng.range_inclusive(u64::from(rate.count_min), u64::from(rate.count_max));
            for _ in 0..count {
                let at_ns =
                    rng.range_inclusive(self.window_start_ns, self.window_end_ns.saturating_sub(1));
                let duration_ns = rng.range_inclusive(rate.duration_min_ns, rate.duration_max_ns);
                if let Some(fault) = draw_fault(name, duration_ns, targets, &mut rng) {
                    faults.push(ScheduledFault { at_ns, fault });
                }
            }
        }
        faults.sort_by_key(|fault| fault.at_ns);
        faults
    }
}

fn draw_fault(
    kind: &str,
    duration_ns: u64,
    targets: &FaultTargets,
    rng: &mut SimRng,
) -> Option<Fault> {
    let pick = |rng: &mut SimRng, nodes: &[NodeId]| -> Option<NodeId> {
        (!nodes.is_empty()).then(|| nodes[rng.index(nodes.len())])
    };
    match kind {
        "partition" | "partition_one_way" => {
            let nodes = &targets.network;
            if nodes.len() < 2 {
                return None;
            }
            // Side A: a non-empty proper subset, at most half the nodes.
            let size = 1 + rng.index(nodes.len() / 2);
            let mut pool = nodes.clone();
            let mut side_a = Vec::with_capacity(size);
            for _ in 0..size {
                side_a.push(pool.swap_remove(rng.index(pool.len())));
            }
            side_a.sort();
            pool.sort();
            Some(Fault::Partition {
                side_a,
                side_b: pool,
                one_way: kind == "partition_one_way",
                duration_ns,
            })
        }
        "clog" => {
            let from = pick(rng, &targets.network)?;
            let others: Vec<NodeId> = targets
                .network
                .iter()
                .copied()
                .filter(|&n| n != from)
                .collect();
            let to = pick(rng, &others)?;
            Some(Fault::Clog {
                from,
                to,
                duration_ns,
            })
        }
        "crash" => Some(Fault::Crash {
            node: pick(rng, &targets.crash)?,
            restart_after_ns: Some(duration_ns),
        }),
        "reboot" => Some(Fault::Reboot {
            node: pick(rng, &targets.crash)?,
            restart_after_ns: duration_ns,
        }),
        "pause" => Some(Fault::Pause {
            node: pick(rng, &targets.pause)?,
            duration_ns,
        }),
        "clock_jump" => {
            let node = pick(rng, &targets.clock)?;
            let magnitude = i64::try_from(duration_ns).unwrap_or(i64::MAX);
            let delta_ns = if rng.chance_ppm(500_000) {
                magnitude
            } else {
                -magnitude
            };
            Some(Fault::ClockJump { node, delta_ns })
        }
        _ => unreachable!("unknown fault kind {kind}"),
    }
}
