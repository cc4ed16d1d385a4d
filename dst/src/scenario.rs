//! Scenario files: topology, workload, fault knobs, scheduled faults,
//! duration and liveness bound, parsed from TOML and validated so that every
//! mistake names the file, the key and what is allowed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use sim::ScheduledFault;

use plane::config::{
    ApiSettings, Bug, ClientSettings, ControllerSettings, Settings, StoreSettings, WorkerSettings,
};

use crate::error::Error;
use crate::input::{
    Format, ReadError, Shape, line_column, plain_words, shape, tables_not_arrays, toml_key_at,
};
use crate::layout::{NodeNames, layout};
pub use crate::layout::{Role, TopologySpec};

/// A scenario as written in `scenarios/*.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, e.g. `baseline`: `[a-z0-9][a-z0-9-_]*`, since it names
    /// artifact files.
    pub name: String,
    /// What situation it simulates and what it should show.
    pub description: String,
    /// How many nodes of each kind.
    #[serde(default)]
    pub topology: TopologySpec,
    /// Durations.
    #[serde(default)]
    pub run: RunSpec,
    /// Per-message network behaviour.
    #[serde(default)]
    pub network: NetworkSpec,
    /// Clock drift and offsets.
    #[serde(default)]
    pub clocks: ClockSpec,
    /// Faults drawn from the seed.
    #[serde(default)]
    pub faults: FaultSpec,
    /// Faults at fixed times.
    #[serde(default)]
    pub schedule: Vec<ScheduledSpec>,
    /// API node settings.
    #[serde(default)]
    pub api: ApiSettings,
    /// Controller settings (`max_drift_ppm` is set from `clocks`).
    #[serde(default)]
    pub controller: ControllerSettings,
    /// Client (workload) settings.
    #[serde(default)]
    pub client: ClientSettings,
    /// Store settings.
    #[serde(default)]
    pub store: StoreSettings,
    /// Worker settings (`[worker]`): the executed-action ledger's bound.
    #[serde(default)]
    pub worker: WorkerSettings,
    /// Planted bugs to turn on (see [`Bug`]); none by default. A scenario
    /// written to expose a bug still lists none: the zoo and `--bug` turn
    /// them on one at a time.
    #[serde(default)]
    pub bugs: Vec<Bug>,
    /// BUGGIFY: marked code points that fire faults where they matter
    /// most; off by default.
    #[serde(default, skip_serializing_if = "BuggifySpec::is_off")]
    pub buggify: BuggifySpec,
    /// What a sweep of this scenario must show (`[expect]`): the
    /// sometimes-paths it is written to reach.
    #[serde(default, skip_serializing_if = "ExpectSpec::is_empty")]
    pub expect: ExpectSpec,
}

/// Field by field as the derive would hash, except that `buggify` and
/// `worker` count only when set: a scenario without them keeps the config
/// hash it had before they existed. `expect` never counts: it changes no
/// run, only what a sweep demands of the runs, so results stay reusable by
/// `--resume` and reports keep their config hashes.
impl std::hash::Hash for Scenario {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Destructured, so that a new field cannot be left out unnoticed.
        let Scenario {
            name,
            description,
            topology,
            run,
            network,
            clocks,
            faults,
            schedule,
            api,
            controller,
            client,
            store,
            worker,
            bugs,
            buggify,
            expect: _,
        } = self;
        name.hash(state);
        description.hash(state);
        topology.hash(state);
        run.hash(state);
        network.hash(state);
        clocks.hash(state);
        faults.hash(state);
        schedule.hash(state);
        api.hash(state);
        controller.hash(state);
        client.hash(state);
        store.hash(state);
        bugs.hash(state);
        if !buggify.is_off() {
            buggify.hash(state);
        }
        if *worker != WorkerSettings::default() {
            worker.hash(state);
        }
    }
}

/// The `[expect]` table: what a sweep of the scenario must show besides
/// every property holding.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExpectSpec {
    /// Sometimes-paths (e.g. `failover`, `stale_token_rejected`) the
    /// scenario is written to reach: a sweep in which no seed reaches one
    /// fails (exit 9), since a scenario that no longer reaches its target
    /// is a broken test. One seed (`simulate`) reports them without failing.
    pub reaches: Vec<String>,
}

impl ExpectSpec {
    /// No targets: left out of artifacts.
    pub fn is_empty(&self) -> bool {
        self.reaches.is_empty()
    }

    fn problems(&self) -> Result<(), String> {
        let allowed = crate::check::SOMETIMES_PATHS;
        let mut seen = BTreeSet::new();
        for (index, name) in self.reaches.iter().enumerate() {
            if !allowed.contains(&name.as_str()) {
                return Err(format!(
                    "expect.reaches[{index}] = {name:?} is not a sometimes-path: allowed {}",
                    allowed.join(", ")
                ));
            }
            if !seen.insert(name) {
                return Err(format!(
                    "expect.reaches[{index}] = {name:?} is named twice: name each path once"
                ));
            }
        }
        Ok(())
    }
}

/// The `[buggify]` table: FoundationDB's BUGGIFY. Nodes mark code points
/// where a fault matters (`node::Context::buggify`); the seed turns each
/// point on with probability `active_ppm` (swarm), and an active point
/// fires on a hit with probability `fire_ppm`, applying one of `actions`
/// right there. Points fire only within the fault window
/// (`faults.window_end_ms`, or the run's duration without one).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuggifySpec {
    /// Whether points may fire at all.
    pub enabled: bool,
    /// Chance that a seed turns a point on, in parts per million.
    pub active_ppm: u32,
    /// Chance that an active point fires on one hit, in parts per million.
    pub fire_ppm: u32,
    /// What a firing may do: `delay` or `drop` the handler's sends after
    /// the point, `crash` (restart after a drawn downtime) or `pause` the
    /// node right after the handler.
    pub actions: Vec<sim::BuggifyAction>,
    /// Most crashes and pauses buggify injects in one run (delays and
    /// drops are not counted), so a hot point cannot crash a node on every
    /// request.
    pub max_faults: u32,
    /// Extra latency of delayed sends.
    pub delay_min_ms: u64,
    /// See `delay_min_ms`.
    pub delay_max_ms: u64,
    /// How long a pause lasts.
    pub pause_min_ms: u64,
    /// See `pause_min_ms`.
    pub pause_max_ms: u64,
    /// How long a crashed node stays down.
    pub downtime_min_ms: u64,
    /// See `downtime_min_ms`.
    pub downtime_max_ms: u64,
}

impl Default for BuggifySpec {
    fn default() -> Self {
        use sim::BuggifyAction::{Crash, Delay, Drop, Pause};
        Self {
            enabled: false,
            // FoundationDB's odds: a quarter of the points on per run, a
            // quarter of their hits firing.
            active_ppm: 250_000,
            fire_ppm: 250_000,
            actions: vec![Delay, Drop, Crash, Pause],
            max_faults: 4,
            delay_min_ms: 50,
            delay_max_ms: 2_000,
            pause_min_ms: 200,
            pause_max_ms: 3_000,
            downtime_min_ms: 200,
            downtime_max_ms: 3_000,
        }
    }
}

impl BuggifySpec {
    /// Exactly the default: off, and left out of hashes and artifacts.
    pub fn is_off(&self) -> bool {
        *self == BuggifySpec::default()
    }

    fn problems(&self) -> Result<(), String> {
        range(
            "buggify.active_ppm",
            u64::from(self.active_ppm),
            0,
            1_000_000,
        )?;
        range("buggify.fire_ppm", u64::from(self.fire_ppm), 0, 1_000_000)?;
        range("buggify.max_faults", u64::from(self.max_faults), 0, 1_000)?;
        if self.enabled && self.actions.is_empty() {
            return Err(
                "buggify.actions is empty: name at least one of delay, drop, crash, pause".into(),
            );
        }
        for (key, min, max) in [
            ("delay", self.delay_min_ms, self.delay_max_ms),
            ("pause", self.pause_min_ms, self.pause_max_ms),
            ("downtime", self.downtime_min_ms, self.downtime_max_ms),
        ] {
            range(&format!("buggify.{key}_max_ms"), max, 0, 600_000)?;
            range(&format!("buggify.{key}_min_ms"), min, 0, max)
                .map_err(|e| format!("{e} (at most {key}_max_ms)"))?;
        }
        Ok(())
    }
}

/// Durations of the run's phases.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSpec {
    /// The safety phase: workload and faults happen within it.
    pub duration_ms: u64,
    /// After the last fault heals (or the safety phase ends, if later),
    /// everything must converge within this bound.
    pub liveness_bound_ms: u64,
    /// Most events in one run.
    pub max_events: u64,
}

impl Default for RunSpec {
    fn default() -> Self {
        Self {
            duration_ms: 30_000,
            liveness_bound_ms: 20_000,
            max_events: 5_000_000,
        }
    }
}

/// The network, in microseconds and parts per million.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSpec {
    /// Smallest one-way latency.
    pub latency_min_us: u64,
    /// Largest ordinary one-way latency.
    pub latency_max_us: u64,
    /// Chance of the slow tail.
    pub tail_ppm: u32,
    /// Largest tail latency.
    pub tail_max_us: u64,
    /// Chance a message is lost.
    pub drop_ppm: u32,
    /// Chance a message is delivered twice.
    pub duplicate_ppm: u32,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        Self {
            latency_min_us: 500,
            latency_max_us: 5_000,
            tail_ppm: 0,
            tail_max_us: 5_000,
            drop_ppm: 0,
            duplicate_ppm: 0,
        }
    }
}

/// Clocks: each node's drift is drawn uniformly in `±max_drift_ppm`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockSpec {
    /// Bound on any node's rate drift (0..=100000). Controllers size their
    /// lease margin from it.
    pub max_drift_ppm: u32,
    /// Bound on any node's initial wall-clock offset.
    pub max_wall_offset_ms: u64,
}

impl Default for ClockSpec {
    fn default() -> Self {
        Self {
            max_drift_ppm: 100,
            max_wall_offset_ms: 1_000,
        }
    }
}

/// One kind of fault drawn from the seed: how many, how long.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateSpec {
    /// Fewest faults of this kind.
    pub count_min: u32,
    /// Most faults of this kind (0..=1000).
    pub count_max: u32,
    /// Shortest duration (for clock jumps: the smallest jump).
    pub duration_min_ms: u64,
    /// Longest duration (for clock jumps: the largest jump).
    pub duration_max_ms: u64,
}

/// Faults drawn from the seed within `window_end_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultSpec {
    /// Faults start uniformly in `window_start_ms..window_end_ms`.
    pub window_start_ms: u64,
    /// See `window_start_ms`; must be within the run's duration.
    pub window_end_ms: u64,
    /// Swarm mode: the seed also decides which kinds are on and how many.
    pub swarm: bool,
    /// Symmetric partitions.
    pub partition: RateSpec,
    /// One-way partitions.
    pub partition_one_way: RateSpec,
    /// Link clogs.
    pub clog: RateSpec,
    /// Crashes, restarted after the drawn duration.
    pub crash: RateSpec,
    /// Machine reboots of `crash_roles` nodes: down for the drawn
    /// duration, then back on a new boot whose monotonic clock starts again
    /// from an arbitrary value (the wall clock goes on).
    pub reboot: RateSpec,
    /// Process pauses.
    pub pause: RateSpec,
    /// Wall-clock jumps.
    pub clock_jump: RateSpec,
    /// Roles partitions and clogs may split.
    pub network_roles: Vec<Role>,
    /// Roles that may crash.
    pub crash_roles: Vec<Role>,
    /// Roles that may pause.
    pub pause_roles: Vec<Role>,
    /// Roles whose wall clocks may jump.
    pub clock_roles: Vec<Role>,
}

impl Default for FaultSpec {
    fn default() -> Self {
        let core = vec![
            Role::Store,
            Role::Api,
            Role::Controller,
            Role::Worker,
            Role::Billing,
        ];
        Self {
            window_start_ms: 0,
            window_end_ms: 0,
            swarm: false,
            partition: RateSpec::default(),
            partition_one_way: RateSpec::default(),
            clog: RateSpec::default(),
            crash: RateSpec::default(),
            reboot: RateSpec::default(),
            pause: RateSpec::default(),
            clock_jump: RateSpec::default(),
            network_roles: core.clone(),
            crash_roles: core.clone(),
            pause_roles: core.clone(),
            clock_roles: core,
        }
    }
}

/// Field by field as the derive would hash, except that `reboot` counts
/// only when set: a scenario without reboots keeps the config hash it had
/// before reboots existed, so its reviewed report and the results a
/// `--resume` would reuse stay valid.
impl std::hash::Hash for FaultSpec {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Destructured, so that a new field cannot be left out unnoticed.
        let FaultSpec {
            window_start_ms,
            window_end_ms,
            swarm,
            partition,
            partition_one_way,
            clog,
            crash,
            reboot,
            pause,
            clock_jump,
            network_roles,
            crash_roles,
            pause_roles,
            clock_roles,
        } = self;
        window_start_ms.hash(state);
        window_end_ms.hash(state);
        swarm.hash(state);
        partition.hash(state);
        partition_one_way.hash(state);
        clog.hash(state);
        crash.hash(state);
        pause.hash(state);
        clock_jump.hash(state);
        network_roles.hash(state);
        crash_roles.hash(state);
        pause_roles.hash(state);
        clock_roles.hash(state);
        if *reboot != RateSpec::default() {
            reboot.hash(state);
        }
    }
}

