//! VIP announcement: which VIPs this node asks its BGP daemon to announce.
//!
//! lb speaks no BGP. It installs one unicast host route per announced VIP
//! (`VIP/32 dev lo proto P`, `VIP/128` for IPv6) in the main table of its
//! network namespace; the host's BGP daemon (BIRD, FRR) learns exactly the
//! routes of protocol `P` and exports them.
//!
//! - [`decide`]: the pure rule (attached? draining? can a service of the VIP
//!   take new flows?) giving each VIP's announcement and the reason.
//! - [`routes`]: the kernel side (`ip -j route show proto P`, add, delete) and
//!   the pure difference between the routes present and the routes wanted.
//! - [`claims`]: other agents of the same network namespace (their state
//!   files) whose routes a reconciliation must leave alone, and the lock that
//!   serialises reconciliations.

pub mod claims;
pub mod drain;
pub mod reconcile;
pub mod routes;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::config::DEFAULT_ROUTE_PROTOCOL;
use crate::state::{AppliedService, BackendState};

/// Reason of a VIP announced while a service of it has live backends.
pub const REASON_LIVE: &str = "backends live";
/// Reason of a VIP announced only because a service of it panics.
pub const REASON_PANIC: &str = "panic mode (every backend used)";
/// Reason of every VIP withdrawn while the XDP program is not attached.
pub const REASON_NOT_ATTACHED: &str = "datapath not attached";
/// Reason of every VIP withdrawn while the node drains by its config.
pub const REASON_DRAINING: &str = "node draining (announce.enabled: false)";
/// Reason of every VIP withdrawn while the node drains by `lb drain`.
pub const REASON_DRAINING_COMMAND: &str = "node draining (lb drain)";

/// Why a node drains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrainCause {
    /// `announce.enabled: false` in the YAML.
    Config,
    /// `lb drain --iface IF` (its marker file).
    Command,
}

impl DrainCause {
    /// The reason shown for every withdrawn VIP.
    pub fn reason(self) -> &'static str {
        match self {
            DrainCause::Config => REASON_DRAINING,
            DrainCause::Command => REASON_DRAINING_COMMAND,
        }
    }
}

/// Whether a service can take new flows, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Readiness {
    /// At least one up, non-draining backend of weight > 0.
    Live,
    /// Too few healthy backends: panic mode puts every eligible backend in.
    Panic,
    /// Every backend down (health checks) and panic mode off.
    AllDown,
    /// Every backend draining (`drain: true` or weight 0).
    AllDraining,
    /// Each backend down or draining, some of each.
    DownOrDraining,
    /// The service has no backend.
    NoBackend,
}

impl Readiness {
    /// Derives a service's readiness from its applied view: it takes new flows
    /// exactly when its live table has slots.
    pub fn of(service: &AppliedService) -> Self {
        if service.table_size > 0 {
            return if service.panic {
                Readiness::Panic
            } else {
                Readiness::Live
            };
        }
        let b = &service.backends;
        if b.is_empty() {
            Readiness::NoBackend
        } else if b.iter().all(|b| b.state == BackendState::Down) {
            Readiness::AllDown
        } else if b.iter().all(|b| b.state == BackendState::Draining) {
            Readiness::AllDraining
        } else {
            Readiness::DownOrDraining
        }
    }

    /// True when the service takes new flows.
    pub fn takes_new_flows(self) -> bool {
        matches!(self, Readiness::Live | Readiness::Panic)
    }

    /// Why a VIP whose services are all of this readiness is (not) announced.
    fn reason(self) -> &'static str {
        match self {
            Readiness::Live => REASON_LIVE,
            Readiness::Panic => REASON_PANIC,
            Readiness::AllDown => "every backend down",
            Readiness::AllDraining => "every backend draining",
            Readiness::DownOrDraining => "every backend down or draining",
            Readiness::NoBackend => "no backend",
        }
    }
}

/// One VIP's announcement, as decided and as shown by `lb stats`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipAnnouncement {
    /// The VIP.
    pub vip: IpAddr,
    /// True while its host route is installed (the daemon announces it).
    pub announced: bool,
    /// Why it is (not) announced: "backends live", "every backend down", ...
    pub reason: String,
}

/// What the agent announces, persisted in its state file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnounceState {
    /// True while the node drains (`announce.enabled: false` or `lb drain`).
    #[serde(default)]
    pub draining: bool,
    /// Kernel route protocol number of the routes.
    #[serde(default = "default_protocol")]
    pub protocol: u8,
    /// Inode of the agent's network namespace (`/proc/self/ns/net`): routes
    /// are claimed only within that namespace.
    #[serde(default)]
    pub netns: Option<u64>,
    /// Every VIP of the applied services, in address order.
    #[serde(default)]
    pub vips: Vec<VipAnnouncement>,
    /// Token of the last `lb drain` marker acted on (see [`drain`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_token: Option<String>,
}

fn default_protocol() -> u8 {
    DEFAULT_ROUTE_PROTOCOL
}

impl Default for AnnounceState {
    /// Not draining, default protocol, no namespace, no VIP.
    fn default() -> Self {
        AnnounceState {
            draining: false,
            protocol: DEFAULT_ROUTE_PROTOCOL,
            netns: None,
            vips: Vec::new(),
            drain_token: None,
        }
    }
}

impl AnnounceState {
    /// The VIPs announced.
    pub fn announced(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.vips.iter().filter(|v| v.announced).map(|v| v.vip)
    }
}

/// The rule: a VIP is announced while the XDP program is `attached`, the node
/// is not draining (`drain` is `None`), and at least one of its services takes
/// new flows (a live backend, or panic mode). `services` gives each service's
/// VIP and readiness; the result has one entry per VIP, in address order.
pub fn decide(
    attached: bool,
    drain: Option<DrainCause>,
    services: &[(IpAddr, Readiness)],
) -> Vec<VipAnnouncement> {
    let mut by_vip: BTreeMap<IpAddr, Vec<Readiness>> = BTreeMap::new();
    for &(vip, readiness) in services {
        by_vip.entry(vip).or_default().push(readiness);
    }
    by_vip
        .into_iter()
        .map(|(vip, mut all)| {
            let (announced, reason) = if !attached {
                (false, REASON_NOT_ATTACHED.to_string())
            } else if let Some(cause) = drain {
                (false, cause.reason().to_string())
            } else {
                // The best readiness decides (Live < Panic < ... in order).
                all.sort();
                all.dedup();
                let best = all[0];
                let reason = if best.takes_new_flows() || all.len() == 1 {
                    best.reason().to_string()
                } else {
                    let mut why: Vec<&str> = all.iter().map(|r| r.reason()).collect();
                    why.dedup();
                    format!("no service takes new flows ({})", why.join("; "))
                };
                (best.takes_new_flows(), reason)
            };
            VipAnnouncement {
                vip,
                announced,
                reason,
            }
        })
        .collect()
}

/// [`decide`] over applied services.
pub fn decide_for(
    attached: bool,
    drain: Option<DrainCause>,
    services: &[AppliedService],
) -> Vec<VipAnnouncement> {
    let input: Vec<(IpAddr, Readiness)> =
        services.iter().map(|s| (s.vip, Readiness::of(s))).collect();
    decide(attached, drain, &input)
}
