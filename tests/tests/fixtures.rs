//! The datapath fixture suite: the real XDP programs run through
//! BPF_PROG_TEST_RUN (repeat 1) on frames built with etherparse. Each case checks
//! the action, the exact output frame (built independently, checksums verified
//! by parsing) and the counters. Every test loads its own datapath.

#[path = "fixtures/check.rs"]
mod check;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{IcmpEchoHeader, Icmpv4Type, Icmpv6Type, Ipv4Header, TcpHeader};
use lb_common::{
    BACKEND_LIVE, BackendStats, DecapCounter, FlowEntry, FlowKey, GlobalCounter as G,
    SETTINGS_HAS_GATEWAY, ServiceEntry, ServiceStats,
    flow::{PROTO_TCP, PROTO_UDP},
    flow_hash,
};
use lb_tests::frames::{
    CLIENT_MAC, EGRESS_MAC, GATEWAY_MAC, LB_MAC, NEXT_HOP_MAC, Tcp, V4, ethernet, frag_needed,
    icmp_v4, icmp_v6, ip_packet, ip6ip6, ipip, ipv4_header, ipv6_header, packet_too_big, tcp_v4,
    tcp_v6, udp_v4, udp_v6,
};

use check::{encapsulated_ok, icmpv4_ok, icmpv6_ok};
use lb_tests::harness::{
    LB_SOURCE_V4, LB_SOURCE_V6, Lb, TEST_RUN_INGRESS, XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX,
    backend_entry, flow_key,
};

const VIP4: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);
const VIP4_WILDCARD: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 2);
const CLIENT4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const ROUTER4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
const OTHER4: Ipv4Addr = Ipv4Addr::new(198, 18, 50, 50);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0x100, 1);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x10);
const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0xfe);
const OTHER6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0x50, 0x50);

/// Maglev table size of the fixtures (prime).
const M: usize = 13;
const V4_IDS: [u32; 4] = [1, 2, 3, 4];
const V6_IDS: [u32; 4] = [11, 12, 13, 14];
const SVC_V4_TCP: u32 = 1;
const SVC_V4_UDP: u32 = 2;
const SVC_V6_TCP: u32 = 3;
const SVC_V6_UDP: u32 = 4;

fn backend4(id: u32) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 2, id as u8)
}

fn backend6(id: u32) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0x2, id as u16)
}

fn backend_addr(id: u32) -> IpAddr {
    if id < 10 {
        backend4(id).into()
    } else {
        backend6(id).into()
    }
}

/// A table of `M` slots cycling through `ids`.
fn table(ids: &[u32]) -> Vec<u32> {
    (0..M).map(|i| ids[i % ids.len()]).collect()
}

/// The backend the test expects the datapath to pick: its own table lookup.
fn maglev(table: &[u32], key: &FlowKey) -> u32 {
    table[flow_hash(key) as usize % table.len()]
}

/// A datapath with four IPv4 and four IPv6 backends (next hop out the ingress),
/// TCP/80 and UDP/53 services on both VIPs, and the VIP address markers.
fn setup() -> Lb {
    let mut lb = Lb::new();
    for id in V4_IDS.iter().chain(V6_IDS.iter()) {
        lb.set_backend(*id, backend_entry(backend_addr(*id), 1, TEST_RUN_INGRESS));
    }
    lb.add_service(VIP4.into(), 80, PROTO_TCP, SVC_V4_TCP, &table(&V4_IDS));
    lb.add_service(VIP4.into(), 53, PROTO_UDP, SVC_V4_UDP, &table(&V4_IDS));
    lb.add_service(VIP6.into(), 80, PROTO_TCP, SVC_V6_TCP, &table(&V6_IDS));
    lb.add_service(VIP6.into(), 53, PROTO_UDP, SVC_V6_UDP, &table(&V6_IDS));
    lb.add_marker(VIP4.into());
    lb.add_marker(VIP6.into());
    lb
}

fn syn4(port: u16) -> Vec<u8> {
    tcp_v4(CLIENT4, port, VIP4, 80, Tcp::Syn, &[], &V4::default())
}

fn ack4(port: u16) -> Vec<u8> {
    tcp_v4(
        CLIENT4,
        port,
        VIP4,
        80,
        Tcp::Ack,
        b"GET / HTTP/1.1\r\n\r\n",
        &V4::default(),
    )
}

fn key4(port: u16) -> FlowKey {
    flow_key(CLIENT4.into(), port, VIP4.into(), 80, PROTO_TCP)
}

fn expect_ipip(frame: &[u8], id: u32) -> Vec<u8> {
    ipip(NEXT_HOP_MAC, EGRESS_MAC, LB_SOURCE_V4, backend4(id), frame)
}

fn expect_ip6ip6(frame: &[u8], id: u32) -> Vec<u8> {
    ip6ip6(NEXT_HOP_MAC, EGRESS_MAC, LB_SOURCE_V6, backend6(id), frame)
}

/// Runs `frame`, asserts XDP_TX and the exact IPIP output toward backend `id`.
fn assert_forwarded_v4(lb: &Lb, frame: &[u8], id: u32) {
    let (action, out) = lb.run(frame);
    assert_eq!(action, XDP_TX);
    assert_eq!(
        out,
        expect_ipip(frame, id),
        "encapsulated frame toward backend {id}"
    );
    encapsulated_ok(&out);
}

/// Runs `frame` and asserts it passed byte-for-byte unchanged.
fn assert_passed_unchanged(lb: &Lb, frame: &[u8]) {
    let (action, out) = lb.run(frame);
    assert_eq!(action, XDP_PASS);
    assert_eq!(out, frame);
}

