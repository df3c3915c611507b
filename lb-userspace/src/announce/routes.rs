//! The kernel side of announcements: lb's host routes in the main table,
//! read with `ip -j route show proto P` and changed with `ip route add/del`
//! (argument vectors, never a shell), and the pure difference between the
//! routes present and the routes wanted.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Command;

use serde::Deserialize;

/// The device lb's VIP routes point at.
pub const ROUTE_DEVICE: &str = "lo";

/// Errors talking to the kernel's routing table.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// `ip` could not be run.
    #[error("cannot run `ip {args}`: {source}")]
    Spawn {
        /// Its arguments.
        args: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `ip` failed.
    #[error("`ip {args}` failed: {stderr}")]
    Failed {
        /// Its arguments.
        args: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// `ip -j` printed something that is not its JSON route list.
    #[error("`ip {args}` printed unreadable JSON: {source}")]
    Parse {
        /// Its arguments.
        args: String,
        /// The JSON error.
        source: serde_json::Error,
    },
}

/// One route of lb's protocol in the main table, as `ip -j route show` gives it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct KernelRoute {
    /// Destination: an address (host route), a prefix, or `default`.
    pub dst: String,
    /// Output device.
    #[serde(default)]
    pub dev: Option<String>,
    /// Gateway, when any.
    #[serde(default)]
    pub gateway: Option<String>,
    /// Route type when not unicast (`local`, `blackhole`, ...).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Metric (IPv6 routes always have one).
    #[serde(default)]
    pub metric: Option<u32>,
}

impl KernelRoute {
    /// The VIP when this route has exactly the form lb installs (unicast
    /// host route to `lo`, no gateway); `None` for anything else.
    pub fn vip(&self) -> Option<IpAddr> {
        if self.dev.as_deref() != Some(ROUTE_DEVICE)
            || self.gateway.is_some()
            || self.kind.as_deref().is_some_and(|k| k != "unicast")
        {
            return None;
        }
        let (addr, len) = match self.dst.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (self.dst.as_str(), None),
        };
        let addr: IpAddr = addr.parse().ok()?;
        let host = match addr {
            IpAddr::V4(_) => "32",
            IpAddr::V6(_) => "128",
        };
        len.is_none_or(|l| l == host).then_some(addr)
    }
}

/// What a reconciliation does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteChanges {
    /// VIPs whose host route is missing.
    pub add: Vec<IpAddr>,
    /// Routes of the protocol nobody wants (or of another form).
    pub remove: Vec<KernelRoute>,
}

/// The changes that take the routes of lb's protocol from `present` to one
/// host route per VIP in `wanted` (pure).
pub fn changes(present: &[KernelRoute], wanted: &BTreeSet<IpAddr>) -> RouteChanges {
    let mut have = BTreeSet::new();
    let mut remove = Vec::new();
    for r in present {
        match r.vip() {
            Some(vip) if wanted.contains(&vip) && have.insert(vip) => {}
            _ => remove.push(r.clone()),
        }
    }
    RouteChanges {
        add: wanted.difference(&have).copied().collect(),
        remove,
    }
}

/// `VIP/32` or `VIP/128`.
pub fn host_prefix(vip: IpAddr) -> String {
    match vip {
        IpAddr::V4(a) => format!("{a}/32"),
        IpAddr::V6(a) => format!("{a}/128"),
    }
}

fn family_flag(v6: bool) -> &'static str {
    if v6 { "-6" } else { "-4" }
}

/// `ip -4|-6 WORDS table main proto P` as an argument vector.
fn main_table_args(v6: bool, words: &[&str], protocol: u8) -> Vec<String> {
    let mut args = vec![family_flag(v6).to_string()];
    args.extend(words.iter().map(|w| w.to_string()));
    args.extend(["table", "main", "proto"].map(String::from));
    args.push(protocol.to_string());
    args
}

/// Runs `ip ARGS`, returning its stdout.
fn ip(args: &[String]) -> Result<Vec<u8>, RouteError> {
    let joined = args.join(" ");
    let out = Command::new("ip")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| RouteError::Spawn {
            args: joined.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(RouteError::Failed {
            args: joined,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

/// Every route of `protocol` in the main table, IPv4 then IPv6 (as `v6`, route).
pub fn list(protocol: u8) -> Result<Vec<(bool, KernelRoute)>, RouteError> {
    let mut all = Vec::new();
    for v6 in [false, true] {
        let args = main_table_args(v6, &["-j", "route", "show"], protocol);
        let out = ip(&args)?;
        let text = String::from_utf8_lossy(&out);
        // `ip -j` prints nothing at all on some versions when the list is empty.
        if text.trim().is_empty() {
            continue;
        }
        let routes: Vec<KernelRoute> =
            serde_json::from_str(&text).map_err(|source| RouteError::Parse {
                args: args.join(" "),
                source,
            })?;
        all.extend(routes.into_iter().map(|r| (v6, r)));
    }
    Ok(all)
}

/// Installs `VIP/32 dev lo proto P` (`/128` for IPv6) in the main table.
pub fn add(vip: IpAddr, protocol: u8) -> Result<(), RouteError> {
    let args = main_table_args(
        vip.is_ipv6(),
        &["route", "add", &host_prefix(vip), "dev", ROUTE_DEVICE],
        protocol,
    );
    ip(&args).map(drop)
}

/// Deletes `route` (of `protocol`, in the main table); a route already gone
/// is not an error.
pub fn delete(v6: bool, route: &KernelRoute, protocol: u8) -> Result<(), RouteError> {
    let mut args = main_table_args(v6, &["route", "del", route.dst.as_str()], protocol);
    if let Some(kind) = &route.kind {
        args.insert(3, kind.clone());
    }
    if let Some(dev) = &route.dev {
        args.extend(["dev".to_string(), dev.clone()]);
    }
    if let Some(metric) = route.metric {
        args.extend(["metric".to_string(), metric.to_string()]);
    }
    match ip(&args) {
        Err(RouteError::Failed { stderr, .. }) if stderr.contains("No such process") => Ok(()),
        other => other.map(drop),
    }
}

/// The route of `vip` as lb installs it (for deleting a VIP's route by name).
pub fn host_route(vip: IpAddr) -> KernelRoute {
    KernelRoute {
        dst: host_prefix(vip),
        dev: Some(ROUTE_DEVICE.into()),
        gateway: None,
        kind: None,
        metric: None,
    }
}
