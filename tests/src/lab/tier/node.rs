//! One lb node of the tier: its namespace (uplink `l0` to the router), its
//! own bpffs pin root, its config file, `lb run` with announcements on, and
//! BIRD exporting lb's VIP routes to the router.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use super::bird;
use super::plan::{ANNOUNCE_PROTO, node_link, node_name};
use crate::lab::cmd;
use crate::lab::config::{ConfigFile, LabConfig};
use crate::lab::error::{LabError, Result};
use crate::lab::netns::{self, NetNs, PIN_BASE, PIN_DIR};
use crate::lab::process::Proc;
use crate::lab::topology::LB_IFACE;

/// How long a node's agent may take to attach and apply.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A node's config: the tier's services and backends plus its `announce` section.
pub fn node_yaml(config: &LabConfig, announce: bool) -> String {
    format!(
        "{}announce:\n  enabled: {announce}\n  protocol: {ANNOUNCE_PROTO}\n",
        config.to_yaml()
    )
}

/// One lb node.
#[derive(Debug)]
pub struct Node {
    /// 1-based index (`n1`...).
    pub index: u8,
    /// `n1`...
    pub name: String,
    /// Its namespace.
    pub ns: Arc<NetNs>,
    /// `/run/lblab/<ns name>`: its bpffs (`bpffs/`) and agent state (`state/`).
    root: PathBuf,
    /// Scratch directory (config, logs, BIRD's files).
    dir: PathBuf,
    /// The config file its agent watches.
    pub file: ConfigFile,
    /// Whether its config announces the VIPs.
    pub announce: bool,
    agent: Option<Proc>,
    bird: Option<Proc>,
}

impl Node {
    /// A node whose namespace exists (wired by the tier); mounts its bpffs.
    pub(super) fn new(index: u8, ns: Arc<NetNs>, scratch: &Path) -> Result<Node> {
        let name = node_name(index);
        let root = Path::new(PIN_BASE).join(ns.name());
        let bpffs = root.join(PIN_DIR);
        std::fs::create_dir_all(&bpffs)
            .map_err(LabError::io(format!("create {}", bpffs.display())))?;
        let node = Node {
            index,
            dir: scratch.join(&name),
            file: ConfigFile::new(scratch.join(&name).join("lb.yaml")),
            name,
            ns,
            root,
            announce: true,
            agent: None,
            bird: None,
        };
        std::fs::create_dir_all(&node.dir)
            .map_err(LabError::io(format!("create {}", node.dir.display())))?;
        cmd::run_args("mount", &["-t", "bpf", "bpf", &bpffs.display().to_string()])?;
        Ok(node)
    }

    /// Its bpffs pin root (`--pin-root`); the agent's state is in its sibling `state`.
    pub fn pin_root(&self) -> PathBuf {
        self.root.join(PIN_DIR)
    }

    /// `--iface l0 --pin-root <its pin root>`.
    pub fn state_args(&self) -> Vec<String> {
        vec![
            "--iface".into(),
            LB_IFACE.into(),
            "--pin-root".into(),
            self.pin_root().display().to_string(),
        ]
    }

    /// The router-side address of its link (BIRD's neighbour).
    pub fn uplink_v4(&self) -> std::net::Ipv4Addr {
        node_link(self.index).host_v4()
    }

    /// Writes its config (`config` with its own `announce`).
    pub fn write_config(&self, config: &LabConfig) -> Result<()> {
        self.file.write_text(&node_yaml(config, self.announce))
    }

    /// Starts `lb run` (config already written) and waits until it attached,
    /// applied and answers `lb stats`.
    pub fn start_agent(&mut self, lb: &Path) -> Result<()> {
        if let Some(mut old) = self.agent.take() {
            old.stop(Duration::from_secs(3));
        }
        let mut args = vec![
            "run".to_owned(),
            "--config".into(),
            self.file.path().display().to_string(),
        ];
        args.extend(self.state_args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let log = self.dir.join("agent.log");
        let log_start = std::fs::metadata(&log).map_or(0, |m| m.len() as usize);
        let mut proc = Proc::spawn_in(self.ns.name(), lb, &args, &log)?;
        crate::lab::agent::wait_attached(
            &mut proc,
            log_start,
            self.ns.name(),
            START_TIMEOUT,
            || self.stats(lb).is_ok(),
        )?;
        self.agent = Some(proc);
        Ok(())
    }

    /// Waits until its agent shows `config` in `lb stats`.
    pub fn wait_applied(&self, lb: &Path, config: &LabConfig) -> Result<()> {
        let timeout = crate::lab::scenario::APPLY_TIMEOUT;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let stats = self.stats(lb)?;
            if crate::lab::stats::matches(&stats, config) {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(LabError::Timeout {
                    what: format!("{} to apply the config: {stats}", self.name),
                    seconds: timeout.as_secs_f64(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts BIRD in the node.
    pub fn start_bird(&mut self) -> Result<()> {
        self.bird = Some(bird::start(self.ns.name(), self.index, &self.dir)?);
        Ok(())
    }

    /// `lb stats --json` of this node, parsed.
    pub fn stats(&self, lb: &Path) -> Result<serde_json::Value> {
        let out = cmd::run(
            Command::new("ip")
                .args(["netns", "exec", self.ns.name()])
                .arg(lb)
                .args(["stats", "--json", "--interval", "0"])
                .args(self.state_args()),
        )?;
        serde_json::from_slice(&out.stdout).map_err(|e| LabError::Output {
            command: format!("lb stats --json in {}", self.name),
            message: format!("{e}: {}", String::from_utf8_lossy(&out.stdout)),
        })
    }

    /// Kills the agent with SIGKILL (datapath, pins and routes stay).
    pub fn kill_agent(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            agent.kill();
        }
    }

    /// Whether its agent runs.
    pub fn agent_running(&mut self) -> bool {
        self.agent.as_mut().is_some_and(|a| a.try_wait().is_none())
    }

    /// Everything its agent logged.
    pub fn agent_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    /// Stops BIRD and the agent, deletes the namespace (killing anything left
    /// in it) and unmounts its bpffs.
    pub(super) fn teardown(&mut self) {
        if let Some(mut bird) = self.bird.take() {
            bird.stop(Duration::from_secs(3));
        }
        if let Some(mut agent) = self.agent.take() {
            agent.stop(Duration::from_secs(3));
        }
        if Path::new("/run/netns").join(self.ns.name()).exists() {
            let _ = netns::delete_by_name(self.ns.name());
        }
        netns::remove_pin_base(&self.root);
    }
}
