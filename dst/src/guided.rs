//! Coverage-guided sweeps: seeds that reach rare `sometimes` paths and
//! BUGGIFY points are kept, with the fault lists they ran, in a corpus, and
//! later runs mutate those lists instead of drawing new ones from the seed.
//!
//! Run `i` always uses seed `i` (network, clocks, workload, buggify). The
//! first quarter of the budget (at least [`WARMUP_MIN`] runs) draws its
//! faults from the seed exactly as a plain sweep does; after that, three
//! runs in four take a corpus entry (weighted towards entries holding
//! coverage few runs reached) and mutate its fault list, the fourth draws
//! from the seed again. A run's coverage is the set of (sometimes path,
//! count bucket) and (fired BUGGIFY point, fire-count bucket) pairs,
//! bucketed AFL-style (1, 2, 3, 4-7, 8-15, ...); a run that adds a pair
//! no earlier run had joins the corpus.
//!
//! Deterministic whatever the number of jobs: runs go in batches of
//! [`BATCH`], each batch planned from the corpus as it stood before it,
//! with draws from one stream derived from the seed range; results are
//! taken in seed order. No hash containers, no wall clock in any decision.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use node::Random;
use serde::Serialize;
use sim::{Fault, ScheduledFault, SimRng, Stream};

use crate::artifact::Artifact;
use crate::engine::EngineRunner;
use crate::error::Error;
use crate::layout::layout;
use crate::scenario::Scenario;
use crate::sweep::{
    Outcome, Progress, ProgressSink, SeedResult, Stopwatch, Summary, SweepOptions, artifact_name,
    capture_panics, prepare, results_path, run_with, summarize,
};
use crate::world::{RunOptions, planned_faults};

/// Runs planned together, from the corpus as it stood before them.
pub const BATCH: u64 = 16;
/// The fewest runs that draw their faults from the seed before any
/// mutation.
pub const WARMUP_MIN: u64 = 8;
/// Tries at a valid mutant before a run falls back to the seed's faults.
const TRIES: u32 = 8;

/// What to sweep, guided.
#[derive(Clone, Debug)]
pub struct GuidedOptions {
    /// The scenarios; each has its own corpus.
    pub scenarios: Vec<Scenario>,
    /// The budget: run `i` uses seed `i`.
    pub seeds: Range<u64>,
    /// Worker threads (the results do not depend on it).
    pub jobs: usize,
    /// Where results.jsonl and failures/ go.
    pub out_dir: PathBuf,
    /// Run every seed twice and compare trace hashes.
    pub check_determinism: bool,
    /// Mutate corpus entries. Off, every run draws from its seed: a plain
    /// sweep measured the same way (the `--compare` baseline).
    pub mutate: bool,
    /// The engine every run is made on.
    pub runner: EngineRunner,
    /// Told the counts after each seed, to draw a progress bar (see
    /// [`SweepOptions::progress`]): it cannot change what a seed does.
    pub progress: Option<ProgressSink>,
}

/// A coverage point: `sometimes:<path>` or `buggify:<point>`, and the
/// bucket of its count.
pub type Point = (String, u32);

/// AFL's count buckets: 1, 2, 3, 4-7, 8-15, ... as 1, 2, 3, 4, 5, ...
pub fn bucket(count: u64) -> u32 {
    if count <= 3 {
        count as u32
    } else {
        count.ilog2() + 2
    }
}

/// The coverage of one run's result.
pub fn coverage(result: &SeedResult) -> BTreeSet<Point> {
    let sometimes = result
        .sometimes
        .iter()
        .filter(|(_, count)| **count > 0)
        .map(|(path, &count)| (format!("sometimes:{path}"), bucket(count)));
    let buggify = result
        .buggify
        .iter()
        .filter(|(_, seen)| seen.fired > 0)
        .map(|(point, seen)| (format!("buggify:{point}"), bucket(seen.fired)));
    sometimes.chain(buggify).collect()
}

/// Where a run's faults came from, on its results line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// `seed` (drawn from the seed, as in a plain sweep) or `mutant`.
    pub from: &'static str,
    /// The corpus entry mutated (its index in this scenario's corpus).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<usize>,
    /// The seed whose run made that entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_seed: Option<u64>,
    /// The mutation, e.g. `shift faults[2] by -350 ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mutation: Option<String>,
}

