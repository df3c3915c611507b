//! The datapath alone in the lab, no agent: this test fills the maps itself
//! (one Maglev table per service, static next hops) and attaches `lb_xdp` to
//! the load balancer's `l0` and `lb_decap` to every backend's `s0` and the
//! router's `r-lb`. TCP and UDP, IPv4 and IPv6, through the VIPs, must reach
//! every backend and come back directly. When an end-to-end test with the agent
//! fails, this one tells whether the wire (topology + datapath) works.

use std::net::IpAddr;

use aya::maps::{Array, ArrayOfMaps, HashMap, MapData};
use aya::programs::{Xdp, XdpMode};
use aya::{Ebpf, EbpfLoader};
use lb_common::address_words as words;
use lb_common::net::{PROTO_TCP, PROTO_UDP};
use lb_common::{
    BACKEND_HAS_NEXT_HOP, BACKEND_LIVE, BackendEntry, DecapKey, MAGLEV_INNER_FLAGS,
    SETTINGS_HAS_GATEWAY, SETTINGS_HAS_SOURCE_V4, SETTINGS_HAS_SOURCE_V6, ServiceEntry, Settings,
    VipKey,
};
use lb_tests::lab::netns::NetNs;
use lb_tests::lab::{Client, Lab, addr, cmd};

/// Maglev table size of the hand-made tables (prime).
const TABLE: u32 = 251;

/// (ifindex, MAC) of `iface` in `ns`.
fn link_info(ns: &str, iface: &str) -> (u32, [u8; 6]) {
    let out = cmd::run_args("ip", &["-n", ns, "-j", "link", "show", "dev", iface]).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ifindex = v[0]["ifindex"].as_u64().unwrap() as u32;
    let mut mac = [0u8; 6];
    for (i, part) in v[0]["address"].as_str().unwrap().split(':').enumerate() {
        mac[i] = u8::from_str_radix(part, 16).unwrap();
    }
    (ifindex, mac)
}

fn load(ns: &NetNs, prog: &str, iface: &str, setup: impl FnOnce(&mut Ebpf) + Send) -> Ebpf {
    ns.run(|| {
        let mask = lb_common::flow_table::user::conntrack_mask(4096);
        let mut loader = EbpfLoader::new();
        lb_common::flow_table::user::size_conntrack(&mut loader, &mask);
        let mut ebpf = loader.load(lb::object::EBPF_OBJECT).expect("load object");
        setup(&mut ebpf);
        let p: &mut Xdp = ebpf.program_mut(prog).unwrap().try_into().unwrap();
        p.load().expect("verifier");
        p.attach(iface, XdpMode::default()).expect("attach");
        ebpf
    })
    .unwrap()
}

fn fill_lb(ebpf: &mut Ebpf, lab: &Lab, l0: (u32, [u8; 6]), r_lb_mac: [u8; 6]) {
    let lb_link = addr::lb_link();
    let (src4, _) = words(lb_link.host_v4().into());
    let (src6, _) = words(lb_link.host_v6().into());
    lb_tests::harness::write_settings(
        ebpf,
        Settings {
            source_v4: src4[0],
            source_v6: src6,
            flags: SETTINGS_HAS_SOURCE_V4 | SETTINGS_HAS_SOURCE_V6 | SETTINGS_HAS_GATEWAY,
            ifindex: l0.0,
            mtu: 1600,
            gateway_mac: r_lb_mac,
            interface_mac: l0.1,
            ..Default::default()
        },
    );
    let n = lab.backends().len() as u32;
    let mut backends: Array<_, BackendEntry> =
        Array::try_from(ebpf.map_mut(lb_common::MAP_BACKENDS).unwrap()).unwrap();
    for (i, b) in lab.backends().iter().enumerate() {
        for v6 in [false, true] {
            let (a, family) = words(b.addr(v6));
            let id = i as u32 + if v6 { n } else { 0 };
            let entry = BackendEntry {
                addr: a,
                generation: 1,
                flags: BACKEND_LIVE | BACKEND_HAS_NEXT_HOP,
                next_hop_ifindex: l0.0,
                next_hop_mtu: 0,
                next_hop_mac: r_lb_mac,
                source_mac: l0.1,
                family,
                pad: [0; 3],
                service_id: 0,
            };
            backends.set(id, entry, 0).unwrap();
        }
    }
    for v6 in [false, true] {
        let mut inner = Array::<MapData, u32>::create(TABLE, MAGLEV_INNER_FLAGS).unwrap();
        for slot in 0..TABLE {
            inner
                .set(slot, slot % n + if v6 { n } else { 0 }, 0)
                .unwrap();
        }
        let mut outer: ArrayOfMaps<_, Array<MapData, u32>> =
            ArrayOfMaps::try_from(ebpf.map_mut(lb_common::MAP_MAGLEV_TABLES).unwrap()).unwrap();
        outer.set(u32::from(v6), &inner, 0).unwrap();
    }
    let mut vips: HashMap<_, VipKey, ServiceEntry> =
        HashMap::try_from(ebpf.map_mut(lb_common::MAP_VIPS).unwrap()).unwrap();
    let mut id = 0;
    for v6 in [false, true] {
        for (port, protocol) in [(addr::TCP_PORT, PROTO_TCP), (addr::UDP_PORT, PROTO_UDP)] {
            let key = VipKey::new(addr::vip(v6), port, protocol);
            let entry = ServiceEntry {
                service_id: id,
                table_index: u32::from(v6),
                table_size: TABLE,
                flags: 0,
                ..Default::default()
            };
            vips.insert(key, entry, 0).unwrap();
            id += 1;
        }
        vips.insert(VipKey::marker(addr::vip(v6)), ServiceEntry::default(), 0)
            .unwrap();
    }
    for v6 in [false, true] {
        for (port, protocol) in [(addr::TCP_PORT, PROTO_TCP), (addr::UDP_PORT, PROTO_UDP)] {
            lb_tests::harness::mark_service(ebpf, addr::vip(v6), port, protocol);
        }
    }
}

