//! Fixtures of the balancer's GUE encapsulation, second chance and per-flow
//! outer sources: the real `lb_xdp` through BPF_PROG_TEST_RUN on frames built
//! with etherparse, each output compared byte for byte with a frame built
//! independently (`lb_tests::gue_frames`, `lb_tests::frames`).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lb_common::{
    BACKEND_ENCAP_GUE, BACKEND_LIVE, FlowKey, GlobalCounter as G, SETTINGS_SOURCE_PREFIX_V4,
    SETTINGS_SOURCE_PREFIX_V6, ServiceEntry, Settings,
    flow::{PROTO_TCP, PROTO_UDP},
    flow_hash,
    gue::{DEFAULT_GUE_PORT, gue_source_port},
};
use lb_tests::frames::{
    CLIENT_MAC, EGRESS_MAC, LB_MAC, NEXT_HOP_MAC, Tcp, V4, frag_needed, icmp_v4, ip_packet, ipip,
    tcp_v4, tcp_v6, udp_v4,
};
use lb_tests::gue_frames::{GuePorts, gue_v4, gue_v6};
use lb_tests::harness::{
    LB_SOURCE_V4, LB_SOURCE_V6, Lb, TEST_RUN_INGRESS, XDP_TX, backend_entry, flow_key, words,
};

const VIP4: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);
const CLIENT4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0x100, 1);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x10);

/// Maglev table size of these fixtures (prime).
const M: usize = 13;
const V4_IDS: [u32; 4] = [1, 2, 3, 4];
const V6_IDS: [u32; 4] = [11, 12, 13, 14];
const SVC_V4_TCP: u32 = 1;
const SVC_V4_UDP: u32 = 2;
const SVC_V6_TCP: u32 = 3;
const MACS: ([u8; 6], [u8; 6]) = (NEXT_HOP_MAC, EGRESS_MAC);

fn backend4(id: u32) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 2, id as u8)
}

fn backend6(id: u32) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0x2, id as u16)
}

/// A table of `M` slots cycling through `ids`.
fn table(ids: &[u32]) -> Vec<u32> {
    (0..M).map(|i| ids[i % ids.len()]).collect()
}

/// The same backends with every odd slot given to the next one (what a
/// table change does to some flows).
fn shifted(ids: &[u32]) -> Vec<u32> {
    (0..M).map(|i| ids[(i + i % 2) % ids.len()]).collect()
}

fn maglev(table: &[u32], key: &FlowKey) -> u32 {
    table[flow_hash(key) as usize % table.len()]
}

fn key4(port: u16) -> FlowKey {
    flow_key(CLIENT4.into(), port, VIP4.into(), 80, PROTO_TCP)
}

fn key6(port: u16) -> FlowKey {
    flow_key(CLIENT6.into(), port, VIP6.into(), 80, PROTO_TCP)
}

fn syn4(port: u16) -> Vec<u8> {
    tcp_v4(CLIENT4, port, VIP4, 80, Tcp::Syn, &[], &V4::default())
}

fn ack4(port: u16) -> Vec<u8> {
    tcp_v4(CLIENT4, port, VIP4, 80, Tcp::Ack, b"data", &V4::default())
}

fn ack6(port: u16) -> Vec<u8> {
    tcp_v6(CLIENT6, port, VIP6, 80, Tcp::Ack, b"data")
}

fn ports(key: &FlowKey) -> GuePorts {
    GuePorts {
        src: gue_source_port(flow_hash(key)),
        dst: DEFAULT_GUE_PORT,
    }
}

