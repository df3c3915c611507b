//! FRR on the tier's router: zebra (classic multipath routes, no kernel
//! nexthop objects), bfdd and bgpd peering with every node slot over IPv4 and
//! IPv6, importing only VIP host routes and installing them as ECMP routes.
//! Rendering is pure; [`RouterDaemons::start`] runs the three daemons in the
//! foreground inside the router's namespace with per-namespace zserv socket,
//! vty sockets, bfdd control socket and pid files, all in one directory owned
//! by `frr`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::bird::{BFD_INTERVAL_MS, BFD_MULTIPLIER};
use super::plan::{NODE_AS, ROUTER_AS, node_link};
use crate::lab::addr::client_link;
use crate::lab::cmd;
use crate::lab::error::{LabError, Result};
use crate::lab::process::Proc;

/// Where FRR's daemons live.
const FRR_LIB: &str = "/usr/lib/frr";

/// `zebra.conf`: without kernel nexthop objects FRR 8.4 keeps every ECMP
/// member across link flaps.
pub fn zebra_config() -> String {
    "hostname tier-router\nno zebra nexthop kernel enable\n".into()
}

/// `bfdd.conf`: the `fast` profile every node session uses.
pub fn bfdd_config() -> String {
    format!(
        "hostname tier-router\nbfd\n profile fast\n  detect-multiplier {BFD_MULTIPLIER}\n  \
         receive-interval {BFD_INTERVAL_MS}\n  transmit-interval {BFD_INTERVAL_MS}\n exit\nexit\n"
    )
}

/// `bgpd.conf`: one IPv4 and one IPv6 session per node slot `1..=slots`
/// (peer groups `LB4`, `LB6`: BFD, hold time 9 s, retry 2 s), VIP host
/// routes in, nothing out, up to 16 equal paths.
pub fn bgpd_config(slots: u8) -> String {
    let mut out = String::from(
        "hostname tier-router\n\
         ip prefix-list VIP4 seq 5 permit 198.18.100.0/24 ge 32\n\
         ipv6 prefix-list VIP6 seq 5 permit 2001:2:0:100::/64 ge 128\n\
         route-map VIP4-IN permit 10\n match ip address prefix-list VIP4\nexit\n\
         route-map VIP6-IN permit 10\n match ipv6 address prefix-list VIP6\nexit\n\
         route-map NONE deny 10\nexit\n",
    );
    let _ = writeln!(
        out,
        "router bgp {ROUTER_AS}\n bgp router-id {}\n no bgp default ipv4-unicast\n \
         bgp bestpath as-path multipath-relax",
        client_link().router_v4()
    );
    for group in ["LB4", "LB6"] {
        let _ = writeln!(
            out,
            " neighbor {group} peer-group\n neighbor {group} remote-as {NODE_AS}\n \
             neighbor {group} bfd\n neighbor {group} bfd profile fast\n \
             neighbor {group} timers 3 9\n neighbor {group} timers connect 2"
        );
    }
    for n in 1..=slots {
        let link = node_link(n);
        let _ = writeln!(
            out,
            " neighbor {} peer-group LB4\n neighbor {} peer-group LB6",
            link.host_v4(),
            link.host_v6()
        );
    }
    for (family, group, map) in [("ipv4", "LB4", "VIP4-IN"), ("ipv6", "LB6", "VIP6-IN")] {
        let _ = writeln!(
            out,
            " address-family {family} unicast\n  maximum-paths 16\n  neighbor {group} activate\n  \
             neighbor {group} route-map {map} in\n  neighbor {group} route-map NONE out\n \
             exit-address-family"
        );
    }
    out.push_str("exit\n");
    out
}

/// The router's zebra, bfdd and bgpd; stopped (SIGTERM) when dropped.
#[derive(Debug)]
pub struct RouterDaemons {
    dir: PathBuf,
    procs: Vec<Proc>,
}

impl RouterDaemons {
    /// Writes the configs into `dir` (created, owned by `frr`) and starts
    /// zebra, then bfdd and bgpd once zebra's socket exists, in `ns`.
    pub fn start(ns: &str, dir: &Path, slots: u8) -> Result<RouterDaemons> {
        std::fs::create_dir_all(dir).map_err(LabError::io(format!("create {}", dir.display())))?;
        for (name, text) in [
            ("zebra.conf", zebra_config()),
            ("bfdd.conf", bfdd_config()),
            ("bgpd.conf", bgpd_config(slots)),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, text)
                .map_err(LabError::io(format!("write {}", path.display())))?;
        }
        cmd::run_args("chown", &["-R", "frr:frr", &dir.display().to_string()])?;
        let mut daemons = RouterDaemons {
            dir: dir.to_owned(),
            procs: Vec::new(),
        };
        daemons.spawn(ns, "zebra", &[])?;
        let zserv = dir.join("zserv.api");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !zserv.exists() {
            if Instant::now() > deadline {
                return Err(LabError::Timeout {
                    what: format!("zebra's socket {}", zserv.display()),
                    seconds: 10.0,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let bfdctl = dir.join("bfdd.sock").display().to_string();
        daemons.spawn(ns, "bfdd", &["--bfdctl", &bfdctl])?;
        daemons.spawn(ns, "bgpd", &[])?;
        Ok(daemons)
    }

    fn spawn(&mut self, ns: &str, daemon: &str, extra: &[&str]) -> Result<()> {
        let d = |name: &str| self.dir.join(name).display().to_string();
        let (zserv, vty, conf, pid) = (
            d("zserv.api"),
            d(""),
            d(&format!("{daemon}.conf")),
            d(&format!("{daemon}.pid")),
        );
        let mut args = vec![
            "-z",
            &zserv,
            "--vty_socket",
            &vty,
            "-P",
            "0",
            "-f",
            &conf,
            "-i",
            &pid,
        ];
        args.extend_from_slice(extra);
        let program = Path::new(FRR_LIB).join(daemon);
        let log = self.dir.join(format!("{daemon}.log"));
        self.procs.push(Proc::spawn_in(ns, &program, &args, &log)?);
        Ok(())
    }

    /// `vtysh -c COMMAND` against these daemons (diagnostics).
    pub fn vtysh(&self, command: &str) -> String {
        Command::new("vtysh")
            .arg("--vty_socket")
            .arg(&self.dir)
            .args(["-c", command])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Stops bgpd, bfdd, then zebra.
    pub fn stop(&mut self) {
        while let Some(mut proc) = self.procs.pop() {
            proc.stop(Duration::from_secs(3));
        }
    }
}

impl Drop for RouterDaemons {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_config_peers_with_every_slot_and_imports_only_vips() {
        let text = bgpd_config(4);
        assert!(text.contains(" neighbor 198.18.114.2 peer-group LB4\n"));
        assert!(text.contains(" neighbor 2001:2:0:6f::2 peer-group LB6\n"));
        assert!(!text.contains("198.18.115.2"));
        assert!(text.contains("neighbor LB6 route-map VIP6-IN in"));
        assert!(text.contains("neighbor LB4 bfd profile fast"));
        assert!(bfdd_config().contains("detect-multiplier 3\n  receive-interval 100"));
        assert!(zebra_config().contains("no zebra nexthop kernel enable"));
    }
}
