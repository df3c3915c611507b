//! The real agent (`lb run`) on a veth in a namespace, as the lab runs it:
//! its own bpffs pin root (outside `/sys`), a config file it watches, a log.
//!
//! Names follow the lab's (`lblab<pid>-agent<n>-...`), so leftovers of a
//! killed run are swept by the next run; everything is removed on drop
//! (except the log and config with `LB_LAB_KEEP_LOGS` set).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aya::maps::{HashMap, Map, MapData};
use lb_common::{ServiceEntry, VipKey, flow::PROTO_TCP};
use lb_tests::lab::{
    ConfigFile, cmd,
    netns::{self, NetNs},
    process::{Proc, lb_binary},
};

use crate::rate_topology::mac_text;

const IFACE: &str = "a0";
const PEER_IFACE: &str = "p0";
const PEER_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 250, 2);

/// A running agent and everything it needs; all removed on drop (the agent
/// first).
pub struct AgentHost {
    agent: Option<Proc>,
    /// The config file the agent watches.
    pub config: ConfigFile,
    base: PathBuf,
    scratch: PathBuf,
    namespaces: Vec<String>,
}

impl AgentHost {
    /// Builds the namespace pair and the pin root, writes `yaml` and starts
    /// `lb run` on it; returns once the agent logged its first apply (bounded
    /// by `timeout`).
    pub fn start(yaml: &str, timeout: Duration) -> Result<AgentHost> {
        netns::remove_leftovers();
        let name = netns::unique_name("agent");
        let base = Path::new(netns::PIN_BASE).join(&name);
        let scratch = std::env::temp_dir().join(&name);
        let mut host = AgentHost {
            agent: None,
            config: ConfigFile::new(scratch.join("lb.yaml")),
            base,
            scratch,
            namespaces: vec![format!("{name}-lb"), format!("{name}-peer")],
        };
        let lb_ns = NetNs::create(&host.namespaces[0])?;
        let peer_ns = NetNs::create(&host.namespaces[1])?;
        cmd::ip_in(
            lb_ns.name(),
            &[
                "link",
                "add",
                IFACE,
                "type",
                "veth",
                "peer",
                "name",
                PEER_IFACE,
                "netns",
                peer_ns.name(),
            ],
        )?;
        cmd::ip_in(
            lb_ns.name(),
            &["addr", "add", "198.18.250.1/24", "dev", IFACE],
        )?;
        cmd::ip_in(
            peer_ns.name(),
            &["addr", "add", "198.18.250.2/24", "dev", PEER_IFACE],
        )?;
        cmd::ip_in(lb_ns.name(), &["link", "set", IFACE, "up"])?;
        cmd::ip_in(peer_ns.name(), &["link", "set", PEER_IFACE, "up"])?;
        // Every backend is reachable via the peer, whose MAC is known: next hops
        // resolve at once, as on a host that has been running a while.
        let out = cmd::exec_in(
            peer_ns.name(),
            "ip",
            &["-j", "link", "show", "dev", PEER_IFACE],
        )?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let mac = crate::rate_topology::parse_mac(v[0]["address"].as_str().unwrap_or_default())?;
        cmd::ip_in(
            lb_ns.name(),
            &[
                "neigh",
                "replace",
                &PEER_ADDR.to_string(),
                "lladdr",
                &mac_text(mac),
                "dev",
                IFACE,
                "nud",
                "permanent",
            ],
        )?;
        cmd::ip_in(
            lb_ns.name(),
            &[
                "route",
                "add",
                "198.18.0.0/15",
                "via",
                &PEER_ADDR.to_string(),
            ],
        )?;
        std::fs::create_dir_all(&host.scratch)?;
        let bpffs = host.pin_root();
        std::fs::create_dir_all(&bpffs)?;
        cmd::run_args("mount", &["-t", "bpf", "bpf", &bpffs.display().to_string()])?;
        host.config.write_text(yaml)?;

        let lb = lb_binary().context("the lb binary (cargo build -p lb-userspace [--release])")?;
        let config = host.config.path().display().to_string();
        let root = bpffs.display().to_string();
        let log = host.log_path();
        let agent = Proc::spawn_in(
            lb_ns.name(),
            &lb,
            &[
                "run",
                "--config",
                &config,
                "--iface",
                IFACE,
                "--pin-root",
                &root,
            ],
            &log,
        )?;
        host.agent = Some(agent);
        let deadline = Instant::now() + timeout;
        while host.applied_count() == 0 {
            if let Some(status) = host.agent.as_mut().and_then(Proc::try_wait) {
                bail!("lb run exited {status}: {}", host.log());
            }
            if Instant::now() > deadline {
                bail!(
                    "lb run did not apply its config within {:?}: {}",
                    timeout,
                    host.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(host)
    }

    fn pin_root(&self) -> PathBuf {
        self.base.join(netns::PIN_DIR)
    }

    fn log_path(&self) -> PathBuf {
        self.scratch.join("agent.log")
    }

    /// Everything the agent logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// How many applies the agent has logged.
    pub fn applied_count(&self) -> usize {
        crate::scale_config::applied_ms(&self.log()).len()
    }

    /// The agent's pid.
    pub fn pid(&self) -> Option<u32> {
        self.agent.as_ref().and_then(Proc::pid)
    }

    /// The agent's pinned VIPS map.
    pub fn vips(&self) -> Result<HashMap<MapData, VipKey, ServiceEntry>> {
        let path = self.pin_dir().join(lb_common::MAP_VIPS);
        let data = MapData::from_pin(&path).with_context(|| format!("open {}", path.display()))?;
        Ok(HashMap::try_from(Map::HashMap(data))?)
    }

    /// The agent's pin directory (maps), keyed by its network namespace.
    pub fn pin_dir(&self) -> PathBuf {
        let netns = lb_tests::netns::netns_id(&self.namespaces[0]);
        lb::kernel::pin_dir(&self.pin_root(), netns, IFACE)
    }
}

/// The VIPS key of TCP service `vip:port`.
pub fn vip_key(vip: Ipv4Addr, port: u16) -> VipKey {
    VipKey::new(IpAddr::V4(vip), port, PROTO_TCP)
}

impl Drop for AgentHost {
    fn drop(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            agent.stop(Duration::from_secs(3));
        }
        for name in &self.namespaces {
            if Path::new("/run/netns").join(name).exists() {
                let _ = netns::delete_by_name(name);
            }
        }
        netns::remove_pin_base(&self.base);
        // As the lab: LB_LAB_KEEP_LOGS keeps the config and the agent's log.
        if std::env::var_os("LB_LAB_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.scratch);
        }
    }
}