impl Origin {
    fn seed() -> Origin {
        Origin {
            from: "seed",
            parent: None,
            parent_seed: None,
            mutation: None,
        }
    }
}

/// One line of a guided sweep's `results.jsonl`: a plain sweep's line plus
/// where the faults came from and what it added.
#[derive(Clone, Debug, Serialize)]
pub struct GuidedLine {
    /// The seed's result, as in a plain sweep.
    #[serde(flatten)]
    pub result: SeedResult,
    /// Where its faults came from.
    pub origin: Origin,
    /// Coverage points no earlier run of the scenario reached.
    pub new_coverage: u64,
    /// Its index in the corpus, if it joined it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corpus_entry: Option<usize>,
}

/// One corpus entry.
#[derive(Clone, Debug)]
struct Entry {
    seed: u64,
    faults: Vec<ScheduledFault>,
    coverage: BTreeSet<Point>,
}

/// Coverage figures of one scenario's guided (or baseline) sweep.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Reached {
    /// Scenario name.
    pub scenario: String,
    /// Runs made.
    pub runs: u64,
    /// Runs whose faults were a mutant.
    pub mutants: u64,
    /// Distinct sometimes paths reached (count > 0).
    pub sometimes_paths: u64,
    /// Distinct BUGGIFY points that fired.
    pub buggify_points: u64,
    /// Distinct coverage points (path or point, count bucket) reached
    /// after all the runs: the figure to compare.
    pub coverage_points: u64,
    /// `coverage_points * 1000 / runs`: coverage points per thousand seeds.
    pub points_per_thousand_seeds: f64,
    /// Corpus size at the end.
    pub corpus: u64,
    /// Failing runs.
    pub failed: u64,
    /// Distinct coverage points after each [`BATCH`]-multiple of runs
    /// that is a power of two times 64 (64, 128, 256, ...), then the end.
    pub curve: Vec<(u64, u64)>,
}

/// A guided sweep's summary: the plain one, plus coverage per scenario.
#[derive(Clone, Debug, Serialize)]
pub struct GuidedSummary {
    /// What a plain sweep's summary says of these results.
    #[serde(flatten)]
    pub sweep: Summary,
    /// Coverage reached, per scenario.
    pub guided: Vec<Reached>,
}

/// Runs a guided sweep: every line written to OUT/results.jsonl, an
/// artifact per failing run in OUT/failures/. Errors: a bad scenario
/// (before anything is written), or output that could not be written.
pub fn guided_sweep(options: &GuidedOptions) -> Result<(Vec<GuidedLine>, GuidedSummary), Error> {
    capture_panics();
    options.scenarios.iter().try_for_each(Scenario::validate)?;
    prepare(&SweepOptions {
        scenarios: Vec::new(),
        seeds: options.seeds.clone(),
        jobs: options.jobs,
        shard: None,
        out_dir: options.out_dir.clone(),
        resume: false,
        check_determinism: options.check_determinism,
        progress: None,
        fail_fast: false,
        runner: options.runner,
        titles: Vec::new(),
    })?;
    let path = results_path(&options.out_dir);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| Error::io(&path, format!("cannot open: {e}")))?;
    let mut lines = Vec::new();
    let mut reached = Vec::new();
    let budget = options.seeds.end.saturating_sub(options.seeds.start);
    let started = Stopwatch::start();
    let mut tally = Progress {
        done: 0,
        total: budget.saturating_mul(options.scenarios.len() as u64),
        failed: 0,
    };
    for scenario in &options.scenarios {
        let (scenario_lines, figures) = guide_one(scenario, options, &mut file, &path, &mut tally)?;
        lines.extend(scenario_lines);
        reached.push(figures);
    }
    let results: Vec<SeedResult> = lines.iter().map(|line| line.result.clone()).collect();
    let mut sweep = summarize(options.runner.engine, &results);
    started
        .rates(&results, options.check_determinism)
        .apply(&mut sweep);
    sweep.targets = crate::sweep::targets_of(&options.scenarios, &results);
    Ok((
        lines,
        GuidedSummary {
            sweep,
            guided: reached,
        },
    ))
}

/// The PRNG of one scenario's guided sweep: fixed by the seed range and
/// the scenario, nothing else.
fn guide_rng(seeds: &Range<u64>, scenario: &Scenario) -> SimRng {
    let root =
        node::mix64(node::mix64(node::mix64(seeds.start) ^ seeds.end) ^ scenario.config_hash());
    SimRng::derive(root, Stream::Custom(0x6755_1DED))
}

