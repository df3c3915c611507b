//! The one-armed direct-server-return lab: client, router, load balancer and
//! backends, each in its own network namespace, joined by veth pairs.
//!
//! ```text
//! client c0 ── r-cl  router  r-lb ── l0 load balancer (XDP, XDP_TX back to the router)
//!                      │
//!                      ├── r-b1 ── s0 backend b1 (VIPs on lo, lb decap on s0)
//!                      └── r-bN ── s0 backend bN
//! ```
//! The router routes the VIPs to the load balancer; backends answer the client
//! directly through the router. Links toward the load balancer and the backends
//! have MTU 1600 so the 20/40 bytes of encapsulation fit.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::addr::{self, LinkAddrs};
use super::cmd;
use super::error::{LabError, Result};
use super::netns::{self, NetNs};
use super::process::Proc;
use super::server::{self, Servers};

/// MTU of the links toward the load balancer and the backends.
pub const INNER_MTU: &str = "1600";
/// The load balancer's interface (in its namespace).
pub const LB_IFACE: &str = "l0";
/// The router's interface toward the load balancer.
pub const ROUTER_LB_IFACE: &str = "r-lb";
/// Each backend's interface (in its namespace).
pub const BACKEND_IFACE: &str = "s0";

/// One backend: its namespace, its servers and (once started) its decap program.
#[derive(Debug)]
pub struct Backend {
    /// 1-based index: backend `i` is `b{i}` at 198.18.(i+2).2.
    pub index: u8,
    /// Its name (`b1`...), which its servers answer with.
    pub name: String,
    /// Its namespace.
    pub ns: Arc<NetNs>,
    pub(super) servers: Servers,
}

impl Backend {
    /// Its link addresses.
    pub fn link(&self) -> LinkAddrs {
        addr::backend_link(self.index)
    }

    /// Its own address of the given family.
    pub fn addr(&self, v6: bool) -> IpAddr {
        self.link().host(v6)
    }
}

/// A running lab. Dropping it stops every process and server and deletes every
/// namespace, pin root and scratch file it created.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    pub(super) scratch: PathBuf,
    /// The client's namespace.
    pub client_ns: Arc<NetNs>,
    /// The router's namespace.
    pub router_ns: Arc<NetNs>,
    /// The load balancer's namespace.
    pub lb_ns: Arc<NetNs>,
    pub(super) backends: Vec<Backend>,
    pin_root: Option<PathBuf>,
    /// Whether `lb decap` runs on the backends (new ones get it too).
    pub(super) decap_on: bool,
    /// `lb decap --gue-port` when GUE services use another port than 6080.
    pub(crate) decap_gue_port: Option<u16>,
    /// The `lb run` agent, when started (see `agent.rs`).
    pub(crate) agent: Option<Proc>,
    /// The `lb` binary used for decap, run, stats.
    pub(crate) lb_bin: Option<PathBuf>,
}