/// The kinds of scheduled fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Cut `side_a` from `side_b` both ways.
    Partition,
    /// Cut `side_a -> side_b` only.
    PartitionOneWay,
    /// Hold messages `from -> to`, then release them at once.
    Clog,
    /// Crash `node`, restart after `restart_after_ms` (required: a node
    /// that never comes back leaves liveness unjudgeable).
    Crash,
    /// Pause `node` for `duration_ms`.
    Pause,
    /// Jump `node`'s wall clock by `delta_ms`.
    ClockJump,
    /// Reboot `node`'s machine: down for `restart_after_ms` (required: a
    /// reboot always comes back), then up on a new boot whose monotonic
    /// clock starts again from an arbitrary value. After the kinds above,
    /// because a scenario's config hash hashes each kind's position: a
    /// variant inserted earlier would change the hash of every scheduled
    /// pause and clock jump.
    Reboot,
    /// Degrade every link to or from one of `nodes` (every link when
    /// `nodes` is empty or absent) for `duration_ms`: each message sent on
    /// one is lost with `drop_ppm`, delivered twice with `duplicate_ppm`
    /// and `delay_ms` late.
    Degrade,
    /// Run `node`'s clocks (monotonic and wall) at a rate error of
    /// `drift_ppm` for `duration_ms`, then at its configured rate again;
    /// time gained or lost stays gained or lost. Last, like `Reboot`.
    ClockDrift,
}

/// A fault at a fixed time. Nodes are named `store`, `billing`, `api-N`,
/// `controller-N`, `worker-N`, `client-N`, or `holder:shard-N` (the
/// controller that rendezvous hashing assigns shard N when every
/// controller is a member; N below `controller.shard_count`). Names,
/// ranges and which fields each kind takes are checked on load: a field
/// another kind takes is an error, not silently ignored.
///
/// The fields of `degrade` and `clock_drift` came later: they are left out
/// of the file when unset and hashed only when set, so a scenario without
/// them keeps its config hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledSpec {
    /// When, from the start of the run.
    pub at_ms: u64,
    /// What.
    pub kind: FaultKind,
    /// Partitions: one side.
    #[serde(default)]
    pub side_a: Vec<String>,
    /// Partitions: the other side; empty means every other node.
    #[serde(default)]
    pub side_b: Vec<String>,
    /// Clog: sender.
    #[serde(default)]
    pub from: Option<String>,
    /// Clog: receiver.
    #[serde(default)]
    pub to: Option<String>,
    /// Crash, reboot, pause, clock jump, clock drift: the node.
    #[serde(default)]
    pub node: Option<String>,
    /// Partition, clog, pause, degrade, clock drift: how long.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// Crash and reboot (required): down time before the restart.
    #[serde(default)]
    pub restart_after_ms: Option<u64>,
    /// Clock jump: signed amount.
    #[serde(default)]
    pub delta_ms: Option<i64>,
    /// Degrade: the nodes whose links degrade; empty or absent means every
    /// node's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// Degrade: chance that a message is lost, in parts per million.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_ppm: Option<u32>,
    /// Degrade: chance that a message is delivered twice, in parts per
    /// million.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_ppm: Option<u32>,
    /// Degrade: latency added to every message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Clock drift (required): the rate error, within
    /// ±[`sim::DRIFT_PPM_LIMIT`]; positive is a slow clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_ppm: Option<i32>,
}

/// Field by field as the derive would hash, except that the fields of
/// `degrade` and `clock_drift` count only when set: an entry without them
/// keeps the config hash it had before they existed.
impl std::hash::Hash for ScheduledSpec {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Destructured, so that a new field cannot be left out unnoticed.
        let ScheduledSpec {
            at_ms,
            kind,
            side_a,
            side_b,
            from,
            to,
            node,
            duration_ms,
            restart_after_ms,
            delta_ms,
            nodes,
            drop_ppm,
            duplicate_ppm,
            delay_ms,
            drift_ppm,
        } = self;
        at_ms.hash(state);
        kind.hash(state);
        side_a.hash(state);
        side_b.hash(state);
        from.hash(state);
        to.hash(state);
        node.hash(state);
        duration_ms.hash(state);
        restart_after_ms.hash(state);
        delta_ms.hash(state);
        // Each with its name, so that two entries setting different
        // fields to the same value hash apart.
        if !nodes.is_empty() {
            ("nodes", nodes).hash(state);
        }
        for (name, value) in [("drop_ppm", drop_ppm), ("duplicate_ppm", duplicate_ppm)] {
            if let Some(value) = value {
                (name, value).hash(state);
            }
        }
        if let Some(delay_ms) = delay_ms {
            ("delay_ms", delay_ms).hash(state);
        }
        if let Some(drift_ppm) = drift_ppm {
            ("drift_ppm", drift_ppm).hash(state);
        }
    }
}