struct Planned {
    options: RunOptions,
    origin: Origin,
}

fn guide_one(
    scenario: &Scenario,
    options: &GuidedOptions,
    file: &mut std::fs::File,
    path: &Path,
    tally: &mut Progress,
) -> Result<(Vec<GuidedLine>, Reached), Error> {
    let seeds = options.seeds.clone();
    let budget = seeds.end.saturating_sub(seeds.start);
    let warmup = (budget / 4).max(WARMUP_MIN);
    let mut rng = guide_rng(&seeds, scenario);
    let mut corpus: Vec<Entry> = Vec::new();
    // How many runs reached each point: rarity, for picking parents.
    let mut hits: BTreeMap<Point, u64> = BTreeMap::new();
    let mut lines = Vec::new();
    let mut figures = Reached {
        scenario: scenario.name.clone(),
        ..Reached::default()
    };
    let mut next_mark = 64;
    let mut start = seeds.start;
    while start < seeds.end {
        // The warm-up ends a batch, so the first mutants see its corpus.
        let warmup_end = seeds.start.saturating_add(warmup);
        let mut end = start.saturating_add(BATCH).min(seeds.end);
        if start < warmup_end {
            end = end.min(warmup_end);
        }
        let plans: Vec<Planned> = (start..end)
            .map(|seed| {
                let index = seed - seeds.start;
                let mutate =
                    options.mutate && index >= warmup && !corpus.is_empty() && rng.below(4) < 3;
                let planned = if mutate {
                    mutant(&mut rng, scenario, &corpus, &hits)
                } else {
                    None
                };
                let (faults, origin) = match planned {
                    Some((faults, origin)) => (Some(faults), origin),
                    None => (None, Origin::seed()),
                };
                let redraw = faults.is_some() && scenario.buggify.enabled;
                Planned {
                    options: RunOptions {
                        seed,
                        faults,
                        keep_trace: false,
                        buggify_redraws_faults: redraw,
                    },
                    origin,
                }
            })
            .collect();
        let done = run_batch(scenario, &plans, options);
        for (plan, (result, artifact)) in plans.into_iter().zip(done) {
            if let Some(artifact) = &artifact {
                let name = artifact_name(&result.scenario, result.seed);
                artifact.write(&options.out_dir.join("failures").join(name))?;
                figures.failed += 1;
                tally.failed += 1;
            }
            let covered = coverage(&result);
            let new: Vec<&Point> = covered.iter().filter(|p| !hits.contains_key(*p)).collect();
            let new_coverage = new.len() as u64;
            for point in &covered {
                *hits.entry(point.clone()).or_default() += 1;
            }
            // A parent holds the list the run was handed (for a
            // seed-drawn run, the seed's plan): mutants, like seed-drawn
            // runs, let BUGGIFY inject its crashes and pauses on top.
            let faults = match &plan.options.faults {
                Some(given) => Some(given.clone()),
                None => planned_faults(scenario, result.seed).ok(),
            };
            let joins = new_coverage > 0
                && faults
                    .as_ref()
                    .is_some_and(|f| scenario.recorded_fault_problems(f).is_ok());
            let corpus_entry = if joins {
                corpus.push(Entry {
                    seed: result.seed,
                    faults: faults.unwrap_or_default(),
                    coverage: covered,
                });
                Some(corpus.len() - 1)
            } else {
                None
            };
            figures.runs += 1;
            figures.mutants += u64::from(plan.origin.from == "mutant");
            let line = GuidedLine {
                result,
                origin: plan.origin,
                new_coverage,
                corpus_entry,
            };
            let text = serde_json::to_string(&line).expect("results serialize");
            writeln!(file, "{text}")
                .and_then(|()| file.flush())
                .map_err(|e| Error::io(path, format!("cannot write: {e}")))?;
            lines.push(line);
            tally.done += 1;
            if let Some(sink) = &options.progress {
                (sink.0)(*tally);
            }
            if figures.runs == next_mark {
                figures.curve.push((figures.runs, hits.len() as u64));
                next_mark *= 2;
            }
        }
        start = end;
    }
    if figures.curve.last().map(|&(runs, _)| runs) != Some(figures.runs) {
        figures.curve.push((figures.runs, hits.len() as u64));
    }
    let names = |prefix: &str| -> u64 {
        hits.keys()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, _)| name)
            .collect::<BTreeSet<_>>()
            .len() as u64
    };
    figures.sometimes_paths = names("sometimes:");
    figures.buggify_points = names("buggify:");
    figures.coverage_points = hits.len() as u64;
    figures.points_per_thousand_seeds = if figures.runs == 0 {
        0.0
    } else {
        figures.coverage_points as f64 * 1000.0 / figures.runs as f64
    };
    figures.corpus = corpus.len() as u64;
    Ok((lines, figures))
}

