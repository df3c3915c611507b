//! The Prometheus endpoint of `lb run --metrics ADDR`: the same counters as
//! `lb stats`, read fresh from the pinned maps on every scrape and encoded
//! with `prometheus-client` (OpenMetrics text, which Prometheus scrapes
//! natively), served by a tiny HTTP/1.1 responder on a tokio listener.
//!
//! `GET /metrics` answers 200 with the exposition; anything else 404; a scrape
//! while nothing is pinned answers 503 with the reason.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lb_common::GlobalCounter;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::state::{AppliedState, BackendState};
use crate::stats::{Snapshot, StatsError};

/// Content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Largest request head accepted.
const MAX_REQUEST: usize = 8192;
/// Time a client gets to send its request head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors of the metrics endpoint.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr} for metrics: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Accepting a connection failed.
    #[error("metrics listener failed: {0}")]
    Accept(#[source] std::io::Error),
}

/// A bound metrics endpoint, not yet serving (so that callers can learn the
/// port of `127.0.0.1:0`).
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    pin_dir: PathBuf,
    state_path: PathBuf,
}

impl MetricsServer {
    /// Binds `addr`; scrapes will read the maps pinned in `pin_dir` and the
    /// state file `state_path`.
    pub async fn bind(
        addr: SocketAddr,
        pin_dir: PathBuf,
        state_path: PathBuf,
    ) -> Result<Self, MetricsError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| MetricsError::Bind { addr, source })?;
        Ok(Self {
            listener,
            pin_dir,
            state_path,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves scrapes until the listener fails (forever, normally); each
    /// connection is handled in its own task.
    pub async fn run(self) -> Result<(), MetricsError> {
        loop {
            let (stream, _) = self.listener.accept().await.map_err(MetricsError::Accept)?;
            let pin_dir = self.pin_dir.clone();
            let state_path = self.state_path.clone();
            tokio::spawn(async move {
                if let Err(e) = handle(stream, &pin_dir, &state_path).await {
                    tracing::debug!("metrics connection: {e}");
                }
            });
        }
    }
}

/// Serves the metrics of the interface whose maps are pinned in `pin_dir`
/// (state file `state_path`) on `addr` until the listener fails.
#[expect(
    clippy::manual_async_fn,
    reason = "the signature promises a Send future, so callers can tokio::spawn it"
)]
pub fn serve(
    addr: SocketAddr,
    pin_dir: PathBuf,
    state_path: PathBuf,
) -> impl Future<Output = Result<(), MetricsError>> {
    async move {
        let server = MetricsServer::bind(addr, pin_dir, state_path).await?;
        tracing::info!(
            "serving metrics on http://{}/metrics",
            server.local_addr().unwrap_or(addr)
        );
        server.run().await
    }
}

/// Reads one request head and answers it; the connection is then closed.
async fn handle(mut stream: TcpStream, pin_dir: &Path, state_path: &Path) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    match read {
        Ok(r) => r?,
        Err(_) => return Ok(()),
    }
    let request_line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let request_line = String::from_utf8_lossy(request_line);
    let response = match route(&request_line) {
        Route::Metrics => match scrape(pin_dir, state_path) {
            Ok(body) => response("200 OK", CONTENT_TYPE, &body),
            Err(e) => {
                tracing::warn!("metrics scrape: {e}");
                response(
                    "503 Service Unavailable",
                    "text/plain; charset=utf-8",
                    &format!("{e}\n"),
                )
            }
        },
        Route::NotFound => response("404 Not Found", "text/plain; charset=utf-8", "not found\n"),
        Route::BadRequest => response(
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "bad request\n",
        ),
    };
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics,
    NotFound,
    BadRequest,
}

/// Routes an HTTP request line (`GET /metrics HTTP/1.1`).
fn route(request_line: &str) -> Route {
    let mut parts = request_line.trim_end().split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    let path = target.split('?').next().unwrap_or_default();
    if method == "GET" && path == "/metrics" {
        Route::Metrics
    } else {
        Route::NotFound
    }
}

