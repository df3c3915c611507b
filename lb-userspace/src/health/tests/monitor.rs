//! The monitor against real loopback listeners, with short intervals and
//! bounded waits.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::mpsc::error::TryRecvError;

use super::servers::{self, HttpState, SILENT};
use crate::config::{BackendConfig, HealthCheckConfig, HealthCheckKind, Protocol, ServiceConfig};
use crate::health::{
    HealthEvent, HealthMonitor, HealthState, HealthTarget, MonitorConfig, Transition, UpdateSummary,
};

const INTERVAL_MS: u64 = 50;
const TIMEOUT_MS: u64 = 40;

fn check(kind: HealthCheckKind, port: u16, rise: u32, fall: u32) -> HealthCheckConfig {
    HealthCheckConfig {
        kind,
        port,
        path: "/healthz".into(),
        interval_ms: INTERVAL_MS,
        timeout_ms: TIMEOUT_MS,
        rise,
        fall,
    }
}

fn target(service: &str, address: IpAddr, check: HealthCheckConfig) -> HealthTarget {
    HealthTarget {
        service: service.into(),
        address,
        check,
    }
}

async fn next_event(rx: &mut UnboundedReceiver<HealthEvent>, within: Duration) -> HealthEvent {
    tokio::time::timeout(within, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no health event within {within:?}"))
        .expect("event channel open")
}

/// Polls `cond` every 5 ms for at most `within`.
async fn wait_for(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Worst-case detection time: `runs` probes at interval +10%, one more
/// interval for the random phase, plus slack for a loaded 2-core machine.
fn detection_bound(runs: u32) -> Duration {
    Duration::from_millis(INTERVAL_MS * 11 / 10 * u64::from(runs) + INTERVAL_MS + 400)
}

const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_backend_goes_down_and_comes_back() {
    let state = HttpState::new(200);
    let server = servers::http_local(state.clone()).await;
    let (monitor, mut rx) = HealthMonitor::new(MonitorConfig::default());
    let summary = monitor.update_targets([target(
        "web",
        LOCAL,
        check(HealthCheckKind::Http, server.addr.port(), 2, 3),
    )]);
    assert_eq!(summary.added, 1);

    wait_for(Duration::from_secs(2), "3 probes", || {
        monitor.status("web", LOCAL).unwrap().probes >= 3
    })
    .await;
    assert_eq!(monitor.state("web", LOCAL), Some(HealthState::Up));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

    state.set_status(500);
    let broke = Instant::now();
    let down = next_event(&mut rx, Duration::from_secs(3)).await;
    let took = broke.elapsed();
    assert_eq!(down.transition, Transition::UpToDown);
    assert_eq!((down.service.as_str(), down.address), ("web", LOCAL));
    assert_eq!(down.consecutive, 3);
    assert_eq!(down.reason.as_deref(), Some("HTTP status 500"));
    eprintln!(
        "measured: down {took:?} after the backend broke (interval {INTERVAL_MS} ms, fall 3)"
    );
    assert!(took <= detection_bound(3), "down after {took:?}");
    assert_eq!(monitor.state("web", LOCAL), Some(HealthState::Down));

    state.set_status(204);
    let fixed = Instant::now();
    let up = next_event(&mut rx, Duration::from_secs(3)).await;
    let took = fixed.elapsed();
    assert_eq!(up.transition, Transition::DownToUp);
    assert_eq!(up.consecutive, 2);
    assert_eq!(up.reason, None);
    eprintln!(
        "measured: up {took:?} after the backend recovered (interval {INTERVAL_MS} ms, rise 2)"
    );
    assert!(took <= detection_bound(2), "up after {took:?}");

    let status = monitor.status("web", LOCAL).unwrap();
    assert_eq!(status.state, HealthState::Up);
    assert_eq!(status.transitions, 2);
    assert!(status.failures >= 3 && status.probes > status.failures);
    assert_eq!(status.last_error, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_http_backend_times_out_and_goes_down() {
    let server = servers::http_local(HttpState::new(SILENT)).await;
    let (monitor, mut rx) = HealthMonitor::new(MonitorConfig::default());
    monitor.update_targets([target(
        "api",
        LOCAL,
        check(HealthCheckKind::Http, server.addr.port(), 2, 2),
    )]);
    let down = next_event(&mut rx, Duration::from_secs(3)).await;
    assert_eq!(down.transition, Transition::UpToDown);
    let reason = down.reason.unwrap();
    assert!(reason.starts_with("timed out after 40 ms"), "{reason}");
}

fn service(port: u16, panic_threshold: f64) -> ServiceConfig {
    let backend = |address: IpAddr| BackendConfig {
        address,
        weight: 1,
        drain: false,
    };
    ServiceConfig {
        name: "tcp-svc".into(),
        vip: IpAddr::from([198, 18, 0, 10]),
        port,
        protocol: Protocol::Tcp,
        backends: vec![backend(LOCAL), backend(IpAddr::from([127, 0, 0, 2]))],
        health_check: Some(check(HealthCheckKind::Tcp, port, 2, 3)),
        panic_threshold,
        encap: crate::config::Encapsulation::Ipip,
        second_chance_s: crate::config::DEFAULT_SECOND_CHANCE_S,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_tcp_backend_leaves_the_selection() {
    // The listener is on 127.0.0.1 only: the same port on 127.0.0.2 refuses.
    let server = servers::accepting().await;
    let port = server.addr.port();
    let mut config = crate::config::Config {
        maglev_table_size: 65537,
        conntrack_entries: 1024,
        conntrack_insert_budget: 0,
        encapsulation: Default::default(),
        services: vec![service(port, 0.0)],
        announce: Default::default(),
    };
    let targets = crate::health::targets_from_config(&config);
    assert_eq!(targets.len(), 2);

    let (monitor, mut rx) = HealthMonitor::new(MonitorConfig::default());
    monitor.update_targets(targets);
    assert_eq!(
        monitor.selection(&config.services[0]).take_new_flows,
        vec![0, 1]
    );

    let down = next_event(&mut rx, detection_bound(3) * 2).await;
    assert_eq!(down.address, IpAddr::from([127, 0, 0, 2]));
    assert_eq!(down.transition, Transition::UpToDown);
    assert!(down.reason.unwrap().starts_with("connect failed"));

    let selection = monitor.selection(&config.services[0]);
    assert_eq!(selection.take_new_flows, vec![0]);
    assert!(!selection.panic);

    // One healthy of two is below a 60% threshold: panic, both take flows.
    config.services[0].panic_threshold = 0.6;
    let selection = monitor.selection(&config.services[0]);
    assert!(selection.panic);
    assert_eq!(selection.take_new_flows, vec![0, 1]);

    // The healthy one stayed up all along.
    tokio::time::sleep(Duration::from_millis(INTERVAL_MS * 4)).await;
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(monitor.state("tcp-svc", LOCAL), Some(HealthState::Up));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_down_then_one_up() {
    let a = HttpState::new(500);
    let b = HttpState::new(500);
    let server_a = servers::http(LOCAL, a.clone(), Duration::ZERO).await;
    let server_b = servers::http(IpAddr::from([127, 0, 0, 2]), b.clone(), Duration::ZERO).await;
    let svc = |name: &str, addr: SocketAddr| {
        target(
            name,
            addr.ip(),
            check(HealthCheckKind::Http, addr.port(), 2, 2),
        )
    };
    let (monitor, mut rx) = HealthMonitor::new(MonitorConfig::default());
    monitor.update_targets([svc("s", server_a.addr), svc("s", server_b.addr)]);

    let mut down = [
        next_event(&mut rx, Duration::from_secs(3)).await,
        next_event(&mut rx, Duration::from_secs(3)).await,
    ];
    down.sort_by_key(|e| e.address);
    assert!(down.iter().all(|e| e.transition == Transition::UpToDown));
    assert_eq!(down[0].address, server_a.addr.ip());
    assert_eq!(down[1].address, server_b.addr.ip());
    assert!(
        monitor
            .snapshot()
            .iter()
            .all(|s| s.state == HealthState::Down)
    );

    b.set_status(200);
    let up = next_event(&mut rx, Duration::from_secs(3)).await;
    assert_eq!(up.transition, Transition::DownToUp);
    assert_eq!(up.address, server_b.addr.ip());
    let states: Vec<_> = monitor
        .snapshot()
        .iter()
        .map(|s| (s.address, s.state))
        .collect();
    assert_eq!(
        states,
        vec![
            (server_a.addr.ip(), HealthState::Down),
            (server_b.addr.ip(), HealthState::Up)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_targets_keeps_state_of_targets_that_stay() {
    let server = servers::accepting().await;
    let port = server.addr.port();
    let dead = IpAddr::from([127, 0, 0, 2]);
    let dead_check = check(HealthCheckKind::Tcp, port, 2, 2);
    let (monitor, mut rx) = HealthMonitor::new(MonitorConfig::default());
    monitor.update_targets([target("svc", dead, dead_check.clone())]);
    let down = next_event(&mut rx, Duration::from_secs(3)).await;
    assert_eq!(down.transition, Transition::UpToDown);
    let since = monitor.status("svc", dead).unwrap().since;

    // Reload: same dead target, plus a new healthy one.
    let live = target("svc", LOCAL, check(HealthCheckKind::Tcp, port, 2, 2));
    let summary = monitor.update_targets([target("svc", dead, dead_check.clone()), live.clone()]);
    assert_eq!(
        summary,
        UpdateSummary {
            added: 1,
            removed: 0,
            restarted: 0,
            kept: 1
        }
    );
    let status = monitor.status("svc", dead).unwrap();
    assert_eq!((status.state, status.since), (HealthState::Down, since));
    assert_eq!(monitor.state("svc", LOCAL), Some(HealthState::Up));

    // Only rise/fall changed: kept as is.
    let mut new_thresholds = dead_check.clone();
    new_thresholds.rise = 5;
    let summary = monitor.update_targets([target("svc", dead, new_thresholds), live.clone()]);
    assert_eq!((summary.kept, summary.restarted), (2, 0));

    // The probe changed: task restarted, state and counters kept.
    let probes_before = monitor.status("svc", dead).unwrap().probes;
    let mut slower = dead_check.clone();
    slower.interval_ms = INTERVAL_MS + 10;
    let summary = monitor.update_targets([target("svc", dead, slower.clone()), live.clone()]);
    assert_eq!((summary.kept, summary.restarted), (1, 1));
    let status = monitor.status("svc", dead).unwrap();
    assert_eq!((status.state, status.since), (HealthState::Down, since));
    assert!(status.probes >= probes_before);
    wait_for(Duration::from_secs(2), "probes after restart", || {
        monitor.status("svc", dead).unwrap().probes >= probes_before + 3
    })
    .await;
    // Still down: no second "down" event, and the live one never changed.
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(monitor.state("svc", dead), Some(HealthState::Down));

    // Removal drops the target and its task.
    let summary = monitor.update_targets([live]);
    assert_eq!((summary.removed, summary.kept), (1, 1));
    assert_eq!(monitor.status("svc", dead), None);
    assert_eq!(monitor.len(), 1);

    // Re-adding it starts fresh (Up) and it goes down again.
    monitor.update_targets([
        target("svc", dead, slower),
        target("svc", LOCAL, check(HealthCheckKind::Tcp, port, 2, 2)),
    ]);
    assert_eq!(monitor.state("svc", dead), Some(HealthState::Up));
    let again = next_event(&mut rx, Duration::from_secs(3)).await;
    assert_eq!(
        (again.address, again.transition),
        (dead, Transition::UpToDown)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_monitor_stops_probes() {
    let state = HttpState::new(200);
    let server = servers::http_local(state.clone()).await;
    let (monitor, mut rx) = HealthMonitor::new(MonitorConfig::default());
    monitor.update_targets([target(
        "web",
        LOCAL,
        check(HealthCheckKind::Http, server.addr.port(), 2, 2),
    )]);
    wait_for(Duration::from_secs(2), "2 requests", || {
        state.accepted() >= 2
    })
    .await;
    drop(monitor);
    // The channel closes once every probe task is gone.
    let closed = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await;
    assert_eq!(closed, Ok(None));
    let after_drop = state.accepted();
    tokio::time::sleep(Duration::from_millis(INTERVAL_MS * 4)).await;
    assert_eq!(state.accepted(), after_drop);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_probes_are_spread_over_the_interval() {
    let state = HttpState::new(200);
    let server = servers::http_local(state.clone()).await;
    let interval_ms = 400;
    let mut c = check(HealthCheckKind::Http, server.addr.port(), 2, 2);
    c.interval_ms = interval_ms;
    c.timeout_ms = 200;
    let (monitor, _rx) = HealthMonitor::new(MonitorConfig::default());
    let started = Instant::now();
    monitor.update_targets((0..20).map(|i| target(&format!("s{i}"), LOCAL, c.clone())));
    wait_for(Duration::from_secs(2), "20 first probes", || {
        state.accepted() >= 20
    })
    .await;
    let arrivals = state.arrivals.lock().unwrap()[..20].to_vec();
    let first = arrivals.iter().min().unwrap().duration_since(started);
    let last = arrivals.iter().max().unwrap().duration_since(started);
    // Uniform over 400 ms: 20 samples all in a 150 ms window is ~1e-8 likely;
    // without jitter they would all arrive within a few ms.
    assert!(
        last - first > Duration::from_millis(150),
        "{first:?}..{last:?}"
    );
    assert!(last < Duration::from_millis(interval_ms + 200), "{last:?}");
}
