//! Building and tearing down the tier: the lab without its single load
//! balancer, the router's FRR, the client's extra source addresses, and the
//! nodes (added at start or later, live).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::frr::RouterDaemons;
use super::node::Node;
use super::plan::{MAX_NODES, client_sources, node_link, router_iface};
use super::routes;
use crate::lab::cmd;
use crate::lab::config::{LabConfig, gue_port_in};
use crate::lab::error::Result;
use crate::lab::netns::{NetNs, PIN_BASE, PIN_DIR};
use crate::lab::process::lb_binary;
use crate::lab::topology::{INNER_MTU, LB_IFACE, Lab, base_sysctls, sysctls, wire_link};

/// How long the router may take to install a new node's routes (BGP session
/// set-up with a 2 s connect retry, BFD up, routes exchanged).
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(40);

/// A running tier. Dropping it stops every daemon and agent and deletes every
/// namespace, pin root and scratch file it created.
#[derive(Debug)]
pub struct Tier {
    /// Client, router and backends (with `lb decap`).
    pub lab: Lab,
    /// The nodes, in creation order (node *i* at index *i - 1*).
    pub nodes: Vec<Node>,
    /// The config every node runs (each adds its own `announce`).
    pub config: LabConfig,
    /// A config text every node starts from instead of `config`.
    yaml: Option<String>,
    router: Option<RouterDaemons>,
    lb: PathBuf,
}

impl Tier {
    /// Builds the tier: `backends` backends (servers and decap running), the
    /// router's FRR with BGP sessions for up to `slots` nodes, and `nodes`
    /// nodes running `config`; waits until the router routes the VIPs over
    /// every node.
    pub fn new(nodes: u8, slots: u8, backends: u8, config: LabConfig) -> Result<Tier> {
        Self::build(nodes, slots, backends, config, None)
    }

    /// Like [`Tier::new`], but every node starts with its own copy of `yaml`
    /// (a user's config file, for the interactive lab); [`Tier::apply`] is
    /// not meant for such a tier.
    pub fn with_yaml(nodes: u8, slots: u8, backends: u8, yaml: String) -> Result<Tier> {
        Self::build(
            nodes,
            slots,
            backends,
            LabConfig::equal(backends),
            Some(yaml),
        )
    }

    fn build(
        nodes: u8,
        slots: u8,
        backends: u8,
        config: LabConfig,
        yaml: Option<String>,
    ) -> Result<Tier> {
        assert!(
            nodes <= slots && slots <= MAX_NODES,
            "{nodes} nodes, {slots} slots"
        );
        let lb = lb_binary()?;
        let mut tier = Tier {
            lab: Lab::without_lb(backends)?,
            nodes: Vec::new(),
            config,
            yaml,
            router: None,
            lb,
        };
        tier.lab.lb_bin = Some(tier.lb.clone());
        let gue_port = match &tier.yaml {
            Some(text) => gue_port_in(text),
            None => tier.config.encap.gue_port(),
        };
        tier.lab.set_decap_gue_port(gue_port);
        for i in 0..tier.lab.backends.len() {
            tier.lab.start_backend_decap(i)?;
        }
        tier.lab.decap_on = true;
        let (cl, rt) = (
            tier.lab.client_ns.name().to_owned(),
            tier.lab.router_ns.name().to_owned(),
        );
        for v6 in [false, true] {
            for src in client_sources(v6).into_iter().skip(1) {
                let (family, len) = if v6 { ("-6", 64) } else { ("-4", 24) };
                let mut args = vec![family, "addr", "add"];
                let addr = format!("{src}/{len}");
                args.extend([addr.as_str(), "dev", "c0"]);
                if v6 {
                    args.push("nodad");
                }
                cmd::ip_in(&cl, &args)?;
            }
        }
        cmd::sysctl_in(
            &rt,
            &sysctls(&[
                ("net.ipv4.fib_multipath_hash_policy", "1"),
                ("net.ipv6.fib_multipath_hash_policy", "1"),
            ]),
        )?;
        let frr_dir = tier.lab.scratch().join("frr-router");
        tier.router = Some(RouterDaemons::start(&rt, &frr_dir, slots)?);
        for _ in 0..nodes {
            tier.add_node()?;
        }
        let all: Vec<String> = tier.nodes.iter().map(|n| router_iface(n.index)).collect();
        tier.wait_nexthops("every node's routes on the router", JOIN_TIMEOUT, &all)?;
        Ok(tier)
    }

    /// The `lb` binary.
    pub fn lb(&self) -> &Path {
        &self.lb
    }

    /// The router's namespace name.
    pub fn router(&self) -> &str {
        self.lab.router_ns.name()
    }

    /// The router's FRR daemons.
    pub fn router_daemons(&self) -> Option<&RouterDaemons> {
        self.router.as_ref()
    }

