//! Loopback forwarding for the interactive lab: a listener on the host's
//! `127.0.0.1:PORT` whose connections are relayed to an address inside a lab
//! namespace, so a browser on the host can open the agent's status page or
//! the lab's Prometheus. Loopback only; the threads end with the process.

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use super::error::{LabError, Result};
use super::netns::NetNs;

/// Listens on `127.0.0.1:host_port` (host namespace) and relays every
/// connection to `target` inside `ns`.
pub fn forward(host_port: u16, ns: Arc<NetNs>, target: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", host_port))
        .map_err(LabError::io(format!("listen on 127.0.0.1:{host_port}")))?;
    std::thread::Builder::new()
        .name(format!("forward-{host_port}"))
        .spawn(move || {
            for client in listener.incoming().flatten() {
                let ns = Arc::clone(&ns);
                // Connect from inside the namespace; the socket stays there.
                let Ok(Ok(Ok(upstream))) = ns
                    .spawn("forward-connect", move || {
                        TcpStream::connect_timeout(&target, Duration::from_secs(2))
                    })
                    .map(|h| h.join().unwrap_or(Err(LabError::Thread("connect".into()))))
                else {
                    continue;
                };
                relay(client, upstream);
            }
        })
        .map_err(LabError::io("spawn forward thread"))?;
    Ok(())
}

/// Copies both ways between `a` and `b` on two threads.
fn relay(a: TcpStream, b: TcpStream) {
    let pipe = |mut from: TcpStream, mut to: TcpStream| {
        move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Write);
        }
    };
    if let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) {
        std::thread::spawn(pipe(a, b2));
        std::thread::spawn(pipe(b, a2));
    }
}