#[test]
fn ipv4_tcp_syn_to_vip_is_encapsulated_to_the_maglev_pick() {
    let lb = setup();
    let frame = syn4(40000);
    let id = maglev(&table(&V4_IDS), &key4(40000));
    assert_forwarded_v4(&lb, &frame, id);
    assert_eq!(
        lb.conntrack(&key4(40000)),
        Some(FlowEntry {
            backend_id: id,
            generation: 1
        })
    );
    let len = frame.len() as u64;
    assert_eq!(
        lb.backend_stats(id),
        BackendStats {
            packets: 1,
            bytes: len,
            new_flows: 1,
            hits: 0,
            redirects: 0,
            hit_bytes: 0,
        }
    );
    assert_eq!(
        lb.service_stats(SVC_V4_TCP),
        ServiceStats {
            packets: 1,
            bytes: len,
            no_backend: 0
        }
    );
    assert_eq!(lb.nonzero_globals(), vec![(G::Tx, 1)]);
}

#[test]
fn ipv6_tcp_syn_to_vip_is_encapsulated_to_the_maglev_pick() {
    let lb = setup();
    let frame = tcp_v6(CLIENT6, 40001, VIP6, 80, Tcp::Syn, &[]);
    let key = flow_key(CLIENT6.into(), 40001, VIP6.into(), 80, PROTO_TCP);
    let id = maglev(&table(&V6_IDS), &key);
    let (action, out) = lb.run(&frame);
    assert_eq!(action, XDP_TX);
    assert_eq!(out, expect_ip6ip6(&frame, id));
    encapsulated_ok(&out);
    assert_eq!(
        lb.conntrack(&key),
        Some(FlowEntry {
            backend_id: id,
            generation: 1
        })
    );
    let len = frame.len() as u64;
    assert_eq!(
        lb.backend_stats(id),
        BackendStats {
            packets: 1,
            bytes: len,
            new_flows: 1,
            hits: 0,
            redirects: 0,
            hit_bytes: 0,
        }
    );
    assert_eq!(lb.service_stats(SVC_V6_TCP).packets, 1);
    assert_eq!(lb.nonzero_globals(), vec![(G::Tx, 1)]);
}

#[test]
fn ack_of_known_flow_follows_its_connection_table_entry() {
    let mut lb = setup();
    let key = key4(40002);
    // Pin the flow to a backend Maglev would not pick: only the table can send it there.
    let pinned = V4_IDS
        .iter()
        .copied()
        .find(|&b| b != maglev(&table(&V4_IDS), &key))
        .unwrap();
    lb.set_conntrack(
        key,
        FlowEntry {
            backend_id: pinned,
            generation: 1,
        },
    );
    let frame = ack4(40002);
    assert_forwarded_v4(&lb, &frame, pinned);
    let len = frame.len() as u64;
    assert_eq!(
        lb.backend_stats(pinned),
        BackendStats {
            packets: 1,
            bytes: len,
            new_flows: 0,
            hits: 1,
            redirects: 0,
            hit_bytes: len,
        }
    );
    // The hit is the service's packet, counted in the backend's record only:
    // for the service the backend's entry names (this fixture gives the V4
    // ids to both V4 services; the agent gives every service its own ids).
    let service = lb.backend(pinned).service_id;
    assert_eq!(
        lb.service_stats(service),
        ServiceStats {
            packets: 1,
            bytes: len,
            no_backend: 0
        }
    );
    assert_eq!(lb.nonzero_globals(), vec![(G::ConntrackHit, 1), (G::Tx, 1)]);
}

#[test]
fn syn_then_ack_hits_the_connection_table() {
    let lb = setup();
    let id = maglev(&table(&V4_IDS), &key4(40003));
    assert_forwarded_v4(&lb, &syn4(40003), id);
    assert_forwarded_v4(&lb, &ack4(40003), id);
    assert_eq!(lb.backend_stats(id).packets, 2);
    assert_eq!(lb.backend_stats(id).new_flows, 1);
    assert_eq!(lb.nonzero_globals(), vec![(G::ConntrackHit, 1), (G::Tx, 2)]);
}

#[test]
fn ack_of_unknown_flow_counts_a_non_syn_miss_and_pins_the_flow() {
    let lb = setup();
    let id = maglev(&table(&V4_IDS), &key4(40004));
    assert_forwarded_v4(&lb, &ack4(40004), id);
    assert_eq!(
        lb.conntrack(&key4(40004)),
        Some(FlowEntry {
            backend_id: id,
            generation: 1
        })
    );
    assert_eq!(lb.backend_stats(id).new_flows, 1);
    assert_eq!(
        lb.nonzero_globals(),
        vec![(G::ConntrackMiss, 1), (G::NonSynMiss, 1), (G::Tx, 1)]
    );
}

#[test]
fn syn_overwrites_a_stale_connection_table_entry() {
    let mut lb = setup();
    let key = key4(40005);
    let id = maglev(&table(&V4_IDS), &key);
    let other = V4_IDS.iter().copied().find(|&b| b != id).unwrap();
    lb.set_conntrack(
        key,
        FlowEntry {
            backend_id: other,
            generation: 1,
        },
    );
    assert_forwarded_v4(&lb, &syn4(40005), id);
    assert_eq!(
        lb.conntrack(&key),
        Some(FlowEntry {
            backend_id: id,
            generation: 1
        })
    );
}

