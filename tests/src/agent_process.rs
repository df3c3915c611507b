//! The `lb` binary under test, and a running `lb` (`lb run`, usually) as a
//! child process that is killed when its guard is dropped, so a failing test
//! never leaves an agent behind.

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

/// The `lb` binary: `$LB_BIN`, else `lb` next to the test executable's
/// directory (`target/debug/deps/agent-xxxx` -> `target/debug/lb`).
///
/// # Panics
/// When neither exists, with the command that builds it.
pub fn lb_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("LB_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("current_exe");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable inside target/*/deps")
        .join("lb");
    assert!(
        path.exists(),
        "{} missing: run `cargo build -p lb-userspace` or set LB_BIN",
        path.display()
    );
    path
}

/// A running `lb` child process, killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct Agent {
    /// The process (its id for signals, `try_wait` to see it exit).
    pub child: Child,
}

impl Agent {
    /// Guards `child`.
    pub fn new(child: Child) -> Self {
        Self { child }
    }

    /// kill -9, and reap it.
    ///
    /// # Panics
    /// When the kill or the wait fails.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill lb");
        self.child.wait().expect("wait for lb");
    }

    /// SIGTERM, then waits for it to exit (SIGKILL after 5 s).
    pub fn stop(mut self) {
        let Ok(pid) = i32::try_from(self.child.id()) else {
            return; // Dropping kills it.
        };
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Drop kills it if it is still running, and reaps it.
    }
}

impl From<Child> for Agent {
    fn from(child: Child) -> Self {
        Self::new(child)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ignored = self.child.kill();
        let _ignored = self.child.wait();
    }
}

/// Polls the agent state file at `path` every 50 ms until it satisfies
/// `pred`, and returns it.
///
/// # Panics
/// After 10 s, naming `what` and showing `log()` (the agent's log).
pub fn wait_state(
    path: &std::path::Path,
    what: &str,
    pred: impl Fn(&lb::state::AppliedState) -> bool,
    log: impl Fn() -> String,
) -> lb::state::AppliedState {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(s)) = lb::state::AppliedState::read(path)
            && pred(&s)
        {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; log:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
