//! Many targets on one host never exceed the per-host cap; many hosts never
//! exceed the global cap.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::servers::{self, HttpState};
use crate::config::{HealthCheckConfig, HealthCheckKind};
use crate::health::{HealthMonitor, HealthTarget, MonitorConfig};

/// Each request is held this long, so probes overlap and caps are reached.
const HOLD: Duration = Duration::from_millis(20);

fn check(port: u16) -> HealthCheckConfig {
    HealthCheckConfig {
        kind: HealthCheckKind::Http,
        port,
        path: "/".into(),
        interval_ms: 50,
        timeout_ms: 2000,
        rise: 2,
        fall: 3,
    }
}

async fn wait_accepted(state: &HttpState, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while state.accepted() < n {
        assert!(
            Instant::now() < deadline,
            "only {} probes served",
            state.accepted()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_targets_on_one_host_respect_the_per_host_cap() {
    let state = HttpState::new(200);
    let server = servers::http(IpAddr::from([127, 0, 0, 1]), state.clone(), HOLD).await;
    let (monitor, _rx) = HealthMonitor::new(MonitorConfig {
        max_in_flight: 64,
        max_in_flight_per_host: 4,
    });
    let targets: Vec<_> = (0..300)
        .map(|i| HealthTarget {
            service: format!("svc-{i}"),
            address: server.addr.ip(),
            check: check(server.addr.port()),
        })
        .collect();
    let started = Instant::now();
    let summary = monitor.update_targets(targets);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "update_targets blocked"
    );
    assert_eq!(summary.added, 300);

    wait_accepted(&state, 150).await;
    let max = state.max();
    assert!(max <= 4, "{max} probes in flight on one host, cap is 4");
    assert_eq!(max, 4, "300 due probes should saturate the cap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_hosts_respect_the_global_cap() {
    let state = HttpState::new(200);
    let mut servers_ = Vec::new();
    for host in 1..=10u8 {
        servers_.push(servers::http(IpAddr::from([127, 0, 0, host]), state.clone(), HOLD).await);
    }
    let (monitor, _rx) = HealthMonitor::new(MonitorConfig {
        max_in_flight: 8,
        max_in_flight_per_host: 4,
    });
    let targets: Vec<_> = servers_
        .iter()
        .flat_map(|s| {
            (0..30).map(move |i| HealthTarget {
                service: format!("svc-{i}"),
                address: s.addr.ip(),
                check: check(s.addr.port()),
            })
        })
        .collect();
    assert_eq!(targets.len(), 300);
    monitor.update_targets(targets);

    wait_accepted(&state, 150).await;
    let max = state.max();
    assert!(max <= 8, "{max} probes in flight, global cap is 8");
    assert_eq!(max, 8, "300 due probes should saturate the cap");
}