/// Backends written with `BACKEND_ENCAP_GUE` when `gue`, TCP/80 (v4, v6) and
/// UDP/53 (v4) services with the first-buffer tables.
fn setup(gue: bool) -> Lb {
    let mut lb = Lb::new();
    lb.add_service(VIP4.into(), 80, PROTO_TCP, SVC_V4_TCP, &table(&V4_IDS));
    lb.add_service(VIP6.into(), 80, PROTO_TCP, SVC_V6_TCP, &table(&V6_IDS));
    for id in V4_IDS.iter().chain(V6_IDS.iter()) {
        let addr: IpAddr = if *id < 10 {
            backend4(*id).into()
        } else {
            backend6(*id).into()
        };
        let mut entry = backend_entry(addr, 1, TEST_RUN_INGRESS);
        if gue {
            entry.flags |= BACKEND_ENCAP_GUE;
        }
        lb.set_backend(*id, entry);
    }
    lb.add_marker(VIP4.into());
    lb.add_marker(VIP6.into());
    lb
}

/// Moves service `id` of (`vip`, 80, TCP) from `old` (first buffer) to `new`
/// (second buffer) with the previous table kept until `until_ns`.
fn change_table(lb: &mut Lb, vip: IpAddr, id: u32, new: &[u32], until_ns: u64) {
    lb.swap_table(vip, 80, PROTO_TCP, id, new);
    let entry = ServiceEntry {
        service_id: id,
        table_index: 2 * id + 1,
        table_size: new.len() as u32,
        previous_table_index: 2 * id,
        previous_table_size: M as u32,
        previous_until_ns: until_ns,
        ..Default::default()
    };
    lb.set_vip(vip, 80, PROTO_TCP, entry);
}

/// A client port in `range` whose flow the two tables give to different backends.
fn moved_port(old: &[u32], new: &[u32], key: fn(u16) -> FlowKey, from: u16) -> u16 {
    (from..from + 1000)
        .find(|&p| maglev(old, &key(p)) != maglev(new, &key(p)))
        .expect("a flow that moves")
}

#[test]
fn gue_v4_and_v6_without_hint_are_byte_exact() {
    let lb = setup(true);
    let frame = syn4(40001);
    let id = maglev(&table(&V4_IDS), &key4(40001));
    let (action, out) = lb.run(&frame);
    assert_eq!(action, XDP_TX);
    let expected = gue_v4(
        MACS,
        LB_SOURCE_V4,
        backend4(id),
        ports(&key4(40001)),
        None,
        &frame,
    );
    assert_eq!(out, expected);
    assert_eq!(
        out.len(),
        frame.len() + 32,
        "20 + 8 + 4 bytes of GUE overhead"
    );

    let frame = tcp_v6(CLIENT6, 40002, VIP6, 80, Tcp::Syn, &[]);
    let id = maglev(&table(&V6_IDS), &key6(40002));
    let (action, out) = lb.run(&frame);
    assert_eq!(action, XDP_TX);
    let expected = gue_v6(
        MACS,
        LB_SOURCE_V6,
        backend6(id),
        ports(&key6(40002)),
        None,
        &frame,
    );
    assert_eq!(out, expected);
    assert_eq!(out.len(), frame.len() + 52);
    assert_eq!(
        lb.nonzero_globals(),
        vec![(G::Tx, 2), (G::GueEncapsulated, 2)]
    );
}

#[test]
fn the_configured_gue_port_is_the_destination() {
    let mut lb = setup(true);
    lb.set_settings(Settings {
        gue_port: 7777u16.to_be(),
        ..Lb::default_settings()
    });
    let frame = ack4(40003);
    let id = maglev(&table(&V4_IDS), &key4(40003));
    let (_, out) = lb.run(&frame);
    let p = GuePorts {
        dst: 7777,
        ..ports(&key4(40003))
    };
    assert_eq!(
        out,
        gue_v4(MACS, LB_SOURCE_V4, backend4(id), p, None, &frame)
    );
}

