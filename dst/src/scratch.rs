//! Scratch directories for this crate's tests, removed when dropped.

use std::ops::Deref;
use std::path::{Path, PathBuf};

/// A test's own directory under the system's temporary directory,
/// `<prefix>-<pid>/<name>`: emptied when made, removed with everything in
/// it when dropped (and the per-process parent with it, once the last of
/// its test's siblings is gone), so test runs leave nothing behind.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    /// The directory `name` for this process's tests of `prefix`. It is
    /// not created: a test that needs it there creates it.
    pub(crate) fn new(prefix: &str, name: &str) -> Self {
        let dir = std::env::temp_dir()
            .join(format!("{prefix}-{}", std::process::id()))
            .join(name);
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }
}

impl Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        if let Some(parent) = self.0.parent() {
            // Fails while another test still has its directory there.
            let _ = std::fs::remove_dir(parent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_directory_is_gone_when_dropped() {
        let scratch = Scratch::new("dst-scratch", "gone");
        std::fs::create_dir_all(scratch.join("inner")).expect("creates");
        std::fs::write(scratch.join("inner/file"), b"x").expect("writes");
        let path = scratch.to_path_buf();
        drop(scratch);
        assert!(!path.exists());
    }
}
