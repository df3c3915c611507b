//! Tiny loopback servers for the prober tests.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Status meaning "accept, read the request, never answer".
pub const SILENT: u16 = 0;
/// Status meaning "answer garbage instead of a status line".
pub const GARBAGE: u16 = 1;

/// Aborts the server task on drop.
pub struct Server {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TCP listener that accepts and closes every connection.
pub async fn accepting() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    Server { addr, task }
}

/// A loopback port nothing listens on (bound, then closed).
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// What an HTTP server has seen; shared with the test.
#[derive(Default)]
pub struct HttpState {
    /// Status to answer; [`SILENT`] and [`GARBAGE`] are special.
    pub status: AtomicU16,
    /// Connections being handled (accepted, not yet answered).
    pub current: AtomicUsize,
    /// Highest `current` seen.
    pub max: AtomicUsize,
    /// Requests fully handled or started.
    pub accepted: AtomicUsize,
    /// Arrival time of every connection.
    pub arrivals: Mutex<Vec<Instant>>,
    /// Raw bytes of the last request head.
    pub last_request: Mutex<String>,
}

impl HttpState {
    pub fn new(status: u16) -> Arc<Self> {
        let s = Self::default();
        s.status.store(status, Ordering::SeqCst);
        Arc::new(s)
    }

    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

/// A minimal HTTP server on `ip` (loopback) answering `state.status` after
/// holding each request for `hold`. `current` counts a connection from accept
/// until just before its answer is written, so it never exceeds the number of
/// probes really in flight.
pub async fn http(ip: IpAddr, state: Arc<HttpState>, hold: Duration) -> Server {
    let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let state = Arc::clone(&state);
            let now = state.current.fetch_add(1, Ordering::SeqCst) + 1;
            state.max.fetch_max(now, Ordering::SeqCst);
            state.accepted.fetch_add(1, Ordering::SeqCst);
            state.arrivals.lock().unwrap().push(Instant::now());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                *state.last_request.lock().unwrap() = String::from_utf8_lossy(&head).into_owned();
                tokio::time::sleep(hold).await;
                let status = state.status.load(Ordering::SeqCst);
                if status == SILENT {
                    // Hold the connection open without answering until the
                    // client gives up (reads EOF/reset).
                    let _ = stream.read(&mut buf).await;
                    state.current.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
                state.current.fetch_sub(1, Ordering::SeqCst);
                let answer = if status == GARBAGE {
                    "SSH-2.0-not-http\r\n\r\n".to_owned()
                } else {
                    format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nok")
                };
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.read(&mut buf).await;
            });
        }
    });
    Server { addr, task }
}

/// [`http`] on 127.0.0.1 with no hold.
pub async fn http_local(state: Arc<HttpState>) -> Server {
    http(IpAddr::from([127, 0, 0, 1]), state, Duration::ZERO).await
}
