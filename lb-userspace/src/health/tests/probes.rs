//! Single probes against real loopback listeners.

use std::time::{Duration, Instant};

use super::servers::{self, GARBAGE, HttpState, SILENT};
use crate::config::{HealthCheckConfig, HealthCheckKind};
use crate::health::ProbeError;
use crate::health::probe::{probe, probe_http, probe_tcp};

const TIMEOUT: Duration = Duration::from_millis(200);

#[tokio::test]
async fn tcp_probe_passes_on_accepting_listener() {
    let server = servers::accepting().await;
    probe_tcp(server.addr, TIMEOUT).await.unwrap();
}

#[tokio::test]
async fn tcp_probe_fails_on_closed_port() {
    let addr = servers::closed_port().await;
    let err = probe_tcp(addr, TIMEOUT).await.unwrap_err();
    assert!(matches!(err, ProbeError::Connect(_)), "{err}");
}

#[tokio::test]
async fn http_probe_2xx_and_3xx_pass() {
    for status in [200, 204, 301, 399] {
        let state = HttpState::new(status);
        let server = servers::http_local(state.clone()).await;
        probe_http(server.addr, "/healthz", TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("status {status}: {e}"));
        let request = state.last_request.lock().unwrap().clone();
        assert!(
            request.starts_with("GET /healthz HTTP/1.0\r\n"),
            "{request}"
        );
        assert!(
            request.contains(&format!("\r\nHost: {}\r\n", server.addr)),
            "{request}"
        );
    }
}

#[tokio::test]
async fn http_probe_other_statuses_fail() {
    for status in [100, 404, 500, 503] {
        let server = servers::http_local(HttpState::new(status)).await;
        let err = probe_http(server.addr, "/", TIMEOUT).await.unwrap_err();
        assert!(
            matches!(err, ProbeError::HttpStatus(s) if s == status),
            "status {status}: {err}"
        );
    }
}

#[tokio::test]
async fn http_probe_times_out_on_silent_server() {
    let server = servers::http_local(HttpState::new(SILENT)).await;
    let started = Instant::now();
    let err = probe_http(server.addr, "/", TIMEOUT).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, ProbeError::Timeout(_)), "{err}");
    assert!(took >= TIMEOUT, "{took:?}");
    assert!(took < TIMEOUT * 3, "{took:?}");
}

#[tokio::test]
async fn http_probe_rejects_non_http() {
    let server = servers::http_local(HttpState::new(GARBAGE)).await;
    let err = probe_http(server.addr, "/", TIMEOUT).await.unwrap_err();
    assert!(matches!(err, ProbeError::MalformedResponse), "{err}");
}

#[tokio::test]
async fn http_probe_fails_on_closed_port() {
    let addr = servers::closed_port().await;
    let err = probe_http(addr, "/", TIMEOUT).await.unwrap_err();
    assert!(matches!(err, ProbeError::Connect(_)), "{err}");
}

#[tokio::test]
async fn probe_dispatches_on_kind_and_port() {
    let state = HttpState::new(500);
    let server = servers::http_local(state).await;
    let mut check = HealthCheckConfig {
        kind: HealthCheckKind::Tcp,
        port: server.addr.port(),
        path: "/".into(),
        interval_ms: 1000,
        timeout_ms: 200,
        rise: 1,
        fall: 1,
    };
    // TCP connect succeeds even though the HTTP answer is 500...
    probe(server.addr.ip(), &check).await.unwrap();
    // ...and the HTTP check sees the 500.
    check.kind = HealthCheckKind::Http;
    let err = probe(server.addr.ip(), &check).await.unwrap_err();
    assert!(matches!(err, ProbeError::HttpStatus(500)), "{err}");
}

#[tokio::test]
async fn probes_work_over_ipv6_loopback() {
    let v6 = std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST);
    let state = HttpState::new(200);
    let server = servers::http(v6, state.clone(), Duration::ZERO).await;
    probe_tcp(server.addr, TIMEOUT).await.unwrap();
    probe_http(server.addr, "/v6", TIMEOUT).await.unwrap();
    let request = state.last_request.lock().unwrap().clone();
    let host = format!("\r\nHost: [::1]:{}\r\n", server.addr.port());
    assert!(request.contains(&host), "{request}");
    state.set_status(503);
    let err = probe_http(server.addr, "/v6", TIMEOUT).await.unwrap_err();
    assert!(matches!(err, ProbeError::HttpStatus(503)), "{err}");
}