#[test]
fn udp_flows_are_pinned_v4_and_v6() {
    let lb = setup();
    let frame = udp_v4(CLIENT4, 5353, VIP4, 53, b"query");
    let key = flow_key(CLIENT4.into(), 5353, VIP4.into(), 53, PROTO_UDP);
    let id = maglev(&table(&V4_IDS), &key);
    assert_forwarded_v4(&lb, &frame, id);
    assert_forwarded_v4(&lb, &frame, id);
    assert_eq!(
        lb.conntrack(&key),
        Some(FlowEntry {
            backend_id: id,
            generation: 1
        })
    );
    assert_eq!(lb.service_stats(SVC_V4_UDP).packets, 2);

    let frame = udp_v6(CLIENT6, 5353, VIP6, 53, b"query");
    let key = flow_key(CLIENT6.into(), 5353, VIP6.into(), 53, PROTO_UDP);
    let id6 = maglev(&table(&V6_IDS), &key);
    let (action, out) = lb.run(&frame);
    assert_eq!(action, XDP_TX);
    assert_eq!(out, expect_ip6ip6(&frame, id6));
    encapsulated_ok(&out);
    // UDP misses are not TCP non-SYN misses.
    assert_eq!(
        lb.nonzero_globals(),
        vec![(G::ConntrackHit, 1), (G::ConntrackMiss, 2), (G::Tx, 3)]
    );
}

#[test]
fn port_zero_wildcard_vip_takes_every_port_and_a_specific_port_wins() {
    let mut lb = setup();
    lb.add_service(VIP4_WILDCARD.into(), 0, PROTO_TCP, 5, &table(&[3]));
    lb.add_service(VIP4_WILDCARD.into(), 443, PROTO_TCP, 6, &table(&[4]));
    let frame = tcp_v4(
        CLIENT4,
        40006,
        VIP4_WILDCARD,
        8080,
        Tcp::Syn,
        &[],
        &V4::default(),
    );
    assert_forwarded_v4(&lb, &frame, 3);
    let frame = tcp_v4(
        CLIENT4,
        40006,
        VIP4_WILDCARD,
        443,
        Tcp::Syn,
        &[],
        &V4::default(),
    );
    assert_forwarded_v4(&lb, &frame, 4);
    // The wildcard is per protocol: UDP to that address is not a VIP service.
    let frame = udp_v4(CLIENT4, 40006, VIP4_WILDCARD, 8080, b"x");
    assert_passed_unchanged(&lb, &frame);
    assert_eq!(lb.service_stats(5).packets, 1);
    assert_eq!(lb.service_stats(6).packets, 1);
    assert_eq!(lb.nonzero_globals(), vec![(G::PassNotVip, 1), (G::Tx, 2)]);
}

#[test]
fn ipv4_with_options_is_forwarded_with_its_options() {
    let lb = setup();
    for words in [1usize, 3, 10] {
        let mut options = vec![1u8; words * 4 - 1]; // NOPs
        options.push(0); // end of options
        let opt = V4 {
            options,
            ..V4::default()
        };
        let frame = tcp_v4(CLIENT4, 40007, VIP4, 80, Tcp::Syn, &[], &opt);
        let id = maglev(&table(&V4_IDS), &key4(40007));
        assert_forwarded_v4(&lb, &frame, id);
    }
    assert_eq!(lb.nonzero_globals(), vec![(G::Tx, 3)]);
}

#[test]
fn non_vip_ipv4_ipv6_arp_and_vlan_frames_pass_unchanged() {
    let lb = setup();
    let frames = [
        tcp_v4(CLIENT4, 40008, OTHER4, 22, Tcp::Syn, &[], &V4::default()),
        // The VIP on a port without a service.
        tcp_v4(CLIENT4, 40008, VIP4, 22, Tcp::Syn, &[], &V4::default()),
        tcp_v6(CLIENT6, 40008, OTHER6, 22, Tcp::Syn, &[]),
        udp_v6(CLIENT6, 40008, OTHER6, 53, b"x"),
        icmp_v4(
            LB_MAC,
            CLIENT_MAC,
            CLIENT4,
            OTHER4,
            63,
            echo_req4(),
            b"ping",
        ),
        ethernet(
            [0xff; 6],
            CLIENT_MAC,
            0x0806,
            &[
                0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 198, 18, 0, 10, 0, 0, 0, 0, 0, 0, 198,
                18, 100, 1,
            ],
        ),
        {
            // VLAN-tagged TCP to the VIP: not parsed, passed.
            let inner = syn4(40008);
            let mut tagged = vec![0x00, 0x0a, 0x08, 0x00];
            tagged.extend_from_slice(ip_packet(&inner));
            ethernet(LB_MAC, CLIENT_MAC, 0x8100, &tagged)
        },
    ];
    for f in &frames {
        assert_passed_unchanged(&lb, f);
    }
    assert_eq!(
        lb.nonzero_globals(),
        vec![(G::PassNotVip, frames.len() as u64)]
    );
}

#[test]
fn unsupported_protocol_to_a_vip_is_passed_and_counted() {
    let lb = setup();
    let ip = ipv4_header(CLIENT4, VIP4, 47, 8, &V4::default()); // GRE
    let mut p = ip.to_bytes().to_vec();
    p.extend_from_slice(&[0; 8]);
    let frame = ethernet(LB_MAC, CLIENT_MAC, 0x0800, &p);
    assert_passed_unchanged(&lb, &frame);
    assert_eq!(lb.nonzero_globals(), vec![(G::PassUnsupported, 1)]);
}