    /// Node `index` (1-based).
    pub fn node(&mut self, index: u8) -> &mut Node {
        &mut self.nodes[usize::from(index) - 1]
    }

    /// Creates the next node live: namespace, link to the router, `lb decap`
    /// on the router's side (an XDP_TX into a veth needs an XDP program on the
    /// peer), offloads off there, then `lb run` on the tier's config and BIRD.
    /// Returns its index; the router's routes follow within [`JOIN_TIMEOUT`].
    pub fn add_node(&mut self) -> Result<u8> {
        self.add_node_from(None)
    }

    /// Like [`Tier::add_node`], but the node's agent first applies `previous`
    /// (the config the tier ran before its last backend change), then the
    /// tier's config, before BIRD starts: the node then holds the previous
    /// Maglev tables for second chance like the nodes that saw the change. A
    /// node started directly on the current config has none.
    pub fn add_node_after_change(&mut self, previous: &LabConfig) -> Result<u8> {
        self.add_node_from(Some(previous))
    }

    fn add_node_from(&mut self, previous: Option<&LabConfig>) -> Result<u8> {
        let index = u8::try_from(self.nodes.len() + 1).expect("fewer than 256 nodes");
        let rt = self.router().to_owned();
        let ns = NetNs::create(&format!("{}n{index}", self.lab.prefix()))?;
        let node = match Node::new(index, ns.clone(), self.lab.scratch()) {
            Ok(node) => node,
            Err(e) => {
                let _ = ns.delete();
                return Err(e);
            }
        };
        self.nodes.push(node);
        let r_if = router_iface(index);
        cmd::sysctl_in(ns.name(), &base_sysctls())?;
        wire_link(
            &rt,
            &r_if,
            ns.name(),
            LB_IFACE,
            node_link(index),
            Some(INNER_MTU),
        )?;
        self.lab.run_decap(&rt, &r_if, &format!("router-{r_if}"))?;
        cmd::exec_in(
            &rt,
            "ethtool",
            &["-K", &r_if, "tx", "off", "tso", "off", "gso", "off"],
        )?;
        let (config, yaml, lb) = (self.config.clone(), self.yaml.clone(), self.lb.clone());
        let node = self.node(index);
        match (yaml, previous) {
            (Some(text), _) => node.file.write_text(&text)?,
            (None, Some(previous)) => node.write_config(previous)?,
            (None, None) => node.write_config(&config)?,
        }
        node.start_agent(&lb)?;
        if previous.is_some() {
            node.write_config(&config)?;
            node.wait_applied(&lb, &config)?;
        }
        node.start_bird()?;
        Ok(index)
    }

    /// Writes `config` to every node (each with its own `announce`) and waits
    /// until every running agent shows it in `lb stats`.
    pub fn apply(&mut self, config: LabConfig) -> Result<()> {
        self.config = config;
        for node in &self.nodes {
            node.write_config(&self.config)?;
        }
        let lb = self.lb.clone();
        for node in &mut self.nodes {
            if node.agent_running() {
                node.wait_applied(&lb, &self.config)?;
            }
        }
        Ok(())
    }

    /// Waits until the router's routes for both VIPs have exactly the nexthop
    /// interfaces `devs` (sorted or not); returns how long it took.
    pub fn wait_nexthops(
        &self,
        what: &str,
        timeout: Duration,
        devs: &[String],
    ) -> Result<Duration> {
        let mut want = devs.to_vec();
        want.sort();
        routes::wait_nexthops(self.router(), what, timeout, |got| got == want.as_slice())
    }

    /// `lb watch --netns <every node> --iface l0 --pin-root /run/lblab/{netns}/bpffs`:
    /// one view with a column per node (each node's pin root is named after
    /// its namespace). Runs in the host namespace; it enters each node's.
    pub fn watch_command(&self, extra: &[&str]) -> Command {
        let names: Vec<&str> = self.nodes.iter().map(|n| n.ns.name()).collect();
        let pin_root = Path::new(PIN_BASE).join("{netns}").join(PIN_DIR);
        let mut command = Command::new(&self.lb);
        command
            .args([
                "watch",
                "--netns",
                &names.join(","),
                "--iface",
                LB_IFACE,
                "--pin-root",
            ])
            .arg(pin_root)
            .args(extra);
        command
    }

    /// Stops every node and the router's daemons, then the lab.
    pub fn teardown(&mut self) {
        for node in &mut self.nodes {
            node.teardown();
        }
        self.nodes.clear();
        if let Some(mut router) = self.router.take() {
            router.stop();
        }
        self.lab.teardown();
    }
}

impl Drop for Tier {
    fn drop(&mut self) {
        self.teardown();
    }
}
