//! Next-hop resolution toward backends, for any number of backends in three
//! `ip` runs: every route lookup in one `ip -j -force -batch -`, then the whole
//! neighbour table and the whole link list. [`next_hops`] (pure) joins them;
//! an unknown MAC gets a nudge (one UDP datagram to the discard port), so the
//! kernel resolves it for the next round.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::kernel::NextHop;
use crate::kernel::iface::parse_mac;

/// The outcome for one backend address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// The backend address.
    pub backend: IpAddr,
    /// Its next hop, when route, neighbour MAC and link are all known.
    pub next_hop: Option<NextHop>,
    /// The hop whose MAC is unknown (to nudge), when that is what is missing.
    pub unknown_hop: Option<IpAddr>,
}

/// Resolves the next hops toward `backends` and nudges hops without a MAC.
pub fn resolve_all(backends: &[IpAddr]) -> Vec<Resolution> {
    if backends.is_empty() {
        return Vec::new();
    }
    let routes = route_get_all(backends);
    let neighbours = ip_json(&["-j", "neigh", "show"]).unwrap_or(Value::Null);
    let links = ip_json(&["-j", "link", "show"]).unwrap_or(Value::Null);
    let out = next_hops(backends, &routes, &neighbours, &links);
    for r in &out {
        if let Some(hop) = r.unknown_hop {
            nudge(hop);
        }
    }
    out
}

/// Joins `ip -j route get` results (one object per resolvable backend, any
/// order), `ip -j neigh show` and `ip -j link show` into one resolution per
/// backend.
pub fn next_hops(
    backends: &[IpAddr],
    routes: &[Value],
    neighbours: &Value,
    links: &Value,
) -> Vec<Resolution> {
    let route_of: HashMap<IpAddr, &Value> = routes
        .iter()
        .filter_map(|r| Some((r["dst"].as_str()?.parse().ok()?, r)))
        .collect();
    // (hop, dev) -> MAC, for usable entries only.
    let mut mac_of: HashMap<(IpAddr, &str), [u8; 6]> = HashMap::new();
    for n in neighbours.as_array().into_iter().flatten() {
        let (Some(dst), Some(dev), Some(mac)) = (
            n["dst"].as_str().and_then(|d| d.parse::<IpAddr>().ok()),
            n["dev"].as_str(),
            n["lladdr"].as_str().and_then(parse_mac),
        ) else {
            continue;
        };
        let unusable = n["state"].as_array().is_some_and(|states| {
            states
                .iter()
                .any(|s| matches!(s.as_str(), Some("FAILED" | "INCOMPLETE")))
        });
        if !unusable {
            mac_of.insert((dst, dev), mac);
        }
    }
    // dev -> (ifindex, MAC, MTU).
    let link_of: HashMap<&str, (u32, [u8; 6], u32)> = links
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| {
            Some((
                l["ifname"].as_str()?,
                (
                    u32::try_from(l["ifindex"].as_u64()?).ok()?,
                    l["address"].as_str().and_then(parse_mac)?,
                    l["mtu"].as_u64().unwrap_or(0) as u32,
                ),
            ))
        })
        .collect();
    backends
        .iter()
        .map(|&backend| {
            let mut r = Resolution {
                backend,
                next_hop: None,
                unknown_hop: None,
            };
            let Some(route) = route_of.get(&backend) else {
                return r;
            };
            let Some(dev) = route["dev"].as_str() else {
                return r;
            };
            let hop: IpAddr = route["gateway"]
                .as_str()
                .and_then(|g| g.parse().ok())
                .unwrap_or(backend);
            let Some(&mac) = mac_of.get(&(hop, dev)) else {
                r.unknown_hop = Some(hop);
                return r;
            };
            if let Some(&(ifindex, source_mac, mtu)) = link_of.get(dev) {
                r.next_hop = Some(NextHop {
                    ifindex,
                    mtu,
                    mac,
                    source_mac,
                });
            }
            r
        })
        .collect()
}

