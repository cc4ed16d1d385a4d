//! What the command-line tests share: running the built binary and a
//! scratch directory per test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `controlplane ARGS` from the crate root and waits for it.
pub fn controlplane(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_controlplane"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh, empty directory `suite/name` under the target's scratch space.
pub fn scratch(suite: &str, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(suite)
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}
