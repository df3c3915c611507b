//! Fixtures of `lb_decap`'s GUE stage and second chance: the real program run
//! through BPF_PROG_TEST_RUN (repeat 1) on frames built independently
//! (`lb_tests::decap_frames`), checking the action, the exact output frame and
//! the counters.
//!
//! Socket lookups and FIB lookups use the network namespace of the thread
//! that runs the program, so every case needing sockets or routes runs on its
//! own thread in a fresh anonymous namespace (gone with the thread).

use std::net::{IpAddr, SocketAddr};

use lb_common::{DecapCounter as D, gue::DEFAULT_GUE_PORT};
use lb_tests::decap_frames::{Outer, gue_forwarded, gue_frame, gue_from_lb, gue_header};
use lb_tests::decap_netns::{
    CLIENT4, CLIENT6, HOST_IF_MAC, HOST4, HOST6, OWNER_MAC, OWNER4, OWNER6, VIP4, VIP6, connection,
    in_fresh_netns, listeners, owner_reachable,
};
use lb_tests::frames::{
    LB_MAC, NEXT_HOP_MAC, Tcp, V4, ethernet, ip_packet, tcp_v4, tcp_v6, udp_v4,
};
use lb_tests::harness::{LB_SOURCE_V4, LB_SOURCE_V6, Lb, XDP_DROP, XDP_PASS, XDP_TX};

/// The per-flow UDP source port of the fixtures' GUE packets.
const GUE_SPORT: u16 = 50001;

fn lb_to_host4() -> Outer {
    Outer {
        macs: (LB_MAC, NEXT_HOP_MAC),
        addrs: (LB_SOURCE_V4.into(), HOST4.into()),
        ports: (GUE_SPORT, DEFAULT_GUE_PORT),
        ttl: 63,
        id: 0,
    }
}

fn lb_to_host6() -> Outer {
    Outer {
        addrs: (LB_SOURCE_V6.into(), HOST6.into()),
        ..lb_to_host4()
    }
}

fn ack4(cport: u16) -> Vec<u8> {
    tcp_v4(CLIENT4, cport, VIP4, 80, Tcp::Ack, b"data", &V4::default())
}

fn ack6(cport: u16) -> Vec<u8> {
    tcp_v6(CLIENT6, cport, VIP6, 80, Tcp::Ack, b"data")
}

/// The frame `lb_decap` passes up for `inner_frame` received from `outer`.
fn stripped(outer: &Outer, inner_frame: &[u8]) -> Vec<u8> {
    let ether_type = if ip_packet(inner_frame)[0] >> 4 == 4 {
        0x0800
    } else {
        0x86dd
    };
    ethernet(
        outer.macs.0,
        outer.macs.1,
        ether_type,
        ip_packet(inner_frame),
    )
}

/// A datapath whose decapsulator owns HOST4 and HOST6.
fn decap() -> Lb {
    let mut lb = Lb::new();
    lb.add_decap_addr(HOST4.into());
    lb.add_decap_addr(HOST6.into());
    lb
}

/// Every non-zero decap counter.
fn nonzero(lb: &Lb) -> Vec<(D, u64)> {
    D::ALL
        .iter()
        .map(|&c| (c, lb.decap_counter(c)))
        .filter(|&(_, v)| v != 0)
        .collect()
}

#[test]
fn gue_without_hint_is_stripped_v4_and_v6() {
    let lb = decap();
    for (outer, inner) in [
        (lb_to_host4(), ack4(41000)),
        (lb_to_host6(), ack6(41000)),
        // Inner family other than the outer one.
        (lb_to_host4(), ack6(41001)),
    ] {
        let frame = gue_from_lb(outer, None, &inner);
        let (action, out) = lb.run_prog(lb_common::PROG_DECAP, &frame);
        assert_eq!(action, XDP_PASS);
        assert_eq!(out, stripped(&outer, &inner));
    }
    assert_eq!(nonzero(&lb), vec![(D::GueV4, 2), (D::GueV6, 1)]);
}

#[test]
fn foreign_private_data_is_skipped_and_not_a_hint() {
    let lb = decap();
    let inner = ack4(41002);
    let outer = lb_to_host4();
    // Hlen 2 of somebody else's private data.
    let gue = [2, 4, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4];
    let frame = gue_frame(&outer, &gue, ip_packet(&inner));
    let (action, out) = lb.run_prog(lb_common::PROG_DECAP, &frame);
    assert_eq!((action, out), (XDP_PASS, stripped(&outer, &inner)));
    assert_eq!(nonzero(&lb), vec![(D::GueV4, 1)]);
}

