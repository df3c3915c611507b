//! The backends' tiny services: a TCP server on port 80 and UDP servers on 5353
//! that answer every request line / datagram with the backend's name.
//!
//! Sockets are created by a thread that entered the backend's namespace; after
//! that they stay in it, so the serving threads themselves can run anywhere.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::addr;
use super::error::{LabError, Result};
use super::netns::NetNs;

/// How often blocked server threads look at the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// The running servers of one backend; [`Servers::stop`] (or drop) ends them
/// and closes every socket.
#[derive(Debug)]
pub struct Servers {
    stop: Arc<AtomicBool>,
    live_connections: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<()>>,
}

/// Binds the TCP server (`[::]:80`, both families) and UDP servers on `5353` of
/// both VIPs and of the backend's own addresses, inside `ns`, and starts
/// answering with `name`.
pub fn start(ns: &NetNs, name: &str, own: &[IpAddr]) -> Result<Servers> {
    let mut udp_addrs = vec![addr::udp_service(false), addr::udp_service(true)];
    udp_addrs.extend(own.iter().map(|ip| SocketAddr::new(*ip, addr::UDP_PORT)));
    let (listener, udp) = ns.run(|| -> Result<_> {
        let tcp_addr = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), addr::TCP_PORT);
        let listener =
            TcpListener::bind(tcp_addr).map_err(LabError::io(format!("bind tcp {tcp_addr}")))?;
        let udp = udp_addrs
            .iter()
            .map(|a| UdpSocket::bind(a).map_err(LabError::io(format!("bind udp {a}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok((listener, udp))
    })??;
    let stop = Arc::new(AtomicBool::new(false));
    let live_connections = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    {
        let (stop, live, name) = (stop.clone(), live_connections.clone(), name.to_owned());
        threads.push(spawn(&format!("{name}-tcp"), move || {
            accept_loop(listener, &name, &stop, &live)
        })?);
    }
    for socket in udp {
        let (stop, name) = (stop.clone(), name.to_owned());
        threads.push(spawn(&format!("{name}-udp"), move || {
            udp_loop(socket, &name, &stop)
        })?);
    }
    Ok(Servers {
        stop,
        live_connections,
        threads,
    })
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map_err(LabError::io(format!("spawn thread {name}")))
}

/// Waits until `fd` is readable or `POLL` passes.
fn wait_readable(fd: i32) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, bounded timeout.
    unsafe { libc::poll(&mut pfd, 1, POLL.as_millis() as i32) };
}

fn accept_loop(listener: TcpListener, name: &str, stop: &Arc<AtomicBool>, live: &Arc<AtomicUsize>) {
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (stop, live, name) = (stop.clone(), live.clone(), name.to_owned());
                live.fetch_add(1, Ordering::SeqCst);
                let spawned = std::thread::Builder::new()
                    .name(format!("{name}-conn"))
                    .spawn({
                        let live = live.clone();
                        move || {
                            serve_connection(stream, &name, &stop);
                            live.fetch_sub(1, Ordering::SeqCst);
                        }
                    });
                if spawned.is_err() {
                    live.fetch_sub(1, Ordering::SeqCst);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => wait_readable(listener.as_raw_fd()),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Answers every `\n`-terminated line with `name\n` until the peer closes.
fn serve_connection(mut stream: TcpStream, name: &str, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(POLL));
    let _ = stream.set_nodelay(true);
    let reply = format!("{name}\n");
    let mut buf = [0u8; 1024];
    while !stop.load(Ordering::Relaxed) {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                let lines = buf[..n].iter().filter(|b| **b == b'\n').count();
                for _ in 0..lines {
                    if stream.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

/// Answers every datagram with `name`.
fn udp_loop(socket: UdpSocket, name: &str, stop: &AtomicBool) {
    let _ = socket.set_read_timeout(Some(POLL));
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) {
        match socket.recv_from(&mut buf) {
            Ok((_, peer)) => {
                let _ = socket.send_to(name.as_bytes(), peer);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

impl Servers {
    /// Stops every server thread and closes every socket (bounded: about a second).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.live_connections.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop();
    }
}
