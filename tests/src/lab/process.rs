//! Child processes of the lab (`lb run`, `lb decap`, `lb watch`), started inside a
//! namespace with `ip netns exec`, logged to a file, and killed on drop.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::cmd;
use super::error::{LabError, Result};

/// Where the `lb` binary is: `$LB_BIN`, else next to the running executable
/// (`target/*/lb-lab` -> `target/*/lb`) or one level up (`target/*/deps/e2e-*`
/// -> `target/*/lb`).
pub fn lb_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("LB_BIN") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(LabError::NoBinary(path.display().to_string()))
        };
    }
    let exe = std::env::current_exe().map_err(LabError::io("current_exe"))?;
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("lb"))
        .collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            LabError::NoBinary(
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })
}

/// A child process that is killed (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    /// Starts `program args...` inside namespace `ns`, stdout and stderr appended
    /// to `log`.
    pub fn spawn_in(ns: &str, program: &Path, args: &[&str], log: &Path) -> Result<Proc> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(LabError::io(format!("open {}", log.display())))?;
        let err = out.try_clone().map_err(LabError::io("dup log fd"))?;
        let mut command = Command::new("ip");
        // Its own process group: a Ctrl-C meant for the lab reaches the lab,
        // which then stops its children in order.
        command
            .process_group(0)
            .args(["netns", "exec", ns])
            .arg(program)
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        Self::spawn(command, log)
    }

    /// Starts `command` (its stdio already set up), naming `log` for reports.
    pub fn spawn(mut command: Command, log: &Path) -> Result<Proc> {
        let name = cmd::describe(&command);
        let child = command.spawn().map_err(|source| LabError::Spawn {
            command: name.clone(),
            source,
        })?;
        Ok(Proc {
            name,
            child: Some(child),
            log: log.to_owned(),
        })
    }

    /// The command line.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The log's content so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Exit status if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Sends `signal` (e.g. `libc::SIGKILL`).
    pub fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as i32, signal) };
        }
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL and reap, now.
    pub fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        self.child.as_ref()?;
        self.signal(libc::SIGTERM);
        let status = self.wait_timeout(grace);
        if status.is_none() {
            self.kill();
        } else {
            self.child = None;
        }
        status
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(3));
    }
}
