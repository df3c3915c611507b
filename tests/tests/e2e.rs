//! End-to-end: real client and server sockets in network namespaces, the `lb`
//! agent and datapath in between, and the config rewritten (temp file + rename)
//! while connections run. Each test builds its own lab and removes it, even on
//! failure (the `Lab`'s `Drop`). Measured figures go to stderr (`--nocapture`).

use std::collections::BTreeSet;
use std::time::Duration;

use lb_tests::lab::{FlowSet, LabConfig, Pinger, Scenario, ShortReport, addr};

/// Long-lived connections per test.
const LONG_LIVED: usize = 300;
/// Interval between ping rounds of the long-lived connections.
const PING_INTERVAL: Duration = Duration::from_millis(50);
/// Upper bound of any background loop.
const LOOP_LIMIT: Duration = Duration::from_secs(90);
/// Bound of a batch of short connections.
const BATCH_LIMIT: Duration = Duration::from_secs(40);

fn tcp(v6: bool) -> std::net::SocketAddr {
    addr::tcp_service(v6)
}

/// Asserts every named backend got its expected share (0..=1) within `points`
/// percentage points, and no other backend answered.
fn assert_shares(report: &ShortReport, expected: &[(&str, f64)], points: f64) {
    let names: BTreeSet<&str> = expected.iter().map(|(n, _)| *n).collect();
    for name in report.by_backend.keys() {
        assert!(
            names.contains(name.as_str()),
            "unexpected backend {name} answered: {report:?}"
        );
    }
    for (name, share) in expected {
        let got = report.share(name);
        assert!(
            (got - share).abs() * 100.0 <= points,
            "{name}: {:.1}% of new connections, expected {:.1}% ± {points}: {:?}",
            got * 100.0,
            share * 100.0,
            report.by_backend
        );
    }
}

fn open_long_lived(s: &Scenario, v6: bool, n: usize) -> FlowSet {
    s.client
        .open_tcp(tcp(v6), n)
        .expect("open long-lived connections")
}

/// Stops the pinger after a last round and asserts nothing broke.
fn finish_unbroken(pinger: Pinger, what: &str) -> FlowSet {
    let (flows, rounds) = pinger.finish_after_rounds(3).expect("pinger");
    assert!(rounds >= 3, "{what}: only {rounds} ping rounds ran");
    assert_eq!(
        flows.broken(),
        0,
        "{what}: broken connections {:?}, e.g. {:?}",
        flows.broken_by_backend(),
        flows.broken_examples(5)
    );
    let answers: u64 = flows.flows.iter().map(|f| f.answers).sum();
    eprintln!(
        "{what}: {} long-lived connections kept on their original backend ({answers} answers, {rounds} rounds)",
        flows.flows.len()
    );
    flows
}