#[test]
fn truncation_at_every_length_has_a_defined_action_and_counter() {
    let lb = setup();
    let v4 = ack4(40009);
    let v6 = tcp_v6(CLIENT6, 40009, VIP6, 80, Tcp::Ack, b"data");
    let mut malformed = 0;
    let mut not_vip = 0;
    // BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header.
    for (frame, ip_end) in [(&v4, 14 + 20), (&v6, 14 + 40)] {
        for cut in 14..frame.len() {
            let f = &frame[..cut];
            let (action, out) = lb.run(f);
            if cut < ip_end {
                // The destination is not even there: nobody's packet, passed.
                assert_eq!((action, &out[..]), (XDP_PASS, f), "cut at {cut}");
                not_vip += 1;
            } else {
                assert_eq!(action, XDP_DROP, "cut at {cut}");
                malformed += 1;
            }
            assert_eq!(lb.global(G::DropMalformed), malformed, "cut at {cut}");
            assert_eq!(lb.global(G::PassNotVip), not_vip, "cut at {cut}");
        }
    }
    assert_eq!(lb.global(G::Tx), 0);
}

#[test]
fn lying_length_fields_to_a_vip_are_dropped_as_malformed() {
    let lb = setup();
    let base = ack4(40010);
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut f = base.clone();
    let tot = u16::from_be_bytes([f[16], f[17]]) + 1;
    f[16..18].copy_from_slice(&tot.to_be_bytes());
    cases.push(("IPv4 total length beyond the frame", f));
    let mut f = base.clone();
    f[14] = 0x44;
    cases.push(("IHL 4", f));
    let mut f = base.clone();
    f[14] = 0x4f;
    cases.push(("IHL beyond the TCP header", f));
    let mut f = base.clone();
    f[16..18].copy_from_slice(&30u16.to_be_bytes());
    cases.push(("total length cuts the TCP header", f));
    let mut f = base.clone();
    f[34 + 12] = 0x40;
    cases.push(("TCP data offset 4", f));
    let mut f = base.clone();
    f[34 + 12] = 0xf0;
    cases.push(("TCP data offset beyond the packet", f));
    let mut f = udp_v4(CLIENT4, 5353, VIP4, 53, b"query");
    f[34 + 4..34 + 6].copy_from_slice(&100u16.to_be_bytes());
    cases.push(("UDP length beyond the packet", f));
    let mut f = udp_v4(CLIENT4, 5353, VIP4, 53, b"query");
    f[34 + 4..34 + 6].copy_from_slice(&7u16.to_be_bytes());
    cases.push(("UDP length below its header", f));
    let mut f = tcp_v6(CLIENT6, 40010, VIP6, 80, Tcp::Ack, b"data");
    f[18..20].copy_from_slice(&200u16.to_be_bytes());
    cases.push(("IPv6 payload length beyond the frame", f));
    let mut f = tcp_v6(CLIENT6, 40010, VIP6, 80, Tcp::Ack, b"data");
    f[18..20].copy_from_slice(&0u16.to_be_bytes());
    cases.push(("IPv6 payload length 0", f));
    for (i, (what, f)) in cases.iter().enumerate() {
        let (action, _) = lb.run(f);
        assert_eq!(action, XDP_DROP, "{what}");
        assert_eq!(lb.global(G::DropMalformed), i as u64 + 1, "{what}");
    }
    assert_eq!(
        lb.nonzero_globals(),
        vec![(G::DropMalformed, cases.len() as u64)]
    );
}

#[test]
fn packets_to_a_vips_unserved_port_pass_before_the_parse_even_if_malformed() {
    let lb = setup();
    // Served ports' malformed packets are dropped (the test above); on a port
    // no service serves, the VIP filter passes a plain TCP/UDP frame before
    // anything but its port is read, lying length fields or not.
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    cases.push((
        "IPv4 TCP ACK to port 22",
        tcp_v4(CLIENT4, 40011, VIP4, 22, Tcp::Ack, b"x", &V4::default()),
    ));
    cases.push((
        "IPv6 UDP to port 54",
        udp_v6(CLIENT6, 40011, VIP6, 54, b"x"),
    ));
    let mut f = tcp_v4(CLIENT4, 40011, VIP4, 22, Tcp::Ack, b"x", &V4::default());
    f[34 + 12] = 0x40;
    cases.push(("IPv4 TCP to port 22, data offset 4", f));
    let mut f = udp_v4(CLIENT4, 5353, VIP4, 54, b"query");
    f[16..18].copy_from_slice(&200u16.to_be_bytes());
    cases.push(("IPv4 UDP to port 54, total length beyond the frame", f));
    let mut f = udp_v6(CLIENT6, 5353, VIP6, 54, b"query");
    f[14 + 40 + 4..14 + 40 + 6].copy_from_slice(&7u16.to_be_bytes());
    cases.push(("IPv6 UDP to port 54, length below its header", f));
    for (what, f) in &cases {
        let (action, out) = lb.run(f);
        assert_eq!((action, &out), (XDP_PASS, f), "{what}");
    }
    assert_eq!(
        lb.nonzero_globals(),
        vec![(G::PassNotVip, cases.len() as u64)]
    );
    // A UDP packet to the UDP service's port is served; the same port over
    // TCP is not.
    let mut f = tcp_v4(CLIENT4, 40011, VIP4, 53, Tcp::Ack, b"x", &V4::default());
    f[34 + 12] = 0x40;
    let (action, out) = lb.run(&f);
    assert_eq!(
        (action, &out),
        (XDP_PASS, &f),
        "TCP to the UDP service's port"
    );
    let mut f = udp_v4(CLIENT4, 5353, VIP4, 53, b"query");
    f[34 + 4..34 + 6].copy_from_slice(&7u16.to_be_bytes());
    assert_eq!(lb.run(&f).0, XDP_DROP, "malformed UDP to the UDP service");
    assert_eq!(lb.global(G::DropMalformed), 1);
}