#[test]
fn second_chance_names_the_previous_owner_v4_for_the_flows_life() {
    let mut lb = setup(true);
    let old = table(&V4_IDS);
    let new = shifted(&V4_IDS);
    change_table(&mut lb, VIP4.into(), SVC_V4_TCP, &new, u64::MAX);
    let port = moved_port(&old, &new, key4, 41000);
    let (now, before) = (maglev(&new, &key4(port)), maglev(&old, &key4(port)));
    let frame = ack4(port);
    let expected = gue_v4(
        MACS,
        LB_SOURCE_V4,
        backend4(now),
        ports(&key4(port)),
        Some(backend4(before)),
        &frame,
    );
    let (action, out) = lb.run(&frame);
    assert_eq!(action, XDP_TX);
    assert_eq!(out, expected, "sent to the live pick, hint = previous pick");
    assert_eq!(out.len(), frame.len() + 40, "20 + 8 + 12 bytes");
    assert_eq!(lb.conntrack(&key4(port)).unwrap().backend_id, now);
    // The next packet hits the connection table and keeps the hint ...
    assert_eq!(lb.run(&frame).1, expected);
    // ... also after the grace period ends.
    change_table(&mut lb, VIP4.into(), SVC_V4_TCP, &new, 1);
    assert_eq!(lb.run(&frame).1, expected);
    assert_eq!(lb.global(G::SecondChanceFlows), 1);
    assert_eq!(lb.global(G::SecondChancePackets), 3);
    assert_eq!(lb.global(G::ConntrackHit), 2);
    assert_eq!(lb.global(G::NonSynMiss), 1);
    // A moved flow that arrives after the grace period gets no hint.
    let late = moved_port(&old, &new, key4, port + 1);
    let frame = ack4(late);
    let plain = gue_v4(
        MACS,
        LB_SOURCE_V4,
        backend4(maglev(&new, &key4(late))),
        ports(&key4(late)),
        None,
        &frame,
    );
    assert_eq!(lb.run(&frame).1, plain);
    assert_eq!(lb.global(G::SecondChanceFlows), 1);
}

#[test]
fn second_chance_names_the_previous_owner_v6() {
    let mut lb = setup(true);
    let old = table(&V6_IDS);
    let new = shifted(&V6_IDS);
    change_table(&mut lb, VIP6.into(), SVC_V6_TCP, &new, u64::MAX);
    let port = moved_port(&old, &new, key6, 41000);
    let frame = ack6(port);
    let expected = gue_v6(
        MACS,
        LB_SOURCE_V6,
        backend6(maglev(&new, &key6(port))),
        ports(&key6(port)),
        Some(backend6(maglev(&old, &key6(port)))),
        &frame,
    );
    let (action, out) = lb.run(&frame);
    assert_eq!(action, XDP_TX);
    assert_eq!(out, expected);
    assert_eq!(out.len(), frame.len() + 72, "40 + 8 + 24 bytes");
    assert_eq!(
        lb.nonzero_globals(),
        vec![
            (G::ConntrackMiss, 1),
            (G::NonSynMiss, 1),
            (G::Tx, 1),
            (G::SecondChanceFlows, 1),
            (G::SecondChancePackets, 1),
            (G::GueEncapsulated, 1),
        ]
    );
}

