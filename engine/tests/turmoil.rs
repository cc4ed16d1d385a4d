//! The control plane on turmoil: the same scenarios and checkers.

use dst::scenario::Scenario;
use dst::world::RunOptions;

fn run(name: &str, seed: u64) -> dst::world::RunResult {
    let scenario = Scenario::load(name).expect("scenario loads");
    let options = RunOptions {
        seed,
        ..RunOptions::default()
    };
    engine::turmoil::run_scenario(&scenario, &options).expect("runs")
}

#[test]
fn baseline_passes_on_turmoil_with_the_same_hash_twice() {
    let first = run("baseline", 1);
    eprintln!(
        "{:?} events {} records {} hash {:x} violations {:?}",
        first.stop,
        first.stats.events,
        first.stats.events_recorded,
        first.trace_hash,
        first
            .check
            .first_violation()
            .map(|v| (&v.property, &v.message))
    );
    assert!(first.check.first_violation().is_none());
    let again = run("baseline", 1);
    assert_eq!(first.trace_hash, again.trace_hash);
}

#[test]
#[ignore = "a survey: prints every scenario's verdict for a few seeds"]
fn survey() {
    let seeds: u64 = std::env::var("SEEDS").map_or(2, |s| s.parse().unwrap());
    for name in dst::scenario::list_scenarios() {
        for seed in 0..seeds {
            let r = run(&name, seed);
            eprintln!(
                "{name:20} {seed:3} {:?} {:>6} events  {:?}",
                r.stop,
                r.stats.events,
                r.check.first_violation().map(|v| (&v.property, &v.message))
            );
        }
    }
}