#[test]
fn fragments_to_a_vip_are_dropped_and_others_pass() {
    let lb = setup();
    // IPv4 first fragment (MF) carrying the ports.
    let first = tcp_v4(
        CLIENT4,
        40011,
        VIP4,
        80,
        Tcp::Ack,
        &[0; 16],
        &V4 {
            df: false,
            mf: true,
            ..V4::default()
        },
    );
    // IPv4 later fragment: no ports.
    let ip = ipv4_header(
        CLIENT4,
        VIP4,
        6,
        16,
        &V4 {
            df: false,
            frag_offset: 5,
            ..V4::default()
        },
    );
    let mut p = ip.to_bytes().to_vec();
    p.extend_from_slice(&[7; 16]);
    let later = ethernet(LB_MAC, CLIENT_MAC, 0x0800, &p);
    // IPv6 first fragment (M flag, offset 0) and a later one.
    let tcp = TcpHeader::new(40011, 80, 1, 100).to_bytes().to_vec();
    let v6_frag = |frag_off: [u8; 2], body: &[u8]| {
        let mut payload = vec![6, 0, frag_off[0], frag_off[1], 0, 0, 0, 9];
        payload.extend_from_slice(body);
        let mut p = ipv6_header(CLIENT6, VIP6, 44, payload.len())
            .to_bytes()
            .to_vec();
        p.extend_from_slice(&payload);
        ethernet(LB_MAC, CLIENT_MAC, 0x86dd, &p)
    };
    let first6 = v6_frag([0, 1], &tcp);
    let later6 = v6_frag([0, 0x28], &[7; 16]);
    for f in [&first, &later, &first6, &later6] {
        assert_eq!(lb.run(f).0, XDP_DROP);
    }
    // A fragment to another host passes.
    let ip = ipv4_header(
        CLIENT4,
        OTHER4,
        6,
        16,
        &V4 {
            df: false,
            frag_offset: 5,
            ..V4::default()
        },
    );
    let mut p = ip.to_bytes().to_vec();
    p.extend_from_slice(&[7; 16]);
    assert_passed_unchanged(&lb, &ethernet(LB_MAC, CLIENT_MAC, 0x0800, &p));
    assert_eq!(
        lb.nonzero_globals(),
        vec![(G::PassNotVip, 1), (G::DropFragment, 4)]
    );
}

#[test]
fn too_big_ipv4_with_df_gets_fragmentation_needed_from_the_vip() {
    let mut lb = setup();
    lb.set_settings(lb_common::Settings {
        mtu: 600,
        ..Lb::default_settings()
    });
    let frame = tcp_v4(
        CLIENT4,
        40012,
        VIP4,
        80,
        Tcp::Ack,
        &[0x55; 600],
        &V4::default(),
    );
    let (action, out) = lb.run(&frame);
    assert_eq!(action, XDP_TX);
    let quote = &ip_packet(&frame)[..20 + 8];
    let want = icmp_v4(
        CLIENT_MAC,
        LB_MAC,
        VIP4,
        CLIENT4,
        64,
        frag_needed(600 - 20),
        quote,
    );
    assert_eq!(out, want);
    let icmp = icmpv4_ok(&out);
    assert_eq!((icmp[0], icmp[1]), (3, 4));
    assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 580);
    assert_eq!(lb.global(G::DropTooBig), 1);
    assert_eq!(lb.global(G::IcmpTooBigSent), 1);
    assert_eq!(lb.global(G::Tx), 0);
}

#[test]
fn too_big_ipv4_with_options_quotes_the_whole_header() {
    let mut lb = setup();
    lb.set_settings(lb_common::Settings {
        mtu: 600,
        ..Lb::default_settings()
    });
    let opt = V4 {
        options: vec![1; 8],
        ..V4::default()
    };
    let frame = tcp_v4(CLIENT4, 40012, VIP4, 80, Tcp::Ack, &[0x55; 600], &opt);
    let (action, out) = lb.run(&frame);
    assert_eq!(action, XDP_TX);
    let quote = &ip_packet(&frame)[..28 + 8];
    assert_eq!(
        out,
        icmp_v4(
            CLIENT_MAC,
            LB_MAC,
            VIP4,
            CLIENT4,
            64,
            frag_needed(580),
            quote
        )
    );
    icmpv4_ok(&out);
}

#[test]
fn too_big_ipv4_without_df_is_dropped_and_counted() {
    let mut lb = setup();
    lb.set_settings(lb_common::Settings {
        mtu: 600,
        ..Lb::default_settings()
    });
    let frame = tcp_v4(
        CLIENT4,
        40013,
        VIP4,
        80,
        Tcp::Ack,
        &[0x55; 600],
        &V4 {
            df: false,
            ..V4::default()
        },
    );
    assert_eq!(lb.run(&frame).0, XDP_DROP);
    assert_eq!(lb.global(G::DropTooBig), 1);
    assert_eq!(lb.global(G::IcmpTooBigSent), 0);
}

