//! The lab itself, without the load balancer: the client reaches every backend's
//! own address through the router over TCP and UDP, IPv4 and IPv6; the VIPs are
//! routed to the (idle) load balancer namespace; teardown removes everything and
//! a new lab removes leftovers of a killed run.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use lb_tests::lab::{Client, Lab, addr, cmd, netns};

#[test]
fn client_reaches_each_backend_directly_through_the_router() {
    let lab = Lab::new(3).expect("build lab");
    let client = Client::new(lab.client_ns.clone());
    for v6 in [false, true] {
        for backend in lab.backends() {
            let dst = SocketAddr::new(backend.addr(v6), addr::TCP_PORT);
            let mut flows = client.open_tcp(dst, 5).expect("open tcp");
            assert!(
                flows.flows.iter().all(|f| f.backend == backend.name),
                "tcp {dst}: {:?}",
                flows.by_backend()
            );
            for _ in 0..3 {
                assert_eq!(
                    flows.ping_all(),
                    0,
                    "tcp {dst}: {:?}",
                    flows.broken_examples(3)
                );
            }
            let udp = client
                .open_udp(SocketAddr::new(backend.addr(v6), addr::UDP_PORT), 3)
                .expect("udp");
            assert!(udp.iter().all(|f| f.backend == backend.name));
            let short = client
                .short_tcp(dst, 20, 2, Duration::from_secs(20))
                .expect("short");
            assert_eq!(short.failed, 0, "{:?}", short.errors);
            assert_eq!(short.by_backend.get(&backend.name), Some(&20));
        }
    }
}

#[test]
fn vip_is_routed_to_the_idle_load_balancer_and_goes_nowhere() {
    let lab = Lab::new(1).expect("build lab");
    let client = Client::new(lab.client_ns.clone());
    let short = client
        .short_tcp(addr::tcp_service(false), 1, 1, Duration::from_secs(10))
        .expect("short");
    assert_eq!(
        short.failed, 1,
        "nothing balances yet, so the VIP must not answer: {short:?}"
    );
    // The router's route for the VIP points at the load balancer.
    let out = cmd::run_args(
        "ip",
        &[
            "-n",
            lab.router_ns.name(),
            "route",
            "get",
            &addr::VIP4.to_string(),
        ],
    )
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("via 198.18.2.2 dev r-lb"), "{text}");
}

#[test]
fn drop_removes_everything_and_new_labs_remove_orphans() {
    // A fake leftover of a process that no longer exists.
    let dead = (400_000..4_000_000)
        .find(|p| !Path::new(&format!("/proc/{p}")).exists())
        .unwrap();
    let orphan = format!("{}{dead}-0-cl", netns::NAME_BASE);
    {
        // Parallel tests sweep leftovers too: hold the sweep lock so none of
        // them deletes the fake orphan while `ip netns add` is still making it.
        let _lock = netns::SweepLock::take().unwrap();
        cmd::ip(&["netns", "add", &orphan]).unwrap();
    }
    let lab = Lab::new(2).unwrap();
    assert!(
        !Path::new("/run/netns").join(&orphan).exists(),
        "orphan {orphan} not removed"
    );
    let prefix = lab.prefix().to_owned();
    let scratch = lab.scratch().to_owned();
    let names = |p: &str| {
        let out = cmd::run_args("ip", &["netns", "list"]).unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with(p))
            .count()
    };
    assert_eq!(names(&prefix), 5, "client, router, lb and 2 backends");
    drop(lab);
    assert_eq!(names(&prefix), 0, "namespaces left behind");
    assert!(!scratch.exists(), "scratch dir left behind");
}
