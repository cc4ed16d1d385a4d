//! Merging the outputs of `sweep --shard K/N` run apart (CI jobs, a
//! Kubernetes Indexed Job) into one output and one summary, the same as
//! the sweep run whole would have written: or a refusal that names the
//! directory and what differs, when the shards cannot make one sweep.
//!
//! Each sweep writes `sweep.json` (its [`Manifest`]) before its first seed:
//! the code, engine, seeds, shard and scenarios it covers. Merging checks
//! that every shard ran the same code and configuration, that each of the
//! N shards is there once, and that each has a result for every seed it
//! covers; then it keeps the results that belong to the sweep (a resumed
//! directory may hold older lines of another configuration), copies the
//! artifacts of the failing ones, and summarizes them.
//!
//! "The same" is exact for the results (the same lines, by content; a
//! sweep writes them as seeds finish, so their order is the job timing's
//! and the merge writes them sorted by scenario and seed), the artifacts
//! (same names, same bytes) and the summary, except for the fields about
//! the work of one invocation: `runs`, `seeds_per_second` and
//! `simulated_per_wall` (a merge runs nothing, so they are 0) and
//! `merged_shards` (only a merge has it).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use plane::config::Bug;

use crate::artifact::code_version;
use crate::engine::Engine;
use crate::error::Error;
use crate::input::ReadError;
use crate::sweep::{
    Outcome, SeedResult, Summary, SweepOptions, artifact_name, judge_targets, read_results,
    results_path, summarize,
};

/// Bumped when the manifest's format changes.
pub const MANIFEST_FORMAT: u32 = 1;

/// The most missing seeds an error lists by number.
const MISSING_LISTED_MAX: usize = 10;

/// The manifest of a sweep directory.
pub fn manifest_path(out_dir: &Path) -> PathBuf {
    out_dir.join("sweep.json")
}

/// What a sweep covers, written to `OUT/sweep.json` before its first seed
/// runs (and rewritten by `--resume`, whose arguments then define it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// [`code_version`] of the binary that ran the sweep.
    pub code_version: String,
    /// The engine the seeds ran on.
    pub engine: Engine,
    /// `--seeds START..END`.
    pub seeds: Range<u64>,
    /// `--shard K/N` as `[K, N]`; `[0, 1]` without.
    pub shard: (u64, u64),
    /// Each seed run twice (`--check-determinism`).
    pub check_determinism: bool,
    /// The scenarios' titles in the summary.
    pub titles: Vec<String>,
    /// The scenarios, in the order swept.
    pub scenarios: Vec<ManifestScenario>,
}

/// One scenario of a [`Manifest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestScenario {
    /// Its name.
    pub name: String,
    /// Its config hash as run (planted bugs included), as hex.
    pub config_hash: String,
    /// The bugs planted in it.
    pub bugs: Vec<Bug>,
    /// Its targets (`[expect] reaches`).
    pub reaches: Vec<String>,
}

impl Manifest {
    /// The manifest of a sweep about to run with `options`.
    pub fn of(options: &SweepOptions) -> Manifest {
        let titles = if options.titles.is_empty() {
            options.scenarios.iter().map(|s| s.name.clone()).collect()
        } else {
            options.titles.clone()
        };
        Manifest {
            format: MANIFEST_FORMAT,
            code_version: code_version(),
            engine: options.runner.engine,
            seeds: options.seeds.clone(),
            shard: options.shard.unwrap_or((0, 1)),
            check_determinism: options.check_determinism,
            titles,
            scenarios: options
                .scenarios
                .iter()
                .map(|scenario| ManifestScenario {
                    name: scenario.name.clone(),
                    config_hash: format!("{:#018x}", scenario.config_hash()),
                    bugs: scenario.bugs.clone(),
                    reaches: scenario.expect.reaches.clone(),
                })
                .collect(),
        }
    }

    /// Writes `out_dir/sweep.json`.
    pub fn write(&self, out_dir: &Path) -> Result<(), Error> {
        let path = manifest_path(out_dir);
        let text = serde_json::to_string_pretty(self).expect("a manifest serializes");
        std::fs::write(&path, text + "\n")
            .map_err(|e| Error::io(&path, format!("cannot write: {e}")))
    }

