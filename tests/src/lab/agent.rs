//! Driving the `lb` agent inside the lab's load balancer namespace: `lb run`,
//! `lb stats --json`, `lb watch`, all sharing the lab's own bpffs pin root.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::cmd;
use super::decap::xdp_attached;
use super::error::{LabError, Result};
use super::process::Proc;
use super::topology::{LB_IFACE, Lab};

/// How long the agent may take to attach after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Time given to the agent, after its first apply, to start watching the config.
pub const WATCH_GRACE: Duration = Duration::from_millis(300);

impl Lab {
    fn lb(&self) -> Result<std::path::PathBuf> {
        self.lb_bin.clone().ok_or_else(|| {
            LabError::NoBinary("no lb binary given to the lab (start_decap first)".into())
        })
    }

    /// The arguments that select this lab's load balancer state:
    /// `--iface l0 --pin-root <lab bpffs>`.
    pub fn state_args(&mut self) -> Result<Vec<String>> {
        let root = self.pin_root()?;
        Ok(vec![
            "--iface".into(),
            LB_IFACE.into(),
            "--pin-root".into(),
            root.display().to_string(),
        ])
    }

    /// Starts `lb run --config CONFIG --iface l0 --pin-root ROOT [extra...]` in
    /// the load balancer namespace and waits (bounded) until its XDP program is
    /// attached, `lb stats --json` answers and the agent has logged its first
    /// apply (its `... applied in N ms` line), plus [`WATCH_GRACE`] for
    /// its file watch to be set up (the agent starts watching only after the
    /// first apply; a save in between would go unseen).
    pub fn start_agent(&mut self, config: &Path, extra: &[&str]) -> Result<()> {
        if let Some(mut old) = self.agent.take() {
            old.stop(Duration::from_secs(3));
        }
        let lb = self.lb()?;
        let mut args = vec![
            "run".to_owned(),
            "--config".into(),
            config.display().to_string(),
        ];
        args.extend(self.state_args()?);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let log = self.scratch().join("agent.log");
        let log_start = self.agent_log().len();
        let mut proc = Proc::spawn_in(self.lb_ns.name(), &lb, &args, &log)?;
        let ns = self.lb_ns.name().to_owned();
        wait_attached(&mut proc, log_start, &ns, START_TIMEOUT, || {
            self.stats().is_ok()
        })?;
        self.agent = Some(proc);
        Ok(())
    }

    /// The agent's pid, when running.
    pub fn agent_pid(&self) -> Option<u32> {
        self.agent.as_ref().and_then(Proc::pid)
    }

    /// Everything the agent (all of its runs in this lab) has logged.
    pub fn agent_log(&self) -> String {
        std::fs::read_to_string(self.scratch().join("agent.log")).unwrap_or_default()
    }

    /// The agent's own "file change to applied" times (the `N` of its
    /// `applied in N ms` log lines), in order, over all of its runs in this lab.
    pub fn agent_apply_ms(&self) -> Vec<f64> {
        self.agent_log()
            .lines()
            .filter_map(|l| {
                let rest = l.split(" applied in ").nth(1)?;
                rest.split(" ms").next()?.trim().parse().ok()
            })
            .collect()
    }

    /// Kills the agent with SIGKILL (its pinned state and XDP link stay).
    pub fn kill_agent(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            agent.kill();
        }
    }

    /// Whether the agent is still running.
    pub fn agent_running(&mut self) -> bool {
        self.agent.as_mut().is_some_and(|a| a.try_wait().is_none())
    }

    /// Runs `lb ARGS... --iface l0 --pin-root ROOT` in the load balancer namespace.
    pub fn lb_command(&mut self, args: &[&str]) -> Result<Output> {
        let lb = self.lb()?;
        let state = self.state_args()?;
        cmd::run(
            Command::new("ip")
                .args(["netns", "exec", self.lb_ns.name()])
                .arg(lb)
                .args(args)
                .args(&state),
        )
    }

    /// `lb stats --json`, parsed.
    pub fn stats(&mut self) -> Result<serde_json::Value> {
        let out = self.lb_command(&["stats", "--json", "--interval", "0"])?;
        serde_json::from_slice(&out.stdout).map_err(|e| LabError::Output {
            command: "lb stats --json".into(),
            message: format!("{e}: {}", String::from_utf8_lossy(&out.stdout)),
        })
    }

    /// Polls `lb stats --json` every 20 ms until `done` holds (bounded by
    /// `timeout`); returns the matching stats and how long it took.
    pub fn wait_stats(
        &mut self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&serde_json::Value) -> bool,
    ) -> Result<(serde_json::Value, Duration)> {
        let start = Instant::now();
        let mut last = None;
        while start.elapsed() < timeout {
            match self.stats() {
                Ok(stats) if done(&stats) => return Ok((stats, start.elapsed())),
                Ok(stats) => last = Some(stats),
                Err(_) => {}
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(LabError::Timeout {
            what: format!(
                "{what} (last stats: {})",
                last.map(|s| s.to_string()).unwrap_or_default()
            ),
            seconds: timeout.as_secs_f64(),
        })
    }

    /// A `lb watch` command for this lab (inherits the terminal).
    pub fn watch_command(&mut self) -> Result<Command> {
        let lb = self.lb()?;
        let state = self.state_args()?;
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", self.lb_ns.name()])
            .arg(lb)
            .arg("watch")
            .args(state);
        Ok(command)
    }
}

/// Waits until the `lb run` in `proc` (network namespace `ns`) has logged its
/// first apply after byte `log_start` of its log, its program is attached to
/// the lab's LB interface and `stats_ok()` holds; then [`WATCH_GRACE`].
///
/// # Errors
/// When the agent exits, or after `limit`.
pub(crate) fn wait_attached(
    proc: &mut Proc,
    log_start: usize,
    ns: &str,
    limit: Duration,
    mut stats_ok: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = proc.try_wait() {
            return Err(LabError::Output {
                command: proc.name().to_owned(),
                message: format!("exited {status}: {}", proc.log_text()),
            });
        }
        let text = proc.log_text();
        let applied = text
            .get(log_start..)
            .unwrap_or_default()
            .contains(" applied in ");
        if applied && xdp_attached(ns, LB_IFACE)? && stats_ok() {
            std::thread::sleep(WATCH_GRACE);
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(LabError::Timeout {
                what: format!("{} to attach: {}", proc.name(), proc.log_text()),
                seconds: limit.as_secs_f64(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