#[test]
fn e2e_1_balance_follows_weights() {
    let mut s = Scenario::start(3, LabConfig::weighted(&[1, 1, 2])).expect("scenario");
    let report = s
        .client
        .short_tcp(tcp(false), 4000, 4, BATCH_LIMIT)
        .expect("short connections");
    assert_eq!(report.failed, 0, "failed connections: {:?}", report.errors);
    assert_shares(&report, &[("b1", 0.25), ("b2", 0.25), ("b3", 0.5)], 3.0);
    eprintln!(
        "balance 1:1:2 over 4000 connections: {:?}",
        report.by_backend
    );
    // The datapath's own counters agree with what the client saw.
    let view = s.service(addr::vip(false), addr::TCP_PORT).expect("stats");
    let new_flows: u64 = view.values().map(|b| b.new_flows).sum();
    assert!(
        new_flows >= 4000,
        "lb stats counted {new_flows} new flows for 4000 connections: {view:?}"
    );
    // The agent's resolver thread found the next hop toward every backend
    // (until then the datapath used its own FIB lookup).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let missing = loop {
        let log = s.lab.agent_log();
        let missing: Vec<String> = s
            .lab
            .backends()
            .iter()
            .map(|b| format!("next hop toward backend {}:", b.addr(false)))
            .filter(|line| !log.contains(line.as_str()))
            .collect();
        if missing.is_empty() || std::time::Instant::now() > deadline {
            break missing;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(missing.is_empty(), "not resolved: {missing:?}");
}

#[test]
fn e2e_2_scale_out_keeps_every_connection() {
    let mut s = Scenario::start(4, LabConfig::equal(3)).expect("scenario");
    let flows = open_long_lived(&s, false, LONG_LIVED);
    let before = flows.by_backend();
    let pinger = Pinger::start(flows, PING_INTERVAL, LOOP_LIMIT);
    std::thread::sleep(Duration::from_millis(300));
    let took = s
        .edit(|c| {
            c.add(4, 1);
        })
        .expect("add backend 4");
    std::thread::sleep(Duration::from_secs(1));
    let flows = finish_unbroken(pinger, "scale out 3->4");
    assert_eq!(flows.by_backend(), before);
    assert!(!before.contains_key("b4"));
    let report = s
        .client
        .short_tcp(tcp(false), 2000, 4, BATCH_LIMIT)
        .expect("short connections");
    assert_eq!(report.failed, 0, "{:?}", report.errors);
    // 2,000 connections: one backend's share has a binomial standard deviation
    // of about 1 point, so 4 points is 4 sigma (3 points failed once in a few runs).
    assert_shares(
        &report,
        &[("b1", 0.25), ("b2", 0.25), ("b3", 0.25), ("b4", 0.25)],
        4.0,
    );
    eprintln!(
        "scale out: save->applied {:.0} ms; new connections {:?}",
        took.as_secs_f64() * 1e3,
        report.by_backend
    );
    eprintln!("e2e_2: {}", s.apply_summary());
}

#[test]
fn e2e_3_drain_stops_new_flows_only() {
    let mut s = Scenario::start(3, LabConfig::equal(3)).expect("scenario");
    let flows = open_long_lived(&s, false, LONG_LIVED);
    let on_b2 = flows.by_backend().get("b2").copied().unwrap_or(0);
    assert!(
        on_b2 > 50,
        "b2 has only {on_b2} of {LONG_LIVED} connections"
    );
    let pinger = Pinger::start(flows, PING_INTERVAL, LOOP_LIMIT);
    let took = s
        .edit(|c| {
            c.drain(2, true);
        })
        .expect("drain b2");
    let report = s
        .client
        .short_tcp(tcp(false), 1500, 4, BATCH_LIMIT)
        .expect("short connections");
    assert_eq!(report.failed, 0, "{:?}", report.errors);
    assert_shares(&report, &[("b1", 0.5), ("b3", 0.5)], 4.0);
    // Established connections of the drained backend keep working until closed.
    let mut flows = finish_unbroken(pinger, "drain b2");
    assert_eq!(flows.close_backend("b2"), on_b2);
    assert_eq!(flows.ping_all(), 0, "{:?}", flows.broken_examples(5));
    let view = s.service(addr::vip(false), addr::TCP_PORT).expect("stats");
    eprintln!(
        "drain: save->applied {:.0} ms; {on_b2} connections on b2 kept until closed; new {:?}; stats {view:?}",
        took.as_secs_f64() * 1e3,
        report.by_backend
    );
    eprintln!("e2e_3: {}", s.apply_summary());
}

#[test]
fn e2e_4_remove_affects_only_that_backend() {
    let mut s = Scenario::start(3, LabConfig::equal(3)).expect("scenario");
    let flows = open_long_lived(&s, false, LONG_LIVED);
    let before = flows.by_backend();
    let on_b3 = before.get("b3").copied().unwrap_or(0);
    assert!(on_b3 > 50, "b3 has only {on_b3} connections");
    let pinger = Pinger::start(flows, PING_INTERVAL, LOOP_LIMIT);
    let took = s
        .edit(|c| {
            c.remove(3);
        })
        .expect("remove b3");
    std::thread::sleep(Duration::from_secs(1));
    let (flows, _) = pinger.finish().expect("pinger");
    let broken = flows.broken_by_backend();
    assert_eq!(
        broken.keys().cloned().collect::<Vec<_>>(),
        vec!["b3".to_owned()],
        "only b3's connections may break: {broken:?} {:?}",
        flows.broken_examples(5)
    );
    // Its flows were re-picked (to a backend that does not know them).
    assert_eq!(
        broken["b3"], on_b3,
        "every b3 connection is re-picked: {broken:?}"
    );
    let report = s
        .client
        .short_tcp(tcp(false), 1000, 4, BATCH_LIMIT)
        .expect("short connections");
    assert_eq!(report.failed, 0, "{:?}", report.errors);
    assert_shares(&report, &[("b1", 0.5), ("b2", 0.5)], 5.0);
    eprintln!(
        "remove: save->applied {:.0} ms; kept {} of {} connections (all not on b3), {on_b3} on b3 re-picked",
        took.as_secs_f64() * 1e3,
        LONG_LIVED - on_b3,
        LONG_LIVED
    );
    eprintln!("e2e_4: {}", s.apply_summary());
}

#[test]
fn e2e_5_udp_flows_stay_across_scale_out() {
    let mut s = Scenario::start(4, LabConfig::equal(3)).expect("scenario");
    let mut flows = Vec::new();
    for v6 in [false, true] {
        flows.extend(
            s.client
                .open_udp(addr::udp_service(v6), 150)
                .expect("udp flows"),
        );
    }
    let took = s
        .edit(|c| {
            c.add(4, 1);
        })
        .expect("add b4");
    for round in 0..3 {
        for flow in &mut flows {
            flow.ping();
        }
        let broken: Vec<_> = flows
            .iter()
            .filter_map(|f| f.broken.clone())
            .take(5)
            .collect();
        assert!(broken.is_empty(), "round {round}: {broken:?}");
    }
    assert!(flows.iter().all(|f| f.backend != "b4"));
    let fresh = s
        .client
        .open_udp(addr::udp_service(false), 200)
        .expect("new udp flows");
    let on_b4 = fresh.iter().filter(|f| f.backend == "b4").count();
    assert!(
        (30..=70).contains(&on_b4),
        "b4 got {on_b4} of 200 new UDP flows (expected ~50)"
    );
    eprintln!(
        "udp: 300 flows (v4+v6) kept across scale out, save->applied {:.0} ms; b4 got {on_b4}/200 new",
        took.as_secs_f64() * 1e3
    );
    eprintln!("e2e_5: {}", s.apply_summary());
}

#[test]
fn e2e_6_ipv6_end_to_end() {
    let mut s = Scenario::start(4, LabConfig::weighted(&[1, 1, 2])).expect("scenario");
    let report = s
        .client
        .short_tcp(tcp(true), 3000, 4, BATCH_LIMIT)
        .expect("short v6");
    assert_eq!(report.failed, 0, "{:?}", report.errors);
    assert_shares(&report, &[("b1", 0.25), ("b2", 0.25), ("b3", 0.5)], 3.0);
    let flows = open_long_lived(&s, true, 200);
    let pinger = Pinger::start(flows, PING_INTERVAL, LOOP_LIMIT);
    s.edit(|c| {
        c.add(4, 2);
    })
    .expect("add b4");
    std::thread::sleep(Duration::from_millis(800));
    finish_unbroken(pinger, "ipv6 scale out");
    let after = s
        .client
        .short_tcp(tcp(true), 1500, 4, BATCH_LIMIT)
        .expect("short v6");
    assert_eq!(after.failed, 0, "{:?}", after.errors);
    assert_shares(
        &after,
        &[
            ("b1", 1.0 / 6.0),
            ("b2", 1.0 / 6.0),
            ("b3", 2.0 / 6.0),
            ("b4", 2.0 / 6.0),
        ],
        4.0,
    );
    eprintln!("ipv6: {:?} then {:?}", report.by_backend, after.by_backend);
    eprintln!("e2e_6: {}", s.apply_summary());
}

#[test]
fn e2e_7_broken_yaml_changes_nothing() {
    let mut s = Scenario::start(4, LabConfig::equal(3)).expect("scenario");
    let flows = open_long_lived(&s, false, LONG_LIVED);
    let pinger = Pinger::start(flows, PING_INTERVAL, LOOP_LIMIT);
    let stats_before = s.service(addr::vip(false), addr::TCP_PORT).expect("stats");
    let log_before = s.lab.agent_log().len();
    let broken_yaml = "services:\n  - name: web\n    vip: 198.18.100.1\n    port: 80\n    protocol: tcp\n    backends:\n      - address: not-an-address\n        weight: [\n";
    s.file.write_text(broken_yaml).expect("write broken yaml");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let reported = loop {
        let log = s.lab.agent_log();
        let new = &log[log_before.min(log.len())..];
        if new.contains("ERROR") || new.contains("WARN") {
            break new.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no error logged for the broken file: {new}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        s.lab.agent_running(),
        "agent died on a broken file: {}",
        s.lab.agent_log()
    );
    let stats_after = s.service(addr::vip(false), addr::TCP_PORT).expect("stats");
    let shape = |v: &lb_tests::lab::stats::ServiceView| {
        v.iter()
            .map(|(a, b)| (*a, b.state.clone(), b.weight))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        shape(&stats_before),
        shape(&stats_after),
        "a broken file changed the datapath"
    );
    let took = s
        .edit(|c| {
            c.add(4, 1);
        })
        .expect("the next good file applies");
    std::thread::sleep(Duration::from_millis(500));
    finish_unbroken(pinger, "broken yaml then good yaml");
    eprintln!(
        "broken yaml: refused ({}), next good file applied in {:.0} ms",
        reported
            .lines()
            .find(|l| l.contains("ERROR") || l.contains("WARN"))
            .unwrap_or("")
            .trim(),
        took.as_secs_f64() * 1e3
    );
    eprintln!("e2e_7: {}", s.apply_summary());
}

#[test]
fn e2e_8_agent_sigkill_and_restart_keeps_connections() {
    let mut s = Scenario::start(3, LabConfig::equal(3)).expect("scenario");
    let flows = open_long_lived(&s, false, LONG_LIVED);
    let pinger = Pinger::start(flows, PING_INTERVAL, LOOP_LIMIT);
    std::thread::sleep(Duration::from_millis(300));
    s.lab.kill_agent();
    // The datapath keeps forwarding without an agent, new flows included.
    std::thread::sleep(Duration::from_millis(500));
    let orphan = s
        .client
        .short_tcp(tcp(false), 300, 2, BATCH_LIMIT)
        .expect("short while agent dead");
    assert_eq!(
        orphan.failed, 0,
        "new connections failed while no agent ran: {:?}",
        orphan.errors
    );
    let path = s.file.path().to_owned();
    let restart = std::time::Instant::now();
    s.lab.start_agent(&path, &[]).expect("restart agent");
    let started_in = restart.elapsed();
    // The restarted agent adopted the pinned state and serves scale events.
    let took = s
        .edit(|c| {
            c.weight(1, 2);
        })
        .expect("reweight through the restarted agent");
    std::thread::sleep(Duration::from_secs(1));
    finish_unbroken(pinger, "agent SIGKILL + restart");
    let report = s
        .client
        .short_tcp(tcp(false), 1000, 4, BATCH_LIMIT)
        .expect("short after restart");
    assert_eq!(report.failed, 0, "{:?}", report.errors);
    assert_shares(&report, &[("b1", 0.5), ("b2", 0.25), ("b3", 0.25)], 6.0);
    eprintln!(
        "agent restart: attached and answering in {:.0} ms, then a reweight applied in {:.0} ms; \
         {} new connections served while no agent ran",
        started_in.as_secs_f64() * 1e3,
        took.as_secs_f64() * 1e3,
        orphan.answered()
    );
    eprintln!("e2e_8: {}", s.apply_summary());
}

#[test]
fn e2e_9_ten_mixed_scale_events_under_load() {
    let mut s = Scenario::start(5, LabConfig::equal(3)).expect("scenario");
    let flows = open_long_lived(&s, false, 200);
    let pinger = Pinger::start(flows, PING_INTERVAL, LOOP_LIMIT);
    let churn = s.client.churn(tcp(false), 40, LOOP_LIMIT).expect("churn");
    // Backend removed -> number of flows open at its removal: only flows of a
    // removed backend opened before its removal may break.
    let mut removed: std::collections::BTreeMap<String, usize> = Default::default();
    let allowed = |removed: &std::collections::BTreeMap<String, usize>, i: usize, backend: &str| {
        removed.get(backend).is_some_and(|n| i < *n)
    };
    type Event = (&'static str, fn(&mut LabConfig));
    let events: [Event; 10] = [
        ("add b4", |c| {
            c.add(4, 1);
        }),
        ("reweight b1 -> 2", |c| {
            c.weight(1, 2);
        }),
        ("drain b2", |c| {
            c.drain(2, true);
        }),
        ("add b5", |c| {
            c.add(5, 1);
        }),
        ("remove b3", |c| {
            c.remove(3);
        }),
        ("undrain b2", |c| {
            c.drain(2, false);
        }),
        ("reweight b4 -> 3", |c| {
            c.weight(4, 3);
        }),
        ("drain b5", |c| {
            c.drain(5, true);
        }),
        ("remove b5", |c| {
            c.remove(5);
        }),
        ("add b3 again", |c| {
            c.add(3, 1);
        }),
    ];
    // A backend removed while in service (not drained) breaks the short
    // connections in flight on it at that moment, by design: the churn may
    // lose those (a connection of a few ms at 40 a second: rarely one), and no
    // other.
    let mut drained = std::collections::BTreeSet::new();
    let mut live_removals = Vec::new();
    for (name, event) in events {
        if let Some(index) = name.strip_prefix("drain b") {
            drained.insert(index);
        }
        if let Some(index) = name.strip_prefix("undrain b") {
            drained.remove(index);
        }
        let removal = name.strip_prefix("remove b");
        if let Some(index) = removal {
            removed.insert(format!("b{index}"), pinger.with(|flows| flows.flows.len()));
        }
        let start = std::time::Instant::now();
        let took = s.edit(event).unwrap_or_else(|e| panic!("{name}: {e}"));
        if removal.is_some_and(|index| !drained.contains(index)) {
            live_removals.push(start..std::time::Instant::now());
        }
        eprintln!(
            "event {name}: applied in {:.0} ms",
            took.as_secs_f64() * 1e3
        );
        std::thread::sleep(Duration::from_millis(400));
        // No connection of a backend still in service may have broken.
        pinger.with(|flows| {
            let bad: Vec<_> = flows
                .flows
                .iter()
                .enumerate()
                .filter(|(i, f)| f.broken.is_some() && !allowed(&removed, *i, &f.backend))
                .map(|(_, f)| f)
                .map(|f| format!("{} on {}: {:?}", f.local, f.backend, f.broken))
                .take(5)
                .collect();
            assert!(bad.is_empty(), "after {name}: {bad:?}");
        });
        // Fresh long-lived connections so every backend in service has some.
        pinger.add(open_long_lived(&s, false, 30));
    }
    let churned = churn.finish().expect("churn");
    let (flows, rounds) = pinger.finish().expect("pinger");
    let broken = flows.broken_by_backend();
    let unexpected: Vec<_> = flows
        .flows
        .iter()
        .enumerate()
        .filter(|(i, f)| f.broken.is_some() && !allowed(&removed, *i, &f.backend))
        .map(|(_, f)| format!("{} on {}: {:?}", f.local, f.backend, f.broken))
        .take(5)
        .collect();
    assert!(
        unexpected.is_empty(),
        "broken connections not explained by a removal: {unexpected:?} ({broken:?})"
    );
    let kept = flows.flows.len() - flows.broken();
    assert_eq!(
        churned.failed_outside(&live_removals),
        0,
        "new connections failed outside the removal of a live backend: {:?}",
        churned.errors
    );
    assert_eq!(live_removals.len(), 1, "remove b3 is the one live removal");
    assert!(
        churned.failed <= 2 * live_removals.len(),
        "more new connections failed than a removal can explain: {} ({:?})",
        churned.failed,
        churned.errors
    );
    eprintln!(
        "ten events: {} long-lived connections, {kept} kept, broken only on removed backends {broken:?}; \
         {} new connections during the events ({:?}), {} failed; {rounds} ping rounds; {}; flows open at each removal {removed:?}",
        flows.flows.len(),
        churned.answered(),
        churned.by_backend,
        churned.failed,
        s.apply_summary()
    );
}