/// The directory of the built-in scenarios.
pub(crate) fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// The names of the scenarios in `scenarios/`, sorted.
pub fn list_scenarios() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(scenarios_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            if path.extension()? != "toml" {
                return None;
            }
            Some(path.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    names
}

/// The names of the scenarios in `scenarios/`, sorted; an error when there
/// are none to be read (a binary run away from the source tree it was built
/// from), so that sweeping "all of them" never passes having run nothing.
pub fn all_scenarios() -> Result<Vec<String>, Error> {
    let dir = scenarios_dir();
    if let Err(error) = std::fs::read_dir(&dir) {
        let message = format!(
            "cannot read the built-in scenarios' directory ({error}): they are read from the \
             source tree this binary was built from; name scenario files by path instead"
        );
        return Err(Error::bad_input(dir.display().to_string(), message));
    }
    let names = list_scenarios();
    if names.is_empty() {
        let message = "holds no scenario (NAME.toml): nothing to run";
        return Err(Error::bad_input(dir.display().to_string(), message));
    }
    Ok(names)
}

impl Scenario {
    /// Loads a scenario by name (from `scenarios/NAME.toml`) or by path: a
    /// path when it ends in `.toml`, has a directory part, or names a file
    /// that is not also a built-in scenario's name.
    pub fn load(name_or_path: &str) -> Result<Scenario, Error> {
        let as_path = Path::new(name_or_path);
        let built_in = scenarios_dir().join(format!("{name_or_path}.toml"));
        let path = if as_path.extension().is_some_and(|ext| ext == "toml")
            || as_path.components().count() > 1
            || (as_path.is_file() && !built_in.is_file())
        {
            as_path.to_path_buf()
        } else {
            built_in
        };
        // A scenario that cannot be read is bad input, not an I/O failure
        // of ours: the user named a file that is not there.
        let text = crate::input::read_text(&path).map_err(|error| {
            let message = match error {
                ReadError::Io(_) => {
                    format!("{error}; known scenarios: {}", list_scenarios().join(", "))
                }
                _ => error.to_string(),
            };
            Error::bad_input(path.display().to_string(), message)
        })?;
        Scenario::parse(&text, &path.display().to_string())
    }

    /// Parses and validates scenario text; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Scenario, Error> {
        let scenario: Scenario = toml::from_str(text)
            .map_err(|error| Error::bad_input(source, toml_message(text, &error)))?;
        written_problems(text, &scenario).map_err(|message| Error::bad_input(source, message))?;
        scenario
            .problems()
            .map_err(|message| Error::bad_input(source, message))?;
        Ok(scenario)
    }

    /// Checks a scenario built or changed in code the way [`Scenario::load`]
    /// checks a file; the error names the scenario and the key.
    pub fn validate(&self) -> Result<(), Error> {
        self.problems()
            .map_err(|message| Error::bad_input(format!("scenario {:?}", self.name), message))
    }

    /// Checks every value against what is allowed; the error starts with
    /// the key (callers put the file before it).
    pub(crate) fn problems(&self) -> Result<(), String> {
        validate_name(&self.name)?;
        let t = &self.topology;
        for (key, value, max) in [
            ("topology.apis", t.apis, 16),
            ("topology.controllers", t.controllers, 32),
            ("topology.workers", t.workers, 32),
            ("topology.clients", t.clients, 16),
        ] {
            if !(1..=max).contains(&value) {
                return Err(format!(
                    "{key} = {value} is out of range: allowed 1..={max}"
                ));
            }
        }
        let run = &self.run;
        range("run.duration_ms", run.duration_ms, RUN_MS_MIN, RUN_MS_MAX)?;
        range(
            "run.liveness_bound_ms",
            run.liveness_bound_ms,
            RUN_MS_MIN,
            RUN_MS_MAX,
        )?;
        range("run.max_events", run.max_events, 1_000, RUN_EVENTS_MAX)?;
        self.validate_network()?;
        range(
            "clocks.max_drift_ppm",
            u64::from(self.clocks.max_drift_ppm),
            0,
            100_000,
        )?;
        range(
            "clocks.max_wall_offset_ms",
            self.clocks.max_wall_offset_ms,
            0,
            86_400_000,
        )?;
        self.validate_faults()?;
        self.buggify.problems()?;
        self.expect.problems()?;
        self.validate_settings()?;
        let (topology, names) = layout(&self.topology);
        let nodes = NodeNames {
            names: &names,
            topology: &topology,
            shard_count: self.controller.shard_count,
        };
        for (index, fault) in self.schedule.iter().enumerate() {
            fault
                .validate(run.duration_ms, &nodes)
                .map_err(|message| format!("schedule[{index}].{message}"))?;
        }
        self.check_end(self.heal_times())?;
        self.validate_resync_load()
    }

    /// The latest each source of faults can heal, in nanoseconds, with
    /// the fields that set it: each `[[schedule]]` entry, and each drawn
    /// kind at the end of its window with its longest duration.
    fn heal_times(&self) -> Vec<(String, u64)> {
        let mut heals = Vec::new();
        for (index, entry) in self.schedule.iter().enumerate() {
            let (field, span_ms) = match entry.kind {
                FaultKind::Crash | FaultKind::Reboot => {
                    ("restart_after_ms", entry.restart_after_ms)
                }
                FaultKind::ClockJump => ("", None),
                _ => ("duration_ms", entry.duration_ms),
            };
            let heal_ms = entry.at_ms.saturating_add(span_ms.unwrap_or(0));
            let how = if field.is_empty() {
                "at_ms".to_string()
            } else {
                format!("at_ms + {field}")
            };
            heals.push((
                format!("schedule[{index}] healing at {heal_ms} ms ({how})"),
                heal_ms.saturating_mul(sim::MILLISECOND_NS),
            ));
        }
        let f = &self.faults;
        // Clock jumps heal at once, within the window: never the latest.
        for (key, rate) in [
            ("partition", &f.partition),
            ("partition_one_way", &f.partition_one_way),
            ("clog", &f.clog),
            ("crash", &f.crash),
            ("reboot", &f.reboot),
            ("pause", &f.pause),
        ] {
            if rate.count_max == 0 {
                continue;
            }
            let heal_ms = f.window_end_ms.saturating_add(rate.duration_max_ms);
            heals.push((
                format!(
                    "faults.{key} healing as late as {heal_ms} ms (faults.window_end_ms + \
                     faults.{key}.duration_max_ms)"
                ),
                heal_ms.saturating_mul(sim::MILLISECOND_NS),
            ));
        }
        heals
    }

    /// A run stops at the simulator's time limit whatever it was doing: a
    /// scenario (or an artifact's faults) whose safety phase, faults
    /// healed, plus the liveness bound ends past it could never have its
    /// liveness judged. `heals` are the latest heal times (ns) with what
    /// sets them; the safety phase ends at the latest of them and
    /// `run.duration_ms`.
    pub(crate) fn check_end(&self, heals: Vec<(String, u64)>) -> Result<(), String> {
        let limit_ns = sim::Limits::default().max_time_ns;
        let limit_ms = limit_ns / sim::MILLISECOND_NS;
        let run = &self.run;
        let start = (
            format!("run.duration_ms = {}", run.duration_ms),
            run.duration_ms.saturating_mul(sim::MILLISECOND_NS),
        );
        let (label, safety_end_ns) =
            heals.into_iter().fold(
                start,
                |latest, heal| if heal.1 > latest.1 { heal } else { latest },
            );
        let end_ns =
            safety_end_ns.saturating_add(run.liveness_bound_ms.saturating_mul(sim::MILLISECOND_NS));
        if end_ns <= limit_ns {
            return Ok(());
        }
        Err(format!(
            "run.liveness_bound_ms = {} after {label} ends the run at {} ms, past the \
             simulator's time limit of {limit_ms} ms, where it would stop without judging \
             liveness: allowed is a safety phase (run.duration_ms, or the last fault's \
             healing if later) plus run.liveness_bound_ms of at most {limit_ms} ms",
            run.liveness_bound_ms,
            end_ns.div_ceil(sim::MILLISECOND_NS)
        ))
    }

    /// Checks faults recorded in an artifact against this scenario as
    /// strictly as `[[schedule]]` entries are checked (with the same
    /// bounds, in nanoseconds, see [`TimeUnit`]), and that the run they
    /// make can end within the simulator's time limit. The error starts
    /// with `faults[N].` and the field.
    pub(crate) fn recorded_fault_problems(&self, faults: &[ScheduledFault]) -> Result<(), String> {
        let (_, names) = layout(&self.topology);
        for (index, fault) in faults.iter().enumerate() {
            check_recorded(fault, self.run.duration_ms, names.len()).map_err(|message| {
                // A field's message starts with the field; a node's with
                // a space (`faults[0] names node 9 ...`).
                let separator = if message.starts_with(' ') { "" } else { "." };
                format!("faults[{index}]{separator}{message}")
            })?;
        }
        let heals = faults
            .iter()
            .enumerate()
            .map(|(index, fault)| {
                let heal_ns = fault.healed_at_ns().unwrap_or(u64::MAX);
                (format!("faults[{index}] healing at {heal_ns} ns"), heal_ns)
            })
            .collect();
        self.check_end(heals)
            .map_err(|message| format!("faults: {message}"))
    }

    fn validate_network(&self) -> Result<(), String> {
        let n = &self.network;
        range("network.latency_min_us", n.latency_min_us, 0, 10_000_000)?;
        range(
            "network.latency_max_us",
            n.latency_max_us,
            n.latency_min_us,
            10_000_000,
        )
        .map_err(|e| format!("{e} (at least network.latency_min_us)"))?;
        range(
            "network.tail_max_us",
            n.tail_max_us,
            n.latency_max_us,
            60_000_000,
        )
        .map_err(|e| format!("{e} (at least network.latency_max_us)"))?;
        // A network that loses most messages can never converge: drops
        // stop at half, and the range says so first.
        for (key, value, high) in [
            ("network.tail_ppm", n.tail_ppm, 1_000_000),
            ("network.drop_ppm", n.drop_ppm, 500_000),
            ("network.duplicate_ppm", n.duplicate_ppm, 1_000_000),
        ] {
            range(key, u64::from(value), 0, high)?;
        }
        Ok(())
    }

    fn validate_faults(&self) -> Result<(), String> {
        let f = &self.faults;
        range(
            "faults.window_end_ms",
            f.window_end_ms,
            0,
            self.run.duration_ms,
        )
        .map_err(|e| format!("{e} (within run.duration_ms)"))?;
        range(
            "faults.window_start_ms",
            f.window_start_ms,
            0,
            f.window_end_ms,
        )
        .map_err(|e| format!("{e} (at most faults.window_end_ms)"))?;
        for (key, rate) in [
            ("partition", &f.partition),
            ("partition_one_way", &f.partition_one_way),
            ("clog", &f.clog),
            ("crash", &f.crash),
            ("reboot", &f.reboot),
            ("pause", &f.pause),
            ("clock_jump", &f.clock_jump),
        ] {
            range(
                &format!("faults.{key}.count_max"),
                u64::from(rate.count_max),
                0,
                1_000,
            )?;
            range(
                &format!("faults.{key}.count_min"),
                u64::from(rate.count_min),
                0,
                u64::from(rate.count_max),
            )
            .map_err(|e| format!("{e} (at most count_max)"))?;
            range(
                &format!("faults.{key}.duration_max_ms"),
                rate.duration_max_ms,
                0,
                600_000,
            )?;
            range(
                &format!("faults.{key}.duration_min_ms"),
                rate.duration_min_ms,
                0,
                rate.duration_max_ms,
            )
            .map_err(|e| format!("{e} (at most duration_max_ms)"))?;
            if rate.count_max > 0 && f.window_end_ms == 0 {
                return Err(format!(
                    "faults.{key}.count_max = {} needs faults.window_end_ms > 0",
                    rate.count_max
                ));
            }
        }
        self.validate_fault_roles()
    }

    /// A fault kind that may be drawn needs nodes to draw it on: otherwise
    /// the knobs promise faults that silently never happen.
    fn validate_fault_roles(&self) -> Result<(), String> {
        let f = &self.faults;
        let (_, names) = layout(&self.topology);
        for (key, rate, roles_key, roles, nodes_needed) in [
            (
                "partition",
                &f.partition,
                "network_roles",
                &f.network_roles,
                2,
            ),
            (
                "partition_one_way",
                &f.partition_one_way,
                "network_roles",
                &f.network_roles,
                2,
            ),
            ("clog", &f.clog, "network_roles", &f.network_roles, 2),
            ("crash", &f.crash, "crash_roles", &f.crash_roles, 1),
            // Reboots hit the crash targets, as in the simulator.
            ("reboot", &f.reboot, "crash_roles", &f.crash_roles, 1),
            ("pause", &f.pause, "pause_roles", &f.pause_roles, 1),
            (
                "clock_jump",
                &f.clock_jump,
                "clock_roles",
                &f.clock_roles,
                1,
            ),
        ] {
            if rate.count_max == 0 {
                continue;
            }
            let nodes = names
                .iter()
                .filter(|(_, role)| roles.contains(role))
                .count();
            if nodes < nodes_needed {
                return Err(format!(
                    "faults.{key}.count_max = {} needs at least {nodes_needed} node(s) in \
                     faults.{roles_key}, but {roles:?} names {nodes}: no {key} could ever be \
                     drawn; allowed roles: store, billing, api, controller, worker, client \
                     (or set faults.{key}.count_max = 0)",
                    rate.count_max
                ));
            }
        }
        Ok(())
    }

    fn validate_settings(&self) -> Result<(), String> {
        range(
            "worker.max_executed_actions",
            self.worker.max_executed_actions as u64,
            1,
            plane::worker::MAX_EXECUTED_ACTIONS as u64,
        )?;
        // Before the store's own check, whose floor of 1 would be the
        // first of two answers to a value below both.
        let ops = self.store.limits.max_ops_per_txn;
        if ops < TXN_OPS_MAX {
            return Err(format!(
                "store.limits.max_ops_per_txn = {ops} is below the {TXN_OPS_MAX} operations of \
                 the largest transaction the nodes send (an API node's commit of a delete); \
                 allowed store.limits.max_ops_per_txn >= {TXN_OPS_MAX}"
            ));
        }
        self.store
            .limits
            .validate()
            .map_err(|e| format!("store.limits: {e}"))?;
        let api = &self.api;
        range("api.request_timeout_ms", api.request_timeout_ms, 1, 60_000)?;
        range("api.session_ttl_ms", api.session_ttl_ms, 100, 600_000)?;
        range(
            "api.keepalive_interval_ms",
            api.keepalive_interval_ms,
            1,
            api.session_ttl_ms / 2,
        )
        .map_err(|e| format!("{e} (at most half of api.session_ttl_ms)"))?;
        range(
            "api.completer_interval_ms",
            api.completer_interval_ms,
            10,
            600_000,
        )?;
        range(
            "api.idempotency_ttl_ms",
            api.idempotency_ttl_ms,
            1_000,
            86_400_000,
        )?;
        let c = &self.controller;
        range("controller.shard_count", u64::from(c.shard_count), 1, 4_096)?;
        range("controller.session_ttl_ms", c.session_ttl_ms, 100, 600_000)?;
        range(
            "controller.keepalive_interval_ms",
            c.keepalive_interval_ms,
            1,
            c.session_ttl_ms / 3,
        )
        .map_err(|e| format!("{e} (at most a third of controller.session_ttl_ms)"))?;
        range(
            "controller.membership_interval_ms",
            c.membership_interval_ms,
            10,
            600_000,
        )?;
        range(
            "controller.resync_interval_ms",
            c.resync_interval_ms,
            10,
            600_000,
        )?;
        range(
            "controller.request_timeout_ms",
            c.request_timeout_ms,
            1,
            60_000,
        )?;
        range("controller.backoff_base_ms", c.backoff_base_ms, 1, 60_000)?;
        range(
            "controller.backoff_cap_ms",
            c.backoff_cap_ms,
            c.backoff_base_ms,
            600_000,
        )
        .map_err(|e| format!("{e} (at least controller.backoff_base_ms)"))?;
        range(
            "controller.max_concurrent_reconciles",
            u64::from(c.max_concurrent_reconciles),
            1,
            1_024,
        )?;
        let mut with_drift = c.clone();
        with_drift.max_drift_ppm = self.clocks.max_drift_ppm;
        if with_drift.lease_validity_ms() <= c.keepalive_interval_ms {
            return Err(format!(
                "controller.session_ttl_ms = {} leaves no usable lease validity under clocks.max_drift_ppm = {} \
                 and controller.lease_margin_ms = {}: raise the TTL or lower the margin",
                c.session_ttl_ms, self.clocks.max_drift_ppm, c.lease_margin_ms
            ));
        }
        let cl = &self.client;
        range(
            "client.request_interval_ms",
            cl.request_interval_ms,
            1,
            600_000,
        )?;
        range(
            "client.request_timeout_ms",
            cl.request_timeout_ms,
            1,
            600_000,
        )?;
        range(
            "client.workload_end_ms",
            cl.workload_end_ms,
            0,
            self.run.duration_ms,
        )
        .map_err(|e| format!("{e} (within run.duration_ms)"))?;
        range("client.max_attempts", u64::from(cl.max_attempts), 1, 1_000)?;
        range("client.probe_interval_ms", cl.probe_interval_ms, 0, 600_000)?;
        range("client.max_replicas", u64::from(cl.max_replicas), 1, 64)?;
        range("client.max_creates", u64::from(cl.max_creates), 0, 10_000)?;
        for (key, value) in [
            ("client.retry_other_api_ppm", cl.retry_other_api_ppm),
            ("client.duplicate_send_ppm", cl.duplicate_send_ppm),
            ("client.reuse_key_ppm", cl.reuse_key_ppm),
            ("client.missing_key_ppm", cl.missing_key_ppm),
            ("client.update_ppm", cl.update_ppm),
            ("client.read_ppm", cl.read_ppm),
            ("client.list_ppm", cl.list_ppm),
            ("client.delete_ppm", cl.delete_ppm),
        ] {
            range(key, u64::from(value), 0, 1_000_000)?;
        }
        if u64::from(cl.update_ppm) + u64::from(cl.delete_ppm) > 1_000_000 {
            return Err("client.update_ppm + client.delete_ppm must be at most 1000000".into());
        }
        // An Idempotency-Key only protects retries that reach the API while
        // the key is kept: a retry after it expired is a new request. Real
        // APIs keep keys for hours and clients retry for seconds; demand a
        // wide gap, so that no retry held up by the network or a paused
        // node can outlive its key.
        let retry_span_ms = u64::from(cl.max_attempts)
            * (cl.request_timeout_ms + plane::client::RETRY_DELAY_MS_MAX);
        let ttl_floor_ms = KEY_TTL_PER_RETRY_SPAN * retry_span_ms;
        if self.api.idempotency_ttl_ms < ttl_floor_ms {
            return Err(format!(
                "api.idempotency_ttl_ms = {} is too short for the clients' retries: allowed \
                 at least {ttl_floor_ms} ({KEY_TTL_PER_RETRY_SPAN} times client.max_attempts \
                 x (client.request_timeout_ms + {} ms of retry delay)), so that no retry \
                 outlives its key",
                self.api.idempotency_ttl_ms,
                plane::client::RETRY_DELAY_MS_MAX
            ));
        }
        self.validate_store_limits()
    }

    /// Refuses a scenario whose resyncs alone would use up half of
    /// `run.max_events`. At every resync each shard's holder asks every
    /// worker what runs for the shard: two events per (shard, worker), the
    /// request and its reply (the request's timeout is cancelled when the
    /// reply comes, and a cancelled timer is no event). Such a run would
    /// stop at the event limit instead of being judged (the largest
    /// topology with 4,096 shards did, after 22 of its 50 simulated
    /// seconds, when a cancelled timeout still counted as one). Half,
    /// because the rest of a run at that scale (fencing on every shard
    /// move, leases, the workload) takes a fair share too. The run is
    /// taken to last until the latest its faults can heal, plus the
    /// liveness bound.
    fn validate_resync_load(&self) -> Result<(), String> {
        let (run, c, t) = (&self.run, &self.controller, &self.topology);
        let safety_end_ms = self
            .heal_times()
            .into_iter()
            .map(|(_, heal_ns)| heal_ns.div_ceil(sim::MILLISECOND_NS))
            .fold(run.duration_ms, u64::max);
        let end_ms = safety_end_ms.saturating_add(run.liveness_bound_ms);
        let rounds = end_ms / c.resync_interval_ms + 1;
        let per_round = 2 * u64::from(c.shard_count) * u64::from(t.workers);
        let events = per_round.saturating_mul(rounds);
        let budget = run.max_events / 2;
        if events <= budget {
            return Ok(());
        }
        Err(format!(
            "controller.shard_count = {} with topology.workers = {} makes {events} resync \
             events ({per_round} a round: a request and its reply per shard and \
             worker; {rounds} rounds of controller.resync_interval_ms = {} in a run of {end_ms} \
             ms, faults healed plus run.liveness_bound_ms), over half of run.max_events = {}, \
             so the run would stop at the event limit: allowed are at most {budget} (fewer \
             shards or workers, a longer resync interval, or a higher run.max_events)",
            c.shard_count, t.workers, c.resync_interval_ms, run.max_events
        ))
    }

    /// The store refuses what breaks its limits, so limits below what the
    /// nodes need make every such request fail, silently, as a liveness
    /// failure seeds later. Checked where the need is known from the
    /// configuration: every lease TTL the nodes ask for, the leases and
    /// keys the topology holds at least, the largest transaction the nodes
    /// send and the smallest ledger entry a create writes.
    fn validate_store_limits(&self) -> Result<(), String> {
        let limits = &self.store.limits;
        let ledger_ttl_ms = self.api.ledger_lease_ttl_ms();
        for (asked, ttl_ms, who) in [
            (
                format!(
                    "controller.session_ttl_ms = {}",
                    self.controller.session_ttl_ms
                ),
                self.controller.session_ttl_ms,
                "every controller's session lease",
            ),
            (
                format!("api.session_ttl_ms = {}", self.api.session_ttl_ms),
                self.api.session_ttl_ms,
                "every API node's session lease",
            ),
            (
                format!(
                    "the {ledger_ttl_ms} ms ledger leases of api.idempotency_ttl_ms = {} (a key's \
                     lifetime plus two share windows of an eighth of it)",
                    self.api.idempotency_ttl_ms
                ),
                ledger_ttl_ms,
                "every idempotency key's ledger lease",
            ),
        ] {
            if ttl_ms < limits.min_ttl_ms {
                return Err(format!(
                    "store.limits.min_ttl_ms = {} is above {asked}: the store would \
                     refuse {who}; allowed store.limits.min_ttl_ms <= {ttl_ms}",
                    limits.min_ttl_ms
                ));
            }
            if ttl_ms > limits.max_ttl_ms {
                return Err(format!(
                    "store.limits.max_ttl_ms = {} is below {asked}: the store would \
                     refuse {who}; allowed store.limits.max_ttl_ms >= {ttl_ms}",
                    limits.max_ttl_ms
                ));
            }
        }
        let t = &self.topology;
        // A workload that can create anything records keys on leases.
        let creates = self.client.max_creates > 0 && self.client.workload_end_ms > 0;
        let request = usize::from(creates);
        // One session lease per API node and controller, plus, per API
        // node that records keys, the ledger leases its keys share while
        // they live (one per share window).
        let ledger_leases = self.api.ledger_lease_ttl_ms() / self.api.ledger_lease_share_ms() + 1;
        let leases = t.apis as usize
            + t.controllers as usize
            + request * t.apis as usize * ledger_leases as usize;
        if limits.max_leases < leases {
            return Err(format!(
                "store.limits.max_leases = {} is below the {leases} leases the nodes hold at \
                 least (one session per API node and controller: topology.apis = {} + \
                 topology.controllers = {}{}); allowed store.limits.max_leases >= {leases}",
                limits.max_leases,
                t.apis,
                t.controllers,
                if creates {
                    format!(", + {ledger_leases} ledger leases per API node")
                } else {
                    String::new()
                }
            ));
        }
        // A membership key per controller, a key per shard, the leader
        // key, and for one request its ledger entry, lock, resource and
        // status.
        let keys = t.controllers as usize
            + self.controller.shard_count as usize
            + 1
            + REQUEST_KEYS * request;
        if limits.max_keys < keys {
            return Err(format!(
                "store.limits.max_keys = {} is below the {keys} keys the nodes hold at least \
                 (topology.controllers = {} membership keys + controller.shard_count = {} \
                 shard keys + 1 leader key{}); allowed store.limits.max_keys >= {keys}",
                limits.max_keys,
                t.controllers,
                self.controller.shard_count,
                if creates {
                    " + 4 keys of one request: ledger entry, lock, resource, status"
                } else {
                    ""
                }
            ));
        }
        // The first client's first name, `c{node id}-0`: clients come
        // after store, billing, API nodes, controllers and workers.
        let first_client = 2 + t.apis as usize + t.controllers as usize + t.workers as usize;
        let name_bytes = 3 + first_client.to_string().len();
        let entry_bytes = LEDGER_ENTRY_BYTES_FIXED + 2 * name_bytes;
        if creates && limits.max_value_bytes < entry_bytes {
            return Err(format!(
                "store.limits.max_value_bytes = {} is below the {entry_bytes} bytes of the \
                 smallest finished ledger entry a create writes here (a resource named \
                 c{first_client}-0), so no create could finish; allowed \
                 store.limits.max_value_bytes >= {entry_bytes} (or client.max_creates = 0)",
                limits.max_value_bytes
            ));
        }
        Ok(())
    }

    /// The node settings of a run of this scenario, each node kind's with
    /// the planted bugs.
    pub fn settings(&self) -> Settings {
        let bugs: BTreeSet<Bug> = self.bugs.iter().copied().collect();
        let mut controller = self.controller.clone();
        controller.max_drift_ppm = self.clocks.max_drift_ppm;
        controller.bugs = bugs.clone();
        let mut api = self.api.clone();
        api.bugs = bugs.clone();
        Settings {
            store: self.store.clone(),
            api,
            controller,
            worker: WorkerSettings {
                bugs,
                ..self.worker.clone()
            },
            client: self.client.clone(),
        }
    }

    /// Turns `bug` on (once, whatever how often it is asked for).
    pub fn plant(&mut self, bug: Bug) {
        if !self.bugs.contains(&bug) {
            self.bugs.push(bug);
            self.bugs.sort_unstable();
        }
    }

    /// A stable hash of the whole resolved scenario, printed in reports.
    pub fn config_hash(&self) -> u64 {
        sim::stable_hash(self)
    }
}