    /// Reads `dir/sweep.json`; bad input if it is missing or not one.
    pub fn read(dir: &Path) -> Result<Manifest, Error> {
        let path = manifest_path(dir);
        let text = match crate::input::read_text(&path) {
            Ok(text) => text,
            Err(ReadError::Io(error)) if error.kind() == std::io::ErrorKind::NotFound => {
                let why = if results_path(dir).exists() {
                    "has results.jsonl but no sweep.json: written by a guided sweep, or by a \
                     version from before merge existed; rerun that shard with this version"
                } else {
                    "has no sweep.json and no results.jsonl: not the --out of a sweep"
                };
                return Err(Error::bad_input(dir.display().to_string(), why));
            }
            // Not a directory, unreadable, not UTF-8, too large: each
            // names an input that is not a sweep's --out.
            Err(error) => {
                let why = format!("{error}: not the sweep.json a sweep's --out holds");
                return Err(Error::bad_input(path.display().to_string(), why));
            }
        };
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
            Error::bad_input(
                path.display().to_string(),
                format!("not a sweep manifest: {e}"),
            )
        })?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(Error::bad_input(
                path.display().to_string(),
                format!(
                    "format = {} is not known: allowed {MANIFEST_FORMAT} (written by another \
                     version)",
                    manifest.format
                ),
            ));
        }
        let (index, count) = manifest.shard;
        if count == 0 || index >= count || manifest.seeds.start >= manifest.seeds.end {
            return Err(Error::bad_input(
                path.display().to_string(),
                format!(
                    "shard = [{index}, {count}] with seeds {}..{}: allowed 0 <= K < N and \
                     START < END",
                    manifest.seeds.start, manifest.seeds.end
                ),
            ));
        }
        Ok(manifest)
    }

    /// Whether seed `seed` is this shard's.
    fn has_seed(&self, seed: u64) -> bool {
        let (index, count) = self.shard;
        self.seeds.contains(&seed) && (seed - self.seeds.start) % count == index
    }

    /// This shard's seeds, in order, lazily.
    fn shard_seeds(&self) -> impl Iterator<Item = u64> + '_ {
        let (index, count) = self.shard;
        let first = self.seeds.start.saturating_add(index).min(self.seeds.end);
        (first..self.seeds.end).step_by(usize::try_from(count).unwrap_or(usize::MAX))
    }

    /// The shard as the command line writes it.
    fn shard_label(&self) -> String {
        format!("{}/{}", self.shard.0, self.shard.1)
    }

    /// What differs between this manifest's configuration and `other`'s,
    /// in words, if anything (the shard index may differ).
    fn difference(&self, other: &Manifest) -> Option<String> {
        let differs = |what: &str, mine: String, theirs: String| {
            Some(format!("{what} {theirs}, where the first has {mine}"))
        };
        if self.code_version != other.code_version {
            return differs(
                "was run by code version",
                self.code_version.clone(),
                other.code_version.clone(),
            );
        }
        if self.engine != other.engine {
            return differs(
                "ran on engine",
                self.engine.to_string(),
                other.engine.to_string(),
            );
        }
        if self.seeds != other.seeds {
            return differs(
                "swept seeds",
                format!("{}..{}", self.seeds.start, self.seeds.end),
                format!("{}..{}", other.seeds.start, other.seeds.end),
            );
        }
        if self.shard.1 != other.shard.1 {
            return differs(
                "has shard count N =",
                self.shard.1.to_string(),
                other.shard.1.to_string(),
            );
        }
        if self.check_determinism != other.check_determinism {
            return differs(
                "has --check-determinism",
                self.check_determinism.to_string(),
                other.check_determinism.to_string(),
            );
        }
        let names =
            |m: &Manifest| -> Vec<String> { m.scenarios.iter().map(|s| s.name.clone()).collect() };
        if names(self) != names(other) {
            return differs(
                "swept scenarios",
                names(self).join(", "),
                names(other).join(", "),
            );
        }
        for (mine, theirs) in self.scenarios.iter().zip(&other.scenarios) {
            let name = &mine.name;
            if mine.bugs != theirs.bugs {
                let list = |bugs: &[Bug]| -> String {
                    let names: Vec<String> = bugs.iter().map(Bug::to_string).collect();
                    format!("[{}]", names.join(", "))
                };
                return differs(
                    &format!("planted in {name} the bugs"),
                    list(&mine.bugs),
                    list(&theirs.bugs),
                );
            }
            if mine.config_hash != theirs.config_hash {
                return differs(
                    &format!("ran {name} with config hash"),
                    mine.config_hash.clone(),
                    theirs.config_hash.clone(),
                );
            }
            if mine.reaches != theirs.reaches {
                return differs(
                    &format!("has targets of {name}"),
                    format!("{:?}", mine.reaches),
                    format!("{:?}", theirs.reaches),
                );
            }
        }
        if self.titles != other.titles {
            return differs(
                "titles its scenarios",
                self.titles.join(", "),
                other.titles.join(", "),
            );
        }
        None
    }
}

