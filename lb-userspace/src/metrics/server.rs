//! The listener of `lb run --metrics ADDR`: one request per connection
//! (HTTP/1.1, `Connection: close`), each in its own task.
//!
//! Routes: `GET /metrics` (OpenMetrics exposition), `GET /` and its assets (the
//! status page), `GET /stats.json` (the `lb stats --json` shape); anything
//! else 404. While nothing is pinned, `/metrics` and `/stats.json` answer 503
//! with the reason.
//!
//! It never gives up: at most [`connection_cap`] connections are served at
//! once (the next ones wait in the kernel's backlog, holding none of the
//! agent's descriptors), a client gets [`REQUEST_TIMEOUT`] to send its request,
//! and an `accept` failure (EMFILE when descriptors run out) is logged once per
//! episode and retried after [`ACCEPT_BACKOFF`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::MetricsError;
use super::limits::{connection_cap, nofile_limit};
use super::page::{self, Asset, Sampler};
use crate::state::AppliedState;
use crate::stats::{Snapshot, StatsError};

/// Content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Largest request head accepted.
const MAX_REQUEST: usize = 8192;
/// Time a client gets to send its request head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (descriptors exhausted) before retrying.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Soft descriptor limit assumed when it cannot be read.
const DEFAULT_NOFILE: u64 = 1024;

/// A bound metrics endpoint, not yet serving (so that callers can learn the
/// port of `127.0.0.1:0`).
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    pin_dir: PathBuf,
    state_path: PathBuf,
    max_connections: usize,
}