/// A TOML error in the words of the file: the key at fault, what it
/// allows (not the Rust type serde names), and where. A syntax error keeps
/// the parser's own message, which quotes the line.
fn toml_message(text: &str, error: &toml::de::Error) -> String {
    let original = error.to_string().trim_end().to_string();
    let Some(span) = error.span() else {
        return plain_words(&original, Format::Toml, &serde_shapes(), &[]);
    };
    if toml::de::DeTable::parse(text).is_err() {
        return original;
    }
    let mut message = plain_words(error.message(), Format::Toml, &serde_shapes(), &[]);
    let (line, column) = line_column(text, span.start);
    let Some(key) = toml_key_at(text, span) else {
        return format!("{message} (line {line}, column {column})");
    };
    // toml's words for a name that is not a string name no type; the key
    // says which names are allowed.
    if message == "wanted string or table" {
        let field = key.rsplit('.').next().unwrap_or_default();
        let field = field.split('[').next().unwrap_or_default();
        let names = match field {
            "kind" => shape::<FaultKind>(),
            "bugs" => shape::<Bug>(),
            _ if field.ends_with("_roles") => shape::<Role>(),
            _ => None,
        };
        if let Some(Shape::Enum(_, variants)) = names {
            let quoted: Vec<String> = variants.iter().map(|v| format!("`{v}`")).collect();
            message = format!("expected a string, one of {}", quoted.join(", "));
        }
    }
    format!("{key}: {message} (line {line}, column {column})")
}