#[test]
fn gue_not_for_this_host_or_port_passes_unchanged() {
    let lb = decap();
    let inner = ack4(41003);
    let other_host = Outer {
        addrs: (LB_SOURCE_V4.into(), OWNER4.into()),
        ..lb_to_host4()
    };
    let frame = gue_from_lb(other_host, None, &inner);
    assert_eq!(
        lb.run_prog(lb_common::PROG_DECAP, &frame),
        (XDP_PASS, frame)
    );
    let other_port = Outer {
        ports: (GUE_SPORT, 6081),
        ..lb_to_host4()
    };
    let frame = gue_from_lb(other_port, None, &inner);
    assert_eq!(
        lb.run_prog(lb_common::PROG_DECAP, &frame),
        (XDP_PASS, frame.clone())
    );
    // Plain UDP to this host: not encapsulation, not counted.
    let udp = udp_v4(CLIENT4, 5000, HOST4, 53, b"query");
    assert_eq!(lb.run_prog(lb_common::PROG_DECAP, &udp), (XDP_PASS, udp));
    assert_eq!(nonzero(&lb), vec![(D::Passed, 1)]);

    // With --gue-port 6081 only, the same packet is GUE and 6080 is not.
    let mut lb = Lb::with_gue_ports(&[6081]);
    lb.add_decap_addr(HOST4.into());
    let (action, out) = lb.run_prog(lb_common::PROG_DECAP, &frame);
    assert_eq!((action, out), (XDP_PASS, stripped(&other_port, &inner)));
    let default_port = gue_from_lb(lb_to_host4(), None, &inner);
    assert_eq!(
        lb.run_prog(lb_common::PROG_DECAP, &default_port),
        (XDP_PASS, default_port)
    );
    assert_eq!(nonzero(&lb), vec![(D::GueV4, 1)]);
}

#[test]
fn malformed_gue_is_dropped_and_counted() {
    let lb = decap();
    let inner = ack4(41004);
    let inner_ip = ip_packet(&inner);
    let outer = lb_to_host4();
    let good = gue_header(inner_ip, None);
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    for (what, first_byte) in [("version 1", 0x40u8), ("control message", 0x20)] {
        let mut g = good.clone();
        g[0] = first_byte;
        cases.push((what, gue_frame(&outer, &g, inner_ip)));
    }
    let mut flags = good.clone();
    flags[3] = 0x80;
    cases.push(("flags", gue_frame(&outer, &flags, inner_ip)));
    // Hlen 31 (128 bytes of private data) in a packet far shorter.
    let mut hlen = good.clone();
    hlen[0] = 31;
    cases.push(("Hlen beyond the packet", gue_frame(&outer, &hlen, inner_ip)));
    // Protocol 41 (IPv6) with an IPv4 inner header; protocol 6 (not IP).
    for (what, protocol) in [("inner protocol mismatch", 41u8), ("inner protocol 6", 6)] {
        let mut g = good.clone();
        g[1] = protocol;
        cases.push((what, gue_frame(&outer, &g, inner_ip)));
    }
    // UDP length beyond the frame.
    let mut long = gue_frame(&outer, &good, inner_ip);
    long[14 + 20 + 4] = 0x05;
    long[14 + 20 + 5] = 0xdc;
    cases.push(("UDP length beyond the frame", long));
    // An outer IPv4 fragment (MF set): checksum fixed, the decap must refuse.
    let mut frag = gue_frame(&outer, &good, inner_ip);
    frag[14 + 6] |= 0x20;
    let (mut ip4, _) = etherparse::Ipv4Header::from_slice(&frag[14..]).unwrap();
    ip4.header_checksum = ip4.calc_header_checksum();
    frag[14..34].copy_from_slice(&ip4.to_bytes());
    cases.push(("outer fragment", frag));
    let n = cases.len() as u64;
    for (what, frame) in cases {
        let (action, _) = lb.run_prog(lb_common::PROG_DECAP, &frame);
        assert_eq!(action, XDP_DROP, "{what}");
    }
    assert_eq!(nonzero(&lb), vec![(D::GueMalformed, n)]);
}

#[test]
fn hinted_packet_of_a_local_connection_is_passed_up() {
    in_fresh_netns(|| {
        let lb = decap();
        let (l4, l6) = listeners();
        let local4 = SocketAddr::from((CLIENT4, 41010));
        let local6 = SocketAddr::from((CLIENT6, 41010));
        let _c4 = connection(&l4, local4);
        let _c6 = connection(&l6, local6);
        // A connection the server side closed first: its socket is in TIME_WAIT.
        let (client, server) = connection(&l4, SocketAddr::from((CLIENT4, 41011)));
        drop(server);
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut &client, &mut rest).unwrap();
        drop(client);
        std::thread::sleep(std::time::Duration::from_millis(50));
        for (outer, hint, inner) in [
            (lb_to_host4(), IpAddr::from(OWNER4), ack4(41010)),
            (lb_to_host6(), IpAddr::from(OWNER6), ack6(41010)),
            (lb_to_host4(), IpAddr::from(OWNER4), ack4(41011)),
        ] {
            let frame = gue_from_lb(outer, Some(hint), &inner);
            let (action, out) = lb.run_prog(lb_common::PROG_DECAP, &frame);
            assert_eq!(action, XDP_PASS);
            assert_eq!(out, stripped(&outer, &inner));
        }
        assert_eq!(
            nonzero(&lb),
            vec![(D::GueV4, 2), (D::GueV6, 1), (D::HintPassedLocal, 3)]
        );
    });
}

