//! Long-lived UDP flows (connected sockets) that remember their backend.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};

/// A long-lived UDP flow (a connected socket with its own source port).
#[derive(Debug)]
pub struct UdpFlow {
    pub(super) socket: UdpSocket,
    /// The client's address and port.
    pub local: SocketAddr,
    /// The backend that answered first.
    pub backend: String,
    /// Why it broke, if it did.
    pub broken: Option<String>,
}

/// Sends `ping` and waits for one answer, retrying (UDP may lose a datagram).
pub(super) fn udp_request(socket: &UdpSocket) -> std::io::Result<String> {
    udp_request_payload(socket, b"ping")
}

/// Sends `payload` and waits for one answer, retrying (UDP may lose a datagram).
pub(super) fn udp_request_payload(socket: &UdpSocket, payload: &[u8]) -> std::io::Result<String> {
    let mut buf = [0u8; 256];
    let mut last = std::io::Error::from(ErrorKind::TimedOut);
    for _ in 0..4 {
        socket.send(payload)?;
        match socket.recv(&mut buf) {
            Ok(n) => return Ok(String::from_utf8_lossy(&buf[..n]).trim().to_owned()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

impl UdpFlow {
    /// A flow over the connected `socket`: learns its backend with one
    /// request (500 ms read timeout); `what` names the flow in errors.
    pub(crate) fn start(socket: UdpSocket, what: &str) -> crate::lab::error::Result<Self> {
        use crate::lab::error::LabError;
        socket
            .set_read_timeout(Some(std::time::Duration::from_millis(500)))
            .map_err(LabError::io(what.to_string()))?;
        let backend = udp_request(&socket).map_err(LabError::io(what.to_string()))?;
        let local = socket
            .local_addr()
            .map_err(LabError::io(what.to_string()))?;
        Ok(Self {
            socket,
            local,
            backend,
            broken: None,
        })
    }

    /// One request; marks the flow broken on silence or another backend.
    pub fn ping(&mut self) -> bool {
        if self.broken.is_some() {
            return false;
        }
        match udp_request(&self.socket) {
            Ok(name) if name == self.backend => true,
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
}
