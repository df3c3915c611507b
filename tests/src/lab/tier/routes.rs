//! What the router's kernel does with the VIPs: the interfaces of the
//! nexthops of its route for each VIP (an ECMP route lists one per node), and
//! the proto-250 announcement routes inside a node.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::plan::ANNOUNCE_PROTO;
use crate::lab::addr;
use crate::lab::cmd;
use crate::lab::error::{LabError, Result};

/// The nexthop interfaces of the routes in `ip -j route show` output (pure).
pub fn nexthop_devs(json: &Value) -> Vec<String> {
    let mut devs: Vec<String> = json
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(
            |route| match route.get("nexthops").and_then(Value::as_array) {
                Some(hops) => hops.iter().collect::<Vec<_>>(),
                None => vec![route],
            },
        )
        .filter_map(|hop| hop.get("dev").and_then(Value::as_str).map(str::to_owned))
        .collect();
    devs.sort();
    devs
}

/// The host route of the VIP of the given family (`/32` or `/128`).
fn vip_prefix(v6: bool) -> String {
    if v6 {
        format!("{}/128", addr::VIP6)
    } else {
        format!("{}/32", addr::VIP4)
    }
}

fn route_json(ns: &str, args: &[&str]) -> Result<Value> {
    let mut all = vec!["-n", ns, "-j"];
    all.extend_from_slice(args);
    let out = cmd::run_args("ip", &all)?;
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Array(Vec::new()));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| LabError::Output {
        command: format!("ip {}", all.join(" ")),
        message: e.to_string(),
    })
}

/// The router's nexthop interfaces for the VIP of the given family, sorted.
pub fn vip_nexthops(router_ns: &str, v6: bool) -> Result<Vec<String>> {
    let family = if v6 { "-6" } else { "-4" };
    let json = route_json(router_ns, &[family, "route", "show", &vip_prefix(v6)])?;
    Ok(nexthop_devs(&json))
}

/// Polls both VIP routes every 2 ms until `done(v4 devs, v6 devs)` holds for
/// both families (bounded by `timeout`); returns the time it took.
pub fn wait_nexthops(
    router_ns: &str,
    what: &str,
    timeout: Duration,
    done: impl Fn(&[String]) -> bool,
) -> Result<Duration> {
    let start = Instant::now();
    let mut last = (Vec::new(), Vec::new());
    while start.elapsed() < timeout {
        last = (
            vip_nexthops(router_ns, false)?,
            vip_nexthops(router_ns, true)?,
        );
        if done(&last.0) && done(&last.1) {
            return Ok(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Err(LabError::Timeout {
        what: format!(
            "{what} (router's VIP nexthops: v4 {:?}, v6 {:?})",
            last.0, last.1
        ),
        seconds: timeout.as_secs_f64(),
    })
}

/// The announcement routes (`proto 250`) in a node, both families, as
/// destinations (`198.18.100.1`, `2001:2:0:100::1`).
pub fn announced(node_ns: &str) -> Result<Vec<String>> {
    let proto = ANNOUNCE_PROTO.to_string();
    let mut out = Vec::new();
    for family in ["-4", "-6"] {
        let json = route_json(node_ns, &[family, "route", "show", "proto", &proto])?;
        out.extend(
            json.as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.get("dst").and_then(Value::as_str).map(str::to_owned)),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::nexthop_devs;
    use serde_json::json;

    #[test]
    fn reads_single_and_multipath_routes() {
        let ecmp = json!([{"dst": "198.18.100.1", "nexthops": [
            {"gateway": "198.18.113.2", "dev": "r-n3"},
            {"gateway": "198.18.111.2", "dev": "r-n1"}]}]);
        assert_eq!(nexthop_devs(&ecmp), ["r-n1", "r-n3"]);
        let single = json!([{"dst": "198.18.100.1", "gateway": "198.18.112.2", "dev": "r-n2"}]);
        assert_eq!(nexthop_devs(&single), ["r-n2"]);
        assert!(nexthop_devs(&json!([])).is_empty());
    }
}