/// What a merge wrote and what it says.
#[derive(Clone, Debug)]
pub struct Merged {
    /// Every seed's result, sorted by scenario and seed.
    pub results: Vec<SeedResult>,
    /// Their summary, as the unsharded sweep's.
    pub summary: Summary,
    /// The merged sweep's manifest (unsharded).
    pub manifest: Manifest,
}

impl Merged {
    /// The worst outcome of any seed.
    pub fn worst(&self) -> Outcome {
        Outcome::worst(self.results.iter().map(|r| r.outcome))
    }
}

/// Merges the shard outputs `inputs` into `out_dir` (results.jsonl,
/// failures/, sweep.json). Bad input when they are not the N shards of one
/// sweep, each complete; nothing is written then.
pub fn merge(inputs: &[PathBuf], out_dir: &Path) -> Result<Merged, Error> {
    let manifests: Vec<Manifest> = inputs
        .iter()
        .map(|dir| Manifest::read(dir))
        .collect::<Result<_, _>>()?;
    let Some(first) = manifests.first() else {
        return Err(Error::bad_input(
            "merge",
            "no sweep outputs given: name the --out directory of every shard",
        ));
    };
    check_one_sweep(inputs, &manifests)?;
    check_not_an_input(inputs, out_dir)?;
    let mut results = Vec::new();
    for (dir, manifest) in inputs.iter().zip(&manifests) {
        results.extend(shard_results(dir, manifest)?);
    }
    results.sort_by(|a, b| (&a.scenario, a.seed).cmp(&(&b.scenario, b.seed)));
    let failing = failing_artifacts(inputs, &manifests, &results)?;
    let manifest = Manifest {
        shard: (0, 1),
        ..first.clone()
    };
    write_output(out_dir, &manifest, &results, &failing)?;
    let mut summary = summarize(first.engine, &results);
    summary.merged_shards = Some(first.shard.1);
    summary.targets = judge_targets(
        first
            .scenarios
            .iter()
            .map(|s| (s.name.as_str(), s.reaches.as_slice())),
        &results,
    );
    Ok(Merged {
        results,
        summary,
        manifest,
    })
}

/// Refuses shards of different sweeps, a shard given twice, or a shard
/// missing.
fn check_one_sweep(inputs: &[PathBuf], manifests: &[Manifest]) -> Result<(), Error> {
    let first = &manifests[0];
    for (dir, manifest) in inputs.iter().zip(manifests).skip(1) {
        if let Some(difference) = first.difference(manifest) {
            return Err(Error::bad_input(
                dir.display().to_string(),
                format!(
                    "{difference} ({}): shards merge only when run with the same code and \
                     configuration; rerun this shard to match",
                    inputs[0].display()
                ),
            ));
        }
    }
    let mut by_index: BTreeMap<u64, &PathBuf> = BTreeMap::new();
    for (dir, manifest) in inputs.iter().zip(manifests) {
        if let Some(other) = by_index.insert(manifest.shard.0, dir) {
            return Err(Error::bad_input(
                dir.display().to_string(),
                format!(
                    "is shard {}, and so is {}: their seeds overlap; give each shard once",
                    manifest.shard_label(),
                    other.display()
                ),
            ));
        }
    }
    let count = first.shard.1;
    let missing: Vec<String> = (0..count)
        .filter(|index| !by_index.contains_key(index))
        .map(|index| format!("{index}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::bad_input(
            "merge",
            format!(
                "shard {} of seeds {}..{} is missing: run it (`sweep ... --shard K/N`) and \
                 give its --out too",
                missing.join(", "),
                first.seeds.start,
                first.seeds.end
            ),
        ));
    }
    Ok(())
}

/// Refuses to merge into one of the inputs: writing the output would
/// overwrite a shard's results while they are read.
fn check_not_an_input(inputs: &[PathBuf], out_dir: &Path) -> Result<(), Error> {
    let Ok(out) = out_dir.canonicalize() else {
        return Ok(()); // Not there yet: not an input either.
    };
    for dir in inputs {
        if dir.canonicalize().is_ok_and(|dir| dir == out) {
            return Err(Error::bad_input(
                out_dir.display().to_string(),
                "is also one of the shards merged: give --out another directory",
            ));
        }
    }
    Ok(())
}

