//! Next-hop resolution toward backends: route + neighbour lookups through
//! `ip -j`, and a nudge (one UDP datagram to the discard port) when the MAC is
//! not known yet, so the kernel resolves it for the next refresh.

use std::net::{IpAddr, SocketAddr, UdpSocket};

use crate::datapath::NextHop;
use crate::datapath::iface::{ifindex, parse_mac};

fn ip_json(args: &[&str]) -> Option<serde_json::Value> {
    let out = std::process::Command::new("ip").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// (MAC, MTU) of `dev`, from `ip -j link` (not /sys, which may belong to
/// another network namespace than the calling thread's).
fn link_info(dev: &str) -> Option<([u8; 6], u32)> {
    let link = ip_json(&["-j", "link", "show", "dev", dev])?;
    let link = link.get(0)?;
    let mac = link["address"].as_str().and_then(parse_mac)?;
    let mtu = link["mtu"].as_u64().unwrap_or(0) as u32;
    Some((mac, mtu))
}

/// Resolves the next hop toward `backend`; `None` when the route or MAC is not
/// known (resolution is triggered so that a later call finds it).
pub fn resolve(backend: IpAddr) -> Option<NextHop> {
    let addr = backend.to_string();
    let route = ip_json(&["-j", "route", "get", &addr])?;
    let route = route.get(0)?;
    let dev = route["dev"].as_str()?.to_string();
    let gateway: IpAddr = route["gateway"]
        .as_str()
        .and_then(|g| g.parse().ok())
        .unwrap_or(backend);
    let hop = gateway.to_string();
    let neigh = ip_json(&["-j", "neigh", "show", "to", &hop, "dev", &dev]);
    let mac = neigh.as_ref().and_then(|n| {
        n.as_array()?.iter().find_map(|e| {
            let states = e["state"].as_array()?;
            let usable = !states
                .iter()
                .any(|s| matches!(s.as_str(), Some("FAILED" | "INCOMPLETE")));
            if usable {
                e["lladdr"].as_str().and_then(parse_mac)
            } else {
                None
            }
        })
    });
    let Some(mac) = mac else {
        nudge(gateway);
        return None;
    };
    let (source_mac, mtu) = link_info(&dev)?;
    Some(NextHop {
        ifindex: ifindex(&dev)?,
        mtu,
        mac,
        source_mac,
    })
}

/// Makes the kernel resolve `hop`'s MAC: a datagram to its discard port.
fn nudge(hop: IpAddr) {
    let bind: SocketAddr = match hop {
        IpAddr::V4(_) => "0.0.0.0:0".parse().expect("literal"),
        IpAddr::V6(_) => "[::]:0".parse().expect("literal"),
    };
    if let Ok(s) = UdpSocket::bind(bind) {
        let _sent = s.send_to(b"lb neighbour probe", SocketAddr::new(hop, 9));
    }
}
