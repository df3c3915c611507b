//! BIRD 2 on an lb node: learns the kernel routes lb tags with its announce
//! protocol (and nothing else), exports them over eBGP to the router, with BFD
//! on the uplink. Rendering is pure; [`start`] runs `bird` in the foreground
//! inside the node's namespace with its own config, control socket and pid file.

use std::path::Path;

use super::plan::{ANNOUNCE_PROTO, NODE_AS, ROUTER_AS, node_link};
use crate::lab::error::{LabError, Result};
use crate::lab::process::Proc;
use crate::lab::topology::LB_IFACE;

/// BFD timers of the tier (both ends): transmit/receive interval in ms and
/// the detect multiplier. A silent node is declared down after about
/// `BFD_INTERVAL_MS * BFD_MULTIPLIER`.
pub const BFD_INTERVAL_MS: u32 = 100;
/// See [`BFD_INTERVAL_MS`].
pub const BFD_MULTIPLIER: u32 = 3;

/// The BIRD config of node `n`.
pub fn config(n: u8) -> String {
    let link = node_link(n);
    format!(
        r#"# lb tier node {n} (written by the lab)
router id {router_id};
log stderr all;
timeformat log iso long ms;
timeformat protocol iso long ms;

protocol device {{ }}

# Learn only the routes lb installs for its VIPs (`proto {proto}`): `learn`
# alone would also pick up the default route.
protocol kernel kernel4 {{
  learn;
  ipv4 {{ import where krt_source = {proto}; export none; }};
}}
protocol kernel kernel6 {{
  learn;
  ipv6 {{ import where krt_source = {proto}; export none; }};
}}

protocol bfd {{
  interface "{iface}" {{ min rx interval {bfd} ms; min tx interval {bfd} ms; multiplier {mult}; }};
}}

template bgp uplink {{
  local as {node_as};
  bfd on;
  connect retry time 2;
  error wait time 1, 10;
}}
protocol bgp up4 from uplink {{
  source address {v4};
  neighbor {rt4} as {router_as};
  ipv4 {{ import none; export where proto = "kernel4"; }};
}}
protocol bgp up6 from uplink {{
  source address {v6};
  neighbor {rt6} as {router_as};
  ipv6 {{ import none; export where proto = "kernel6"; }};
}}
"#,
        router_id = link.host_v4(),
        proto = ANNOUNCE_PROTO,
        iface = LB_IFACE,
        bfd = BFD_INTERVAL_MS,
        mult = BFD_MULTIPLIER,
        node_as = NODE_AS,
        router_as = ROUTER_AS,
        v4 = link.host_v4(),
        v6 = link.host_v6(),
        rt4 = link.router_v4(),
        rt6 = link.router_v6(),
    )
}

/// Writes node `n`'s config into `dir` and starts `bird -f` in `ns` (config,
/// control socket and pid file in `dir`, log in `dir/bird.log`).
pub fn start(ns: &str, n: u8, dir: &Path) -> Result<Proc> {
    let conf = dir.join("bird.conf");
    std::fs::write(&conf, config(n)).map_err(LabError::io(format!("write {}", conf.display())))?;
    let (sock, pid) = (dir.join("bird.ctl"), dir.join("bird.pid"));
    let args = [
        "-f",
        "-c",
        &conf.display().to_string(),
        "-s",
        &sock.display().to_string(),
        "-P",
        &pid.display().to_string(),
    ]
    .map(|s| s.to_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Proc::spawn_in(
        ns,
        Path::new("/usr/sbin/bird"),
        &args,
        &dir.join("bird.log"),
    )
}

#[cfg(test)]
mod tests {
    use super::config;

    #[test]
    fn node_config_exports_only_proto_250_routes_with_bfd() {
        let text = config(2);
        assert!(text.contains("router id 198.18.112.2;"));
        assert!(text.contains("import where krt_source = 250;"));
        assert!(text.contains("neighbor 2001:2:0:70::1 as 65000;"));
        assert!(text.contains("interface \"l0\" { min rx interval 100 ms;"));
        assert!(text.contains("export where proto = \"kernel6\";"));
    }
}
