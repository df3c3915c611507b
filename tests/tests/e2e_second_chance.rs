//! Second chance's path in the lab (issue 14): a backend that receives a
//! packet of a connection it does not know hands it on to the flow's previous
//! owner (re-encapsulated, out of its own `s0` with XDP_TX). These tests prove
//! the lab carries that hand-off: backends reach each other through the
//! router with the largest packet the balancer and the decap send, with
//! `lb decap` attached on both ends of every backend link.

use std::net::SocketAddr;

use lb_tests::lab::decap::{router_backend_iface, xdp_attached};
use lb_tests::lab::process::lb_binary;
use lb_tests::lab::reach::{LARGEST_GUE_PACKET, ask_unfragmented};
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
