//! Health checks end to end (issue 6), in the lab with real sockets: a backend
//! whose server stops under load leaves the Maglev table within
//! `interval x fall + one interval` (plus the agent's apply and this test's
//! polling), every new connection keeps succeeding, and the backend comes back
//! within `rise x interval` (plus the same) with its share. Then every backend
//! goes down (panic mode off) and one comes back.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use lb_tests::lab::{LabConfig, Scenario, addr, config::HealthSpec};

const INTERVAL_MS: u64 = 200;
const FALL: u32 = 3;
const RISE: u32 = 2;
/// The agent's apply (debug build) and this test's 20 ms polling.
const SLACK: Duration = Duration::from_millis(500);
const BATCH_LIMIT: Duration = Duration::from_secs(30);

fn web() -> SocketAddr {
    SocketAddr::new(addr::vip(false), addr::TCP_PORT)
}

fn backend(index: u8) -> IpAddr {
    addr::backend_link(index).host(false)
}

/// How long until `lb stats` shows `state` for `b` (None after `limit`).
fn wait_state(s: &mut Scenario, b: IpAddr, state: &str, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(view) = s.service(addr::vip(false), addr::TCP_PORT)
            && view.get(&b).map(|v| v.state.as_str()) == Some(state)
        {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn e2e_health_down_backend_leaves_and_comes_back() {
    let mut config = LabConfig::equal(3);
    config.health = Some(HealthSpec {
        interval_ms: INTERVAL_MS,
        timeout_ms: 100,
        rise: RISE,
        fall: FALL,
        panic_percent: 0,
    });
    let mut s = Scenario::start(3, config).expect("scenario");
    let interval = Duration::from_millis(INTERVAL_MS);

    let before = s
        .client
        .short_tcp(web(), 300, 4, BATCH_LIMIT)
        .expect("load");
    assert_eq!(before.failed, 0, "{:?}", before.errors);

    // b2's server stops: out within interval x fall + one interval.
    s.lab.stop_servers(2);
    let out = wait_state(&mut s, backend(2), "down", Duration::from_secs(10))
        .expect("b2 never marked down");
    let bound = interval * (FALL + 1) + SLACK;
    assert!(
        out <= bound,
        "b2 marked down after {out:?}, bound {bound:?}"
    );
    let view = s.service(addr::vip(false), addr::TCP_PORT).expect("stats");
    assert_eq!(
        view[&backend(2)].slots,
        0,
        "a down backend keeps table slots"
    );
    let during = s
        .client
        .short_tcp(web(), 400, 4, BATCH_LIMIT)
        .expect("load");
    assert_eq!(
        during.failed, 0,
        "new connections failed while b2 is down: {:?}",
        during.errors
    );
    assert_eq!(during.by_backend.get("b2").copied().unwrap_or(0), 0);

    // b2 answers again: back within rise x interval (+ one interval of phase).
    s.lab.restart_servers(2).expect("restart b2");
    let back = wait_state(&mut s, backend(2), "active", Duration::from_secs(10))
        .expect("b2 never came back");
    let bound = interval * (RISE + 1) + SLACK;
    assert!(back <= bound, "b2 back after {back:?}, bound {bound:?}");
    let after = s
        .client
        .short_tcp(web(), 900, 4, BATCH_LIMIT)
        .expect("load");
    assert_eq!(after.failed, 0, "{:?}", after.errors);
    let share = after.share("b2");
    assert!(
        (0.23..=0.43).contains(&share),
        "b2 share after recovery {share:.3}"
    );

    // Every backend down (panic mode off): the service has no backend.
    for i in 1..=3 {
        s.lab.stop_servers(i);
    }
    for i in 1..=3 {
        wait_state(&mut s, backend(i), "down", Duration::from_secs(10))
            .unwrap_or_else(|| panic!("b{i} never marked down"));
    }
    // One comes back: it takes every new connection.
    s.lab.restart_servers(3).expect("restart b3");
    wait_state(&mut s, backend(3), "active", Duration::from_secs(10)).expect("b3 never came back");
    let one = s
        .client
        .short_tcp(web(), 200, 4, BATCH_LIMIT)
        .expect("load");
    assert_eq!(one.failed, 0, "{:?}", one.errors);
    assert_eq!(
        one.by_backend.get("b3").copied().unwrap_or(0),
        200,
        "{:?}",
        one.by_backend
    );
    eprintln!(
        "health: b2 down detected after {out:?} (bound {:?}), back after {back:?}; {} + {} + {} + {} connections, 0 failed",
        interval * (FALL + 1) + SLACK,
        before.by_backend.values().sum::<usize>(),
        during.by_backend.values().sum::<usize>(),
        after.by_backend.values().sum::<usize>(),
        one.by_backend.values().sum::<usize>()
    );
}