#[test]
fn too_big_ipv6_gets_packet_too_big_from_the_vip() {
    let mut lb = setup();
    // The backend's own next-hop MTU takes precedence over the settings.
    let id_any = V6_IDS;
    for id in id_any {
        let mut b = backend_entry(backend_addr(id), 1, TEST_RUN_INGRESS);
        b.next_hop_mtu = 1280;
        lb.set_backend(id, b);
    }
    let frame = tcp_v6(CLIENT6, 40014, VIP6, 80, Tcp::Ack, &[0x66; 1250]);
    let (action, out) = lb.run(&frame);
    assert_eq!(action, XDP_TX);
    let quote = &ip_packet(&frame)[..48];
    let want = icmp_v6(
        CLIENT_MAC,
        LB_MAC,
        VIP6,
        CLIENT6,
        64,
        packet_too_big(1280 - 40),
        quote,
    );
    assert_eq!(out, want);
    let icmp = icmpv6_ok(&out);
    assert_eq!(
        u32::from_be_bytes([icmp[4], icmp[5], icmp[6], icmp[7]]),
        1240
    );
    assert_eq!(lb.global(G::DropTooBig), 1);
    assert_eq!(lb.global(G::IcmpTooBigSent), 1);
    // Just under the limit goes through.
    let frame = tcp_v6(
        CLIENT6,
        40014,
        VIP6,
        80,
        Tcp::Ack,
        &[0x66; 1280 - 40 - 40 - 20],
    );
    assert_eq!(lb.run(&frame).0, XDP_TX);
}

fn echo_req4() -> Icmpv4Type {
    Icmpv4Type::EchoRequest(IcmpEchoHeader { id: 7, seq: 1 })
}

#[test]
fn icmp_echo_to_a_vip_is_answered_v4_and_v6() {
    let lb = setup();
    let req = icmp_v4(
        LB_MAC,
        CLIENT_MAC,
        CLIENT4,
        VIP4,
        63,
        echo_req4(),
        b"ping payload",
    );
    let (action, out) = lb.run(&req);
    assert_eq!(action, XDP_TX);
    let reply = Icmpv4Type::EchoReply(IcmpEchoHeader { id: 7, seq: 1 });
    assert_eq!(
        out,
        icmp_v4(
            CLIENT_MAC,
            LB_MAC,
            VIP4,
            CLIENT4,
            64,
            reply,
            b"ping payload"
        )
    );
    icmpv4_ok(&out);

    let echo = IcmpEchoHeader { id: 9, seq: 3 };
    let req = icmp_v6(
        LB_MAC,
        CLIENT_MAC,
        CLIENT6,
        VIP6,
        63,
        Icmpv6Type::EchoRequest(echo),
        b"ping6",
    );
    let (action, out) = lb.run(&req);
    assert_eq!(action, XDP_TX);
    let want = icmp_v6(
        CLIENT_MAC,
        LB_MAC,
        VIP6,
        CLIENT6,
        64,
        Icmpv6Type::EchoReply(echo),
        b"ping6",
    );
    assert_eq!(out, want);
    icmpv6_ok(&out);
    assert_eq!(lb.nonzero_globals(), vec![(G::IcmpEchoReply, 2)]);
}

#[test]
fn icmp_error_about_a_vip_flow_goes_to_that_flows_backend() {
    let mut lb = setup();
    // IPv4: pin the flow away from its Maglev pick so only the table explains the choice.
    let key = key4(40015);
    let pinned = V4_IDS
        .iter()
        .copied()
        .find(|&b| b != maglev(&table(&V4_IDS), &key))
        .unwrap();
    lb.set_conntrack(
        key,
        FlowEntry {
            backend_id: pinned,
            generation: 1,
        },
    );
    let reply = tcp_v4(
        VIP4,
        80,
        CLIENT4,
        40015,
        Tcp::Ack,
        b"response",
        &V4::default(),
    );
    let err = icmp_v4(
        LB_MAC,
        CLIENT_MAC,
        ROUTER4,
        VIP4,
        63,
        frag_needed(1400),
        &ip_packet(&reply)[..28],
    );
    assert_forwarded_v4(&lb, &err, pinned);
    // IPv6: no entry, so the Maglev pick of the client->VIP flow.
    let key6 = flow_key(CLIENT6.into(), 40015, VIP6.into(), 80, PROTO_TCP);
    let id6 = maglev(&table(&V6_IDS), &key6);
    let reply6 = tcp_v6(VIP6, 80, CLIENT6, 40015, Tcp::Ack, b"response");
    let err6 = icmp_v6(
        LB_MAC,
        CLIENT_MAC,
        ROUTER6,
        VIP6,
        63,
        packet_too_big(1400),
        &ip_packet(&reply6)[..48],
    );
    let (action, out) = lb.run(&err6);
    assert_eq!(action, XDP_TX);
    assert_eq!(out, expect_ip6ip6(&err6, id6));
    // ICMP errors do not create connection-table entries.
    assert_eq!(lb.conntrack(&key6), None);
    assert_eq!(
        lb.nonzero_globals(),
        vec![
            (G::ConntrackHit, 1),
            (G::ConntrackMiss, 1),
            (G::Tx, 2),
            (G::IcmpErrorForwarded, 2)
        ]
    );
}

#[test]
fn draining_backend_keeps_its_flows_but_gets_no_new_ones() {
    let mut lb = setup();
    let id = maglev(&table(&V4_IDS), &key4(40016));
    assert_forwarded_v4(&lb, &syn4(40016), id);
    // Drain: a new table without it; the backend stays LIVE.
    let rest: Vec<u32> = V4_IDS.iter().copied().filter(|&b| b != id).collect();
    lb.swap_table(VIP4.into(), 80, PROTO_TCP, SVC_V4_TCP, &table(&rest));
    assert_forwarded_v4(&lb, &ack4(40016), id);
    // New flows avoid it.
    for port in 41000..41020 {
        let want = maglev(&table(&rest), &key4(port));
        assert_ne!(want, id);
        assert_forwarded_v4(&lb, &syn4(port), want);
    }
    assert_eq!(lb.backend_stats(id).packets, 2);
    assert_eq!(lb.global(G::ConntrackHit), 1);
}

