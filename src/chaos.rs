//! `controlplane chaos`: break a running cluster on purpose, through its
//! admin endpoint, with the simulator's own fault type.
//!
//! Every subcommand builds one [`Fault`] (node names resolved against the
//! cluster's members, `shard-N` and `leader` against the lease holders of
//! the moment) and posts it; the cluster heals it by itself when its time
//! is up, or on `chaos heal`. `chaos --from ARTIFACT` plays a simulator
//! artifact's fault list in real time.

// A client of a real server, pacing faults in real time.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use node::NodeId;
use node::fault::{Fault, ScheduledFault};
use reqwest::Method;
use serde_json::Value;

use crate::admin_client::{AdminArgs, AdminError, Target, request};
use crate::cli::EXIT_BAD_INPUT;
use crate::remote_http::parse_duration;

/// Exit codes of `chaos`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0   the fault was started (or healed, or the status printed)
  1   --from: a played fault was still active 30 s after its heal time
  2   bad input: an unknown node, a negative or missing duration, a bad artifact
  11  the admin endpoint could not be reached
  13  the admin endpoint refused: a wrong token, or a fault it will not apply";

#[derive(Args, Debug)]
pub struct ChaosArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// Play a failure artifact's fault list (from `simulate` or `sweep`)
    /// against the cluster in real time: each fault at its simulated start
    /// time after the command starts. Nodes are matched by name
    /// (`client-N` is the edge `http-N`).
    #[arg(long, value_name = "ARTIFACT")]
    from: Option<PathBuf>,
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Cut every link between two sets of nodes (comma-separated names);
    /// without B, between A and everyone else.
    Partition {
        /// One side, e.g. `controller-1` or `shard-0` (its holder) or
        /// `controller-0,controller-1`.
        a: String,
        /// The other side (default: every other member).
        b: Option<String>,
        /// Cut only A -> B.
        #[arg(long)]
        one_way: bool,
        #[command(flatten)]
        span: Span,
    },
    /// Hold every message from one node to another, then release them in a
    /// burst when it heals.
    Clog {
        /// Sender.
        from: String,
        /// Receiver.
        to: String,
        #[command(flatten)]
        span: Span,
    },
    /// Lose a share of messages (on the links of --nodes, or every link).
    Drop {
        /// Parts per million lost (50000 = 5 %).
        #[arg(long, allow_hyphen_values = true)]
        ppm: String,
        #[command(flatten)]
        links: Links,
        #[command(flatten)]
        span: Span,
    },
    /// Deliver a share of messages twice.
    Duplicate {
        /// Parts per million duplicated.
        #[arg(long, allow_hyphen_values = true)]
        ppm: String,
        #[command(flatten)]
        links: Links,
        #[command(flatten)]
        span: Span,
    },
    /// Add latency to every message.
    Delay {
        /// Added latency, e.g. 200ms.
        #[arg(long, allow_hyphen_values = true)]
        by: String,
        #[command(flatten)]
        links: Links,
        #[command(flatten)]
        span: Span,
    },
    /// Stop a node handling anything (a GC pause); what queued up arrives
    /// at once after.
    Pause {
        /// The node.
        node: String,
        #[command(flatten)]
        span: Span,
    },
    /// Crash a node (volatile state, timers and queued messages lost); it
    /// restarts from its state file after --for, or on `chaos heal`.
    Crash {
        /// The node.
        node: String,
        /// Down time before the restart (default: until healed).
        #[arg(long = "for", value_name = "DURATION", allow_hyphen_values = true)]
        down: Option<String>,
    },
    /// Skew a node's clock: jump its wall clock by --offset (either way;
    /// it stays moved) and/or run both its clocks at a rate error of
    /// --drift-ppm for --for.
    Skew {
        /// The node.
        node: String,
        /// Wall-clock jump, e.g. 30s or -2m.
        #[arg(long, allow_hyphen_values = true)]
        offset: Option<String>,
        /// Rate error in parts per million (positive: a slow clock), up to
        /// 100000 either way.
        #[arg(long, allow_hyphen_values = true)]
        drift_ppm: Option<String>,
        /// How long the drift lasts.
        #[arg(long = "for", value_name = "DURATION", allow_hyphen_values = true)]
        duration: Option<String>,
    },
    /// Heal every active fault, or the one with this id.
    Heal {
        /// A fault id from `chaos status`.
        id: Option<u64>,
    },
    /// List the active faults, the members, shard holders and the leader.
    Status {
        /// Print the admin status as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
struct Span {
    /// How long until it heals, e.g. 10s.
    #[arg(long = "for", value_name = "DURATION", allow_hyphen_values = true)]
    duration: String,
}

#[derive(Args, Debug)]
struct Links {
    /// Only links to or from these nodes (comma-separated; default every
    /// link).
    #[arg(long)]
    nodes: Option<String>,
}

/// A one-line failure and its exit code.
struct Failure(u8, String);

impl From<AdminError> for Failure {
    fn from(error: AdminError) -> Self {
        Failure(error.exit_code(), error.to_string())
    }
}

fn bad(message: impl Into<String>) -> Failure {
    Failure(EXIT_BAD_INPUT, message.into())
}

pub fn chaos(args: ChaosArgs) -> ExitCode {
    let runtime = match crate::remote_http::runtime(EXIT_BAD_INPUT) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

async fn run(args: ChaosArgs) -> Result<(), Failure> {
    // Flags first: a bad duration is refused before anything is contacted.
    let planned = match (&args.from, &args.action) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "--from plays an artifact's faults: give it without a subcommand",
            ));
        }
        (Some(path), None) => Plan::Artifact(read_artifact(path)?),
        (None, Some(action)) => Plan::Action(check_flags(action)?),
        (None, None) => {
            return Err(bad(
                "chaos needs a subcommand (partition, clog, drop, duplicate, delay, pause, crash, skew, heal, status) or --from ARTIFACT; see `controlplane chaos --help`",
            ));
        }
    };
    let target = args.admin.resolve().map_err(bad)?;
    let status = request(&target, Method::GET, "/admin/status", None).await?;
    let members = Members::from_status(&status)?;
    match planned {
        Plan::Artifact((artifact_names, faults)) => {
            play(&target, &members, &artifact_names, faults).await
        }
        Plan::Action(flags) => {
            act(
                &target,
                &members,
                &status,
                args.action.expect("an action"),
                flags,
            )
            .await
        }
    }
}