fn ip_json(args: &[&str]) -> Option<Value> {
    let out = Command::new("ip").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// Every `route get` in one `ip` run (`-force`: an unroutable backend only
/// loses its own answer); the route objects of all answers. The script is
/// written by its own thread while this one reads the answers: `ip` answers
/// each line as it reads it, so with thousands of backends a writer that
/// wrote everything before reading would block on a full pipe while `ip`
/// blocks on its own (a deadlock).
fn route_get_all(backends: &[IpAddr]) -> Vec<Value> {
    let Ok(mut child) = Command::new("ip")
        .args(["-j", "-force", "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        return Vec::new();
    };
    let writer = child.stdin.take().map(|mut stdin| {
        let script: String = backends
            .iter()
            .map(|b| format!("route get {b}\n"))
            .collect();
        std::thread::spawn(move || {
            // A failed write leaves fewer answers; the backends without one
            // stay unknown. Dropping stdin ends `ip`'s input.
            let _ignored = stdin.write_all(script.as_bytes());
        })
    });
    let out = child.wait_with_output();
    if let Some(writer) = writer {
        let _ignored = writer.join();
    }
    match out {
        Ok(out) => parse_json_stream(&out.stdout),
        Err(_) => Vec::new(),
    }
}

/// The objects of a stream of JSON arrays (one per batch command).
fn parse_json_stream(bytes: &[u8]) -> Vec<Value> {
    serde_json::Deserializer::from_slice(bytes)
        .into_iter::<Value>()
        .map_while(Result::ok)
        .flat_map(|v| match v {
            Value::Array(items) => items,
            other => vec![other],
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const ROUTES: &str = r#"[{"dst":"198.18.3.2","gateway":"198.18.2.1","dev":"l0","prefsrc":"198.18.2.2","flags":[],"uid":0,"cache":[]}]
[{"dst":"2001:2:0:3::2","gateway":"2001:2:0:2::1","dev":"l0","prefsrc":"2001:2:0:2::2","flags":[],"pref":"medium"}]
[{"dst":"198.18.9.9","dev":"l1","prefsrc":"198.18.9.1","flags":[],"uid":0,"cache":[]}]
"#;
    const NEIGH: &str = r#"[{"dst":"198.18.2.1","dev":"l0","lladdr":"02:00:00:00:00:01","state":["REACHABLE"]},
{"dst":"2001:2:0:2::1","dev":"l0","lladdr":"02:00:00:00:00:01","router":null,"state":["STALE"]},
{"dst":"198.18.9.9","dev":"l1","state":["INCOMPLETE"]}]"#;
    const LINKS: &str = r#"[{"ifindex":1,"ifname":"lo","mtu":65536,"address":"00:00:00:00:00:00"},
{"ifindex":7,"ifname":"l0","mtu":1500,"address":"02:00:00:00:00:aa"},
{"ifindex":8,"ifname":"l1","mtu":1600,"address":"02:00:00:00:00:bb"}]"#;

    #[test]
    fn joins_routes_neighbours_and_links() {
        let routes = parse_json_stream(ROUTES.as_bytes());
        assert_eq!(routes.len(), 3);
        let neigh: Value = serde_json::from_str(NEIGH).unwrap();
        let links: Value = serde_json::from_str(LINKS).unwrap();
        let backends = [
            ip("198.18.3.2"),
            ip("2001:2:0:3::2"),
            ip("198.18.9.9"),
            ip("198.18.77.1"),
        ];
        let r = next_hops(&backends, &routes, &neigh, &links);
        let via_router = NextHop {
            ifindex: 7,
            mtu: 1500,
            mac: [2, 0, 0, 0, 0, 1],
            source_mac: [2, 0, 0, 0, 0, 0xaa],
        };
        assert_eq!(r[0].next_hop, Some(via_router));
        assert_eq!(r[1].next_hop, Some(via_router));
        // Directly connected, MAC still being resolved: nudge the backend itself.
        assert_eq!(r[2].next_hop, None);
        assert_eq!(r[2].unknown_hop, Some(ip("198.18.9.9")));
        // No route answer at all: unknown, nothing to nudge.
        assert_eq!(
            r[3],
            Resolution {
                backend: ip("198.18.77.1"),
                next_hop: None,
                unknown_hop: None
            }
        );
    }

    /// 10,000 loopback addresses: far more answers than a pipe holds, which
    /// deadlocked a writer that wrote every line before reading. Each one
    /// routes (the local table), so every answer comes back.
    #[test]
    fn ten_thousand_route_lookups_do_not_deadlock() {
        let backends: Vec<IpAddr> = (0..10_000u32)
            .map(|i| IpAddr::V4(std::net::Ipv4Addr::from(0x7f00_0000 | (i + 1))))
            .collect();
        let (done, finished) = std::sync::mpsc::channel();
        let asked = backends.clone();
        std::thread::spawn(move || {
            let _ignored = done.send(route_get_all(&asked));
        });
        // A deadlock guard, not a speed target: 10,000 lookups take well under a second.
        let routes = finished
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("route lookups deadlocked");
        assert_eq!(routes.len(), backends.len());
        let answered: std::collections::BTreeSet<IpAddr> = routes
            .iter()
            .filter_map(|r| r["dst"].as_str()?.parse().ok())
            .collect();
        assert_eq!(answered, backends.into_iter().collect());
    }

    #[test]
    fn a_broken_stream_keeps_what_came_before() {
        let v = parse_json_stream(b"[{\"dst\":\"198.18.3.2\"}]\n[{\"dst\":");
        assert_eq!(v.len(), 1);
    }
}