#[test]
fn no_hint_for_syns_unmoved_flows_udp_ipip_and_gone_owners() {
    let mut lb = setup(true);
    let old = table(&V4_IDS);
    let new = shifted(&V4_IDS);
    change_table(&mut lb, VIP4.into(), SVC_V4_TCP, &new, u64::MAX);
    // A SYN starts a connection here: nothing to hand on.
    let port = moved_port(&old, &new, key4, 42000);
    let frame = syn4(port);
    let now = maglev(&new, &key4(port));
    let plain = gue_v4(
        MACS,
        LB_SOURCE_V4,
        backend4(now),
        ports(&key4(port)),
        None,
        &frame,
    );
    assert_eq!(lb.run(&frame).1, plain);
    // A flow both tables give to the same backend.
    let same = (42000..43000)
        .find(|&p| maglev(&old, &key4(p)) == maglev(&new, &key4(p)))
        .unwrap();
    let frame = ack4(same);
    let id = maglev(&new, &key4(same));
    let plain = gue_v4(
        MACS,
        LB_SOURCE_V4,
        backend4(id),
        ports(&key4(same)),
        None,
        &frame,
    );
    assert_eq!(lb.run(&frame).1, plain);
    // UDP has no SYN to tell a new flow from a moved one: never a hint.
    lb.add_service(VIP4.into(), 53, PROTO_UDP, SVC_V4_UDP, &new);
    lb.swap_table(VIP4.into(), 53, PROTO_UDP, SVC_V4_UDP, &old);
    lb.set_vip(
        VIP4.into(),
        53,
        PROTO_UDP,
        ServiceEntry {
            service_id: SVC_V4_UDP,
            table_index: 2 * SVC_V4_UDP + 1,
            table_size: M as u32,
            previous_table_index: 2 * SVC_V4_UDP,
            previous_table_size: M as u32,
            previous_until_ns: u64::MAX,
            ..Default::default()
        },
    );
    let frame = udp_v4(CLIENT4, 42001, VIP4, 53, b"q");
    let out = lb.run(&frame).1;
    assert_eq!(out.len(), frame.len() + 32, "GUE without hint");
    // A previous owner that is no longer LIVE is not named.
    let gone_port = moved_port(&old, &new, key4, 43000);
    let gone = maglev(&old, &key4(gone_port));
    let mut entry = lb.backend(gone);
    entry.flags &= !BACKEND_LIVE;
    lb.set_backend(gone, entry);
    let frame = ack4(gone_port);
    let now = maglev(&new, &key4(gone_port));
    assert_ne!(now, gone, "a moved flow");
    let plain = gue_v4(
        MACS,
        LB_SOURCE_V4,
        backend4(now),
        ports(&key4(gone_port)),
        None,
        &frame,
    );
    assert_eq!(lb.run(&frame).1, plain);
    assert_eq!(lb.global(G::SecondChanceFlows), 0);
    assert_eq!(lb.global(G::SecondChancePackets), 0);
    // An IPIP service with a previous table: IPIP cannot carry a hint.
    let mut lb = setup(false);
    change_table(&mut lb, VIP4.into(), SVC_V4_TCP, &new, u64::MAX);
    let port = moved_port(&old, &new, key4, 44000);
    let frame = ack4(port);
    let id = maglev(&new, &key4(port));
    let (action, out) = lb.run(&frame);
    assert_eq!(action, XDP_TX);
    assert_eq!(
        out,
        ipip(NEXT_HOP_MAC, EGRESS_MAC, LB_SOURCE_V4, backend4(id), &frame)
    );
    assert_eq!(lb.global(G::SecondChanceFlows), 0);
}

#[test]
fn a_pinned_flows_hint_stops_when_the_previous_owner_goes() {
    let mut lb = setup(true);
    let old = table(&V4_IDS);
    let new = shifted(&V4_IDS);
    change_table(&mut lb, VIP4.into(), SVC_V4_TCP, &new, u64::MAX);
    let port = moved_port(&old, &new, key4, 45000);
    let (now, before) = (maglev(&new, &key4(port)), maglev(&old, &key4(port)));
    let frame = ack4(port);
    assert_eq!(lb.run(&frame).1.len(), frame.len() + 40, "hinted");
    let mut entry = lb.backend(before);
    entry.flags &= !BACKEND_LIVE;
    lb.set_backend(before, entry);
    let plain = gue_v4(
        MACS,
        LB_SOURCE_V4,
        backend4(now),
        ports(&key4(port)),
        None,
        &frame,
    );
    assert_eq!(
        lb.run(&frame).1,
        plain,
        "still pinned, no hint to a removed backend"
    );
}