enum Plan {
    Artifact((Vec<String>, Vec<ScheduledFault>)),
    Action(Flags),
}

/// The parsed numbers of an action.
#[derive(Default)]
struct Flags {
    duration_ns: u64,
    ppm: u32,
    delay_ns: u64,
    offset_ns: Option<i64>,
    drift_ppm: Option<i32>,
    down_ns: Option<u64>,
}

fn span_ns(flag: &str, text: &str) -> Result<u64, Failure> {
    parse_duration(text)
        .map(|d| d.as_nanos() as u64)
        .map_err(|e| bad(format!("--{flag} {e}")))
}

fn ppm(text: &str) -> Result<u32, Failure> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|&v| v <= 1_000_000)
        .ok_or_else(|| {
            bad(format!(
                "--ppm `{text}`: expected parts per million from 0 to 1000000 (50000 = 5 %)"
            ))
        })
}

fn check_flags(action: &Action) -> Result<Flags, Failure> {
    let mut flags = Flags::default();
    match action {
        Action::Partition { span, .. } | Action::Clog { span, .. } | Action::Pause { span, .. } => {
            flags.duration_ns = span_ns("for", &span.duration)?
        }
        Action::Drop { ppm: p, span, .. } | Action::Duplicate { ppm: p, span, .. } => {
            flags.ppm = ppm(p)?;
            flags.duration_ns = span_ns("for", &span.duration)?;
        }
        Action::Delay { by, span, .. } => {
            flags.delay_ns = span_ns("by", by)?;
            flags.duration_ns = span_ns("for", &span.duration)?;
        }
        Action::Crash { down, .. } => {
            flags.down_ns = down.as_deref().map(|d| span_ns("for", d)).transpose()?;
        }
        Action::Skew {
            offset,
            drift_ppm,
            duration,
            ..
        } => {
            if offset.is_none() && drift_ppm.is_none() {
                return Err(bad(
                    "skew needs --offset DURATION and/or --drift-ppm N --for DURATION",
                ));
            }
            if let Some(offset) = offset {
                let (sign, magnitude) = match offset.trim().strip_prefix('-') {
                    Some(rest) => (-1, rest),
                    None => (1, offset.trim().trim_start_matches('+')),
                };
                flags.offset_ns = Some(sign * span_ns("offset", magnitude)? as i64);
            }
            if let Some(drift) = drift_ppm {
                let value = drift
                    .trim()
                    .parse::<i32>()
                    .ok()
                    .filter(|v| v.abs() <= host::faults::DRIFT_PPM_LIMIT)
                    .ok_or_else(|| {
                        bad(format!(
                            "--drift-ppm `{drift}`: expected a whole number from -100000 to 100000"
                        ))
                    })?;
                flags.drift_ppm = Some(value);
                let duration = duration.as_deref().ok_or_else(|| {
                    bad("--drift-ppm needs --for DURATION: how long the drift lasts")
                })?;
                flags.duration_ns = span_ns("for", duration)?;
            } else if duration.is_some() {
                return Err(bad(
                    "--for applies to --drift-ppm; an --offset jump is instantaneous",
                ));
            }
        }
        Action::Heal { .. } | Action::Status { .. } => {}
    }
    Ok(flags)
}

