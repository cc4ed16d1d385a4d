//! Crashes and restarts replayed from a run's applied faults exactly as
//! the simulator and the engines apply them, for every reader that must
//! know when a node was down.
//!
//! A crash (or reboot) of a node that is up takes it down; one of a node
//! already down does nothing itself, but its heal is still queued. The
//! heal of any crash restarts the node if it is down then: a node comes
//! back at the first heal to come, whichever crash it belongs to.

use std::collections::BTreeSet;

use sim::{NodeId, ScheduledFault};

/// One step of the replay, in time order.
pub(crate) enum Step<'a> {
    /// A fault as applied.
    Applied(&'a ScheduledFault),
    /// A crash's or reboot's heal: the node restarts if it is down.
    Heal(NodeId),
}

/// The applied faults and every crash's and reboot's heal, in time order.
/// At one instant the heals come first (a node is back at its heal time),
/// and the faults keep their applied order.
pub(crate) fn steps(faults: &[ScheduledFault]) -> Vec<(u64, Step<'_>)> {
    let mut steps: Vec<(u64, u8, usize, Step<'_>)> = Vec::new();
    for (index, fault) in faults.iter().enumerate() {
        steps.push((fault.at_ns, 1, index, Step::Applied(fault)));
        if let Some((node, _)) = fault.fault.takes_down()
            && let Some(heal_ns) = fault.healed_at_ns()
        {
            steps.push((heal_ns, 0, index, Step::Heal(node)));
        }
    }
    steps.sort_by_key(|&(at_ns, heal_first, index, _)| (at_ns, heal_first, index));
    steps
        .into_iter()
        .map(|(at_ns, _, _, step)| (at_ns, step))
        .collect()
}

/// Which nodes are down, as the steps are replayed.
#[derive(Default)]
pub(crate) struct Down(BTreeSet<NodeId>);

impl Down {
    /// Applies a crash or reboot of `node`: true if it took the node down.
    pub(crate) fn crash(&mut self, node: NodeId) -> bool {
        self.0.insert(node)
    }

    /// Applies a crash's heal: true if it restarted the node.
    pub(crate) fn heal(&mut self, node: NodeId) -> bool {
        self.0.remove(&node)
    }

    pub(crate) fn is_down(&self, node: NodeId) -> bool {
        self.0.contains(&node)
    }
}

/// Per node (by index, for `nodes` nodes), when it came back from each
/// crash or reboot, in time order.
pub(crate) fn restart_times(faults: &[ScheduledFault], nodes: usize) -> Vec<Vec<u64>> {
    let mut down = Down::default();
    let mut restarts: Vec<Vec<u64>> = vec![Vec::new(); nodes];
    for (at_ns, step) in steps(faults) {
        match step {
            Step::Applied(fault) => {
                if let Some((node, _)) = fault.fault.takes_down() {
                    down.crash(node);
                }
            }
            Step::Heal(node) => {
                if down.heal(node)
                    && let Some(times) = restarts.get_mut(node.index())
                {
                    times.push(at_ns);
                }
            }
        }
    }
    restarts
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::Fault;

    fn crash(node: u32, at_ns: u64, restart_after_ns: u64) -> ScheduledFault {
        ScheduledFault {
            at_ns,
            fault: Fault::Crash {
                node: NodeId(node),
                restart_after_ns: Some(restart_after_ns),
            },
        }
    }

    /// Node 4's restarts, replayed.
    fn restarts(faults: &[ScheduledFault]) -> Vec<u64> {
        restart_times(faults, 5).swap_remove(4)
    }

    #[test]
    fn a_node_comes_back_at_the_first_heal_of_any_crash_that_found_it() {
        // A long crash, then a short one while down: back at the short
        // one's heal, and the long one's heal later finds it up.
        assert_eq!(restarts(&[crash(4, 10, 300), crash(4, 20, 50)]), vec![70]);
        // The same two at one instant, in either order.
        assert_eq!(restarts(&[crash(4, 10, 300), crash(4, 10, 60)]), vec![70]);
        assert_eq!(restarts(&[crash(4, 10, 60), crash(4, 10, 300)]), vec![70]);
        // A heal of an earlier crash restarts a node a later crash took
        // down again.
        assert_eq!(
            restarts(&[crash(4, 10, 100), crash(4, 20, 10), crash(4, 50, 500)]),
            vec![30, 110]
        );
    }
}
