//! Records the git commit at build time, so failure artifacts say which
//! code produced them. Outside the simulated code: it only sets an env var.

fn main() {
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/refs");
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty());
    if let Some(commit) = commit {
        println!("cargo:rustc-env=CONTROLPLANE_GIT_COMMIT={commit}");
    }
}