/// The cluster's members and lease holders, for resolving names.
struct Members {
    names: Vec<String>,
    shards: Vec<(u32, Option<String>)>,
    leader: Option<String>,
}

impl Members {
    fn from_status(status: &Value) -> Result<Members, Failure> {
        let names: Vec<String> = serde_json::from_value(status["names"].clone())
            .map_err(|e| Failure(crate::admin_client::EXIT_REFUSED, format!("the admin status has no member list ({e}): is this a controlplane serve of the same version?")))?;
        let cluster: host::metrics::ClusterView =
            serde_json::from_value(status["cluster"].clone()).unwrap_or_default();
        Ok(Members {
            names,
            shards: cluster
                .shards
                .iter()
                .map(|lease| (lease.shard.unwrap_or(0), lease.holder.clone()))
                .collect(),
            leader: cluster.leader.and_then(|lease| lease.holder),
        })
    }

    fn id(&self, name: &str) -> Result<NodeId, Failure> {
        let name = name.trim();
        let holder = |what: &str, holder: Option<&Option<String>>| match holder {
            Some(Some(holder)) => Ok(holder.clone()),
            Some(None) | None => Err(bad(format!(
                "`{name}`: no node holds {what} right now (this process may not host the store); name the node instead"
            ))),
        };
        let resolved = if name == "leader" {
            holder("the leader lease", Some(&self.leader))?
        } else if let Some(shard) = name
            .strip_prefix("shard-")
            .and_then(|n| n.parse::<u32>().ok())
        {
            let found = self
                .shards
                .iter()
                .find(|(s, _)| *s == shard)
                .map(|(_, h)| h);
            holder(&format!("shard {shard}"), found)?
        } else {
            name.to_string()
        };
        match self.names.iter().position(|n| *n == resolved) {
            Some(index) => {
                if resolved != name {
                    println!("{name} is {resolved}");
                }
                Ok(NodeId(index as u32))
            }
            None => Err(bad(format!(
                "unknown node `{name}`: allowed {}, shard-N (its holder) or leader",
                self.names.join(", ")
            ))),
        }
    }