#[test]
fn hinted_packet_without_a_connection_is_forwarded_to_the_previous_owner() {
    in_fresh_netns(|| {
        let lb = decap();
        let ifindex = owner_reachable();
        // A listener on the VIP port is not a connection.
        let _listeners = listeners();
        for (outer, hint, inner) in [
            (lb_to_host4(), IpAddr::from(OWNER4), ack4(41020)),
            (lb_to_host6(), IpAddr::from(OWNER6), ack6(41020)),
        ] {
            let frame = gue_from_lb(outer, Some(hint), &inner);
            let (action, out) = lb.run_prog_on(lb_common::PROG_DECAP, &frame, ifindex);
            assert_eq!(action, XDP_TX, "out the interface it came in on");
            let forwarded = Outer {
                macs: (OWNER_MAC, HOST_IF_MAC),
                addrs: (outer.addrs.1, hint),
                ..outer
            };
            assert_eq!(out, gue_forwarded(forwarded, &inner));
            // The forwarded packet carries no hint: at the previous owner it is
            // plain GUE, stripped and passed up whatever its sockets.
            let mut owner = Lb::new();
            owner.add_decap_addr(hint);
            let (action, at_owner) = owner.run_prog(lb_common::PROG_DECAP, &out);
            assert_eq!((action, at_owner), (XDP_PASS, stripped(&forwarded, &inner)));
        }
        assert_eq!(nonzero(&lb), vec![(D::SecondChanceForwarded, 2)]);
    });
}

#[test]
fn hinted_syn_udp_and_self_hint_are_passed_up() {
    in_fresh_netns(|| {
        let mut lb = decap();
        let ifindex = owner_reachable();
        let outer = lb_to_host4();
        let syn = tcp_v4(CLIENT4, 41030, VIP4, 80, Tcp::Syn, &[], &V4::default());
        let udp = udp_v4(CLIENT4, 41030, VIP4, 53, b"query");
        for inner in [syn, udp] {
            let frame = gue_from_lb(outer, Some(OWNER4.into()), &inner);
            let (action, out) = lb.run_prog_on(lb_common::PROG_DECAP, &frame, ifindex);
            assert_eq!((action, out), (XDP_PASS, stripped(&outer, &inner)));
        }
        // A hint naming this host itself (another of its addresses): never sent to itself.
        lb.add_decap_addr(OWNER4.into());
        let inner = ack4(41031);
        let frame = gue_from_lb(outer, Some(OWNER4.into()), &inner);
        let (action, out) = lb.run_prog_on(lb_common::PROG_DECAP, &frame, ifindex);
        assert_eq!((action, out), (XDP_PASS, stripped(&outer, &inner)));
        assert_eq!(nonzero(&lb), vec![(D::GueV4, 3), (D::HintPassedLocal, 3)]);
    });
}

#[test]
fn hinted_packet_without_a_route_to_the_owner_is_passed_up() {
    in_fresh_netns(|| {
        let lb = decap();
        // Family mismatch: an IPv6 owner in an IPv4 outer header.
        let inner = ack4(41040);
        let outer = lb_to_host4();
        let frame = gue_from_lb(outer, Some(OWNER6.into()), &inner);
        let (action, out) = lb.run_prog(lb_common::PROG_DECAP, &frame);
        assert_eq!((action, out), (XDP_PASS, stripped(&outer, &inner)));
        // No route at all in the fresh namespace.
        for (outer, hint, inner) in [
            (lb_to_host4(), IpAddr::from(OWNER4), ack4(41041)),
            (lb_to_host6(), IpAddr::from(OWNER6), ack6(41041)),
        ] {
            let frame = gue_from_lb(outer, Some(hint), &inner);
            let (action, out) = lb.run_prog(lb_common::PROG_DECAP, &frame);
            assert_eq!((action, out), (XDP_PASS, stripped(&outer, &inner)));
        }
        assert_eq!(
            nonzero(&lb),
            vec![(D::GueV4, 2), (D::GueV6, 1), (D::HintForwardFailed, 3)]
        );
    });
}