pub(super) fn sysctls(pairs: &[(&str, &str)]) -> Vec<String> {
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Sysctls every namespace gets before its interfaces exist: no IPv6 duplicate
/// address detection (addresses usable at once), no reverse-path filter (replies
/// leave backends from the VIP, which the router routes elsewhere).
pub(super) fn base_sysctls() -> Vec<String> {
    sysctls(&[
        ("net.ipv6.conf.all.accept_dad", "0"),
        ("net.ipv6.conf.default.accept_dad", "0"),
        ("net.ipv4.conf.all.rp_filter", "0"),
        ("net.ipv4.conf.default.rp_filter", "0"),
    ])
}

/// Adds both addresses of one end of a link and brings the interface up.
fn configure_end(ns: &str, iface: &str, v4: IpAddr, v6: IpAddr) -> Result<()> {
    cmd::ip_in(ns, &["addr", "add", &format!("{v4}/24"), "dev", iface])?;
    cmd::ip_in(
        ns,
        &[
            "-6",
            "addr",
            "add",
            &format!("{v6}/64"),
            "dev",
            iface,
            "nodad",
        ],
    )?;
    cmd::ip_in(ns, &["link", "set", iface, "up"])
}

/// Wires `router iface` to `far iface` (created in `far`), with addresses and
/// a default route from the far side to the router.
pub(super) fn wire_link(
    router: &str,
    r_if: &str,
    far: &str,
    f_if: &str,
    link: LinkAddrs,
    mtu: Option<&str>,
) -> Result<()> {
    let mut args = vec!["link", "add", r_if];
    if let Some(mtu) = mtu {
        args.extend(["mtu", mtu]);
    }
    args.extend(["type", "veth", "peer", "name", f_if]);
    if let Some(mtu) = mtu {
        args.extend(["mtu", mtu]);
    }
    args.extend(["netns", far]);
    cmd::ip_in(router, &args)?;
    configure_end(
        router,
        r_if,
        link.router_v4().into(),
        link.router_v6().into(),
    )?;
    configure_end(far, f_if, link.host_v4().into(), link.host_v6().into())?;
    cmd::ip_in(
        far,
        &[
            "route",
            "add",
            "default",
            "via",
            &link.router_v4().to_string(),
        ],
    )?;
    cmd::ip_in(
        far,
        &[
            "-6",
            "route",
            "add",
            "default",
            "via",
            &link.router_v6().to_string(),
        ],
    )
}

impl Lab {
    /// Builds the topology with `backends` backends (servers running, no `lb`
    /// process yet). Leftovers of killed earlier runs are removed first.
    pub fn new(backends: u8) -> Result<Lab> {
        Self::build(backends, true)
    }

    /// Like [`Lab::new`], but without the load balancer: no load balancer
    /// namespace (`lb_ns` is the client's, unused) and no route for the VIPs
    /// on the router. The tier lab (`tier/`) adds its nodes and BGP routes.
    pub fn without_lb(backends: u8) -> Result<Lab> {
        Self::build(backends, false)
    }

    fn build(backends: u8, single_lb: bool) -> Result<Lab> {
        netns::remove_leftovers();
        let prefix = format!("{}-", netns::unique_name(""));
        let scratch = std::env::temp_dir().join(prefix.trim_end_matches('-'));
        std::fs::create_dir_all(&scratch)
            .map_err(LabError::io(format!("create {}", scratch.display())))?;
        // Namespaces are created one by one so that a failure part-way still
        // leaves a Lab whose Drop removes what exists.
        let client_ns = NetNs::create(&format!("{prefix}cl"))?;
        let mut lab = Lab {
            router_ns: Arc::clone(&client_ns),
            lb_ns: Arc::clone(&client_ns),
            client_ns,
            prefix,
            scratch,
            backends: Vec::new(),
            pin_root: None,
            decap_on: false,
            decap_gue_port: None,
            agent: None,
            lb_bin: None,
        };
        lab.router_ns = NetNs::create(&format!("{}rt", lab.prefix))?;
        if single_lb {
            lab.lb_ns = NetNs::create(&format!("{}lb", lab.prefix))?;
        }
        lab.build_core(single_lb)?;
        for _ in 0..backends {
            lab.add_backend()?;
        }
        Ok(lab)
    }

    fn build_core(&mut self, single_lb: bool) -> Result<()> {
        let (cl, rt, lb) = (
            self.client_ns.name(),
            self.router_ns.name(),
            self.lb_ns.name(),
        );
        for ns in [cl, rt, lb] {
            cmd::sysctl_in(ns, &base_sysctls())?;
        }
        cmd::sysctl_in(
            rt,
            &sysctls(&[
                ("net.ipv4.ip_forward", "1"),
                ("net.ipv6.conf.all.forwarding", "1"),
            ]),
        )?;
        wire_link(rt, "r-cl", cl, "c0", addr::client_link(), None)?;
        if !single_lb {
            return Ok(());
        }
        wire_link(
            rt,
            ROUTER_LB_IFACE,
            lb,
            LB_IFACE,
            addr::lb_link(),
            Some(INNER_MTU),
        )?;
        // The router stands in for BGP/ECMP: the VIPs go to the load balancer.
        let lb_link = addr::lb_link();
        cmd::ip_in(
            rt,
            &[
                "route",
                "add",
                &format!("{}/32", addr::VIP4),
                "via",
                &lb_link.host_v4().to_string(),
            ],
        )?;
        cmd::ip_in(
            rt,
            &[
                "-6",
                "route",
                "add",
                &format!("{}/128", addr::VIP6),
                "via",
                &lb_link.host_v6().to_string(),
            ],
        )?;
        // TCP from local sockets reaches native XDP with a partial checksum that
        // nothing completes after XDP_TX; generic XDP sees GSO super-frames.
        cmd::exec_in(
            rt,
            "ethtool",
            &[
                "-K",
                ROUTER_LB_IFACE,
                "tx",
                "off",
                "tso",
                "off",
                "gso",
                "off",
            ],
        )?;
        Ok(())
    }

    /// The lab's unique name prefix (`lblab<pid>-<n>-`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A scratch directory removed with the lab (configs, logs).
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// The backends, in creation order.
    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }

    /// Backend by index (1-based).
    pub fn backend(&self, index: u8) -> &Backend {
        &self.backends[usize::from(index) - 1]
    }

    /// Creates the next backend (`b{N+1}`, 198.18.(N+3).2), live: namespace,
    /// link to the router, VIPs on lo, servers, and `lb decap` when the lab's
    /// decap is already running.
    pub fn add_backend(&mut self) -> Result<&Backend> {
        let index = u8::try_from(self.backends.len() + 1).expect("fewer than 256 backends");
        let name = format!("b{index}");
        let ns = NetNs::create(&format!("{}{name}", self.prefix))?;
        let servers = match self.wire_backend(&ns, index, &name) {
            Ok(servers) => servers,
            Err(e) => {
                let _ = ns.delete();
                return Err(e);
            }
        };
        self.backends.push(Backend {
            index,
            name,
            ns,
            servers,
        });
        if self.decap_on {
            self.start_backend_decap(usize::from(index) - 1)?;
        }
        Ok(self.backends.last().expect("just pushed"))
    }

    /// Links backend `index` to the router, puts the VIPs on its lo and starts
    /// its servers.
    fn wire_backend(&self, ns: &NetNs, index: u8, name: &str) -> Result<Servers> {
        let link = addr::backend_link(index);
        let b = ns.name().to_owned();
        cmd::sysctl_in(&b, &base_sysctls())?;
        let r_if = format!("r-{name}");
        wire_link(
            self.router_ns.name(),
            &r_if,
            &b,
            BACKEND_IFACE,
            link,
            Some(INNER_MTU),
        )?;
        cmd::ip_in(
            &b,
            &["addr", "add", &format!("{}/32", addr::VIP4), "dev", "lo"],
        )?;
        cmd::ip_in(
            &b,
            &[
                "-6",
                "addr",
                "add",
                &format!("{}/128", addr::VIP6),
                "dev",
                "lo",
                "nodad",
            ],
        )?;
        // The VIP lives on lo: never answer ARP for it, never use it as ARP
        // source. Forwarding on s0: second chance hands packets on with
        // bpf_fib_lookup, which refuses ("forwarding disabled") without it.
        cmd::sysctl_in(
            &b,
            &sysctls(&[
                ("net.ipv4.conf.all.arp_ignore", "1"),
                ("net.ipv4.conf.all.arp_announce", "2"),
                (&format!("net.ipv4.conf.{BACKEND_IFACE}.rp_filter"), "0"),
                (&format!("net.ipv4.conf.{BACKEND_IFACE}.forwarding"), "1"),
                (&format!("net.ipv6.conf.{BACKEND_IFACE}.forwarding"), "1"),
            ]),
        )?;
        super::reach::seed_gateway_neighbours(self.router_ns.name(), &r_if, &b, link)?;
        server::start(ns, name, &[link.host_v4().into(), link.host_v6().into()])
    }

    /// Stops backend `index`'s TCP and UDP servers (its host stays up).
    pub fn stop_servers(&mut self, index: u8) {
        if let Some(b) = self.backends.iter_mut().find(|b| b.index == index) {
            b.servers.stop();
        }
    }

    /// Starts backend `index`'s servers again.
    pub fn restart_servers(&mut self, index: u8) -> Result<()> {
        let Some(b) = self.backends.iter_mut().find(|b| b.index == index) else {
            return Ok(());
        };
        let link = addr::backend_link(index);
        b.servers = server::start(
            &b.ns,
            &b.name,
            &[link.host_v4().into(), link.host_v6().into()],
        )?;
        Ok(())
    }

    /// The bpffs pin root of this lab, mounted on first use at
    /// `/run/lblab/<prefix>/bpffs` (outside `/sys`, so it survives `ip netns
    /// exec`). The agent keeps its state file next to the pin root
    /// (`/run/lblab/<prefix>/state/`), so that is per lab too.
    pub fn pin_root(&mut self) -> Result<PathBuf> {
        if let Some(root) = &self.pin_root {
            return Ok(root.join(netns::PIN_DIR));
        }
        let root = Path::new(netns::PIN_BASE).join(self.prefix.trim_end_matches('-'));
        let bpffs = root.join(netns::PIN_DIR);
        std::fs::create_dir_all(&bpffs)
            .map_err(LabError::io(format!("create {}", bpffs.display())))?;
        self.pin_root = Some(root);
        cmd::run_args("mount", &["-t", "bpf", "bpf", &bpffs.display().to_string()])?;
        Ok(bpffs)
    }

    /// Stops every process and server and deletes everything the lab created.
    /// Called by `Drop`; calling it twice is harmless.
    pub fn teardown(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            agent.stop(Duration::from_secs(3));
        }
        for backend in &mut self.backends {
            backend.servers.stop();
        }
        let mut names: Vec<String> = self
            .backends
            .drain(..)
            .map(|b| b.ns.name().to_owned())
            .collect();
        names.extend(
            [&self.lb_ns, &self.router_ns, &self.client_ns]
                .iter()
                .map(|ns| ns.name().to_owned()),
        );
        names.sort();
        names.dedup();
        for name in names {
            if Path::new("/run/netns").join(&name).exists() {
                let _ = netns::delete_by_name(&name);
            }
        }
        if let Some(root) = self.pin_root.take() {
            netns::remove_pin_base(&root);
        }
        if std::env::var_os("LB_LAB_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.scratch);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.teardown();
    }
}