/// The shapes of every type a scenario holds, for [`plain_words`].
pub(crate) fn serde_shapes() -> Vec<Shape> {
    [
        shape::<Scenario>(),
        shape::<TopologySpec>(),
        shape::<RunSpec>(),
        shape::<ExpectSpec>(),
        shape::<NetworkSpec>(),
        shape::<ClockSpec>(),
        shape::<FaultSpec>(),
        shape::<RateSpec>(),
        shape::<ScheduledSpec>(),
        shape::<FaultKind>(),
        shape::<Role>(),
        shape::<ApiSettings>(),
        controller_shape(),
        shape::<ClientSettings>(),
        shape::<StoreSettings>(),
        shape::<plane::store::StoreLimits>(),
        shape::<WorkerSettings>(),
        shape::<BuggifySpec>(),
        shape::<Bug>(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A key the scenario sets from another one, never from the file: written,
/// it would be overwritten without a word, so it is refused, and it is left
/// out wherever its table's keys are listed.
struct DerivedKey {
    table: &'static str,
    key: &'static str,
    /// The key to set instead, and why.
    from: &'static str,
    why: &'static str,
}

/// `controller.max_drift_ppm` is the drift the controllers' leases allow
/// for, and that is the clocks' own bound.
const DERIVED: DerivedKey = DerivedKey {
    table: "controller",
    key: "max_drift_ppm",
    from: "clocks.max_drift_ppm",
    why: "the controllers allow for the drift the clocks may have",
};

/// `[controller]` as a scenario may write it: without [`DERIVED`]'s key.
fn controller_shape() -> Option<Shape> {
    static WRITABLE: OnceLock<Vec<&'static str>> = OnceLock::new();
    let Some(Shape::Struct(name, fields)) = shape::<ControllerSettings>() else {
        return None;
    };
    let writable = WRITABLE.get_or_init(|| {
        let writable = fields.iter().copied().filter(|&f| f != DERIVED.key);
        writable.collect()
    });
    Some(Shape::Struct(name, writable))
}

/// The longest a scheduled fault may last (and the longest a crashed node
/// may stay down): an hour, the longest run. Bounded so that `ms * 1e6`
/// cannot overflow and a typo cannot stall a run forever.
const SCHEDULED_DURATION_MS_MAX: u64 = 3_600_000;

/// The largest scheduled wall-clock jump, either way: a day.
const SCHEDULED_DELTA_MS_MAX: i64 = 86_400_000;

/// The longest delay a degrade adds to a message: a minute, the longest
/// latency tail a scenario's network may have (`network.tail_max_us`).
const SCHEDULED_DELAY_MS_MAX: u64 = 60_000;

/// How a fault's times are written: `[[schedule]]` entries in
/// milliseconds, the recorded faults of an artifact in nanoseconds. The
/// bounds are the same; only the unit, and so the field names, differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeUnit {
    /// `_ms` fields.
    Ms,
    /// `_ns` fields.
    Ns,
}

impl TimeUnit {
    fn suffix(self) -> &'static str {
        match self {
            TimeUnit::Ms => "ms",
            TimeUnit::Ns => "ns",
        }
    }

    /// How many of this unit make a millisecond.
    fn per_ms(self) -> u64 {
        match self {
            TimeUnit::Ms => 1,
            TimeUnit::Ns => sim::MILLISECOND_NS,
        }
    }

    /// The shortest allowed duration: a scenario's scheduled fault lasts
    /// at least 1 ms, but a fault drawn from the seed may last 0 (when
    /// `duration_min_ms = 0`), and an artifact records what was drawn, so
    /// it must take what a sweep wrote.
    fn span_min(self) -> u64 {
        match self {
            TimeUnit::Ms => 1,
            TimeUnit::Ns => 0,
        }
    }
}

/// A fault starts within the safety phase.
fn check_start(at: u64, duration_ms: u64, unit: TimeUnit) -> Result<(), String> {
    let key = format!("at_{}", unit.suffix());
    range(&key, at, 0, duration_ms.saturating_mul(unit.per_ms()))
        .map_err(|e| format!("{e} (within run.duration_ms)"))
}

/// A duration or down time (`duration`, `restart_after`) is bounded, so
/// that a typo cannot stall a run and nanoseconds cannot overflow.
fn check_span(key: &str, value: u64, unit: TimeUnit) -> Result<(), String> {
    let key = format!("{key}_{}", unit.suffix());
    let max = SCHEDULED_DURATION_MS_MAX * unit.per_ms();
    range(&key, value, unit.span_min(), max)
}

/// A wall-clock jump is at most a day either way.
fn check_delta(delta: i64, unit: TimeUnit) -> Result<(), String> {
    let max = SCHEDULED_DELTA_MS_MAX * unit.per_ms() as i64;
    if (-max..=max).contains(&delta) {
        return Ok(());
    }
    Err(format!(
        "delta_{} = {delta} is out of range: allowed -{max}..={max} (a day either way)",
        unit.suffix()
    ))
}

/// A chance in parts per million is at most one.
fn check_chance(key: &str, value: u32) -> Result<(), String> {
    range(key, u64::from(value), 0, 1_000_000).map_err(|e| format!("{e} (parts per million)"))
}

/// A degrade's delay is at most a minute.
fn check_delay(delay: u64, unit: TimeUnit) -> Result<(), String> {
    let key = format!("delay_{}", unit.suffix());
    let max = SCHEDULED_DELAY_MS_MAX * unit.per_ms();
    range(&key, delay, 0, max)
        .map_err(|e| format!("{e} (a minute, the longest latency tail a network may have)"))
}

/// A drift fault's rate error is bounded as a configured drift is, by
/// what the simulator's clocks allow.
pub(crate) fn check_drift(drift_ppm: i32) -> Result<(), String> {
    let limit = sim::DRIFT_PPM_LIMIT;
    if (-limit..=limit).contains(&drift_ppm) {
        return Ok(());
    }
    Err(format!(
        "drift_ppm = {drift_ppm} is out of range: allowed -{limit}..={limit} (the simulator's \
         clock bound; positive is a slow clock)"
    ))
}

/// Why a crash or reboot must name its down time.
fn restart_required(kind: FaultKind, unit: TimeUnit) -> String {
    let key = format!("restart_after_{}", unit.suffix());
    let allowed = format!(
        "allowed {}..={}",
        unit.span_min(),
        SCHEDULED_DURATION_MS_MAX * unit.per_ms()
    );
    if kind == FaultKind::Reboot {
        format!(
            "{key} is required for kind = \"reboot\": a reboot always comes back, on a new \
             boot, after its down time; {allowed}"
        )
    } else {
        format!(
            "{key} is required for kind = \"crash\": a node that never comes back is a fault \
             that never heals, which leaves liveness unjudgeable (nothing can be required to \
             converge after it); {allowed}"
        )
    }
}

/// Checks one recorded fault with the checks of a `[[schedule]]` entry,
/// in nanoseconds; node ids must be below `node_count`.
fn check_recorded(
    fault: &ScheduledFault,
    duration_ms: u64,
    node_count: usize,
) -> Result<(), String> {
    let unit = TimeUnit::Ns;
    check_start(fault.at_ns, duration_ms, unit)?;
    let kind = fault.fault.kind_name();
    match &fault.fault {
        sim::Fault::Partition {
            side_a,
            duration_ns,
            ..
        } => {
            if side_a.is_empty() {
                return Err(format!(
                    "side_a is required for kind = \"{kind}\": allowed a non-empty list of node ids"
                ));
            }
            check_span("duration", *duration_ns, unit)?;
        }
        sim::Fault::Clog { duration_ns, .. } | sim::Fault::Pause { duration_ns, .. } => {
            check_span("duration", *duration_ns, unit)?;
        }
        sim::Fault::Crash {
            restart_after_ns, ..
        } => match restart_after_ns {
            Some(after) => check_span("restart_after", *after, unit)?,
            None => return Err(restart_required(FaultKind::Crash, unit)),
        },
        sim::Fault::Reboot {
            restart_after_ns, ..
        } => check_span("restart_after", *restart_after_ns, unit)?,
        sim::Fault::ClockJump { delta_ns, .. } => check_delta(*delta_ns, unit)?,
        sim::Fault::Degrade {
            drop_ppm,
            duplicate_ppm,
            delay_ns,
            duration_ns,
            ..
        } => {
            check_span("duration", *duration_ns, unit)?;
            check_chance("drop_ppm", *drop_ppm)?;
            check_chance("duplicate_ppm", *duplicate_ppm)?;
            check_delay(*delay_ns, unit)?;
        }
        sim::Fault::ClockDrift {
            drift_ppm,
            duration_ns,
            ..
        } => {
            check_span("duration", *duration_ns, unit)?;
            check_drift(*drift_ppm)?;
        }
    }
    let node = |key: String, id: sim::NodeId| {
        if (id.0 as usize) < node_count {
            Ok(())
        } else {
            Err(format!(
                " names node {} in {key}, but the scenario's topology has nodes 0..{node_count}: \
                 allowed {key} in 0..={}",
                id.0,
                node_count - 1
            ))
        }
    };
    match &fault.fault {
        sim::Fault::Partition { side_a, side_b, .. } => {
            for (index, &id) in side_a.iter().enumerate() {
                node(format!("side_a[{index}]"), id)?;
            }
            for (index, &id) in side_b.iter().enumerate() {
                node(format!("side_b[{index}]"), id)?;
            }
            Ok(())
        }
        sim::Fault::Clog { from, to, .. } => {
            node("from".to_string(), *from)?;
            node("to".to_string(), *to)
        }
        sim::Fault::Degrade { nodes, .. } => {
            for (index, &id) in nodes.iter().enumerate() {
                node(format!("nodes[{index}]"), id)?;
            }
            Ok(())
        }
        sim::Fault::ClockDrift { node: id, .. }
        | sim::Fault::Crash { node: id, .. }
        | sim::Fault::Reboot { node: id, .. }
        | sim::Fault::Pause { node: id, .. }
        | sim::Fault::ClockJump { node: id, .. } => node("node".to_string(), *id),
    }
}

/// Which fault kinds each optional field of a `[[schedule]]` entry applies
/// to: a field given to another kind would be silently ignored.
const SCHEDULE_FIELDS: [(&str, &[FaultKind]); 13] = [
    (
        "side_a",
        &[FaultKind::Partition, FaultKind::PartitionOneWay],
    ),
    (
        "side_b",
        &[FaultKind::Partition, FaultKind::PartitionOneWay],
    ),
    ("from", &[FaultKind::Clog]),
    ("to", &[FaultKind::Clog]),
    (
        "node",
        &[
            FaultKind::Crash,
            FaultKind::Reboot,
            FaultKind::Pause,
            FaultKind::ClockJump,
            FaultKind::ClockDrift,
        ],
    ),
    (
        "duration_ms",
        &[
            FaultKind::Partition,
            FaultKind::PartitionOneWay,
            FaultKind::Clog,
            FaultKind::Pause,
            FaultKind::Degrade,
            FaultKind::ClockDrift,
        ],
    ),
    ("restart_after_ms", &[FaultKind::Crash, FaultKind::Reboot]),
    ("delta_ms", &[FaultKind::ClockJump]),
    ("nodes", &[FaultKind::Degrade]),
    ("drop_ppm", &[FaultKind::Degrade]),
    ("duplicate_ppm", &[FaultKind::Degrade]),
    ("delay_ms", &[FaultKind::Degrade]),
    ("drift_ppm", &[FaultKind::ClockDrift]),
];

impl ScheduledSpec {
    /// Checks one entry; the error starts with the key (the caller puts
    /// `schedule[N].` before it).
    fn validate(&self, duration_ms: u64, nodes: &NodeNames) -> Result<(), String> {
        let unit = TimeUnit::Ms;
        check_start(self.at_ms, duration_ms, unit)?;
        self.validate_fields()?;
        for (key, value) in [
            ("duration", self.duration_ms),
            ("restart_after", self.restart_after_ms),
        ] {
            if let Some(value) = value {
                check_span(key, value, unit)?;
            }
        }
        if let Some(delta_ms) = self.delta_ms {
            check_delta(delta_ms, unit)?;
        }
        for (key, value) in [
            ("drop_ppm", self.drop_ppm),
            ("duplicate_ppm", self.duplicate_ppm),
        ] {
            if let Some(value) = value {
                check_chance(key, value)?;
            }
        }
        if let Some(delay_ms) = self.delay_ms {
            check_delay(delay_ms, unit)?;
        }
        if let Some(drift_ppm) = self.drift_ppm {
            check_drift(drift_ppm)?;
        }
        let changes_nothing = [self.drop_ppm, self.duplicate_ppm]
            .iter()
            .all(|chance| chance.unwrap_or(0) == 0)
            && self.delay_ms.unwrap_or(0) == 0;
        if self.kind == FaultKind::Degrade && changes_nothing {
            return Err(
                "drop_ppm, duplicate_ppm or delay_ms must be above 0 for kind = \"degrade\": a \
                 degrade without one changes nothing; allowed drop_ppm and duplicate_ppm \
                 0..=1000000, delay_ms 0..=60000"
                    .to_string(),
            );
        }
        let one = |key: &str, name: &Option<String>| match name {
            Some(name) => nodes
                .resolve(name)
                .map(drop)
                .map_err(|e| format!("{key} = {name:?} {e}")),
            None => Ok(()),
        };
        let many = |key: &str, list: &[String]| {
            list.iter().enumerate().try_for_each(|(index, name)| {
                nodes
                    .resolve(name)
                    .map(drop)
                    .map_err(|e| format!("{key}[{index}] = {name:?} {e}"))
            })
        };
        many("side_a", &self.side_a)?;
        many("side_b", &self.side_b)?;
        many("nodes", &self.nodes)?;
        one("from", &self.from)?;
        one("to", &self.to)?;
        one("node", &self.node)?;
        // By name only: names such as `holder:shard-0` and `holder:leader`
        // resolve when the fault starts, and may then name one node (the
        // fault then cuts nothing between them).
        if let Some(name) = self.side_a.iter().find(|name| self.side_b.contains(name)) {
            return Err(format!(
                "side_a and side_b both name {name:?}: a node cannot be cut from itself; \
                 allowed two lists with no node in common"
            ));
        }
        if let (Some(from), Some(to)) = (&self.from, &self.to)
            && from == to
        {
            return Err(format!(
                "from and to both name {from:?}: a clog slows the link between two nodes; \
                 allowed two different nodes"
            ));
        }
        Ok(())
    }

    /// Every field the kind needs is there, and none it ignores.
    fn validate_fields(&self) -> Result<(), String> {
        let kind = kind_name(self.kind);
        for (field, kinds) in SCHEDULE_FIELDS {
            if self.has(field) && !kinds.contains(&self.kind) {
                let applies: Vec<&str> = kinds.iter().map(|&k| kind_name(k)).collect();
                let hint = match (self.kind, field) {
                    (FaultKind::Crash, "duration_ms") => {
                        " (a crashed node's down time is restart_after_ms)"
                    }
                    (FaultKind::Reboot, "duration_ms") => {
                        " (a rebooting node's down time is restart_after_ms)"
                    }
                    _ => "",
                };
                return Err(format!(
                    "{field} does not apply to kind = \"{kind}\": it applies to {}{hint}",
                    applies.join(", ")
                ));
            }
        }
        let required: &[&str] = match self.kind {
            FaultKind::Partition | FaultKind::PartitionOneWay => &["side_a", "duration_ms"],
            FaultKind::Clog => &["from", "to", "duration_ms"],
            FaultKind::Crash | FaultKind::Reboot => &["node", "restart_after_ms"],
            FaultKind::Pause => &["node", "duration_ms"],
            FaultKind::ClockJump => &["node", "delta_ms"],
            FaultKind::Degrade => &["duration_ms"],
            FaultKind::ClockDrift => &["node", "drift_ppm", "duration_ms"],
        };
        match required.iter().find(|field| !self.has(field)) {
            None => Ok(()),
            Some(&"restart_after_ms") => Err(restart_required(self.kind, TimeUnit::Ms)),
            Some(field) => Err(format!("{field} is required for kind = \"{kind}\"")),
        }
    }

    /// Whether the entry sets `field` (a list counts when not empty).
    fn has(&self, field: &str) -> bool {
        match field {
            "side_a" => !self.side_a.is_empty(),
            "side_b" => !self.side_b.is_empty(),
            "from" => self.from.is_some(),
            "to" => self.to.is_some(),
            "node" => self.node.is_some(),
            "duration_ms" => self.duration_ms.is_some(),
            "restart_after_ms" => self.restart_after_ms.is_some(),
            "delta_ms" => self.delta_ms.is_some(),
            "nodes" => !self.nodes.is_empty(),
            "drop_ppm" => self.drop_ppm.is_some(),
            "duplicate_ppm" => self.duplicate_ppm.is_some(),
            "delay_ms" => self.delay_ms.is_some(),
            "drift_ppm" => self.drift_ppm.is_some(),
            _ => unreachable!("SCHEDULE_FIELDS names only fields of ScheduledSpec"),
        }
    }
}

/// A scenario's name becomes part of file names (sweep artifacts, zoo
/// reproducers), so it may not carry path separators or dots.
fn validate_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if first && rest && name.len() <= NAME_LEN_MAX {
        Ok(())
    } else {
        Err(format!(
            "name = {name:?} is not allowed: it names artifact files, so allowed is a \
             lowercase letter or digit followed by lowercase letters, digits, `-` and `_` \
             ([a-z0-9][a-z0-9-_]*), at most {NAME_LEN_MAX} characters"
        ))
    }
}

/// The longest scenario name.
const NAME_LEN_MAX: usize = 64;

fn kind_name(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::Partition => "partition",
        FaultKind::PartitionOneWay => "partition_one_way",
        FaultKind::Clog => "clog",
        FaultKind::Crash => "crash",
        FaultKind::Reboot => "reboot",
        FaultKind::Pause => "pause",
        FaultKind::ClockJump => "clock_jump",
        FaultKind::Degrade => "degrade",
        FaultKind::ClockDrift => "clock_drift",
    }
}

/// The shortest and longest `run.duration_ms` and `run.liveness_bound_ms`.
pub(crate) const RUN_MS_MIN: u64 = 1_000;
pub(crate) const RUN_MS_MAX: u64 = 3_600_000;
/// The most `run.max_events` a scenario may allow.
pub(crate) const RUN_EVENTS_MAX: u64 = 1_000_000_000;

/// The keys one request holds in the store: its ledger entry, its lock,
/// the resource and its status (`plane::protocol::keys`). The entry's copy
/// in the open index lives only until the commit that writes the resource
/// deletes it: before it, a request holds at most its entry, the copy and
/// the lock; after it, the entry, the resource and the status.
const REQUEST_KEYS: usize = 4;

/// The most operations in one branch of any transaction the nodes send:
/// an API node's commit of a delete (`plane/src/api/commit.rs`: delete the
/// resource and its status, put the finished ledger entry, delete its copy
/// in the open index and the lock). The store checks compares, success and
/// failure branches each.
const TXN_OPS_MAX: usize = 5;

/// A finished ledger entry of a create, by `StoreValue::size_bytes`
/// (`plane/src/protocol/values.rs`), without its two copies of the
/// resource's name: 64 bytes, the resource id (`r` and 16 hex digits, 17
/// bytes), and a 201 body of 32 bytes and the id again. The name is the
/// client's `c{node id}-{sequence}` (`plane/src/client.rs`). This is a
/// floor, not a sufficient size: later names and updates are longer.
const LEDGER_ENTRY_BYTES_FIXED: usize = 64 + 17 + 32 + 17;

/// How many times the clients' whole retry span a key must be kept.
const KEY_TTL_PER_RETRY_SPAN: u64 = 10;