#[test]
fn removed_backends_flow_is_re_picked_by_maglev() {
    let mut lb = setup();
    let id = maglev(&table(&V4_IDS), &key4(40017));
    assert_forwarded_v4(&lb, &syn4(40017), id);
    let rest: Vec<u32> = V4_IDS.iter().copied().filter(|&b| b != id).collect();
    lb.swap_table(VIP4.into(), 80, PROTO_TCP, SVC_V4_TCP, &table(&rest));
    let mut removed = lb.backend(id);
    removed.flags &= !BACKEND_LIVE;
    lb.set_backend(id, removed);
    let new_id = maglev(&table(&rest), &key4(40017));
    assert_forwarded_v4(&lb, &ack4(40017), new_id);
    assert_eq!(
        lb.conntrack(&key4(40017)),
        Some(FlowEntry {
            backend_id: new_id,
            generation: 1
        })
    );
    assert_eq!(
        lb.nonzero_globals(),
        vec![(G::ConntrackMiss, 1), (G::NonSynMiss, 1), (G::Tx, 2)]
    );
}

#[test]
fn reused_backend_id_with_a_new_generation_re_picks_old_flows() {
    let mut lb = setup();
    let id = maglev(&table(&V4_IDS), &key4(40018));
    assert_forwarded_v4(&lb, &syn4(40018), id);
    lb.set_backend(id, backend_entry(backend_addr(id), 2, TEST_RUN_INGRESS));
    assert_forwarded_v4(&lb, &ack4(40018), id);
    assert_eq!(
        lb.conntrack(&key4(40018)),
        Some(FlowEntry {
            backend_id: id,
            generation: 2
        })
    );
    assert_eq!(lb.global(G::NonSynMiss), 1);
}

#[test]
fn table_swap_keeps_existing_flows_and_new_flows_follow_the_new_table() {
    let mut lb = setup();
    let old = table(&V4_IDS);
    let new: Vec<u32> = old.iter().rev().copied().collect();
    // A flow whose pick differs between the tables.
    let port = (42000..43000)
        .find(|&p| maglev(&old, &key4(p)) != maglev(&new, &key4(p)))
        .unwrap();
    let id = maglev(&old, &key4(port));
    assert_forwarded_v4(&lb, &syn4(port), id);
    lb.swap_table(VIP4.into(), 80, PROTO_TCP, SVC_V4_TCP, &new);
    assert_forwarded_v4(&lb, &ack4(port), id);
    let port2 = (43000..44000)
        .find(|&p| maglev(&old, &key4(p)) != maglev(&new, &key4(p)))
        .unwrap();
    assert_forwarded_v4(&lb, &syn4(port2), maglev(&new, &key4(port2)));
    // And a swap back to the first buffer works the same way.
    lb.add_service(VIP4.into(), 80, PROTO_TCP, SVC_V4_TCP, &old);
    assert_forwarded_v4(&lb, &ack4(port2), maglev(&new, &key4(port2)));
}

#[test]
fn service_without_backends_drops_new_flows_and_counts() {
    let mut lb = setup();
    let entry = ServiceEntry {
        service_id: 7,
        table_index: 14,
        table_size: 0,
        flags: 0,
        ..Default::default()
    };
    lb.set_vip(VIP4.into(), 8080, PROTO_TCP, entry);
    let frame = tcp_v4(CLIENT4, 40019, VIP4, 8080, Tcp::Syn, &[], &V4::default());
    assert_eq!(lb.run(&frame).0, XDP_DROP);
    let len = frame.len() as u64;
    assert_eq!(
        lb.service_stats(7),
        ServiceStats {
            packets: 1,
            bytes: len,
            no_backend: 1
        }
    );
    assert_eq!(lb.nonzero_globals(), vec![(G::DropNoBackend, 1)]);
}

#[test]
fn egress_on_another_interface_is_redirected() {
    let mut lb = setup();
    for id in V4_IDS {
        lb.set_backend(id, backend_entry(backend_addr(id), 1, 7));
    }
    let frame = syn4(40020);
    let id = maglev(&table(&V4_IDS), &key4(40020));
    let (action, out) = lb.run(&frame);
    assert_eq!(action, XDP_REDIRECT);
    assert_eq!(out, expect_ipip(&frame, id));
    assert_eq!(lb.nonzero_globals(), vec![(G::Redirect, 1)]);
}

#[test]
fn missing_source_address_drops_and_counts() {
    let mut lb = setup();
    lb.set_settings(lb_common::Settings {
        flags: SETTINGS_HAS_GATEWAY,
        ..Lb::default_settings()
    });
    assert_eq!(lb.run(&syn4(40021)).0, XDP_DROP);
    assert_eq!(lb.global(G::DropNoSource), 1);
}

#[test]
fn without_a_next_hop_or_route_the_gateway_mac_is_used_else_no_route() {
    // In a fresh network namespace the FIB is empty, so the fallback is what decides.
    std::thread::spawn(|| {
        // SAFETY: affects only this thread's network namespace.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
        let mut lb = setup();
        for id in V4_IDS {
            let mut b = backend_entry(backend_addr(id), 1, 0);
            b.flags = BACKEND_LIVE;
            lb.set_backend(id, b);
        }
        let frame = syn4(40022);
        let id = maglev(&table(&V4_IDS), &key4(40022));
        let (action, out) = lb.run(&frame);
        assert_eq!(action, XDP_TX);
        assert_eq!(
            out,
            ipip(GATEWAY_MAC, LB_MAC, LB_SOURCE_V4, backend4(id), &frame)
        );
        lb.set_settings(lb_common::Settings {
            flags: Lb::default_settings().flags & !SETTINGS_HAS_GATEWAY,
            ..Lb::default_settings()
        });
        assert_eq!(lb.run(&frame).0, XDP_DROP);
        assert_eq!(lb.global(G::DropNoRoute), 1);
    })
    .join()
    .unwrap();
}