fn response(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Reads the pins and the state file and encodes them.
fn scrape(pin_dir: &Path, state_path: &Path) -> Result<String, StatsError> {
    let state = AppliedState::read(state_path)?;
    let snap = Snapshot::read(pin_dir, state.as_ref())?;
    Ok(encode_snapshot(&snap))
}

type Labels = Vec<(&'static str, String)>;

/// Encodes a snapshot as an OpenMetrics text exposition (pure).
pub fn encode_snapshot(snap: &Snapshot) -> String {
    let mut registry = Registry::default();
    let counter_family = |registry: &mut Registry, name: &str, help: &str| {
        let family = Family::<Labels, Counter>::default();
        registry.register(name, help, family.clone());
        family
    };
    let gauge_family = |registry: &mut Registry, name: &str, help: &str| {
        let family = Family::<Labels, Gauge>::default();
        registry.register(name, help, family.clone());
        family
    };
    let attached = Gauge::<i64>::default();
    registry.register(
        "lb_attached",
        "1 while the XDP program is attached (its link is pinned)",
        attached.clone(),
    );
    attached.set(i64::from(snap.attached));
    let b_packets = counter_family(
        &mut registry,
        "lb_backend_packets",
        "Packets sent to a backend",
    );
    let b_bytes = counter_family(
        &mut registry,
        "lb_backend_bytes",
        "Bytes sent to a backend (before encapsulation)",
    );
    let b_flows = counter_family(
        &mut registry,
        "lb_backend_new_flows",
        "Flows newly pinned to a backend",
    );
    let b_up = gauge_family(
        &mut registry,
        "lb_backend_up",
        "1 unless the backend is down (failed health checks)",
    );
    let b_weight = gauge_family(&mut registry, "lb_backend_weight", "Configured weight");
    let b_slots = gauge_family(
        &mut registry,
        "lb_backend_slots",
        "Slots the backend holds in its service's Maglev table",
    );
    let s_packets = counter_family(&mut registry, "lb_service_packets", "Packets to a service");
    let s_bytes = counter_family(&mut registry, "lb_service_bytes", "Bytes to a service");
    let s_no_backend = counter_family(
        &mut registry,
        "lb_service_no_backend",
        "New flows of a service dropped for want of a backend",
    );
    let vip_announced = gauge_family(
        &mut registry,
        "lb_vip_announced",
        "1 while the VIP's host route is installed for the BGP daemon to announce",
    );
    let draining = Gauge::<i64>::default();
    registry.register(
        "lb_node_draining",
        "1 while the node drains (announce.enabled: false): every VIP withdrawn",
        draining.clone(),
    );
    draining.set(i64::from(snap.draining));
    let fingerprint = gauge_family(
        &mut registry,
        "lb_service_table_fingerprint",
        "Fingerprint of the service's live Maglev table (slot -> backend address); equal on nodes that agree",
    );
    for v in &snap.vips {
        vip_announced
            .get_or_create(&vec![("vip", v.vip.to_string())])
            .set(i64::from(v.announced));
    }
    for svc in snap.services.iter() {
        if let Some(f) = svc.fingerprint {
            fingerprint
                .get_or_create(&vec![("service", svc.name.clone())])
                .set(i64::from(f));
        }
    }
    let events = counter_family(
        &mut registry,
        "lb_datapath_events",
        "Global datapath counters (connection table, passes, drops, ICMP)",
    );

    for svc in &snap.services {
        let s_labels: Labels = vec![("service", svc.name.clone())];
        s_packets
            .get_or_create(&s_labels)
            .inc_by(svc.counters.packets);
        s_bytes.get_or_create(&s_labels).inc_by(svc.counters.bytes);
        s_no_backend
            .get_or_create(&s_labels)
            .inc_by(svc.counters.no_backend);
        for b in &svc.backends {
            let labels: Labels = vec![
                ("service", svc.name.clone()),
                ("backend", b.address.to_string()),
            ];
            b_packets.get_or_create(&labels).inc_by(b.counters.packets);
            b_bytes.get_or_create(&labels).inc_by(b.counters.bytes);
            b_flows.get_or_create(&labels).inc_by(b.counters.new_flows);
            b_up.get_or_create(&labels)
                .set(i64::from(b.state != BackendState::Down));
            b_weight.get_or_create(&labels).set(i64::from(b.weight));
            b_slots.get_or_create(&labels).set(i64::from(b.slots));
        }
    }
    for c in GlobalCounter::ALL {
        events
            .get_or_create(&vec![("counter", c.label().to_string())])
            .inc_by(snap.global(*c));
    }
    let mut out = String::new();
    encode(&mut out, &registry).expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_only_get_metrics() {
        assert_eq!(route("GET /metrics HTTP/1.1\r"), Route::Metrics);
        assert_eq!(route("GET /metrics?x=1 HTTP/1.0"), Route::Metrics);
        assert_eq!(route("GET / HTTP/1.1"), Route::NotFound);
        assert_eq!(route("POST /metrics HTTP/1.1"), Route::NotFound);
        assert_eq!(route("garbage"), Route::BadRequest);
    }

    #[test]
    fn encodes_every_series_with_labels() {
        let text = encode_snapshot(&crate::stats::tests::sample(2));
        let has = |line: &str| {
            assert!(
                text.lines().any(|l| l == line),
                "missing line {line:?} in\n{text}"
            );
        };
        has("# TYPE lb_backend_packets counter");
        has(r#"lb_backend_packets_total{service="web",backend="198.18.3.2"} 140"#);
        has(r#"lb_backend_bytes_total{service="web",backend="198.18.3.3"} 3840"#);
        has(r#"lb_backend_new_flows_total{service="web",backend="198.18.3.2"} 14"#);
        has(r#"lb_backend_up{service="web",backend="198.18.3.3"} 1"#);
        has(r#"lb_backend_up{service="dns6",backend="2001:2::3:2"} 0"#);
        has(r#"lb_backend_weight{service="web",backend="198.18.3.2"} 3"#);
        has(r#"lb_backend_slots{service="web",backend="198.18.3.3"} 3"#);
        has(r#"lb_service_packets_total{service="web"} 200"#);
        has(r#"lb_service_bytes_total{service="dns6"} 1000"#);
        has(r#"lb_service_no_backend_total{service="dns6"} 10"#);
        has(r#"lb_datapath_events_total{counter="conntrack_hit"} 2000"#);
        has(r#"lb_datapath_events_total{counter="drop_no_backend"} 6"#);
        has("lb_attached 1");
        has("lb_node_draining 0");
        has(r#"lb_vip_announced{vip="198.18.100.1"} 1"#);
        has(r#"lb_vip_announced{vip="2001:2::100:1"} 0"#);
        has(&format!(
            r#"lb_service_table_fingerprint{{service="web"}} {}"#,
            0x0bad_cafe_u32
        ));
        assert!(!text.contains(r#"lb_service_table_fingerprint{service="dns6"}"#));
        for c in GlobalCounter::ALL {
            assert!(
                text.contains(&format!("counter=\"{}\"", c.label())),
                "{} missing",
                c.label()
            );
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
