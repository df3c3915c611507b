//! The tier end to end (issue 13, section 4; issue 14's second chance): three
//! lb nodes behind a router running FRR with BGP ECMP (layer-4 hash) and BFD,
//! BIRD on every node exporting the routes lb itself announces, TCP and UDP
//! services over IPv4 and IPv6 encapsulated in GUE, and 300 long-lived TCP
//! connections (200 IPv4, 100 IPv6) from eight client addresses, each asked
//! every 200 ms which backend it talks to.
//!
//! One topology serves the scenarios in order (each leaves the tier in a
//! state the next one starts from, and says so); every figure the issues ask
//! for is printed (`--nocapture`).
//!
//! 1. all nodes announce: long-lived and new flows spread over the nodes and,
//!    by weight, over the backends;
//! 2. graceful drain of n1 (`announce.enabled: false`), then undrain;
//! 3. silent failure of n2 (every frame on its link dropped): BFD takes it out;
//! 4. a fourth node joins;
//! 5. a backend is added on every node, then n3 fails: the flows ECMP moves
//!    reach nodes without their entry whose new table picks another backend
//!    for some; second chance (the previous owner in the GUE header, handed
//!    on by the new backend's `lb decap`) keeps every one of them;
//!
//!    5b. a fifth node joins inside the grace period: the same, for the flows
//!    ECMP moves to it;
//! 6. `kill -9` of n1's agent changes nothing.

use std::time::Duration;

use lb_tests::lab::tier::client::{open_tcp, open_udp, ping_udp};
use lb_tests::lab::tier::measure::{changed_slots, deltas, global, new_flows, shares};
use lb_tests::lab::tier::plan::router_iface;
use lb_tests::lab::tier::second_chance::SecondChance;
use lb_tests::lab::tier::{Tier, fault, routes};
use lb_tests::lab::{Client, LabConfig, LabEncap, Pinger, ShortReport, addr};

/// Long-lived TCP connections per family.
const LONG_V4: usize = 200;
const LONG_V6: usize = 100;
/// UDP flows per family.
const UDP_PER_FAMILY: usize = 40;
/// How far a node's share of new flows may be from an equal share.
const NODE_BAND: f64 = 0.08;
/// How far a backend's share may be from its weight's share.
const BACKEND_BAND: f64 = 0.05;
/// How long the router may take to drop or add a nexthop after a withdrawal
/// or an announcement.
const ROUTE_TIMEOUT: Duration = Duration::from_secs(15);
/// The routers' BGP hold time: a failure noticed sooner was noticed by BFD.
const HOLD_TIME: Duration = Duration::from_secs(9);
/// Time given to TCP retransmissions after a route change, before counting.
const SETTLE: Duration = Duration::from_millis(2500);

fn devs(nodes: &[u8]) -> Vec<String> {
    nodes.iter().map(|n| router_iface(*n)).collect()
}

/// New TCP flows each node has taken so far (nodes in order).
fn node_new_flows(tier: &Tier, nodes: &[u8]) -> Vec<u64> {
    nodes
        .iter()
        .map(|n| {
            let stats = tier.nodes[usize::from(*n) - 1]
                .stats(tier.lb())
                .expect("lb stats of a node");
            new_flows(&stats, "tcp")
        })
        .collect()
}

fn node_global(tier: &Tier, nodes: &[u8], label: &str) -> Vec<u64> {
    nodes
        .iter()
        .map(|n| {
            global(
                &tier.nodes[usize::from(*n) - 1].stats(tier.lb()).unwrap(),
                label,
            )
        })
        .collect()
}

