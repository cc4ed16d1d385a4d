//! The crate graph is the architecture: the nodes see only the node
//! contract, the contract sees nothing heavier than serde and rand_core, and
//! the simulator knows nothing of control planes. The compiler enforces
//! what a crate may use once its manifest is right; this test keeps the
//! manifests right.

use std::collections::BTreeSet;
use std::path::Path;

/// The names of a crate's normal (not dev, not build) dependencies.
fn dependencies(krate: &str) -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(krate)
        .join("Cargo.toml");
    let text = std::fs::read_to_string(&path).expect("manifest");
    let manifest: toml::Table = toml::from_str(&text).expect("valid manifest");
    manifest
        .get("dependencies")
        .and_then(|deps| deps.as_table())
        .map(|deps| deps.keys().cloned().collect())
        .unwrap_or_default()
}

fn allowed(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| name.to_string()).collect()
}

#[test]
fn the_control_plane_depends_on_the_contract_and_never_on_a_host() {
    let deps = dependencies("plane");
    assert!(
        deps.is_subset(&allowed(&["node", "serde", "tracing"])),
        "plane may depend on node, serde and tracing only, found {deps:?}"
    );
    assert!(deps.contains("node"));
}

#[test]
fn the_contract_depends_on_nothing_heavier_than_serde_and_rand_core() {
    let deps = dependencies("node");
    assert!(
        deps.is_subset(&allowed(&["serde", "rand_core"])),
        "node may depend on serde and rand_core only, found {deps:?}"
    );
}

#[test]
fn the_simulator_knows_nothing_of_control_planes() {
    let deps = dependencies("sim");
    for forbidden in ["plane", "dst", "controlplane"] {
        assert!(!deps.contains(forbidden), "sim depends on {forbidden}");
    }
}

#[test]
fn no_node_source_names_the_simulator() {
    // A path dependency is not the only way in: a stray `sim::` in the
    // nodes would fail to compile today, and this names the file if the
    // manifest ever lets it through.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("plane/src");
    let mut stack = vec![root];
    let mut checked = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("plane/src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).expect("source");
                assert!(
                    !text.contains("sim::") && !text.contains("use sim"),
                    "{} names the simulator",
                    path.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "found the node sources ({checked} files)");
}

#[test]
fn the_real_host_runs_the_nodes_without_the_simulator_or_the_framework() {
    let deps = dependencies("host");
    assert!(deps.contains("node") && deps.contains("plane"), "{deps:?}");
    for forbidden in ["sim", "dst", "controlplane"] {
        assert!(!deps.contains(forbidden), "host depends on {forbidden}");
    }
}

#[test]
fn the_engines_run_the_same_nodes_and_checkers_and_never_the_real_host() {
    // turmoil's engine and madsim's drive plane's nodes through the node
    // contract and judge them with dst's checkers; neither reaches into the
    // real host, whose sockets and clocks they replace.
    for krate in ["engine", "madsim"] {
        let deps = dependencies(krate);
        for needed in ["node", "plane", "dst"] {
            assert!(deps.contains(needed), "{krate} lacks {needed}: {deps:?}");
        }
        for forbidden in ["host", "controlplane", "tokio-util", "axum"] {
            assert!(!deps.contains(forbidden), "{krate} depends on {forbidden}");
        }
    }
    // madsim's build must not pull in turmoil (or tokio through it).
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("madsim/Cargo.toml"))
            .expect("manifest");
    assert!(
        manifest.contains("default-features = false"),
        "madsim takes engine without turmoil"
    );
}

#[test]
fn the_simulation_commands_need_no_real_host() {
    let deps = dependencies("simcli");
    for forbidden in ["host", "engine", "tokio", "controlplane"] {
        assert!(!deps.contains(forbidden), "simcli depends on {forbidden}");
    }
}