#[test]
fn decap_strips_the_outer_header_v4_and_v6() {
    let mut lb = Lb::new();
    lb.add_decap_addr(backend4(1).into());
    lb.add_decap_addr(backend6(11).into());
    let inner = syn4(40023);
    let encap = ipip(LB_MAC, NEXT_HOP_MAC, LB_SOURCE_V4, backend4(1), &inner);
    let (action, out) = lb.run_prog(lb_common::PROG_DECAP, &encap);
    assert_eq!(action, XDP_PASS);
    assert_eq!(
        out,
        ethernet(LB_MAC, NEXT_HOP_MAC, 0x0800, ip_packet(&inner))
    );
    Ipv4Header::from_slice(ip_packet(&out)).unwrap();

    let inner6 = tcp_v6(CLIENT6, 40023, VIP6, 80, Tcp::Syn, &[]);
    let encap6 = ip6ip6(LB_MAC, NEXT_HOP_MAC, LB_SOURCE_V6, backend6(11), &inner6);
    let (action, out) = lb.run_prog(lb_common::PROG_DECAP, &encap6);
    assert_eq!(action, XDP_PASS);
    assert_eq!(
        out,
        ethernet(LB_MAC, NEXT_HOP_MAC, 0x86dd, ip_packet(&inner6))
    );
    assert_eq!(lb.decap_counter(DecapCounter::DecapV4), 1);
    assert_eq!(lb.decap_counter(DecapCounter::DecapV6), 1);
    assert_eq!(lb.decap_counter(DecapCounter::Passed), 0);
}

#[test]
fn decap_passes_packets_not_for_this_host_unchanged() {
    let mut lb = Lb::new();
    lb.add_decap_addr(backend4(1).into());
    let inner = syn4(40024);
    // Encapsulated toward another backend: counted and passed.
    let other = ipip(LB_MAC, NEXT_HOP_MAC, LB_SOURCE_V4, backend4(2), &inner);
    let (action, out) = lb.run_prog(lb_common::PROG_DECAP, &other);
    assert_eq!((action, &out), (XDP_PASS, &other));
    let other6 = ip6ip6(
        LB_MAC,
        NEXT_HOP_MAC,
        LB_SOURCE_V6,
        backend6(12),
        &tcp_v6(CLIENT6, 1, VIP6, 80, Tcp::Syn, &[]),
    );
    let (action, out) = lb.run_prog(lb_common::PROG_DECAP, &other6);
    assert_eq!((action, &out), (XDP_PASS, &other6));
    // Plain traffic: passed, not counted.
    let (action, out) = lb.run_prog(lb_common::PROG_DECAP, &inner);
    assert_eq!((action, &out), (XDP_PASS, &inner));
    assert_eq!(lb.decap_counter(DecapCounter::Passed), 2);
    assert_eq!(lb.decap_counter(DecapCounter::DecapV4), 0);
}

#[test]
fn icmp_error_about_a_non_vip_flow_passes_unchanged() {
    let lb = setup();
    // Embedded packet from another host: not a VIP flow, the host's own business.
    let reply = tcp_v4(
        OTHER4,
        80,
        CLIENT4,
        40025,
        Tcp::Ack,
        b"response",
        &V4::default(),
    );
    let err = icmp_v4(
        LB_MAC,
        CLIENT_MAC,
        ROUTER4,
        OTHER4,
        63,
        frag_needed(1400),
        &ip_packet(&reply)[..28],
    );
    assert_passed_unchanged(&lb, &err);
    // Embedded VIP packet on a port without a service: also not a VIP flow.
    let reply = tcp_v4(
        VIP4,
        22,
        CLIENT4,
        40025,
        Tcp::Ack,
        b"response",
        &V4::default(),
    );
    let err = icmp_v4(
        LB_MAC,
        CLIENT_MAC,
        ROUTER4,
        VIP4,
        63,
        frag_needed(1400),
        &ip_packet(&reply)[..28],
    );
    let (action, out) = lb.run(&err);
    assert_eq!((action, out), (XDP_PASS, err));
    assert_eq!(
        lb.nonzero_globals(),
        vec![(G::PassNotVip, 1), (G::PassUnsupported, 1)]
    );
}

#[test]
fn icmp_error_to_another_host_quoting_a_vip_flow_passes_unchanged() {
    let lb = setup();
    // A router's error about a VIP flow's reply, but addressed to another
    // host (OTHER4 / OTHER6): not the load balancer's to route.
    let reply = tcp_v4(
        VIP4,
        80,
        CLIENT4,
        40026,
        Tcp::Ack,
        b"response",
        &V4::default(),
    );
    let err = icmp_v4(
        LB_MAC,
        CLIENT_MAC,
        ROUTER4,
        OTHER4,
        63,
        frag_needed(1400),
        &ip_packet(&reply)[..28],
    );
    assert_passed_unchanged(&lb, &err);
    let reply6 = tcp_v6(VIP6, 80, CLIENT6, 40026, Tcp::Ack, b"response");
    let err6 = icmp_v6(
        LB_MAC,
        CLIENT_MAC,
        ROUTER6,
        OTHER6,
        63,
        packet_too_big(1400),
        &ip_packet(&reply6)[..48],
    );
    assert_passed_unchanged(&lb, &err6);
    assert_eq!(lb.nonzero_globals(), vec![(G::PassNotVip, 2)]);
    let key = flow_key(CLIENT4.into(), 40026, VIP4.into(), 80, PROTO_TCP);
    assert_eq!(lb.conntrack(&key), None);
}
