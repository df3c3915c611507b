//! Second chance's path in the lab (issue 14): a backend that receives a
//! packet of a connection it does not know hands it on to the flow's previous
//! owner (re-encapsulated, out of its own `s0` with XDP_TX). These tests prove
//! the lab carries that hand-off: backends reach each other through the
//! router with the largest packet the balancer and the decap send, with
//! `lb decap` attached on both ends of every backend link, and a packet in
//! GUE as the decap hands it on reaches the other backend's socket, whose
//! answer goes straight to the client, and a backend's decap really hands a
//! hinted packet it has no connection for on through the router.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lb_common::DecapCounter;
use lb_common::gue::DEFAULT_GUE_PORT;
use lb_tests::lab::decap::{router_backend_iface, xdp_attached};
use lb_tests::lab::process::lb_binary;
use lb_tests::lab::reach::{
    LARGEST_GUE_PACKET, ask_through_gue, ask_unfragmented, send_hinted_ack,
};
use lb_tests::lab::topology::{BACKEND_IFACE, INNER_MTU};
use lb_tests::lab::{Lab, addr};

#[test]
fn backends_reach_each_other_with_the_largest_gue_packet() {
    let lb = lb_binary().expect("lb binary");
    let mut lab = Lab::new(2).expect("build the lab");
    lab.start_decap(&lb).expect("lb decap everywhere");
    let router = lab.router_ns.name().to_owned();
    for b in lab.backends() {
        assert!(
            xdp_attached(b.ns.name(), BACKEND_IFACE).unwrap(),
            "{}",
            b.name
        );
        let r_if = router_backend_iface(b.index);
        // Without a program there, the decap's XDP_TX out of s0 is lost.
        assert!(xdp_attached(&router, &r_if).unwrap(), "router {r_if}");
    }
    let mtu: usize = INNER_MTU.parse().unwrap();
    assert!(LARGEST_GUE_PACKET <= mtu, "{LARGEST_GUE_PACKET} > {mtu}");
    for (from, to) in [(1, 2), (2, 1)] {
        for v6 in [false, true] {
            let (src, dst) = (lab.backend(from), lab.backend(to));
            let target = SocketAddr::new(dst.addr(v6), addr::UDP_PORT);
            let answer = ask_unfragmented(&src.ns, target, LARGEST_GUE_PACKET)
                .unwrap_or_else(|e| panic!("{} -> {}: {e}", src.name, dst.name));
            assert_eq!(answer, dst.name, "{} -> {target}", src.name);
            println!(
                "{} -> {target}: {LARGEST_GUE_PACKET}-byte packet (DF) answered by {answer}",
                src.name
            );
            // The probe can fail: one byte over the links' MTU does not pass.
            let too_big = ask_unfragmented(&src.ns, target, mtu + 1);
            assert!(too_big.is_err(), "{} bytes passed: {too_big:?}", mtu + 1);
        }
    }
}

#[test]
fn a_handed_on_packet_in_gue_reaches_the_previous_owner_and_its_answer_the_client() {
    let lb = lb_binary().expect("lb binary");
    let mut lab = Lab::new(2).expect("build the lab");
    lab.start_decap(&lb).expect("lb decap everywhere");
    let client = addr::client_link();
    for v6 in [false, true] {
        for (from, owner) in [(1, 2), (2, 1)] {
            let before = lab.decap_counters(owner).unwrap();
            let (src, dst) = (lab.backend(from), lab.backend(owner));
            let answer = ask_through_gue(
                &src.ns,
                dst.addr(v6),
                DEFAULT_GUE_PORT,
                &lab.client_ns,
                client.host(v6),
                addr::udp_service(v6),
            )
            .unwrap_or_else(|e| panic!("{} -> {}: {e}", src.name, dst.name));
            assert_eq!(answer, dst.name);
            let (name, after) = (dst.name.clone(), lab.decap_counters(owner).unwrap());
            let counter = if v6 {
                DecapCounter::GueV6
            } else {
                DecapCounter::GueV4
            } as usize;
            assert!(
                after[counter] > before[counter],
                "{name}'s decap counted no GUE packet: {before:?} -> {after:?}"
            );
            println!("b{from} -> {name} in GUE (IPv6: {v6}): answered by {answer}");
        }
    }
}

/// Polls backend `index`'s decap counter until it passed `floor` (2 s).
fn wait_counter(lab: &mut Lab, index: u8, counter: DecapCounter, floor: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let now = lab.decap_counters(index).unwrap()[counter as usize];
        if now > floor || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_backend_hands_a_hinted_packet_it_has_no_connection_for_to_the_previous_owner() {
    let lb = lb_binary().expect("lb binary");
    let mut lab = Lab::new(2).expect("build the lab");
    lab.start_decap(&lb).expect("lb decap everywhere");
    let client_ns = lab.client_ns.clone();
    for v6 in [false, true] {
        let client = SocketAddr::new(addr::client_link().host(v6), 40_000);
        let (b1, b2) = (lab.backend(1).addr(v6), lab.backend(2).addr(v6));
        let gue_b1 = SocketAddr::new(b1, DEFAULT_GUE_PORT);
        let inner_counter = if v6 {
            DecapCounter::GueV6
        } else {
            DecapCounter::GueV4
        };
        // The lab gave every backend a neighbour entry for its gateway
        // (`seed_gateway_neighbours`): the hand-off needs no earlier traffic.
        let fresh = lab.decap_counters(1).unwrap()[DecapCounter::HintForwardFailed as usize];
        // b1 has no such connection: it hands the packet on to b2 (out of its
        // s0 with XDP_TX, through the router), whose decap strips it.
        let (forwarded, stripped) = (
            lab.decap_counters(1).unwrap()[DecapCounter::SecondChanceForwarded as usize],
            lab.decap_counters(2).unwrap()[inner_counter as usize],
        );
        send_hinted_ack(&client_ns, gue_b1, b2, client, addr::tcp_service(v6)).unwrap();
        let forwarded_now =
            wait_counter(&mut lab, 1, DecapCounter::SecondChanceForwarded, forwarded);
        let stripped_now = wait_counter(&mut lab, 2, inner_counter, stripped);
        println!(
            "IPv6 {v6}: b1 forwarded {} hinted packet(s) to b2, b2 decapsulated {}",
            forwarded_now - forwarded,
            stripped_now - stripped
        );
        assert_eq!(
            forwarded_now,
            forwarded + 1,
            "b1 forwards once: b1 {:?}, b2 {:?}",
            lab.decap_counters(1).unwrap(),
            lab.decap_counters(2).unwrap()
        );
        assert!(stripped_now > stripped, "b2 receives the hand-off");
        assert_eq!(
            lab.decap_counters(1).unwrap()[DecapCounter::HintForwardFailed as usize],
            fresh,
            "no failed forward once the router's MAC is known"
        );
        // A hint that names b1 itself is passed up there, never forwarded.
        let local = lab.decap_counters(1).unwrap()[DecapCounter::HintPassedLocal as usize];
        send_hinted_ack(&client_ns, gue_b1, b1, client, addr::tcp_service(v6)).unwrap();
        let local_now = wait_counter(&mut lab, 1, DecapCounter::HintPassedLocal, local);
        assert_eq!(local_now, local + 1, "b1 names itself: passed up");
        assert_eq!(
            lab.decap_counters(1).unwrap()[DecapCounter::SecondChanceForwarded as usize],
            forwarded_now,
            "nothing more forwarded"
        );
    }
}