/// One run's result line and, if it failed, its artifact.
type Done = (SeedResult, Option<Artifact>);

/// Runs a batch across `options.jobs` threads; results in plan order.
fn run_batch(scenario: &Scenario, plans: &[Planned], options: &GuidedOptions) -> Vec<Done> {
    let slots: Vec<Mutex<Option<Done>>> = plans.iter().map(|_| Mutex::new(None)).collect();
    let next = Mutex::new(0_usize);
    std::thread::scope(|threads| {
        for _ in 0..options.jobs.max(1).min(plans.len().max(1)) {
            threads.spawn(|| {
                // Bounded: each round claims a plan or ends.
                loop {
                    let index = {
                        let mut next = next.lock().unwrap_or_else(PoisonError::into_inner);
                        let index = *next;
                        *next += 1;
                        index
                    };
                    let Some(plan) = plans.get(index) else {
                        break;
                    };
                    let done = run_with(
                        options.runner,
                        scenario,
                        &plan.options,
                        options.check_determinism,
                    );
                    *slots[index].lock().unwrap_or_else(PoisonError::into_inner) = Some(done);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .expect("every plan ran")
        })
        .collect()
}

/// Picks a corpus entry, favouring those holding coverage few runs
/// reached: an entry weighs the sum over its points of 1/runs-reaching.
fn pick(rng: &mut SimRng, corpus: &[Entry], hits: &BTreeMap<Point, u64>) -> usize {
    const SCALE: u64 = 1 << 20;
    let weights: Vec<u64> = corpus
        .iter()
        .map(|entry| {
            entry
                .coverage
                .iter()
                .map(|point| SCALE / hits.get(point).copied().unwrap_or(1).max(1))
                .sum::<u64>()
                .max(1)
        })
        .collect();
    let total: u64 = weights.iter().sum();
    let mut draw = rng.below(total.max(1));
    for (index, weight) in weights.iter().enumerate() {
        if draw < *weight {
            return index;
        }
        draw -= weight;
    }
    corpus.len() - 1
}

/// A valid mutant of a corpus entry's faults, and where it came from; or
/// `None` when [`TRIES`] mutations all failed validation (the run then
/// draws from its seed).
fn mutant(
    rng: &mut SimRng,
    scenario: &Scenario,
    corpus: &[Entry],
    hits: &BTreeMap<Point, u64>,
) -> Option<(Vec<ScheduledFault>, Origin)> {
    let parent = pick(rng, corpus, hits);
    for _ in 0..TRIES {
        let other = &corpus[rng.below(corpus.len() as u64) as usize].faults;
        let Some((faults, mutation)) = mutate(rng, scenario, &corpus[parent].faults, other) else {
            continue;
        };
        if scenario.recorded_fault_problems(&faults).is_ok() {
            let origin = Origin {
                from: "mutant",
                parent: Some(parent),
                parent_seed: Some(corpus[parent].seed),
                mutation: Some(mutation),
            };
            return Some((faults, origin));
        }
    }
    None
}

/// The fault window in ns: where mutated faults may start.
fn window_ns(scenario: &Scenario) -> (u64, u64) {
    let f = &scenario.faults;
    let end_ms = match f.window_end_ms {
        0 => scenario.run.duration_ms,
        end => end,
    };
    (
        f.window_start_ms.saturating_mul(sim::MILLISECOND_NS),
        end_ms.saturating_mul(sim::MILLISECOND_NS),
    )
}

/// One mutation of `faults` (`other` is a second corpus entry, for
/// splicing), described; `None` if the drawn mutation does not apply (no
/// fault to change). The caller validates the result.
pub(crate) fn mutate(
    rng: &mut SimRng,
    scenario: &Scenario,
    faults: &[ScheduledFault],
    other: &[ScheduledFault],
) -> Option<(Vec<ScheduledFault>, String)> {
    let (window_start, window_end) = window_ns(scenario);
    let mut out = faults.to_vec();
    let operator = rng.below(5);
    if operator == 4 {
        // Splice: this list before a cut, the other's after it.
        if other.is_empty() && faults.is_empty() {
            return None;
        }
        let cut = rng.range_inclusive(window_start, window_end.max(window_start));
        out.retain(|f| f.at_ns < cut);
        out.extend(other.iter().filter(|f| f.at_ns >= cut).cloned());
        out.sort_by_key(|f| f.at_ns);
        let cut_ms = cut / sim::MILLISECOND_NS;
        return Some((out, format!("splice at {cut_ms} ms")));
    }
    if out.is_empty() {
        return None;
    }
    let index = rng.below(out.len() as u64) as usize;
    let description = match operator {
        0 => {
            // Shift within the window, by up to a quarter of it.
            let span = (window_end.saturating_sub(window_start) / 4).max(1);
            let by = rng.range_inclusive(0, 2 * span) as i128 - span as i128;
            let at = (i128::from(out[index].at_ns) + by)
                .clamp(i128::from(window_start), i128::from(window_end))
                as u64;
            let moved = at as i128 - i128::from(out[index].at_ns);
            out[index].at_ns = at;
            format!(
                "shift faults[{index}] by {} ms",
                moved / i128::from(sim::MILLISECOND_NS)
            )
        }
        1 => {
            // Stretch or shrink: x1/4, x1/2, x2 or x4.
            let (factor, (num, den)) = [
                ("1/4", (1, 4)),
                ("1/2", (1, 2)),
                ("2", (2, 1)),
                ("4", (4, 1)),
            ][rng.below(4) as usize];
            let scale = |ns: u64| (ns.saturating_mul(num) / den).max(1);
            match &mut out[index].fault {
                Fault::Partition { duration_ns, .. }
                | Fault::Clog { duration_ns, .. }
                | Fault::Pause { duration_ns, .. }
                | Fault::Degrade { duration_ns, .. }
                | Fault::ClockDrift { duration_ns, .. } => *duration_ns = scale(*duration_ns),
                Fault::Crash {
                    restart_after_ns: Some(after),
                    ..
                } => *after = scale(*after),
                Fault::Crash {
                    restart_after_ns: None,
                    ..
                } => return None,
                Fault::Reboot {
                    restart_after_ns, ..
                } => *restart_after_ns = scale(*restart_after_ns),
                Fault::ClockJump { delta_ns, .. } => {
                    *delta_ns = delta_ns.saturating_mul(num as i64) / den as i64;
                }
            }
            format!("scale faults[{index}] x{factor}")
        }
        2 => {
            out.remove(index);
            format!("drop faults[{index}]")
        }
        _ => {
            // Duplicate onto another node of the same kind.
            let (_, names) = layout(&scenario.topology);
            let mut copy = out[index].clone();
            let node = match &mut copy.fault {
                Fault::Crash { node, .. }
                | Fault::Reboot { node, .. }
                | Fault::Pause { node, .. }
                | Fault::ClockJump { node, .. }
                | Fault::ClockDrift { node, .. } => node,
                Fault::Clog { from, to, .. } => {
                    if rng.below(2) == 0 {
                        from
                    } else {
                        to
                    }
                }
                Fault::Partition { .. } | Fault::Degrade { .. } => return None,
            };
            let role = names.get(node.0 as usize)?.1;
            let peers: Vec<u32> = (0..names.len() as u32)
                .filter(|&id| id != node.0 && names[id as usize].1 == role)
                .collect();
            if peers.is_empty() {
                return None;
            }
            let from = node.0;
            node.0 = peers[rng.below(peers.len() as u64) as usize];
            let to = node.0;
            out.push(copy);
            out.sort_by_key(|f| f.at_ns);
            format!("duplicate faults[{index}] from node {from} onto node {to}")
        }
    };
    out.sort_by_key(|f| f.at_ns);
    Some((out, description))
}

/// The guided section of a sweep summary, in Markdown.
pub fn markdown(summary: &GuidedSummary) -> String {
    let mut out = String::from(
        "## Coverage reached\n\nA coverage point is a (sometimes path, count bucket) or a \
         (fired BUGGIFY point, fire-count bucket) pair, buckets 1, 2, 3, 4-7, 8-15, ...; \
         per thousand seeds = points x 1000 / runs.\n\n\
         | scenario | runs | mutants | sometimes paths | buggify points | coverage points | \
         per 1000 seeds | corpus | failed |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in &summary.guided {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:.0} | {} | {} |\n",
            r.scenario,
            r.runs,
            r.mutants,
            r.sometimes_paths,
            r.buggify_points,
            r.coverage_points,
            r.points_per_thousand_seeds,
            r.corpus,
            r.failed
        ));
    }
    out
}

/// The `--compare` table: the same budget plain and guided.
pub fn comparison(plain: &[Reached], guided: &[Reached]) -> String {
    let mut out = String::from(
        "| scenario | runs | sweep | sometimes paths | buggify points | coverage points | \
         failed | points after 64, 128, 256, ... runs |\n|---|---|---|---|---|---|---|---|\n",
    );
    for (p, g) in plain.iter().zip(guided) {
        for (label, r) in [("plain", p), ("guided", g)] {
            let curve: Vec<String> = r.curve.iter().map(|(_, n)| n.to_string()).collect();
            out.push_str(&format!(
                "| {} | {} | {label} | {} | {} | {} | {} | {} |\n",
                r.scenario,
                r.runs,
                r.sometimes_paths,
                r.buggify_points,
                r.coverage_points,
                r.failed,
                curve.join(", ")
            ));
        }
    }
    out
}

/// Whether any result failed, and the worst outcome.
pub fn worst(lines: &[GuidedLine]) -> Outcome {
    Outcome::worst(lines.iter().map(|line| line.result.outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_afl_like() {
        let got: Vec<u32> = [0, 1, 2, 3, 4, 7, 8, 15, 16, 1000]
            .iter()
            .map(|&n| bucket(n))
            .collect();
        assert_eq!(got, [0, 1, 2, 3, 4, 4, 5, 5, 6, 11]);
    }

    #[test]
    fn a_mutant_that_is_handed_out_always_validates_and_stays_in_the_window() {
        for name in ["chaos", "gc-pause", "baseline"] {
            let scenario = Scenario::load(name).expect("loads");
            let corpus: Vec<Entry> = (0..6)
                .map(|seed| Entry {
                    seed,
                    faults: planned_faults(&scenario, seed).expect("plans"),
                    coverage: [(format!("sometimes:{seed}"), 1)].into_iter().collect(),
                })
                .collect();
            let hits = BTreeMap::new();
            let mut rng = SimRng::derive(7, Stream::Custom(1));
            let (start, end) = window_ns(&scenario);
            let mut handed = 0;
            for _ in 0..400 {
                let Some((faults, origin)) = mutant(&mut rng, &scenario, &corpus, &hits) else {
                    continue;
                };
                handed += 1;
                scenario
                    .recorded_fault_problems(&faults)
                    .unwrap_or_else(|e| panic!("{name}: {origin:?}: {e}"));
                let parent = &corpus[origin.parent.expect("a parent")].faults;
                for fault in &faults {
                    let inherited = parent.contains(fault)
                        || corpus.iter().any(|entry| entry.faults.contains(fault));
                    assert!(
                        inherited || (start..=end).contains(&fault.at_ns),
                        "{name}: {origin:?} moved a fault out of the window"
                    );
                    assert!(
                        !matches!(
                            fault.fault,
                            Fault::Crash {
                                restart_after_ns: None,
                                ..
                            }
                        ),
                        "never a crash without restart"
                    );
                }
            }
            if corpus.iter().any(|entry| !entry.faults.is_empty()) {
                assert!(handed > 100, "{name}: only {handed} mutants");
            }
        }
    }

    #[test]
    fn mutation_draws_are_fixed_by_the_rng() {
        let scenario = Scenario::load("chaos").expect("loads");
        let faults = planned_faults(&scenario, 3).expect("plans");
        let other = planned_faults(&scenario, 4).expect("plans");
        let draw = || {
            let mut rng = SimRng::derive(11, Stream::Custom(2));
            (0..50)
                .map(|_| mutate(&mut rng, &scenario, &faults, &other))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(), draw());
    }
}
