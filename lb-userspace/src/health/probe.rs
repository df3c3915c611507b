//! One probe of one backend: TCP connect, or a minimal HTTP/1.0 GET.
//!
//! Both close with `SO_LINGER` 0 (a reset), so hundreds of probes per second
//! leave no `TIME_WAIT` sockets on the balancer, as other balancers' checks do.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::{HealthCheckConfig, HealthCheckKind};

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The connection could not be opened (refused, unreachable, ...).
    #[error("connect failed: {0}")]
    Connect(io::Error),
    /// No answer within the timeout.
    #[error("timed out after {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The connection broke while sending the request or reading the answer.
    #[error("i/o error: {0}")]
    Io(io::Error),
    /// The HTTP status was not 2xx or 3xx.
    #[error("HTTP status {0}")]
    HttpStatus(u16),
    /// The answer did not start with an HTTP status line.
    #[error("malformed HTTP response")]
    MalformedResponse,
}

/// Longest status line read; anything longer is [`ProbeError::MalformedResponse`].
const MAX_STATUS_LINE: usize = 1024;

/// Probes `address` on `check.port` as `check` says, within `check.timeout_ms`.
pub async fn probe(address: std::net::IpAddr, check: &HealthCheckConfig) -> Result<(), ProbeError> {
    let target = SocketAddr::new(address, check.port);
    let timeout = Duration::from_millis(check.timeout_ms.max(1));
    match check.kind {
        HealthCheckKind::Tcp => probe_tcp(target, timeout).await,
        HealthCheckKind::Http => probe_http(target, &check.path, timeout).await,
    }
}

/// Healthy when a TCP connection to `target` opens within `timeout`.
pub async fn probe_tcp(target: SocketAddr, timeout: Duration) -> Result<(), ProbeError> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(target))
        .await
        .map_err(|_| ProbeError::Timeout(timeout))?
        .map_err(ProbeError::Connect)?;
    close_with_reset(stream);
    Ok(())
}

/// Healthy when `GET path` on `target` answers a 2xx or 3xx status line
/// within `timeout` (connect, request and status line together).
///
/// The request is HTTP/1.0 with `Host: <target>` and `Connection: close`;
/// only the status line is read.
pub async fn probe_http(
    target: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<(), ProbeError> {
    let status = tokio::time::timeout(timeout, http_status(target, path))
        .await
        .map_err(|_| ProbeError::Timeout(timeout))??;
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(ProbeError::HttpStatus(status))
    }
}

async fn http_status(target: SocketAddr, path: &str) -> Result<u16, ProbeError> {
    let mut stream = TcpStream::connect(target)
        .await
        .map_err(ProbeError::Connect)?;
    let request = http_request(target, path);
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(ProbeError::Io)?;
    let mut buf = Vec::with_capacity(128);
    let mut chunk = [0u8; 512];
    let status = loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            break parse_status_line(&buf[..end]).ok_or(ProbeError::MalformedResponse)?;
        }
        if buf.len() > MAX_STATUS_LINE {
            return Err(ProbeError::MalformedResponse);
        }
        let n = stream.read(&mut chunk).await.map_err(ProbeError::Io)?;
        if n == 0 {
            // EOF before a full line: accept a bare status line without CRLF.
            break parse_status_line(&buf).ok_or(ProbeError::MalformedResponse)?;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    close_with_reset(stream);
    Ok(status)
}

/// The request bytes of an HTTP probe. `path` is sent as given, prefixed with
/// `/` when missing; an IPv6 `Host` is bracketed.
pub fn http_request(target: SocketAddr, path: &str) -> String {
    let slash = if path.starts_with('/') { "" } else { "/" };
    format!(
        "GET {slash}{path} HTTP/1.0\r\nHost: {target}\r\nUser-Agent: lb-health\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
}

/// The status code of an HTTP status line (`HTTP/1.x NNN reason`), without
/// its CRLF; `None` when it is not one.
pub fn parse_status_line(line: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    code.parse().ok()
}

fn close_with_reset(stream: TcpStream) {
    // Best effort: a failure only means a normal FIN close.
    let _ = stream.set_zero_linger();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK"), Some(200));
        assert_eq!(parse_status_line(b"HTTP/1.0 302 Found"), Some(302));
        assert_eq!(parse_status_line(b"HTTP/1.1 503"), Some(503));
        assert_eq!(parse_status_line(b"HTTP/1.1 99 X"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 2000 X"), None);
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH"), None);
        assert_eq!(parse_status_line(b""), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 2x0 OK"), None);
    }

    #[test]
    fn request_has_host_and_path() {
        let v4: SocketAddr = "198.18.3.2:8080".parse().unwrap();
        let r = http_request(v4, "/healthz");
        assert!(r.starts_with("GET /healthz HTTP/1.0\r\n"), "{r}");
        assert!(r.contains("\r\nHost: 198.18.3.2:8080\r\n"), "{r}");
        assert!(r.ends_with("\r\n\r\n"));

        let v6: SocketAddr = "[2001:2::3]:80".parse().unwrap();
        let r = http_request(v6, "ready");
        assert!(r.starts_with("GET /ready HTTP/1.0\r\n"), "{r}");
        assert!(r.contains("\r\nHost: [2001:2::3]:80\r\n"), "{r}");
    }
}
