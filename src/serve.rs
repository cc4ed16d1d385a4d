//! `controlplane serve`: the control plane's nodes on the real host.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use dst::scenario::Scenario;
use host::{ServeConfig, peers};
use plane::config::Bug;

use crate::cli::EXIT_BAD_INPUT;

/// Exit code when a node could not start (a corrupt state file, a port in
/// use).
pub const EXIT_START: u8 = 9;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The data directory: each node keeps `DIR/<node>/state.bin` and
    /// `DIR/<node>/history.jsonl`.
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// Where the HTTP API, /metrics, /healthz and /readyz listen
    /// (single-process mode).
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// Take node counts and every node kind's settings from a scenario
    /// (name or TOML path); its faults and workload are ignored.
    #[arg(long)]
    scenario: Option<String>,
    /// Run only this node (or edge, `http-N`) of the peers file; repeat for
    /// several. Needs --peers.
    #[arg(long, requires = "peers")]
    role: Vec<String>,
    /// The peers file: every node's address (see examples/peers.toml).
    #[arg(long)]
    peers: Option<PathBuf>,
    /// Plant a zoo bug, to reproduce a simulated failure live.
    #[arg(long)]
    bug: Vec<String>,
    /// Where the admin endpoint listens: loopback only.
    #[arg(long, default_value = "127.0.0.1:0")]
    admin: SocketAddr,
    /// The admin endpoint's token (`Authorization: Bearer TOKEN`); by
    /// default one is drawn and printed at start.
    #[arg(long)]
    admin_token: Option<String>,
}

pub fn serve(args: ServeArgs) -> ExitCode {
    let mut config = ServeConfig::single_process(args.data.clone(), args.http);
    if let Err(message) = host::admin::check_loopback(args.admin) {
        eprintln!("error: {message}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    config.admin = args.admin;
    config.admin_token = args.admin_token.clone();
    if let Some(name) = &args.scenario {
        match Scenario::load(name) {
            Ok(scenario) => {
                config.settings = scenario.settings();
                config.topology = scenario.topology.clone();
                config.topology.clients = 1;
            }
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(EXIT_BAD_INPUT);
            }
        }
    }
    for name in &args.bug {
        match Bug::from_name(name) {
            Ok(bug) => config.bugs.push(bug),
            Err(message) => {
                eprintln!("error: --bug: {message}");
                return ExitCode::from(EXIT_BAD_INPUT);
            }
        }
    }
    if let Some(path) = &args.peers {
        match peers::load(path) {
            Ok(peers) => {
                config.topology = peers.topology;
                config.addresses = peers.nodes;
                config.http = peers.http;
                config.run_only = args.role.clone();
            }
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(EXIT_BAD_INPUT);
            }
        }
    }
    let runtime = match crate::remote_http::runtime(EXIT_START) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let running = match host::start(config).await {
            Ok(running) => running,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(EXIT_START);
            }
        };
        // Where chaos and watch find this process (`--data DIR`): one file
        // per process of a multi-process cluster.
        let file_name = match args.role.first() {
            Some(role) => format!("admin-{role}.json"),
            None => crate::admin_client::ADMIN_FILE.to_string(),
        };
        let admin_file = crate::admin_client::AdminFile {
            url: format!("http://{}", running.admin),
            token: running.admin_token.clone(),
        };
        if let Err(error) =
            crate::admin_client::write_admin_file(&args.data, &file_name, &admin_file)
        {
            eprintln!(
                "warning: cannot write {}: {error}",
                args.data.join(&file_name).display()
            );
        }
        println!("controlplane serving from {}", args.data.display());
        for (name, address) in &running.http {
            println!("  {name}: API, /metrics, /healthz and /readyz at http://{address}");
        }
        println!(
            "  admin at http://{} (loopback only; token {})",
            running.admin, running.admin_token
        );
        for (name, address) in &running.nodes {
            println!("  {name}: node frames at {address}");
        }
        println!("stop with Ctrl-C");
        let _ = tokio::signal::ctrl_c().await;
        running.shutdown().await;
        ExitCode::SUCCESS
    })
}