/// What the file's text says that the parsed scenario cannot show, from
/// one read of it as a plain table (`text` parsed as `scenario` already):
/// the [`DERIVED`] key written, and a table written as an array (see
/// [`tables_not_arrays`]).
fn written_problems(text: &str, scenario: &Scenario) -> Result<(), String> {
    let Ok(raw) = text.parse::<toml::Table>() else {
        return Ok(());
    };
    let DerivedKey {
        table,
        key,
        from,
        why,
    } = DERIVED;
    let derived = raw.get(table).and_then(toml::Value::as_table);
    if let Some(value) = derived.and_then(|fields| fields.get(key)) {
        return Err(format!(
            "{table}.{key} = {value} cannot be set: {why}, {from}; set that instead"
        ));
    }
    let (Ok(raw), Ok(mut parsed)) = (serde_json::to_value(raw), serde_json::to_value(scenario))
    else {
        return Ok(());
    };
    // Not offered in the table's fields, here either.
    if let Some(fields) = parsed.get_mut(table).and_then(|v| v.as_object_mut()) {
        fields.remove(key);
    }
    tables_not_arrays(&raw, &parsed, Format::Toml)
}

fn range(key: &str, value: u64, low: u64, high: u64) -> Result<(), String> {
    if (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{key} = {value} is out of range: allowed {low}..={high}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "name = \"t\"\ndescription = \"d\"\n";

    #[test]
    fn a_minimal_scenario_takes_every_default() {
        let scenario = Scenario::parse(MINIMAL, "t.toml").unwrap();
        assert_eq!(scenario.topology, TopologySpec::default());
        assert_eq!(scenario.controller.shard_count, 16);
    }

    #[test]
    fn an_unknown_key_is_named_with_the_file() {
        let error =
            Scenario::parse(&format!("{MINIMAL}[topology]\nworkerz = 3\n"), "x.toml").unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("x.toml: "), "{text}");
        assert!(text.contains("workerz"), "{text}");
        assert!(text.contains("workers"), "lists what is allowed: {text}");
    }

    #[test]
    fn a_wrong_type_is_named() {
        let error = Scenario::parse(
            &format!("{MINIMAL}[topology]\nworkers = \"three\"\n"),
            "x.toml",
        )
        .unwrap_err();
        assert!(error.to_string().contains("workers"), "{error}");
    }

    #[test]
    fn a_worker_ledger_bound_of_zero_is_refused_and_a_small_one_is_kept() {
        let error = Scenario::parse(
            &format!("{MINIMAL}[worker]\nmax_executed_actions = 0\n"),
            "x.toml",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "x.toml: worker.max_executed_actions = 0 is out of range: allowed 1..=1000000"
        );
        let error = Scenario::parse(&format!("{MINIMAL}[worker]\nmax_executed = 8\n"), "x.toml")
            .unwrap_err()
            .to_string();
        assert!(error.contains("max_executed_actions"), "{error}");
        let small = Scenario::parse(
            &format!("{MINIMAL}[worker]\nmax_executed_actions = 8\n"),
            "x.toml",
        )
        .unwrap();
        assert_eq!(small.settings().worker.max_executed_actions, 8);
        let plain = Scenario::parse(MINIMAL, "x.toml").unwrap();
        assert_ne!(small.config_hash(), plain.config_hash());
    }

    #[test]
    fn an_out_of_range_value_names_the_key_and_the_range() {
        let error = Scenario::parse(
            &format!("{MINIMAL}[network]\ndrop_ppm = 2000000\n"),
            "x.toml",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "x.toml: network.drop_ppm = 2000000 is out of range: allowed 0..=500000"
        );
    }

    #[test]
    fn a_syntax_error_is_reported_with_the_file() {
        let error = Scenario::parse("name = \n", "x.toml").unwrap_err();
        assert!(error.to_string().starts_with("x.toml: "), "{error}");
    }

    #[test]
    fn a_scheduled_fault_missing_its_node_is_named() {
        let text =
            format!("{MINIMAL}[[schedule]]\nat_ms = 10\nkind = \"pause\"\nduration_ms = 5\n");
        let error = Scenario::parse(&text, "x.toml").unwrap_err();
        assert_eq!(
            error.to_string(),
            "x.toml: schedule[0].node is required for kind = \"pause\""
        );
    }

    #[test]
    fn planted_bugs_reach_every_node_kind_and_default_to_none() {
        let clean = Scenario::parse(MINIMAL, "t.toml").unwrap();
        assert!(clean.bugs.is_empty() && clean.settings().api.bugs.is_empty());
        let text = format!("{MINIMAL}bugs = [\"no-fencing\", \"modulo-sharding\"]\n");
        let planted = Scenario::parse(&text, "t.toml").unwrap();
        let settings = planted.settings();
        let expected: BTreeSet<Bug> = [Bug::NoFencing, Bug::ModuloSharding].into();
        assert_eq!(settings.api.bugs, expected);
        assert_eq!(settings.controller.bugs, expected);
        assert_eq!(settings.worker.bugs, expected);
        assert_ne!(planted.config_hash(), clean.config_hash());
    }

    #[test]
    fn an_unknown_bug_is_an_error_listing_the_allowed_names() {
        let text = format!("{MINIMAL}bugs = [\"no-fencin\"]\n");
        let error = Scenario::parse(&text, "x.toml").unwrap_err().to_string();
        assert!(error.starts_with("x.toml: "), "{error}");
        assert!(error.contains("no-fencin"), "{error}");
        for bug in Bug::all() {
            assert!(error.contains(bug.name()), "{error} lists {bug}");
        }
    }

    #[test]
    fn a_buggify_table_parses_hashes_only_when_set_and_rejects_bad_values() {
        let plain = Scenario::parse(MINIMAL, "x.toml").expect("parses");
        assert!(plain.buggify.is_off());
        let text =
            format!("{MINIMAL}[buggify]\nenabled = true\nactions = [\"delay\", \"pause\"]\n");
        let on = Scenario::parse(&text, "x.toml").expect("parses");
        assert!(on.buggify.enabled);
        assert_eq!(
            on.buggify.actions,
            vec![sim::BuggifyAction::Delay, sim::BuggifyAction::Pause]
        );
        assert_ne!(on.config_hash(), plain.config_hash());
        // Written out as the default, it is the scenario without it.
        let off = Scenario::parse(&format!("{MINIMAL}[buggify]\nenabled = false\n"), "x.toml")
            .expect("parses");
        assert_eq!(off.config_hash(), plain.config_hash());
        for (table, key) in [
            ("fire_ppm = 1_000_001", "buggify.fire_ppm"),
            ("enabled = true\nactions = []", "buggify.actions"),
            (
                "pause_min_ms = 10\npause_max_ms = 5",
                "buggify.pause_min_ms",
            ),
            ("sometimes = true", "sometimes"),
        ] {
            let text = format!("{MINIMAL}[buggify]\n{table}\n");
            let error = Scenario::parse(&text, "x.toml").unwrap_err().to_string();
            assert!(error.contains(key), "{table}: {error}");
        }
        let error = Scenario::parse(
            &format!("{MINIMAL}[buggify]\nactions = [\"explode\"]\n"),
            "x.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("explode"), "{error}");
    }

    #[test]
    fn bugs_set_under_a_node_section_are_refused() {
        let text = format!("{MINIMAL}[api]\nbugs = [\"no-fencing\"]\n");
        let error = Scenario::parse(&text, "x.toml").unwrap_err().to_string();
        assert!(error.contains("bugs"), "{error}");
    }

    #[test]
    fn a_key_ttl_shorter_than_the_clients_retries_is_rejected() {
        // 20 attempts x (600 + 300) ms = 18 s of retries: at least 180 s.
        let text = format!("{MINIMAL}[api]\nidempotency_ttl_ms = 179999\n");
        let error = Scenario::parse(&text, "x.toml").unwrap_err().to_string();
        assert!(error.contains("api.idempotency_ttl_ms = 179999"), "{error}");
        assert!(error.contains("at least 180000"), "{error}");
        let text = format!("{MINIMAL}[api]\nidempotency_ttl_ms = 180000\n");
        assert!(Scenario::parse(&text, "x.toml").is_ok());
    }

    fn schedule_error(entry: &str) -> String {
        let text = format!("{MINIMAL}[[schedule]]\nat_ms = 1000\n{entry}");
        Scenario::parse(&text, "x.toml").unwrap_err().to_string()
    }

    #[test]
    fn a_scheduled_crash_without_a_restart_is_rejected_saying_why() {
        let error = schedule_error("kind = \"crash\"\nnode = \"store\"\n");
        assert!(
            error.starts_with(
                "x.toml: schedule[0].restart_after_ms is required for kind = \"crash\""
            ),
            "{error}"
        );
        assert!(error.contains("liveness unjudgeable"), "{error}");
        assert!(error.contains("allowed 1..=3600000"), "{error}");
    }

    #[test]
    fn a_field_that_does_not_apply_to_the_kind_is_named_with_the_kinds_it_applies_to() {
        let error = schedule_error(
            "kind = \"crash\"\nnode = \"store\"\nduration_ms = 5000\nrestart_after_ms = 100\n",
        );
        assert_eq!(
            error,
            "x.toml: schedule[0].duration_ms does not apply to kind = \"crash\": it applies to \
             partition, partition_one_way, clog, pause, degrade, clock_drift (a crashed node's \
             down time is restart_after_ms)"
        );
        let error =
            schedule_error("kind = \"pause\"\nnode = \"store\"\nduration_ms = 5\ndelta_ms = 3\n");
        assert!(
            error.contains(
                "schedule[0].delta_ms does not apply to kind = \"pause\": it applies to clock_jump"
            ),
            "{error}"
        );
    }

    #[test]
    fn a_scheduled_degrade_and_clock_drift_parse_and_resolve_to_simulator_faults() {
        let text = format!(
            "{MINIMAL}[[schedule]]\nat_ms = 1_000\nkind = \"degrade\"\nnodes = [\"api-1\", \"store\"]\n\
             drop_ppm = 250_000\nduplicate_ppm = 1_000\ndelay_ms = 40\nduration_ms = 2_000\n\
             [[schedule]]\nat_ms = 3_000\nkind = \"degrade\"\ndelay_ms = 5\nduration_ms = 100\n\
             [[schedule]]\nat_ms = 4_000\nkind = \"clock_drift\"\nnode = \"controller-2\"\n\
             drift_ppm = -80_000\nduration_ms = 6_000\n"
        );
        let scenario = Scenario::parse(&text, "x.toml").expect("valid degrades and a drift");
        let faults = crate::world::scheduled_faults(&scenario).expect("resolves");
        let (_, names) = layout(&scenario.topology);
        let id = |name: &str| {
            let index = names.iter().position(|(n, _)| n == name).expect("a node");
            sim::NodeId(index as u32)
        };
        let ms = sim::MILLISECOND_NS;
        assert_eq!(
            faults,
            vec![
                ScheduledFault {
                    at_ns: 1_000 * ms,
                    fault: sim::Fault::Degrade {
                        nodes: vec![id("api-1"), id("store")],
                        drop_ppm: 250_000,
                        duplicate_ppm: 1_000,
                        delay_ns: 40 * ms,
                        duration_ns: 2_000 * ms,
                    },
                },
                ScheduledFault {
                    at_ns: 3_000 * ms,
                    fault: sim::Fault::Degrade {
                        nodes: vec![],
                        drop_ppm: 0,
                        duplicate_ppm: 0,
                        delay_ns: 5 * ms,
                        duration_ns: 100 * ms,
                    },
                },
                ScheduledFault {
                    at_ns: 4_000 * ms,
                    fault: sim::Fault::ClockDrift {
                        node: id("controller-2"),
                        drift_ppm: -80_000,
                        duration_ns: 6_000 * ms,
                    },
                },
            ]
        );
        // The drift heals last: it sets the end of the safety phase.
        let latest = scenario.heal_times().into_iter().max_by_key(|h| h.1);
        assert_eq!(latest.map(|h| h.1), Some(10_000 * ms));
    }

    #[test]
    fn bad_degrade_and_clock_drift_entries_are_rejected_naming_the_field_and_what_is_allowed() {
        let degrade = |fields: &str| {
            schedule_error(&format!("kind = \"degrade\"\nduration_ms = 1000\n{fields}"))
        };
        let drift = |fields: &str| {
            schedule_error(&format!(
                "kind = \"clock_drift\"\nduration_ms = 1000\n{fields}"
            ))
        };
        assert_eq!(
            degrade("drop_ppm = 2000000\n"),
            "x.toml: schedule[0].drop_ppm = 2000000 is out of range: allowed 0..=1000000 (parts \
             per million)"
        );
        assert_eq!(
            degrade("duplicate_ppm = 1000001\n"),
            "x.toml: schedule[0].duplicate_ppm = 1000001 is out of range: allowed 0..=1000000 \
             (parts per million)"
        );
        assert_eq!(
            degrade("delay_ms = 60001\n"),
            "x.toml: schedule[0].delay_ms = 60001 is out of range: allowed 0..=60000 (a minute, \
             the longest latency tail a network may have)"
        );
        assert_eq!(
            degrade("drop_ppm = 0\n"),
            "x.toml: schedule[0].drop_ppm, duplicate_ppm or delay_ms must be above 0 for kind = \
             \"degrade\": a degrade without one changes nothing; allowed drop_ppm and \
             duplicate_ppm 0..=1000000, delay_ms 0..=60000"
        );
        let unknown = degrade("drop_ppm = 1\nnodes = [\"store\", \"api-9\"]\n");
        assert!(
            unknown.starts_with(
                "x.toml: schedule[0].nodes[1] = \"api-9\" is not a node: allowed store"
            ),
            "{unknown}"
        );
        assert_eq!(
            schedule_error("kind = \"degrade\"\ndrop_ppm = 1\n"),
            "x.toml: schedule[0].duration_ms is required for kind = \"degrade\""
        );
        for beyond in ["100001", "-100001"] {
            assert_eq!(
                drift(&format!("node = \"store\"\ndrift_ppm = {beyond}\n")),
                format!(
                    "x.toml: schedule[0].drift_ppm = {beyond} is out of range: allowed \
                     -100000..=100000 (the simulator's clock bound; positive is a slow clock)"
                )
            );
        }
        let at_the_limit = format!(
            "{MINIMAL}[[schedule]]\nat_ms = 0\nkind = \"clock_drift\"\nnode = \"store\"\n\
             drift_ppm = -100000\nduration_ms = 1\n"
        );
        assert!(Scenario::parse(&at_the_limit, "x.toml").is_ok());
        assert_eq!(
            drift("node = \"store\"\n"),
            "x.toml: schedule[0].drift_ppm is required for kind = \"clock_drift\""
        );
        assert_eq!(
            drift("drift_ppm = 5\n"),
            "x.toml: schedule[0].node is required for kind = \"clock_drift\""
        );
        let unknown = drift("node = \"controller-7\"\ndrift_ppm = 5\n");
        assert!(
            unknown.starts_with("x.toml: schedule[0].node = \"controller-7\" is not a node"),
            "{unknown}"
        );
        // Each kind's fields are its own.
        assert_eq!(
            drift("node = \"store\"\ndrift_ppm = 5\ndelay_ms = 3\n"),
            "x.toml: schedule[0].delay_ms does not apply to kind = \"clock_drift\": it applies \
             to degrade"
        );
        assert_eq!(
            degrade("drop_ppm = 1\ndrift_ppm = 3\n"),
            "x.toml: schedule[0].drift_ppm does not apply to kind = \"degrade\": it applies to \
             clock_drift"
        );
        assert_eq!(
            degrade("drop_ppm = 1\nnode = \"store\"\n"),
            "x.toml: schedule[0].node does not apply to kind = \"degrade\": it applies to \
             crash, reboot, pause, clock_jump, clock_drift"
        );
        assert_eq!(
            schedule_error(
                "kind = \"pause\"\nnode = \"store\"\nduration_ms = 5\nnodes = [\"store\"]\n"
            ),
            "x.toml: schedule[0].nodes does not apply to kind = \"pause\": it applies to degrade"
        );
    }

    #[test]
    fn degrade_fields_hash_by_name_and_entries_without_them_hash_as_before() {
        let entry = |fields: &str| {
            let text = format!(
                "{MINIMAL}[[schedule]]\nat_ms = 0\nkind = \"degrade\"\nduration_ms = 5\n{fields}"
            );
            Scenario::parse(&text, "x.toml")
                .expect("valid")
                .config_hash()
        };
        assert_ne!(entry("drop_ppm = 7\n"), entry("duplicate_ppm = 7\n"));
        assert_ne!(entry("drop_ppm = 7\n"), entry("drop_ppm = 8\n"));
        assert_ne!(
            entry("delay_ms = 7\n"),
            entry("delay_ms = 7\nnodes = [\"store\"]\n")
        );
        // An entry of an older kind hashes field by field as the derive did.
        let pause = ScheduledSpec {
            at_ms: 5,
            kind: FaultKind::Pause,
            side_a: vec![],
            side_b: vec![],
            from: None,
            to: None,
            node: Some("store".into()),
            duration_ms: Some(9),
            restart_after_ms: None,
            delta_ms: None,
            nodes: vec![],
            drop_ppm: None,
            duplicate_ppm: None,
            delay_ms: None,
            drift_ppm: None,
        };
        #[derive(Hash)]
        struct Before<'a>(
            u64,
            FaultKind,
            &'a Vec<String>,
            &'a Vec<String>,
            &'a Option<String>,
            &'a Option<String>,
            &'a Option<String>,
            Option<u64>,
            Option<u64>,
            Option<i64>,
        );
        let before = Before(
            pause.at_ms,
            pause.kind,
            &pause.side_a,
            &pause.side_b,
            &pause.from,
            &pause.to,
            &pause.node,
            pause.duration_ms,
            pause.restart_after_ms,
            pause.delta_ms,
        );
        assert_eq!(sim::stable_hash(&pause), sim::stable_hash(&before));
    }

    #[test]
    fn a_scheduled_reboot_parses_with_its_node_and_down_time() {
        let text = format!(
            "{MINIMAL}[[schedule]]\nat_ms = 2_000\nkind = \"reboot\"\nnode = \"controller-1\"\nrestart_after_ms = 1_500\n"
        );
        let scenario = Scenario::parse(&text, "x.toml").expect("a valid reboot");
        let entry = &scenario.schedule[0];
        assert_eq!(entry.kind, FaultKind::Reboot);
        assert_eq!(entry.node.as_deref(), Some("controller-1"));
        assert_eq!((entry.at_ms, entry.restart_after_ms), (2_000, Some(1_500)));
    }

    #[test]
    fn a_bad_scheduled_reboot_is_rejected_as_strictly_as_a_crash() {
        let error = schedule_error("kind = \"reboot\"\nnode = \"store\"\n");
        assert_eq!(
            error,
            "x.toml: schedule[0].restart_after_ms is required for kind = \"reboot\": a reboot \
             always comes back, on a new boot, after its down time; allowed 1..=3600000"
        );
        let error = schedule_error(
            "kind = \"reboot\"\nnode = \"store\"\nrestart_after_ms = 100\nduration_ms = 100\n",
        );
        assert_eq!(
            error,
            "x.toml: schedule[0].duration_ms does not apply to kind = \"reboot\": it applies to \
             partition, partition_one_way, clog, pause, degrade, clock_drift (a rebooting node's \
             down time is restart_after_ms)"
        );
        let error = schedule_error("kind = \"reboot\"\nnode = \"store\"\nrestart_after_ms = 0\n");
        assert_eq!(
            error,
            "x.toml: schedule[0].restart_after_ms = 0 is out of range: allowed 1..=3600000"
        );
        let error =
            schedule_error("kind = \"reboot\"\nnode = \"worker-7\"\nrestart_after_ms = 100\n");
        assert!(
            error.starts_with("x.toml: schedule[0].node = \"worker-7\" is not a node"),
            "{error}"
        );
        let error = schedule_error("kind = \"reboot\"\nrestart_after_ms = 100\n");
        assert_eq!(
            error,
            "x.toml: schedule[0].node is required for kind = \"reboot\""
        );
    }

    #[test]
    fn drawn_reboots_need_a_crash_role_to_hit() {
        let text = format!(
            "{MINIMAL}[faults]\nwindow_end_ms = 1000\nreboot = {{ count_max = 2, duration_max_ms = 500 }}\ncrash_roles = []\n"
        );
        let error = Scenario::parse(&text, "x.toml").unwrap_err().to_string();
        assert!(
            error.starts_with(
                "x.toml: faults.reboot.count_max = 2 needs at least 1 node(s) in faults.crash_roles"
            ),
            "{error}"
        );
        let text = format!(
            "{MINIMAL}[faults]\nwindow_end_ms = 1000\nreboot = {{ count_min = 3, count_max = 2 }}\n"
        );
        let error = Scenario::parse(&text, "x.toml").unwrap_err().to_string();
        assert!(
            error.contains("faults.reboot.count_min = 3 is out of range: allowed 0..=2"),
            "{error}"
        );
    }

    #[test]
    fn scenarios_without_reboots_keep_the_config_hashes_of_their_reviewed_reports() {
        let mut checked = 0;
        for name in list_scenarios() {
            let scenario = Scenario::load(&name).expect("loads");
            let reboots = scenario.faults.reboot != RateSpec::default()
                || scenario
                    .schedule
                    .iter()
                    .any(|f| f.kind == FaultKind::Reboot);
            let report = scenarios_dir().join(format!("../reports/{name}.snap"));
            let Ok(report) = std::fs::read_to_string(report) else {
                continue;
            };
            if reboots {
                continue;
            }
            let pinned = format!("| config hash | `{:#018x}` |", scenario.config_hash());
            assert!(
                report.contains(&pinned),
                "{name}: {pinned} not in its report"
            );
            checked += 1;
        }
        assert!(checked >= 5, "only {checked} reports checked");
        // And a reboot knob does count.
        let mut scenario = Scenario::load("baseline").expect("loads");
        let before = scenario.config_hash();
        scenario.faults.reboot.count_max = 1;
        assert_ne!(scenario.config_hash(), before);
    }

    #[test]
    fn an_unknown_scheduled_node_is_rejected_on_load_listing_the_nodes() {
        let error = schedule_error("kind = \"pause\"\nnode = \"controler-1\"\nduration_ms = 5\n");
        assert!(
            error.starts_with("x.toml: schedule[0].node = \"controler-1\" is not a node: allowed store, billing, api-0 to api-1, controller-0 to controller-2"),
            "{error}"
        );
        assert!(error.contains("holder:shard-N with N in 0..=15"), "{error}");
        let error = schedule_error(
            "kind = \"partition\"\nside_a = [\"store\", \"worker-9\"]\nduration_ms = 5\n",
        );
        assert!(
            error.starts_with("x.toml: schedule[0].side_a[1] = \"worker-9\" is not a node"),
            "{error}"
        );
    }

    #[test]
    fn a_shard_holder_beyond_the_shard_count_is_rejected() {
        let error =
            schedule_error("kind = \"pause\"\nnode = \"holder:shard-16\"\nduration_ms = 5\n");
        assert!(
            error.starts_with("x.toml: schedule[0].node = \"holder:shard-16\" is not a shard holder: allowed holder:shard-N with N in 0..=15"),
            "{error}"
        );
        let text = format!(
            "{MINIMAL}[[schedule]]\nat_ms = 1000\nkind = \"pause\"\nnode = \"holder:shard-15\"\nduration_ms = 5\n"
        );
        assert!(Scenario::parse(&text, "x.toml").is_ok());
    }

    #[test]
    fn scheduled_durations_and_jumps_are_bounded() {
        let error = schedule_error(
            "kind = \"pause\"\nnode = \"store\"\nduration_ms = 9000000000000000000\n",
        );
        assert_eq!(
            error,
            "x.toml: schedule[0].duration_ms = 9000000000000000000 is out of range: allowed 1..=3600000"
        );
        let error =
            schedule_error("kind = \"crash\"\nnode = \"store\"\nrestart_after_ms = 3600001\n");
        assert!(
            error.contains("schedule[0].restart_after_ms = 3600001 is out of range"),
            "{error}"
        );
        let error = schedule_error(
            "kind = \"clock_jump\"\nnode = \"store\"\ndelta_ms = -9000000000000000000\n",
        );
        assert!(
            error.contains("schedule[0].delta_ms = -9000000000000000000 is out of range: allowed -86400000..=86400000"),
            "{error}"
        );
        let text = format!(
            "{MINIMAL}[[schedule]]\nat_ms = 30001\nkind = \"pause\"\nnode = \"store\"\nduration_ms = 5\n"
        );
        let error = Scenario::parse(&text, "x.toml").unwrap_err().to_string();
        assert!(
            error.contains("schedule[0].at_ms = 30001 is out of range"),
            "{error}"
        );
    }

    #[test]
    fn a_drawn_fault_kind_with_no_node_to_hit_is_rejected() {
        let text = format!(
            "{MINIMAL}[faults]\nwindow_end_ms = 1000\ncrash = {{ count_min = 1, count_max = 1 }}\ncrash_roles = []\n"
        );
        let error = Scenario::parse(&text, "x.toml").unwrap_err().to_string();
        assert!(
            error.starts_with(
                "x.toml: faults.crash.count_max = 1 needs at least 1 node(s) in faults.crash_roles"
            ),
            "{error}"
        );
        // A partition needs two nodes: one role of one node is not enough.
        let text = format!(
            "{MINIMAL}[faults]\nwindow_end_ms = 1000\npartition = {{ count_max = 1 }}\nnetwork_roles = [\"store\"]\n"
        );
        let error = Scenario::parse(&text, "x.toml").unwrap_err().to_string();
        assert!(error.contains("faults.network_roles"), "{error}");
        let text = format!(
            "{MINIMAL}[faults]\nwindow_end_ms = 1000\npartition = {{ count_max = 1 }}\nnetwork_roles = [\"api\"]\n"
        );
        assert!(Scenario::parse(&text, "x.toml").is_ok());
    }

    #[test]
    fn a_name_that_could_escape_the_failures_directory_is_rejected() {
        for name in ["../../escaped", "Upper", "-dash-first", "a/b", "a.b", ""] {
            let text = format!("name = {name:?}\ndescription = \"d\"\n");
            let error = Scenario::parse(&text, "x.toml").unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("x.toml: name = {name:?} is not allowed")),
                "{error}"
            );
            assert!(error.contains("[a-z0-9][a-z0-9-_]*"), "{error}");
        }
        for name in ["t", "tight-bound", "x_1", "0day"] {
            let text = format!("name = {name:?}\ndescription = \"d\"\n");
            assert!(Scenario::parse(&text, "x.toml").is_ok(), "{name}");
        }
    }

    #[test]
    fn every_built_in_scenario_still_loads() {
        for name in list_scenarios() {
            Scenario::load(&name).unwrap_or_else(|error| panic!("{error}"));
        }
    }

    #[test]
    fn a_run_that_cannot_end_within_the_simulators_time_limit_is_rejected() {
        // 3 590 s of safety phase and 20 s to converge: 3 610 s > 3 600 s.
        let text = format!("{MINIMAL}[run]\nduration_ms = 3_590_000\nliveness_bound_ms = 20_000\n");
        let error = Scenario::parse(&text, "x.toml").unwrap_err().to_string();
        assert!(
            error.starts_with(
                "x.toml: run.liveness_bound_ms = 20000 after run.duration_ms = 3590000 ends the \
                 run at 3610000 ms, past the simulator's time limit of 3600000 ms"
            ),
            "{error}"
        );
        let text = format!("{MINIMAL}[run]\nduration_ms = 3_580_000\nliveness_bound_ms = 20_000\n");
        assert!(
            Scenario::parse(&text, "x.toml").is_ok(),
            "exactly the limit is allowed"
        );
    }

    #[test]
    fn a_fault_healing_too_late_for_the_liveness_bound_is_rejected_naming_it() {
        let text = format!(
            "{MINIMAL}[[schedule]]\nat_ms = 20_000\nkind = \"crash\"\nnode = \"store\"\nrestart_after_ms = 3_580_000\n"
        );
        let error = Scenario::parse(&text, "x.toml").unwrap_err().to_string();
        assert!(
            error.starts_with(
                "x.toml: run.liveness_bound_ms = 20000 after schedule[0] healing at 3600000 ms \
                 (at_ms + restart_after_ms) ends the run at 3620000 ms"
            ),
            "{error}"
        );
        let text = format!(
            "{MINIMAL}[run]\nduration_ms = 3_000_000\nliveness_bound_ms = 1_000\n[client]\nworkload_end_ms = 10_000\n[faults]\nwindow_end_ms = 3_000_000\npause = {{ count_max = 1, duration_max_ms = 600_000 }}\n"
        );
        let error = Scenario::parse(&text, "x.toml").unwrap_err().to_string();
        assert!(
            error.contains(
                "after faults.pause healing as late as 3600000 ms (faults.window_end_ms + \
                 faults.pause.duration_max_ms) ends the run at 3601000 ms"
            ),
            "{error}"
        );
    }

    #[test]
    fn store_ttl_limits_that_refuse_the_nodes_leases_are_rejected_naming_both_keys() {
        let error = |limits: &str| {
            let text = format!("{MINIMAL}[store.limits]\n{limits}\n");
            Scenario::parse(&text, "x.toml").unwrap_err().to_string()
        };
        assert_eq!(
            error("min_ttl_ms = 2_001"),
            "x.toml: store.limits.min_ttl_ms = 2001 is above controller.session_ttl_ms = 2000: \
             the store would refuse every controller's session lease; allowed \
             store.limits.min_ttl_ms <= 2000"
        );
        let text = format!(
            "{MINIMAL}[controller]\nsession_ttl_ms = 4_000\n[store.limits]\nmin_ttl_ms = 3_500\n"
        );
        let api = Scenario::parse(&text, "x.toml").unwrap_err().to_string();
        assert!(
            api.contains("store.limits.min_ttl_ms = 3500 is above api.session_ttl_ms = 3000"),
            "{api}"
        );
        let max = error("max_ttl_ms = 100_000_000");
        assert!(
            max.contains(
                "store.limits.max_ttl_ms = 100000000 is below the 108000000 ms ledger leases of \
                 api.idempotency_ttl_ms = 86400000"
            ),
            "{max}"
        );
    }

    #[test]
    fn store_size_limits_below_what_the_topology_needs_are_rejected() {
        let error = |limits: &str| {
            let text = format!("{MINIMAL}[store.limits]\n{limits}\n");
            Scenario::parse(&text, "x.toml").unwrap_err().to_string()
        };
        // 2 API nodes + 3 controllers + 1 ledger lease.
        // 2 API nodes + 3 controllers + 2 x 11 ledger leases (a key's
        // lifetime plus two share windows, over one window, plus one).
        let leases = error("max_leases = 26");
        assert!(
            leases.contains("store.limits.max_leases = 26 is below the 27 leases"),
            "{leases}"
        );
        // 3 members + 16 shards + 1 leader + 4 keys of one request.
        let keys = error("max_keys = 23");
        assert!(
            keys.contains("store.limits.max_keys = 23 is below the 24 keys"),
            "{keys}"
        );
        for ops in [4, 0] {
            let message = error(&format!("max_ops_per_txn = {ops}"));
            assert!(
                message.contains(&format!(
                    "store.limits.max_ops_per_txn = {ops} is below the 5 operations"
                )),
                "{message}"
            );
        }
        // Clients start at node 11: `c11-0`, 130 + 2 x 5 bytes.
        let bytes = error("max_value_bytes = 139");
        assert!(
            bytes.contains("store.limits.max_value_bytes = 139 is below the 140 bytes"),
            "{bytes}"
        );
        let text = format!(
            "{MINIMAL}[store.limits]\nmax_leases = 27\nmax_keys = 24\nmax_ops_per_txn = 5\nmax_value_bytes = 140\n"
        );
        assert!(Scenario::parse(&text, "x.toml").is_ok());
    }

    #[test]
    fn the_store_floors_are_exact_a_run_at_them_passes_and_one_below_fails() {
        // The floors are derived from the nodes' code; check them against
        // runs. Creates and deletes of them (the largest txn), at most one
        // request started per 500 ms of a 4 s workload, so every create's
        // name has a one-digit sequence and fits the floor's entry: a
        // create after a delete (nothing known) takes the next sequence,
        // and a two-digit one would not fit.
        let text = format!(
            "{MINIMAL}[topology]\nclients = 1\n[run]\nduration_ms = 5_000\nliveness_bound_ms = 10_000\n[client]\nworkload_end_ms = 4_000\nrequest_interval_ms = 1_000\nmax_creates = 1\nupdate_ppm = 0\ndelete_ppm = 1_000_000\n[store.limits]\nmax_ops_per_txn = 5\nmax_value_bytes = 140\n"
        );
        let scenario = Scenario::parse(&text, "x.toml").expect("valid");
        let mut below = scenario.clone();
        below.store.limits.max_value_bytes = 139;
        assert!(below.validate().is_err(), "139 is below the floor");
        let options = crate::world::RunOptions {
            seed: 3,
            ..Default::default()
        };
        let result = crate::world::run_scenario(&scenario, &options).expect("runs");
        assert_eq!(result.check.first_violation(), None);
        assert!(
            result.history_counts["KeyFinished"] > 1,
            "{:?}",
            result.history_counts
        );
        // One below either floor (unchecked: changed in code) fails.
        for (ops, bytes) in [(4, 140), (5, 139)] {
            let mut tighter = scenario.clone();
            tighter.store.limits.max_ops_per_txn = ops;
            tighter.store.limits.max_value_bytes = bytes;
            let result = crate::world::run_scenario(&tighter, &options).expect("runs");
            assert!(
                result.check.first_violation().is_some(),
                "max_ops_per_txn = {ops}, max_value_bytes = {bytes} passed"
            );
        }
    }

    #[test]
    fn the_controllers_drift_bound_is_set_by_the_clocks_not_by_itself() {
        for body in [
            "[controller]\nmax_drift_ppm = 5000\n",
            "controller = { max_drift_ppm = 5000 }\n",
        ] {
            let error = Scenario::parse(&format!("{MINIMAL}{body}"), "x.toml")
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("x.toml")
                    && error.contains("controller.max_drift_ppm = 5000 cannot be set")
                    && error.contains("clocks.max_drift_ppm"),
                "{error}"
            );
        }
        // Nor is it offered where the table's keys are listed.
        for body in ["controller = 5\n", "controller = [4]\n"] {
            let listed = Scenario::parse(&format!("{MINIMAL}{body}"), "x.toml")
                .unwrap_err()
                .to_string();
            assert!(
                listed.contains("expected a table with")
                    && listed.contains("session_ttl_ms")
                    && !listed.contains("max_drift_ppm"),
                "{body}: {listed}"
            );
        }
        let clocks = Scenario::parse(
            &format!("{MINIMAL}[clocks]\nmax_drift_ppm = 5000\n"),
            "x.toml",
        )
        .expect("the clocks' bound is the one to set");
        assert_eq!(clocks.settings().controller.max_drift_ppm, 5000);
    }

    #[test]
    fn a_table_written_as_an_array_is_refused_not_read_by_position() {
        for (body, key) in [
            (
                "run = [5000, 5000]\n",
                "run: expected a table with duration_ms",
            ),
            ("topology = [1]\n", "topology: expected a table with"),
            (
                "[faults]\ncrash = [1, 2, 200, 300]\n",
                "faults.crash: expected a table with",
            ),
            (
                "[store]\nlimits = [10]\n",
                "store.limits: expected a table with",
            ),
            (
                "bugs = [\"no-fencing\"]\n[[schedule]]\nat_ms = 1000\nkind = \"partition\"\nside_a = [\"api-0\"]\nduration_ms = 500\n[[schedule]]\nat_ms = 1\nkind = \"pause\"\nnode = \"api-1\"\nduration_ms = 500\n",
                "",
            ),
        ] {
            let parsed = Scenario::parse(&format!("{MINIMAL}{body}"), "x.toml");
            if key.is_empty() {
                parsed.expect("arrays where lists belong are fine");
                continue;
            }
            let error = parsed.unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("x.toml: {key}")) && error.ends_with("found an array"),
                "{body}: {error}"
            );
        }
    }

    #[test]
    fn serde_type_names_become_the_key_and_what_it_allows() {
        let error = |body: &str| {
            Scenario::parse(&format!("{MINIMAL}{body}"), "x.toml")
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            error("[faults]\ncrash = 5\n"),
            "x.toml: faults.crash: invalid type: integer `5`, expected a table with count_min, \
             count_max, duration_min_ms, duration_max_ms (line 4, column 9)"
        );
        assert_eq!(
            error("[faults]\nreboot = { count_max = \"x\" }\n"),
            "x.toml: faults.reboot.count_max: invalid type: string \"x\", expected a \
             non-negative integer up to 4294967295 (line 4, column 24)"
        );
        assert_eq!(
            error("[[schedule]]\nat_ms = 1\nkind = 5\n"),
            "x.toml: schedule[0].kind: expected a string, one of `partition`, \
             `partition_one_way`, `clog`, `crash`, `pause`, `clock_jump`, `reboot`, \
             `degrade`, `clock_drift` (line 5, column 8)"
        );
        assert_eq!(
            error("[[schedule]]\nat_ms = 1\nkind = \"clock_drift\"\ndrift_ppm = 0.5\n"),
            "x.toml: schedule[0].drift_ppm: invalid type: floating point `0.5`, expected an \
             integer from -2147483648 to 2147483647 (line 6, column 13)"
        );
        for body in [
            "run = 5\n",
            "store = 5\n",
            "[store]\nlimits = 5\n",
            "schedule = [5]\n",
            "[[schedule]]\nat_ms = 1\nkind = \"degrade\"\nnodes = 5\n",
            "[[schedule]]\nat_ms = 1\nkind = \"degrade\"\ndrop_ppm = -1\n",
            "topology = 5\n",
            "[api]\nsession_ttl_ms = -1\n",
        ] {
            let text = error(body);
            for rust in ["struct ", "enum ", "u64", "u32", "usize"] {
                assert!(!text.contains(rust), "{body:?}: {text}");
            }
            assert!(text.contains("expected a"), "{text}");
        }
    }

    const LARGEST: &str = "[topology]\napis = 16\ncontrollers = 32\nworkers = 32\nclients = 16\n";

    #[test]
    fn shards_whose_resyncs_would_reach_the_event_limit_are_refused_naming_the_keys() {
        let text = format!("{MINIMAL}{LARGEST}[controller]\nshard_count = 4096\n");
        let error = Scenario::parse(&text, "x.toml").unwrap_err().to_string();
        for key in [
            "controller.shard_count = 4096",
            "topology.workers = 32",
            "controller.resync_interval_ms",
            "run.max_events",
            "allowed are at most 2500000",
        ] {
            assert!(error.contains(key), "{key}: {error}");
        }
        // The bound moves with what it protects.
        let text = format!(
            "{MINIMAL}{LARGEST}[controller]\nshard_count = 4096\n[run]\nmax_events = 30000000\n"
        );
        assert!(Scenario::parse(&text, "x.toml").is_ok());
        let text = format!("{MINIMAL}{LARGEST}[controller]\nshard_count = 1502\n");
        assert!(Scenario::parse(&text, "x.toml").is_ok());
        let text = format!("{MINIMAL}{LARGEST}[controller]\nshard_count = 1503\n");
        assert!(Scenario::parse(&text, "x.toml").is_err());
    }

    #[test]
    fn a_lease_ttl_too_short_for_the_drift_bound_is_rejected() {
        let text = format!(
            "{MINIMAL}[clocks]\nmax_drift_ppm = 100000\n[controller]\nsession_ttl_ms = 600\nkeepalive_interval_ms = 200\nlease_margin_ms = 450\n"
        );
        let error = Scenario::parse(&text, "x.toml").unwrap_err();
        assert!(
            error.to_string().contains("controller.session_ttl_ms"),
            "{error}"
        );
    }
}
