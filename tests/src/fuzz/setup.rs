//! The fuzzer's datapath: the real program with a realistic config (what an
//! agent would write for a small deployment).
//!
//! - VIP4 TCP/80: four backends, next hop out the ingress (`XDP_TX`), one of
//!   them with a 9000-byte next-hop MTU; VIP4 UDP/53: two backends behind
//!   another interface (`XDP_REDIRECT`), encapsulated in GUE.
//! - VIP4_WILD: a TCP every-port service whose backends have no next hop
//!   (FIB lookup, then the gateway MAC of the settings), in GUE, with a
//!   previous table that gives every slot to the other backend: a TCP segment
//!   without SYN that misses is sent with the second-chance hint.
//! - VIP4_EMPTY TCP/443: a service without backends (`DropNoBackend`).
//! - VIP6 TCP/80: four backends, one of them not LIVE; VIP6 UDP/53: two
//!   backends of its own, encapsulated in GUE.
//! - VIP address markers for every VIP; settings with both source addresses,
//!   MTU 1500 and a gateway MAC.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lb_common::{BACKEND_ENCAP_GUE, BACKEND_LIVE, ServiceEntry, flow::PROTO_TCP, flow::PROTO_UDP};

use crate::harness::{Lb, TEST_RUN_INGRESS, backend_entry};

/// A VIP with TCP/80 and UDP/53 services.
pub const VIP4: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);
/// A VIP with a TCP every-port service.
pub const VIP4_WILD: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 2);
/// A VIP whose TCP/443 service has no backend.
pub const VIP4_EMPTY: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 3);
/// An IPv6 VIP with TCP/80 and UDP/53 services.
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0x100, 1);
/// A host that is not a VIP.
pub const OTHER4: Ipv4Addr = Ipv4Addr::new(198, 18, 50, 50);
/// An IPv6 host that is not a VIP.
pub const OTHER6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0x50, 0x50);
/// Client addresses.
pub const CLIENTS4: [Ipv4Addr; 3] = [
    Ipv4Addr::new(198, 18, 0, 10),
    Ipv4Addr::new(198, 18, 0, 11),
    Ipv4Addr::new(198, 19, 7, 1),
];
/// IPv6 client addresses.
pub const CLIENTS6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x10),
    Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x11),
];

/// Every VIP address of the config.
pub fn vips() -> Vec<IpAddr> {
    vec![
        VIP4.into(),
        VIP4_WILD.into(),
        VIP4_EMPTY.into(),
        VIP6.into(),
    ]
}

/// Backend ids and addresses of the config.
pub fn backends() -> Vec<(u32, IpAddr)> {
    let mut v: Vec<(u32, IpAddr)> = (1..=6)
        .map(|id| (id, Ipv4Addr::new(198, 18, 2, id as u8).into()))
        .collect();
    v.extend((7..=8).map(|id| (id, Ipv4Addr::new(198, 18, 3, id as u8).into())));
    v.extend((11..=16).map(|id| {
        (
            id,
            Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 2, id as u16).into(),
        )
    }));
    v
}

/// Backends whose service encapsulates in GUE (the UDP/53 services and
/// VIP4_WILD's).
pub const GUE_BACKENDS: [u32; 6] = [5, 6, 7, 8, 15, 16];

/// Backends of the service with a previous table (VIP4_WILD's): the only
/// ones a GUE hint may name, and be sent with.
pub const SECOND_CHANCE_BACKENDS: [u32; 2] = [7, 8];

/// Whether `addr` is the address of one of the backends `ids`.
pub fn backend_among(addr: IpAddr, ids: &[u32]) -> bool {
    backends()
        .iter()
        .any(|&(id, b)| b == addr && ids.contains(&id))
}

/// The next-hop MTU of backend 4 (a jumbo path: large frames to it fit).
pub const JUMBO_BACKEND_MTU: u32 = 9000;
/// The ifindex UDP/53 backends are reached through (not the ingress).
pub const OTHER_IFINDEX: u32 = 7;

/// Maglev table size of the config (prime).
const M: usize = 251;

fn table(ids: &[u32]) -> Vec<u32> {
    (0..M).map(|i| ids[i % ids.len()]).collect()
}

/// Loads the datapath and writes the config.
pub fn datapath() -> Lb {
    let mut lb = Lb::new();
    let addr = |id: u32| backends().into_iter().find(|b| b.0 == id).unwrap().1;
    for id in 1..=4 {
        let mut e = backend_entry(addr(id), 1, TEST_RUN_INGRESS);
        if id == 4 {
            e.next_hop_mtu = JUMBO_BACKEND_MTU;
        }
        lb.set_backend(id, e);
    }
    for id in 5..=6 {
        let mut e = backend_entry(addr(id), 1, OTHER_IFINDEX);
        e.flags |= BACKEND_ENCAP_GUE;
        lb.set_backend(id, e);
    }
    for id in 7..=8 {
        let mut e = backend_entry(addr(id), 1, 0);
        e.flags = BACKEND_LIVE | BACKEND_ENCAP_GUE;
        lb.set_backend(id, e);
    }
    for id in 11..=16 {
        let mut e = backend_entry(addr(id), 1, TEST_RUN_INGRESS);
        if id == 13 {
            e.flags &= !BACKEND_LIVE;
        }
        if GUE_BACKENDS.contains(&id) {
            e.flags |= BACKEND_ENCAP_GUE;
        }
        lb.set_backend(id, e);
    }
    lb.add_service(VIP4.into(), 80, PROTO_TCP, 1, &table(&[1, 2, 3, 4]));
    lb.add_service(VIP4.into(), 53, PROTO_UDP, 2, &table(&[5, 6]));
    lb.add_service(VIP4_WILD.into(), 0, PROTO_TCP, 3, &table(&[7, 8]));
    // Its previous table (second buffer) swaps the two backends, for good.
    lb.set_table(2 * 3 + 1, &table(&[8, 7]));
    lb.set_vip(
        VIP4_WILD.into(),
        0,
        PROTO_TCP,
        ServiceEntry {
            service_id: 3,
            table_index: 2 * 3,
            table_size: M as u32,
            previous_table_index: 2 * 3 + 1,
            previous_table_size: M as u32,
            previous_until_ns: u64::MAX,
            ..Default::default()
        },
    );
    lb.add_service(VIP6.into(), 80, PROTO_TCP, 4, &table(&[11, 12, 13, 14]));
    lb.add_service(VIP6.into(), 53, PROTO_UDP, 5, &table(&[15, 16]));
    lb.set_vip(
        VIP4_EMPTY.into(),
        443,
        PROTO_TCP,
        ServiceEntry {
            service_id: 6,
            table_index: 12,
            table_size: 0,
            flags: 0,
            ..Default::default()
        },
    );
    for vip in vips() {
        lb.add_marker(vip);
    }
    lb
}