/// The results of one shard that belong to its sweep: its seeds, its
/// scenarios at their config hashes (a resumed directory may hold lines of
/// another configuration; the last line of a seed wins, as on resume).
/// Bad input if a seed has none.
fn shard_results(dir: &Path, manifest: &Manifest) -> Result<Vec<SeedResult>, Error> {
    let hashes: BTreeMap<&str, &str> = manifest
        .scenarios
        .iter()
        .map(|s| (s.name.as_str(), s.config_hash.as_str()))
        .collect();
    let mut found: BTreeMap<(String, u64), SeedResult> = BTreeMap::new();
    read_results(&results_path(dir), |result| {
        let belongs = manifest.has_seed(result.seed)
            && result.engine == manifest.engine
            && hashes.get(result.scenario.as_str()).copied() == result.config_hash.as_deref();
        if belongs {
            found.insert((result.scenario.clone(), result.seed), result);
        }
    })?;
    let expected = (manifest.scenarios.len() as u64).saturating_mul(
        manifest
            .seeds
            .end
            .saturating_sub(manifest.seeds.start)
            .saturating_sub(manifest.shard.0)
            .div_ceil(manifest.shard.1),
    );
    if found.len() as u64 != expected {
        return Err(missing_seeds(dir, manifest, &found, expected));
    }
    Ok(found.into_values().collect())
}

/// The error for a shard that lacks results: the first seeds missing, and
/// how to finish it.
fn missing_seeds(
    dir: &Path,
    manifest: &Manifest,
    found: &BTreeMap<(String, u64), SeedResult>,
    expected: u64,
) -> Error {
    let several = manifest.scenarios.len() > 1;
    let mut listed = Vec::new();
    'scan: for scenario in &manifest.scenarios {
        for seed in manifest.shard_seeds() {
            if !found.contains_key(&(scenario.name.clone(), seed)) {
                listed.push(if several {
                    format!("{}:{seed}", scenario.name)
                } else {
                    seed.to_string()
                });
                if listed.len() == MISSING_LISTED_MAX {
                    break 'scan;
                }
            }
        }
    }
    let missing = expected.saturating_sub(found.len() as u64);
    let more = if missing > listed.len() as u64 {
        format!(" and {} more", missing - listed.len() as u64)
    } else {
        String::new()
    };
    Error::bad_input(
        dir.display().to_string(),
        format!(
            "shard {} has no result for {missing} of its {expected} seeds ({}{more}): a sweep \
             killed midway, or run with --fail-fast; finish it by rerunning the same sweep \
             command with --resume and --out {}",
            manifest.shard_label(),
            listed.join(", "),
            dir.display()
        ),
    )
}

/// The artifact file of each failing result, by name.
fn failing_artifacts(
    inputs: &[PathBuf],
    manifests: &[Manifest],
    results: &[SeedResult],
) -> Result<BTreeMap<String, PathBuf>, Error> {
    let mut files = BTreeMap::new();
    for result in results.iter().filter(|r| r.outcome != Outcome::Pass) {
        let Some(dir) = inputs
            .iter()
            .zip(manifests)
            .find(|(_, manifest)| manifest.has_seed(result.seed))
            .map(|(dir, _)| dir)
        else {
            unreachable!("every result was read from the shard that has its seed");
        };
        let name = artifact_name(&result.scenario, result.seed);
        let path = dir.join("failures").join(&name);
        if !path.is_file() {
            return Err(Error::bad_input(
                path.display().to_string(),
                format!(
                    "is missing, but seed {} of {} failed: the shard's failures/ is \
                     incomplete; rerun the shard",
                    result.seed, result.scenario
                ),
            ));
        }
        files.insert(name, path);
    }
    Ok(files)
}

/// Writes the merged sweep's directory afresh.
fn write_output(
    out_dir: &Path,
    manifest: &Manifest,
    results: &[SeedResult],
    failing: &BTreeMap<String, PathBuf>,
) -> Result<(), Error> {
    let failures = out_dir.join("failures");
    if failures.exists() {
        std::fs::remove_dir_all(&failures)
            .map_err(|e| Error::io(&failures, format!("cannot clear: {e}")))?;
    }
    std::fs::create_dir_all(&failures)
        .map_err(|e| Error::io(out_dir, format!("cannot create: {e}")))?;
    for (name, from) in failing {
        let to = failures.join(name);
        std::fs::copy(from, &to).map_err(|e| Error::io(&to, format!("cannot copy: {e}")))?;
    }
    let mut text = String::new();
    for result in results {
        text.push_str(&serde_json::to_string(result).expect("results serialize"));
        text.push('\n');
    }
    let path = results_path(out_dir);
    std::fs::write(&path, text).map_err(|e| Error::io(&path, format!("cannot write: {e}")))?;
    manifest.write(out_dir)
}
