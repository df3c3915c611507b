//! Long-lived TCP connections that remember their original backend.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Connect timeout (one SYN retransmission fits in it).
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(2500);
/// How long a request waits for its answer.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(3);

/// Backend name -> count.
pub type Tally = BTreeMap<String, usize>;

/// One request/answer over a connected TCP stream: the answering backend's name.
pub(super) fn tcp_request(stream: &mut TcpStream) -> std::io::Result<String> {
    tcp_request_sized(stream, 0)
}

/// One request of `filler + 5` bytes (full-sized segments when large).
fn tcp_request_sized(stream: &mut TcpStream, filler: usize) -> std::io::Result<String> {
    let mut request = vec![b'x'; filler];
    request.extend_from_slice(b"ping\n");
    stream.write_all(&request)?;
    let mut reply = Vec::with_capacity(16);
    let mut byte = [0u8; 64];
    let deadline = Instant::now() + REPLY_TIMEOUT;
    while !reply.ends_with(b"\n") {
        if Instant::now() > deadline {
            return Err(ErrorKind::TimedOut.into());
        }
        match stream.read(&mut byte) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => reply.extend_from_slice(&byte[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&reply).trim().to_owned())
}

/// Opens one TCP connection and learns its backend.
pub(super) fn tcp_open(dst: SocketAddr) -> std::io::Result<TcpFlow> {
    tcp_flow(TcpStream::connect_timeout(&dst, CONNECT_TIMEOUT)?)
}

/// Makes a connected stream a long-lived flow: asks once which backend it reached.
pub(super) fn tcp_flow(mut stream: TcpStream) -> std::io::Result<TcpFlow> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
    stream.set_write_timeout(Some(REPLY_TIMEOUT))?;
    let backend = tcp_request(&mut stream)?;
    let local = stream.local_addr()?;
    Ok(TcpFlow {
        stream: Some(stream),
        local,
        backend,
        broken: None,
        answers: 1,
    })
}

/// A long-lived TCP connection.
#[derive(Debug)]
pub struct TcpFlow {
    stream: Option<TcpStream>,
    /// The client's address and port.
    pub local: SocketAddr,
    /// The backend that answered first (the original one).
    pub backend: String,
    /// Why it broke (error, or a different backend answered), if it did.
    pub broken: Option<String>,
    /// Answers received from the original backend.
    pub answers: u64,
}

impl TcpFlow {
    /// Sends one request; marks the flow broken on error or on an answer from
    /// another backend. Returns whether it is (still) healthy.
    pub fn ping(&mut self) -> bool {
        let Some(stream) = self.stream.as_mut() else {
            return self.broken.is_none();
        };
        if self.broken.is_some() {
            return false;
        }
        match tcp_request(stream) {
            Ok(name) if name == self.backend => {
                self.answers += 1;
                true
            }
            Ok(name) => {
                self.broken = Some(format!("answered by {name}, not {}", self.backend));
                false
            }
            Err(e) => {
                self.broken = Some(format!("{}: {e}", e.kind()));
                false
            }
        }
    }

    /// Sends one request of about `bytes` bytes (full-sized TCP segments) and
    /// checks the answer like [`TcpFlow::ping`].
    pub fn ping_bulk(&mut self, bytes: usize) -> bool {
        let Some(stream) = self.stream.as_mut() else {
            return false;
        };
        match tcp_request_sized(stream, bytes) {
            Ok(name) if name == self.backend => {
                self.answers += 1;
                true
            }
            Ok(name) => {
                self.broken = Some(format!("answered by {name}, not {}", self.backend));
                false
            }
            Err(e) => {
                self.broken = Some(format!("bulk {}: {e}", e.kind()));
                false
            }
        }
    }

    /// Closes the connection (it stays counted, as closed cleanly).
    pub fn close(&mut self) {
        self.stream = None;
    }

    /// Whether it is still open.
    pub fn is_open(&self) -> bool {
        self.stream.is_some()
    }
}

/// A set of long-lived TCP connections.
#[derive(Debug, Default)]
pub struct FlowSet {
    /// The flows.
    pub flows: Vec<TcpFlow>,
}

impl FlowSet {
    /// Pings every open, healthy flow once; returns how many broke in this round.
    pub fn ping_all(&mut self) -> usize {
        self.flows
            .iter_mut()
            .filter(|f| f.is_open() && f.broken.is_none())
            .map(|f| usize::from(!f.ping()))
            .sum()
    }

    /// Flows per original backend.
    pub fn by_backend(&self) -> Tally {
        tally(self.flows.iter().map(|f| f.backend.clone()))
    }

    /// Broken flows per original backend.
    pub fn broken_by_backend(&self) -> Tally {
        tally(
            self.flows
                .iter()
                .filter(|f| f.broken.is_some())
                .map(|f| f.backend.clone()),
        )
    }

    /// Number of broken flows.
    pub fn broken(&self) -> usize {
        self.flows.iter().filter(|f| f.broken.is_some()).count()
    }

    /// Up to `n` reasons, for assertion messages.
    pub fn broken_examples(&self, n: usize) -> Vec<String> {
        self.flows
            .iter()
            .filter_map(|f| {
                f.broken
                    .as_ref()
                    .map(|why| format!("{} on {}: {why}", f.local, f.backend))
            })
            .take(n)
            .collect()
    }

    /// Closes every flow of `backend`; returns how many.
    pub fn close_backend(&mut self, backend: &str) -> usize {
        let mut closed = 0;
        for flow in self
            .flows
            .iter_mut()
            .filter(|f| f.backend == backend && f.is_open())
        {
            flow.close();
            closed += 1;
        }
        closed
    }
}

/// Counts names.
pub fn tally(names: impl Iterator<Item = String>) -> Tally {
    let mut out = Tally::new();
    for name in names {
        *out.entry(name).or_default() += 1;
    }
    out
}