    fn list(&self, names: &str) -> Result<Vec<NodeId>, Failure> {
        let mut ids = Vec::new();
        for name in names.split(',').filter(|n| !n.trim().is_empty()) {
            let id = self.id(name)?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        if ids.is_empty() {
            return Err(bad(format!("`{names}`: no node named")));
        }
        Ok(ids)
    }
}

async fn act(
    target: &Target,
    members: &Members,
    status: &Value,
    action: Action,
    flags: Flags,
) -> Result<(), Failure> {
    let links = |links: &Links| -> Result<Vec<NodeId>, Failure> {
        links
            .nodes
            .as_deref()
            .map_or(Ok(Vec::new()), |n| members.list(n))
    };
    let faults = match action {
        Action::Partition { a, b, one_way, .. } => {
            let side_a = members.list(&a)?;
            let side_b = match b {
                Some(b) => members.list(&b)?,
                None => (0..members.names.len() as u32)
                    .map(NodeId)
                    .filter(|id| !side_a.contains(id))
                    .collect(),
            };
            vec![Fault::Partition {
                side_a,
                side_b,
                one_way,
                duration_ns: flags.duration_ns,
            }]
        }
        Action::Clog { from, to, .. } => vec![Fault::Clog {
            from: members.id(&from)?,
            to: members.id(&to)?,
            duration_ns: flags.duration_ns,
        }],
        Action::Drop { links: l, .. } => vec![Fault::Degrade {
            nodes: links(&l)?,
            drop_ppm: flags.ppm,
            duplicate_ppm: 0,
            delay_ns: 0,
            duration_ns: flags.duration_ns,
        }],
        Action::Duplicate { links: l, .. } => vec![Fault::Degrade {
            nodes: links(&l)?,
            drop_ppm: 0,
            duplicate_ppm: flags.ppm,
            delay_ns: 0,
            duration_ns: flags.duration_ns,
        }],
        Action::Delay { links: l, .. } => vec![Fault::Degrade {
            nodes: links(&l)?,
            drop_ppm: 0,
            duplicate_ppm: 0,
            delay_ns: flags.delay_ns,
            duration_ns: flags.duration_ns,
        }],
        Action::Pause { node, .. } => vec![Fault::Pause {
            node: members.id(&node)?,
            duration_ns: flags.duration_ns,
        }],
        Action::Crash { node, .. } => vec![Fault::Crash {
            node: members.id(&node)?,
            restart_after_ns: flags.down_ns,
        }],
        Action::Skew { node, .. } => {
            let node = members.id(&node)?;
            let mut faults = Vec::new();
            if let Some(delta_ns) = flags.offset_ns {
                faults.push(Fault::ClockJump { node, delta_ns });
            }
            if let Some(drift_ppm) = flags.drift_ppm {
                faults.push(Fault::ClockDrift {
                    node,
                    drift_ppm,
                    duration_ns: flags.duration_ns,
                });
            }
            faults
        }
        Action::Heal { id } => {
            let path = match id {
                Some(id) => format!("/admin/faults/{id}"),
                None => "/admin/faults".to_string(),
            };
            let answer = request(target, Method::DELETE, &path, None).await?;
            let healed = answer["healed"].as_array().map_or(0, Vec::len);
            println!(
                "healed {healed} fault{}",
                if healed == 1 { "" } else { "s" }
            );
            return Ok(());
        }
        Action::Status { json } => {
            if json {
                println!("{}", serde_json::to_string_pretty(status).expect("json"));
            } else {
                print!("{}", status_text(status, members));
            }
            return Ok(());
        }
    };
    for fault in faults {
        post(target, members, &fault).await?;
    }
    Ok(())
}

async fn post(target: &Target, members: &Members, fault: &Fault) -> Result<u64, Failure> {
    let body = serde_json::to_value(fault).expect("a fault is JSON");
    let answer = request(target, Method::POST, "/admin/faults", Some(&body)).await?;
    let id = answer["id"].as_u64().unwrap_or(0);
    println!(
        "fault {id}: {}",
        dst::report::fault_line(fault, &members.names)
    );
    Ok(id)
}

/// `chaos status` as text.
fn status_text(status: &Value, members: &Members) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let faults: Vec<host::faults::ActiveFault> =
        serde_json::from_value(status["faults"].clone()).unwrap_or_default();
    let _ = writeln!(out, "members: {}", members.names.join(", "));
    if members.shards.is_empty() && members.leader.is_none() {
        let _ = writeln!(
            out,
            "leases: not known here (this process does not host the store)"
        );
    } else {
        let holder = |h: &Option<String>| h.clone().unwrap_or_else(|| "-".into());
        let shards: Vec<String> = members
            .shards
            .iter()
            .map(|(shard, h)| format!("shard-{shard}: {}", holder(h)))
            .collect();
        let _ = writeln!(out, "shards: {}", shards.join(", "));
        let _ = writeln!(out, "leader: {}", holder(&members.leader));
    }
    if faults.is_empty() {
        let _ = writeln!(out, "no active faults");
    }
    for active in faults {
        let left = active.heals_in_ms.map_or("until healed".to_string(), |ms| {
            format!("{:.1} s left", ms as f64 / 1e3)
        });
        let _ = writeln!(
            out,
            "fault {}: {} ({left})",
            active.id,
            dst::report::fault_line(&active.fault, &members.names)
        );
    }
    out
}

/// An artifact's member names (by simulated node id) and faults.
fn read_artifact(path: &std::path::Path) -> Result<(Vec<String>, Vec<ScheduledFault>), Failure> {
    let artifact = dst::artifact::Artifact::read(path).map_err(|e| bad(e.to_string()))?;
    let (_, names) = dst::layout::layout(&artifact.scenario.topology);
    let names = names.into_iter().map(|(name, _)| name).collect();
    let mut faults = artifact.faults;
    faults.sort_by_key(|fault| fault.at_ns);
    Ok((names, faults))
}

/// Maps one simulated node to the live member of the same name
/// (`client-N` is the edge `http-N`).
fn live_id(members: &Members, artifact_names: &[String], id: NodeId) -> Option<NodeId> {
    let name = artifact_names.get(id.index())?;
    let live = match name.strip_prefix("client-") {
        Some(n) => format!("http-{n}"),
        None => name.clone(),
    };
    members
        .names
        .iter()
        .position(|n| *n == live)
        .map(|i| NodeId(i as u32))
}