fn fill_decap(ebpf: &mut Ebpf, own: &[IpAddr]) {
    let mut m: HashMap<_, DecapKey, u32> =
        HashMap::try_from(ebpf.map_mut(lb_common::MAP_DECAP_ADDRS).unwrap()).unwrap();
    for ip in own {
        m.insert(DecapKey::from(*ip), 0, 0).unwrap();
    }
}

#[test]
fn datapath_alone_balances_tcp_and_udp_both_families() {
    let lab = Lab::new(3).expect("lab");
    let l0 = link_info(lab.lb_ns.name(), "l0");
    let (_, r_lb_mac) = link_info(lab.router_ns.name(), "r-lb");
    let mut keep = Vec::new();
    keep.push(load(&lab.router_ns, lb_common::PROG_DECAP, "r-lb", |e| {
        fill_decap(e, &[])
    }));
    for b in lab.backends() {
        let own = [b.addr(false), b.addr(true)];
        keep.push(load(&b.ns, lb_common::PROG_DECAP, "s0", |e| {
            fill_decap(e, &own)
        }));
    }
    keep.push(load(&lab.lb_ns, lb_common::PROG_LB, "l0", |e| {
        fill_lb(e, &lab, l0, r_lb_mac)
    }));
    let client = Client::new(lab.client_ns.clone());
    for v6 in [false, true] {
        let report = client
            .short_tcp(
                addr::tcp_service(v6),
                600,
                2,
                std::time::Duration::from_secs(30),
            )
            .expect("short");
        assert_eq!(report.failed, 0, "v6={v6}: {:?}", report.errors);
        for b in ["b1", "b2", "b3"] {
            let share = report.share(b);
            assert!(
                (0.2..0.47).contains(&share),
                "v6={v6} {b}: {share} {:?}",
                report.by_backend
            );
        }
        let mut flows = client
            .open_tcp(addr::tcp_service(v6), 60)
            .expect("long-lived");
        for _ in 0..5 {
            assert_eq!(flows.ping_all(), 0, "{:?}", flows.broken_examples(3));
        }
        // Bulk data through the load balancer: full-sized segments plus the
        // encapsulation must fit the 1600-byte links, checksums must be right.
        for flow in flows.flows.iter_mut().take(10) {
            assert!(
                flow.ping_bulk(256 * 1024),
                "bulk v6={v6}: {:?}",
                flow.broken
            );
        }
        let udp = client.open_udp(addr::udp_service(v6), 60).expect("udp");
        let backends: std::collections::BTreeSet<_> =
            udp.iter().map(|f| f.backend.clone()).collect();
        assert_eq!(backends.len(), 3, "v6={v6}: udp reached {backends:?}");
        eprintln!("datapath alone v6={v6}: tcp {:?}", report.by_backend);
    }
    drop(keep);
}