fn fmt_shares(nodes: &[u8], counts: &[u64]) -> String {
    nodes
        .iter()
        .zip(counts.iter().zip(shares(counts)))
        .map(|(n, (c, s))| format!("n{n} {c} ({:.1} %)", s * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

fn assert_equal_spread(what: &str, nodes: &[u8], counts: &[u64]) {
    let equal = 1.0 / nodes.len() as f64;
    for (n, share) in nodes.iter().zip(shares(counts)) {
        assert!(
            (share - equal).abs() <= NODE_BAND,
            "{what}: n{n} took {:.1} % (expected {:.1} ± {:.0} %): {}",
            share * 100.0,
            equal * 100.0,
            NODE_BAND * 100.0,
            fmt_shares(nodes, counts)
        );
    }
}

/// New short connections to both TCP VIPs: `n` per family.
fn short_both(client: &Client, n: usize) -> ShortReport {
    let mut total = ShortReport::default();
    for v6 in [false, true] {
        let r = client
            .short_tcp(addr::tcp_service(v6), n, 4, Duration::from_secs(60))
            .expect("short connections");
        for (k, v) in r.by_backend {
            *total.by_backend.entry(k).or_default() += v;
        }
        total.failed += r.failed;
        total.errors.extend(r.errors);
    }
    total
}

/// Every running node shows the same Maglev table fingerprint per service.
fn assert_same_fingerprints(tier: &Tier) {
    let mut seen: Vec<(String, Vec<String>)> = Vec::new();
    for node in &tier.nodes {
        let stats = node.stats(tier.lb()).unwrap();
        let prints: Vec<String> = stats["services"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| format!("{}={}", s["name"], s["fingerprint"]))
            .collect();
        assert!(
            !prints.is_empty() && prints.iter().all(|p| !p.ends_with("=null")),
            "{}: {prints:?}",
            node.name
        );
        seen.push((node.name.clone(), prints));
    }
    assert!(
        seen.windows(2).all(|w| w[0].1 == w[1].1),
        "nodes disagree on their tables: {seen:?}"
    );
}

/// Second chance was really taken, and never failed: when the change left
/// enough moved connections on another backend that some surely needed it
/// (`moved x changed` at least 8: a chance of e^-8 to see none), the
/// balancers hinted flows and the decaps handed packets on.
fn assert_second_chance_taken(step: &str, moved: u64, changed: f64, counts: &SecondChance) {
    let expected = moved as f64 * changed;
    assert_eq!(counts.forward_failed, 0, "{step}: {counts}");
    if expected >= 8.0 {
        assert!(
            counts.flows > 0 && counts.forwarded > 0,
            "{step}: about {expected:.1} of {moved} moved connections needed the second chance: {counts}"
        );
    }
}

fn broken(pinger: &Pinger) -> (usize, Vec<String>) {
    pinger.with(|f| (f.broken(), f.broken_examples(5)))
}

#[test]
fn tier_of_lb_nodes_with_bgp_ecmp_and_bfd() {
    // b4 exists from the start but joins the config only in scenario 5. Every
    // service encapsulates in GUE (second chance on, default grace period).
    let config = LabConfig::weighted(&[1, 1, 2]).with_encap(LabEncap::GUE);
    let mut tier = Tier::new(3, 5, 4, config.clone()).expect("build the tier");
    let client = Client::new(tier.lab.client_ns.clone());
    let cl = tier.lab.client_ns.clone();
    let rt = tier.router().to_owned();
    let three = [1, 2, 3];
    for node in &tier.nodes {
        let routes = routes::announced(node.ns.name()).unwrap();
        assert_eq!(
            routes.len(),
            2,
            "{} announces both VIPs itself: {routes:?}",
            node.name
        );
        let stats = node.stats(tier.lb()).expect("lb stats of a node");
        for svc in stats["services"].as_array().expect("services") {
            assert_eq!(svc["encap"], "gue", "{}: lb stats: {svc}", node.name);
        }
    }

    // 1. Spread: long-lived connections over the nodes, new ones over nodes and backends.
    let before = node_new_flows(&tier, &three);
    let mut flows = open_tcp(&cl, addr::tcp_service(false), LONG_V4).expect("open v4");
    flows.flows.append(
        &mut open_tcp(&cl, addr::tcp_service(true), LONG_V6)
            .expect("open v6")
            .flows,
    );
    let long_per_node = deltas(&before, &node_new_flows(&tier, &three));
    println!(
        "1. {} long-lived TCP connections per node: {}",
        LONG_V4 + LONG_V6,
        fmt_shares(&three, &long_per_node)
    );
    assert_eq!(
        long_per_node.iter().sum::<u64>() as usize,
        LONG_V4 + LONG_V6
    );
    for (n, count) in three.iter().zip(&long_per_node) {
        assert!(
            *count as usize >= (LONG_V4 + LONG_V6) / 5,
            "n{n} carries too few long-lived connections: {}",
            fmt_shares(&three, &long_per_node)
        );
    }
    let mut udp = open_udp(&cl, addr::udp_service(false), UDP_PER_FAMILY).expect("udp v4");
    udp.extend(open_udp(&cl, addr::udp_service(true), UDP_PER_FAMILY).expect("udp v6"));
    let before = node_new_flows(&tier, &three);
    let short = short_both(&client, 750);
    let new_per_node = deltas(&before, &node_new_flows(&tier, &three));
    println!(
        "1. {} new TCP connections per node: {}; per backend: {:?}",
        short.answered(),
        fmt_shares(&three, &new_per_node),
        short.by_backend
    );
    assert_eq!(short.failed, 0, "{:?}", short.errors);
    assert_equal_spread("new connections", &three, &new_per_node);
    for (backend, weight_share) in [("b1", 0.25), ("b2", 0.25), ("b3", 0.5)] {
        let share = short.share(backend);
        assert!(
            (share - weight_share).abs() <= BACKEND_BAND,
            "{backend}: {:.1} % of new connections, weight says {:.0} %: {:?}",
            share * 100.0,
            weight_share * 100.0,
            short.by_backend
        );
    }
    let watch = tier
        .watch_command(&["--count", "2", "--interval", "0.3"])
        .output()
        .expect("lb watch --netns");
    let text = String::from_utf8_lossy(&watch.stdout);
    assert!(
        watch.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&watch.stderr)
    );
    for node in &tier.nodes {
        assert!(text.contains(&format!("{} NEW/S", node.name)), "{text}");
    }
    assert!(
        text.contains("service web6") && text.contains("tables agree"),
        "{text}"
    );
    println!(
        "1. lb watch across the nodes:\n{}",
        text.split("\n\n\n").last().unwrap_or(&text)
    );
    let pinger = Pinger::start(flows, Duration::from_millis(200), Duration::from_secs(480));

    // 2. Graceful drain of n1, then back.
    let churn = client
        .churn(addr::tcp_service(false), 20, Duration::from_secs(60))
        .unwrap();
    tier.node(1).announce = false;
    tier.nodes[0].write_config(&config).unwrap();
    let took = tier
        .wait_nexthops("n1 withdrawn", ROUTE_TIMEOUT, &devs(&[2, 3]))
        .unwrap();
    println!(
        "2. drain: n1 off the router's routes {} ms after its config was saved",
        took.as_millis()
    );
    let n1_stats = tier.nodes[0].stats(tier.lb()).unwrap();
    assert_eq!(n1_stats["draining"], true, "{n1_stats}");
    std::thread::sleep(SETTLE);
    let n1_before = node_new_flows(&tier, &[1]);
    let during = short_both(&client, 100);
    assert_eq!(during.failed, 0, "{:?}", during.errors);
    assert_eq!(
        node_new_flows(&tier, &[1]),
        n1_before,
        "a drained node takes no new flows"
    );
    tier.node(1).announce = true;
    tier.nodes[0].write_config(&config).unwrap();
    tier.wait_nexthops("n1 back", ROUTE_TIMEOUT, &devs(&three))
        .unwrap();
    std::thread::sleep(SETTLE);
    let new_during = churn.finish().unwrap();
    let (broken2, examples) = broken(&pinger);
    println!(
        "2. drain and undrain of n1: {broken2} long-lived connections broken, {} of {} new connections failed",
        new_during.failed,
        new_during.answered() + new_during.failed
    );
    assert_eq!(broken2, 0, "{examples:?}");
    assert_eq!(new_during.failed, 0, "{:?}", new_during.errors);
    assert_eq!(ping_udp(&mut udp), 0, "udp flows across the drain");

    // 3. Silent failure of n2: only BFD can tell.
    let churn = client
        .churn(addr::tcp_service(true), 20, Duration::from_secs(60))
        .unwrap();
    fault::blackhole(&rt, &router_iface(2)).unwrap();
    let detection = tier
        .wait_nexthops("n2 taken out", ROUTE_TIMEOUT, &devs(&[1, 3]))
        .unwrap();
    println!(
        "3. hard failure of n2: out of the router's routes after {} ms (BFD 100 ms x 3)",
        detection.as_millis()
    );
    assert!(
        detection < HOLD_TIME,
        "BFD, not the BGP hold time, must notice: {detection:?}"
    );
    std::thread::sleep(SETTLE);
    let new_during = churn.finish().unwrap();
    let (broken3, examples) = broken(&pinger);
    println!(
        "3. hard failure of n2: {broken3} long-lived connections broken, {} of {} new connections failed",
        new_during.failed,
        new_during.answered() + new_during.failed
    );
    assert_eq!(broken3, 0, "{examples:?}");
    assert_eq!(new_during.failed, 0, "{:?}", new_during.errors);
    assert_eq!(ping_udp(&mut udp), 0, "udp flows across n2's failure");

    // 4. n4 joins (n2 stays failed).
    let live = [1, 3, 4];
    let churn = client
        .churn(addr::tcp_service(false), 20, Duration::from_secs(90))
        .unwrap();
    let index = tier.add_node().expect("add n4");
    assert_eq!(index, 4);
    let took = tier
        .wait_nexthops("n4 joins", ROUTE_TIMEOUT * 3, &devs(&live))
        .unwrap();
    println!(
        "4. n4 in the router's routes {} ms after its agent applied",
        took.as_millis()
    );
    std::thread::sleep(SETTLE);
    let before = node_new_flows(&tier, &live);
    let short4 = short_both(&client, 300);
    let per_node4 = deltas(&before, &node_new_flows(&tier, &live));
    let new_during = churn.finish().unwrap();
    let (broken4, examples) = broken(&pinger);
    println!(
        "4. n4 joined: {broken4} long-lived connections broken, {} of {} new connections failed; new connections per node {}",
        new_during.failed + short4.failed,
        new_during.answered() + new_during.failed + short4.answered() + short4.failed,
        fmt_shares(&live, &per_node4)
    );
    assert_eq!(broken4, 0, "{examples:?}");
    assert_eq!(
        new_during.failed + short4.failed,
        0,
        "{:?}",
        new_during.errors
    );
    assert_equal_spread("new connections after n4 joined", &live, &per_node4);
    assert_eq!(ping_udp(&mut udp), 0, "udp flows across n4's join");

    // 5. Scale out the backends on every node, then n3 fails: the flows ECMP
    // moves reach nodes without their entry, whose grown table gives
    // `changed` of them to another backend; second chance hands them back.
    let mut scaled = config.clone();
    scaled.add(4, 1);
    tier.apply(scaled.clone()).expect("b4 on every node");
    assert_same_fingerprints(&tier);
    let changed = [false, true]
        .map(|v6| changed_slots(&config, &scaled, v6))
        .into_iter()
        .fold(0.0, f64::max);
    let survivors = [1, 4];
    let miss_before = node_global(&tier, &survivors, "non_syn_miss");
    let chance_before = SecondChance::read(&mut tier, &survivors).unwrap();
    let broken_before = broken(&pinger).0;
    fault::blackhole(&rt, &router_iface(3)).unwrap();
    let detection5 = tier
        .wait_nexthops("n3 taken out", ROUTE_TIMEOUT, &devs(&survivors))
        .unwrap();
    std::thread::sleep(SETTLE);
    let (broken_now, examples) = broken(&pinger);
    // Every long-lived connection that ECMP moved reaches a node without its
    // entry: one `non_syn_miss` there.
    let moved: u64 = deltas(
        &miss_before,
        &node_global(&tier, &survivors, "non_syn_miss"),
    )
    .iter()
    .sum();
    let chance5 = SecondChance::read(&mut tier, &survivors)
        .unwrap()
        .since(&chance_before);
    let broken5 = broken_now - broken_before;
    println!(
        "5. scale-out to b4 ({:.1} % of the Maglev slots change owner), then n3 failed (out after {} ms): \
         {moved} long-lived connections moved to another node (about {:.1} needed the second chance), {broken5} broke; {chance5}",
        changed * 100.0,
        detection5.as_millis(),
        moved as f64 * changed
    );
    assert!(
        moved > 0,
        "n3 carried long-lived connections that had to move"
    );
    assert_eq!(
        broken5, 0,
        "second chance keeps them all: {examples:?}; {chance5}"
    );
    assert_second_chance_taken("5", moved, changed, &chance5);
    let udp_broken5 = ping_udp(&mut udp);
    println!(
        "5. UDP flows broken by the scale-out and n3's failure (no second chance for UDP): {udp_broken5} of {}",
        udp.len()
    );

    // 5b. A node joins inside the grace period: ECMP moves flows of n1 and
    // n4 to n5, which has no entry for them. n5 starts from the config the
    // tier ran before the change and then applies the current one, so it
    // holds the same previous tables as the others.
    let survivors = [1, 4, 5];
    let chance_before = SecondChance::read(&mut tier, &[1, 4]).unwrap();
    let broken_before = broken(&pinger).0;
    let index = tier
        .add_node_after_change(&config)
        .expect("n5 joins after the scale-out");
    assert_eq!(index, 5);
    let took = tier
        .wait_nexthops("n5 joins", ROUTE_TIMEOUT * 3, &devs(&survivors))
        .unwrap();
    std::thread::sleep(SETTLE);
    let (broken_now, examples) = broken(&pinger);
    // n5 is new: every long-lived connection it sees is one `non_syn_miss`.
    let moved5b = node_global(&tier, &[5], "non_syn_miss")[0];
    let chance5b = SecondChance::read(&mut tier, &survivors)
        .unwrap()
        .since(&chance_before);
    let broken5b = broken_now - broken_before;
    println!(
        "5b. n5 joined after the scale-out (in the router's routes {} ms after its agent applied): \
         {moved5b} long-lived connections moved to it, {broken5b} broke; {chance5b}",
        took.as_millis()
    );
    assert!(moved5b > 0, "ECMP moved long-lived connections to n5");
    assert_eq!(
        broken5b, 0,
        "second chance on the new node: {examples:?}; {chance5b}"
    );
    assert_second_chance_taken("5b", moved5b, changed, &chance5b);
    let udp_broken5b = ping_udp(&mut udp);
    println!(
        "5b. UDP flows broken by n5's join: {} more ({udp_broken5b} of {} in all)",
        udp_broken5b - udp_broken5,
        udp.len()
    );

    // 6. kill -9 of n1's agent: routes stay, the datapath forwards.
    let broken_before = broken(&pinger).0;
    let churn = client
        .churn(addr::tcp_service(false), 20, Duration::from_secs(60))
        .unwrap();
    tier.node(1).kill_agent();
    std::thread::sleep(SETTLE);
    let routes_n1 = routes::announced(tier.nodes[0].ns.name()).unwrap();
    assert_eq!(routes_n1.len(), 2, "n1's routes stay: {routes_n1:?}");
    let hops4 = routes::vip_nexthops(&rt, false).unwrap();
    let hops6 = routes::vip_nexthops(&rt, true).unwrap();
    assert_eq!(hops4, devs(&survivors), "router still uses n1 (IPv4)");
    assert_eq!(hops6, devs(&survivors), "router still uses n1 (IPv6)");
    let before = node_new_flows(&tier, &[1]);
    let short6 = short_both(&client, 100);
    let n1_new = deltas(&before, &node_new_flows(&tier, &[1]))[0];
    let new_during = churn.finish().unwrap();
    let (flows, rounds) = pinger.finish().unwrap();
    let broken6 = flows.broken() - broken_before;
    println!(
        "6. kill -9 of n1's agent: {broken6} long-lived connections broken, {} of {} new connections failed, \
         n1 kept taking new flows ({n1_new}); {rounds} ping rounds in all",
        new_during.failed + short6.failed,
        new_during.answered() + new_during.failed + short6.answered() + short6.failed
    );
    assert_eq!(broken6, 0, "{:?}", flows.broken_examples(5));
    assert_eq!(
        new_during.failed + short6.failed,
        0,
        "{:?}",
        new_during.errors
    );
    assert!(
        n1_new > 0,
        "n1's datapath keeps balancing without its agent"
    );
    assert_eq!(
        flows.broken(),
        0,
        "no scenario breaks a long-lived connection: {:?}",
        flows.broken_examples(5)
    );
}