impl MetricsServer {
    /// Binds `addr`; requests will read the maps pinned in `pin_dir` and the
    /// state file `state_path`. The connection cap is sized from the current
    /// descriptor limit ([`connection_cap`]).
    pub async fn bind(
        addr: SocketAddr,
        pin_dir: PathBuf,
        state_path: PathBuf,
    ) -> Result<Self, MetricsError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| MetricsError::Bind { addr, source })?;
        let soft = nofile_limit().map_or(DEFAULT_NOFILE, |(soft, _)| soft);
        Ok(Self {
            listener,
            pin_dir,
            state_path,
            max_connections: connection_cap(soft),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// How many connections are served at once.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Serves at most `max` connections at once instead (at least 1).
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Serves requests forever; each connection is handled in its own task.
    pub async fn run(self) {
        let permits = Arc::new(Semaphore::new(self.max_connections));
        let sampler = Arc::new(Sampler::new(self.pin_dir.clone(), self.state_path.clone()));
        let mut failing = false;
        loop {
            let permit = Arc::clone(&permits)
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            match self.listener.accept().await {
                Ok((stream, _)) => {
                    if failing {
                        tracing::info!("metrics listener: accepting connections again");
                        failing = false;
                    }
                    let pin_dir = self.pin_dir.clone();
                    let state_path = self.state_path.clone();
                    let sampler = Arc::clone(&sampler);
                    tokio::spawn(async move {
                        if let Err(e) = handle(stream, &pin_dir, &state_path, &sampler).await {
                            tracing::debug!("metrics connection: {e}");
                        }
                        drop(permit);
                    });
                }
                Err(e) => {
                    drop(permit);
                    if !failing {
                        tracing::warn!(
                            "metrics listener: accept failed: {e}; retrying every {} ms",
                            ACCEPT_BACKOFF.as_millis()
                        );
                        failing = true;
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

/// Serves the metrics and status page of the interface whose maps are pinned
/// in `pin_dir` (state file `state_path`) on `addr`; returns only if `addr`
/// cannot be bound. Warns when `addr` is not a loopback address.
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
        if !addr.ip().is_loopback() {
            tracing::warn!(
                "--metrics {addr} exposes the counters, service names and backend addresses \
                 to the network (no authentication); use a loopback address such as \
                 127.0.0.1:9100 unless that is intended"
            );
        }
        let server = MetricsServer::bind(addr, pin_dir, state_path).await?;
        let local = server.local_addr().unwrap_or(addr);
        tracing::info!(
            "serving metrics on http://{local}/metrics and the status page on http://{local}/ \
             (at most {} connections at once)",
            server.max_connections()
        );
        server.run().await;
        Ok(())
    }
}

/// Reads one request head and answers it; the connection is then closed.
async fn handle(
    mut stream: TcpStream,
    pin_dir: &Path,
    state_path: &Path,
    sampler: &Sampler,
) -> std::io::Result<()> {
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
    if head.is_empty() {
        return Ok(());
    }
    let request_line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let request_line = String::from_utf8_lossy(request_line);
    let response = match route(&request_line) {
        Route::Metrics => match scrape(pin_dir, state_path) {
            Ok(body) => response("200 OK", CONTENT_TYPE, body.as_bytes()),
            Err(e) => unavailable(&e),
        },
        Route::StatsJson => match sampler.stats_json() {
            Ok(body) => response("200 OK", "application/json", body.as_bytes()),
            Err(e) => unavailable(&e),
        },
        Route::Asset(asset) => response("200 OK", asset.content_type, asset.body.as_bytes()),
        Route::NotFound => response("404 Not Found", TEXT, b"not found\n"),
        Route::BadRequest => response("400 Bad Request", TEXT, b"bad request\n"),
    };
    stream.write_all(&response).await?;
    stream.shutdown().await
}

const TEXT: &str = "text/plain; charset=utf-8";

fn unavailable(e: &StatsError) -> Vec<u8> {
    tracing::warn!("metrics endpoint: {e}");
    response("503 Service Unavailable", TEXT, format!("{e}\n").as_bytes())
}

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics,
    StatsJson,
    Asset(&'static Asset),
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
    if method != "GET" {
        return Route::NotFound;
    }
    let path = target.split('?').next().unwrap_or_default();
    match path {
        "/metrics" => Route::Metrics,
        page::STATS_JSON_PATH => Route::StatsJson,
        _ => page::asset(path).map_or(Route::NotFound, Route::Asset),
    }
}

fn response(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Reads the pins and the state file and encodes them.
fn scrape(pin_dir: &Path, state_path: &Path) -> Result<String, StatsError> {
    let state = AppliedState::read(state_path)?;
    let snap = Snapshot::read(pin_dir, state.as_ref())?;
    Ok(super::encode_snapshot(&snap))
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    /// Sends `GET path` and reads the status line (None if nothing in `wait`).
    fn status_line(stream: &mut std::net::TcpStream, path: &str, wait: Duration) -> Option<String> {
        write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        stream.set_read_timeout(Some(wait)).unwrap();
        let mut text = String::new();
        match stream.read_to_string(&mut text) {
            Ok(_) => Some(text.lines().next().unwrap_or_default().to_owned()),
            Err(_) => None,
        }
    }

    #[test]
    fn idle_clients_beyond_the_cap_wait_and_are_served_when_one_leaves() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime
            .block_on(MetricsServer::bind(
                "127.0.0.1:0".parse().unwrap(),
                "/nonexistent/pins".into(),
                "/nonexistent/state.json".into(),
            ))
            .unwrap()
            .with_max_connections(2);
        let addr = server.local_addr().unwrap();
        let task = runtime.spawn(server.run());
        let connect = || std::net::TcpStream::connect(addr).unwrap();
        // Two idle clients take both slots.
        let idle = [connect(), connect()];
        std::thread::sleep(Duration::from_millis(100));
        let mut waiting = connect();
        assert_eq!(
            status_line(&mut waiting, "/", Duration::from_millis(400)),
            None,
            "a third client was served past the cap of 2"
        );
        // One idle client leaves: the waiting one is served (the page needs no pins).
        drop(idle);
        let mut text = String::new();
        waiting
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        waiting.read_to_string(&mut text).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        // Without pins, the data routes say why.
        let mut client = connect();
        let line = status_line(&mut client, "/stats.json", Duration::from_secs(3));
        assert_eq!(line.as_deref(), Some("HTTP/1.1 503 Service Unavailable"));
        task.abort();
    }

    #[test]
    fn routes_get_requests_to_metrics_page_and_json() {
        assert_eq!(route("GET /metrics HTTP/1.1\r"), Route::Metrics);
        assert_eq!(route("GET /metrics?x=1 HTTP/1.0"), Route::Metrics);
        assert_eq!(route("GET /stats.json HTTP/1.1"), Route::StatsJson);
        assert!(
            matches!(route("GET / HTTP/1.1"), Route::Asset(a) if a.content_type.starts_with("text/html"))
        );
        assert!(
            matches!(route("GET /status.js HTTP/1.1"), Route::Asset(a) if a.content_type.starts_with("text/javascript"))
        );
        assert_eq!(route("GET /nope HTTP/1.1"), Route::NotFound);
        assert_eq!(route("POST /metrics HTTP/1.1"), Route::NotFound);
        assert_eq!(route("garbage"), Route::BadRequest);
        assert_eq!(route("GET / SPDY/3"), Route::BadRequest);
    }
}