/// The fault with its nodes mapped to the live cluster; `Err` says why it
/// cannot be played.
fn map_fault(members: &Members, names: &[String], fault: &Fault) -> Result<Fault, String> {
    let one = |id: NodeId| {
        live_id(members, names, id).ok_or_else(|| {
            format!(
                "{} is not a member of the live cluster",
                names
                    .get(id.index())
                    .cloned()
                    .unwrap_or_else(|| id.to_string())
            )
        })
    };
    // Members absent live drop out of a set; a set left empty cannot be cut.
    let many = |ids: &[NodeId]| -> Vec<NodeId> {
        ids.iter()
            .filter_map(|&id| live_id(members, names, id))
            .collect()
    };
    let mut mapped = fault.clone();
    match &mut mapped {
        Fault::Partition { side_a, side_b, .. } => {
            *side_a = many(side_a);
            *side_b = many(side_b);
            if side_a.is_empty() || side_b.is_empty() {
                return Err("a side of the partition has no live member".into());
            }
        }
        Fault::Degrade { nodes, .. } => {
            let was_empty = nodes.is_empty();
            *nodes = many(nodes);
            if nodes.is_empty() && !was_empty {
                return Err("none of its nodes is a live member".into());
            }
        }
        Fault::Clog { from, to, .. } => {
            *from = one(*from)?;
            *to = one(*to)?;
        }
        Fault::Crash { node, .. }
        | Fault::Reboot { node, .. }
        | Fault::Pause { node, .. }
        | Fault::ClockJump { node, .. }
        | Fault::ClockDrift { node, .. } => *node = one(*node)?,
    }
    Ok(mapped)
}

/// Waits until none of the faults `ids` is active on the cluster.
async fn wait_for_heals(target: &Target, ids: &[u64]) -> Result<(), Failure> {
    const GRACE: Duration = Duration::from_secs(30);
    let deadline = tokio::time::Instant::now() + GRACE;
    loop {
        let answer = request(target, Method::GET, "/admin/faults", None).await?;
        let active: Vec<host::faults::ActiveFault> =
            serde_json::from_value(answer["faults"].clone()).unwrap_or_default();
        let Some(left) = active.iter().find(|fault| ids.contains(&fault.id)) else {
            return Ok(());
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(Failure(
                1,
                format!(
                    "fault {} is still active {} s after it should have healed",
                    left.id,
                    GRACE.as_secs()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Plays an artifact's faults in real time: each at its start time after
/// now. A fault that names no live member is reported and skipped, never
/// silently.
async fn play(
    target: &Target,
    members: &Members,
    names: &[String],
    faults: Vec<ScheduledFault>,
) -> Result<(), Failure> {
    let start = Instant::now();
    let last_heal_ns = faults
        .iter()
        .filter_map(ScheduledFault::healed_at_ns)
        .max()
        .unwrap_or(0);
    println!(
        "playing {} fault{} over {:.1} s",
        faults.len(),
        if faults.len() == 1 { "" } else { "s" },
        last_heal_ns as f64 / 1e9
    );
    let (mut played, mut skipped) = (0, 0);
    let mut ids = Vec::new();
    for scheduled in &faults {
        let at = start + Duration::from_nanos(scheduled.at_ns);
        tokio::time::sleep_until(at.into()).await;
        match map_fault(members, names, &scheduled.fault) {
            Ok(fault) => match post(target, members, &fault).await {
                Ok(id) => {
                    played += 1;
                    ids.push(id);
                }
                // The cluster refused this one (e.g. a node in another
                // process): say so and go on with the rest.
                Err(Failure(code, message)) if code == crate::admin_client::EXIT_REFUSED => {
                    println!(
                        "skipped at {:.3} s: {} ({message})",
                        scheduled.at_ns as f64 / 1e9,
                        dst::report::fault_line(&scheduled.fault, names)
                    );
                    skipped += 1;
                }
                Err(failure) => return Err(failure),
            },
            Err(why) => {
                println!(
                    "skipped at {:.3} s: {} ({why})",
                    scheduled.at_ns as f64 / 1e9,
                    dst::report::fault_line(&scheduled.fault, names)
                );
                skipped += 1;
            }
        }
    }
    // Wait for the last heal, so the command ends when the cluster is whole.
    let healed = start + Duration::from_nanos(last_heal_ns);
    tokio::time::sleep_until(healed.into()).await;
    // The cluster heals each fault on its own timer, started when it took
    // the fault: ask it, rather than trust this process's clock.
    wait_for_heals(target, &ids).await?;
    println!("played {played}, skipped {skipped}; every fault has healed");
    Ok(())
}
