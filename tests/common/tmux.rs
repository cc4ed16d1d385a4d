//! A tmux server on a socket of its own, for the tests that need a real
//! terminal (`watch`, the sweep's progress bar). Included with `#[path]`
//! by those tests only.

use std::process::{Command, Output};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// A tmux server on its own socket with one session, killed when dropped
/// (also when the test fails).
pub struct Tmux {
    socket: String,
    session: &'static str,
}

impl Tmux {
    /// A server for `session`, on a socket named after it and this process.
    pub fn new(session: &'static str) -> Tmux {
        Tmux {
            socket: format!("controlplane-{session}-{}", std::process::id()),
            session,
        }
    }

    /// The session's name, for `new-session -s`.
    pub fn session(&self) -> &'static str {
        self.session
    }

    /// Runs `tmux ARGS` against this server.
    pub fn command(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux runs")
    }

    /// What the session's pane shows now.
    pub fn screen(&self) -> String {
        let output = self.command(&["capture-pane", "-p", "-t", self.session]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits until the screen shows every one of `parts`; returns it.
    pub fn wait_for(&self, parts: &[&str], limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if parts.iter().all(|part| screen.contains(part)) {
                return screen;
            }
            assert!(
                start.elapsed() < limit,
                "{parts:?} not on screen within {limit:?}:\n{screen}"
            );
            sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command(&["kill-server"]);
    }
}
