//! Next hops toward backends, written into the backend entries through the
//! plan: a plan's `PutBackend`s carry the next hop known for their address,
//! and a next hop that changes rewrites every applied backend id of that
//! address ([`next_hop_ops`]), journalled like any other plan.

use std::collections::BTreeMap;
use std::net::IpAddr;

use lb_common::MacAddr;

use super::ops::MapOp;
use crate::config::Encapsulation;
use crate::health::Candidate;
use crate::state::AppliedService;

/// Where the next hop toward a backend is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    /// Egress ifindex.
    pub ifindex: u32,
    /// Egress MTU.
    pub mtu: u32,
    /// Next-hop MAC.
    pub mac: [u8; 6],
    /// Egress interface's MAC.
    pub source_mac: [u8; 6],
}

impl std::fmt::Debug for NextHop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} via ifindex {} (mtu {}, from {})",
            MacAddr(self.mac),
            self.ifindex,
            self.mtu,
            MacAddr(self.source_mac)
        )
    }
}

/// The next hops known, by backend address.
pub type NextHops = BTreeMap<IpAddr, NextHop>;

/// The empty table (what [`super::Previous::default`] refers to).
pub static NO_NEXT_HOPS: NextHops = BTreeMap::new();

/// The writes that give every applied backend id of `address` the next hop
/// `next_hop` (its other fields as applied). Empty when no applied backend
/// has that address.
pub fn next_hop_ops(
    services: &[AppliedService],
    address: IpAddr,
    next_hop: Option<NextHop>,
) -> Vec<MapOp> {
    services
        .iter()
        .flat_map(|s| {
            s.backends
                .iter()
                .filter(move |b| b.address == address)
                .map(move |b| MapOp::PutBackend {
                    id: b.id,
                    address: b.address,
                    generation: b.generation,
                    live: Candidate::of_applied(b).is_live(s.panic),
                    service_id: s.service_id,
                    next_hop,
                    gue: s.encap == Encapsulation::Gue,
                })
        })
        .collect()
}