#[test]
fn flows_to_one_backend_get_many_outer_source_ports() {
    let lb = setup(true);
    let t = table(&V4_IDS);
    let mut source_ports = BTreeSet::new();
    let mut flows = 0;
    for port in 30000..32000u16 {
        if maglev(&t, &key4(port)) != 1 {
            continue;
        }
        flows += 1;
        let out = lb.run(&syn4(port)).1;
        let udp = &out[14 + 20..];
        let sport = u16::from_be_bytes([udp[0], udp[1]]);
        assert_eq!(sport, gue_source_port(flow_hash(&key4(port))));
        assert!(sport >= 49152);
        source_ports.insert(sport);
    }
    assert!(flows > 300, "{flows} flows to backend 1");
    assert!(
        source_ports.len() * 100 >= flows * 95,
        "{} source ports for {flows} flows",
        source_ports.len()
    );
}

#[test]
fn ipip_outer_sources_come_per_flow_from_the_configured_prefix() {
    let mut lb = setup(false);
    let (prefix4, _) = words(Ipv4Addr::new(198, 18, 5, 0).into());
    let (prefix6, _) = words(Ipv6Addr::new(0x2001, 2, 0, 5, 0, 0, 0, 0).into());
    lb.set_settings(Settings {
        source_v4: prefix4[0],
        source_host_mask_v4: 0xff,
        source_v6: prefix6,
        source_host_mask_v6: u32::MAX,
        flags: Lb::default_settings().flags | SETTINGS_SOURCE_PREFIX_V4 | SETTINGS_SOURCE_PREFIX_V6,
        ..Lb::default_settings()
    });
    // Byte-exact: source = 198.18.5.(hash & 0xff).
    let frame = ack4(46000);
    let hash = flow_hash(&key4(46000));
    let src = Ipv4Addr::new(198, 18, 5, hash as u8);
    let id = maglev(&table(&V4_IDS), &key4(46000));
    assert_eq!(
        lb.run(&frame).1,
        ipip(NEXT_HOP_MAC, EGRESS_MAC, src, backend4(id), &frame)
    );
    let frame = ack6(46001);
    let hash = flow_hash(&key6(46001));
    let src = Ipv6Addr::new(0x2001, 2, 0, 5, 0, 0, (hash >> 16) as u16, hash as u16);
    let id = maglev(&table(&V6_IDS), &key6(46001));
    let expected = lb_tests::frames::ip6ip6(NEXT_HOP_MAC, EGRESS_MAC, src, backend6(id), &frame);
    assert_eq!(lb.run(&frame).1, expected);
    // Flows to one backend spread over the prefix.
    let t = table(&V4_IDS);
    let mut sources = BTreeSet::new();
    let mut flows = 0;
    for port in 30000..31000u16 {
        if maglev(&t, &key4(port)) != 2 {
            continue;
        }
        flows += 1;
        let out = lb.run(&ack4(port)).1;
        assert_eq!(out[14 + 12..14 + 15], [198, 18, 5], "inside the prefix");
        sources.insert(out[14 + 15]);
    }
    assert!(
        sources.len() > 100,
        "{} sources for {flows} flows",
        sources.len()
    );
}

#[test]
fn too_big_accounts_for_the_gue_overhead() {
    let mut lb = setup(true);
    lb.set_settings(Settings {
        mtu: 600,
        ..Lb::default_settings()
    });
    // 570 bytes of IP: fits with IPIP (590), not with GUE (602).
    let payload = vec![0u8; 570 - 20 - 20];
    let frame = tcp_v4(CLIENT4, 47000, VIP4, 80, Tcp::Syn, &payload, &V4::default());
    assert_eq!(ip_packet(&frame).len(), 570);
    let (action, out) = lb.run(&frame);
    assert_eq!(action, XDP_TX);
    let want = icmp_v4(
        CLIENT_MAC,
        LB_MAC,
        VIP4,
        CLIENT4,
        64,
        frag_needed(600 - 32),
        &ip_packet(&frame)[..28],
    );
    assert_eq!(out, want, "fragmentation needed, MTU 600 - 32");
    assert_eq!(lb.global(G::DropTooBig), 1);
    assert_eq!(lb.global(G::IcmpTooBigSent), 1);
}
