//! Network namespaces for the decapsulator's fixtures and benchmark: socket
//! and FIB lookups of a BPF_PROG_TEST_RUN happen in the namespace of the
//! calling thread, so these helpers build, on a thread of its own, a fresh
//! anonymous namespace (gone with the thread: nothing to clean up) with this
//! host's interface, the previous owner as a neighbour, VIP listeners and
//! real TCP connections over loopback.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};

use crate::netns::ip;

/// This backend host (the decapsulator's address, on `gd0`).
pub const HOST4: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 1);
/// See [`HOST4`].
pub const HOST6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0x2, 0xb);
/// The previous owner named by the hint (a neighbour on `gd0`).
pub const OWNER4: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);
/// See [`OWNER4`].
pub const OWNER6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0x2, 0xc);
/// The client addresses of [`listeners`] (on lo), for [`connection`].
pub const CLIENT4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
/// See [`CLIENT4`].
pub const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x10);
/// MAC of this host's interface `gd0` in [`owner_reachable`].
pub const HOST_IF_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x07];
/// MAC of the previous owner, `gd0`'s permanent neighbour.
pub const OWNER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x06];
/// The VIPs the listeners of [`listeners`] serve (port 80).
pub const VIP4: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);
/// See [`VIP4`].
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0x100, 1);

/// Runs `f` on a thread in a fresh network namespace with loopback up.
pub fn in_fresh_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: affects only this thread's network namespace.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
        ip(&["link", "set", "lo", "up"]);
        f()
    })
    .join()
    .unwrap()
}

/// In the current (fresh) namespace: veth `gd0` (this host, HOST4/HOST6,
/// forwarding on, as second chance needs;
/// MAC HOST_IF_MAC) whose neighbours OWNER4/OWNER6 have OWNER_MAC. Returns
/// gd0's ifindex.
pub fn owner_reachable() -> u32 {
    ip(&[
        "link",
        "add",
        "gd0",
        "address",
        "02:00:00:00:00:07",
        "type",
        "veth",
        "peer",
        "name",
        "gd1",
    ]);
    ip(&["link", "set", "gd0", "up"]);
    ip(&["link", "set", "gd1", "up"]);
    ip(&["addr", "add", "198.18.2.1/24", "dev", "gd0"]);
    ip(&[
        "-6",
        "addr",
        "add",
        "2001:2::2:b/112",
        "dev",
        "gd0",
        "nodad",
    ]);
    for owner in ["198.18.2.2", "2001:2::2:c"] {
        ip(&[
            "neigh",
            "add",
            owner,
            "lladdr",
            "02:00:00:00:00:06",
            "dev",
            "gd0",
            "nud",
            "permanent",
        ]);
    }
    for (key, value) in [
        ("net.ipv4.conf.gd0.forwarding", "1"),
        ("net.ipv6.conf.gd0.forwarding", "1"),
    ] {
        let out = std::process::Command::new("sysctl")
            .args(["-qw", &format!("{key}={value}")])
            .output()
            .expect("run sysctl");
        assert!(
            out.status.success(),
            "sysctl {key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // SAFETY: a NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(c"gd0".as_ptr()) };
    assert_ne!(ifindex, 0, "gd0 ifindex");
    ifindex
}

/// A TCP connection local -> remote over loopback (both addresses on lo):
/// the client socket, bound to `local` first, and the accepted server socket.
pub fn connection(listener: &TcpListener, local: SocketAddr) -> (TcpStream, TcpStream) {
    let remote = listener.local_addr().unwrap();
    let (family, addr, len) = sockaddr(local);
    // SAFETY: plain socket calls on a fresh descriptor with a valid sockaddr.
    let client = unsafe {
        let fd = libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket");
        assert_eq!(libc::bind(fd, addr.as_ptr().cast(), len), 0, "bind {local}");
        TcpStream::from_raw_fd(fd)
    };
    let (_, raddr, rlen) = sockaddr(remote);
    // SAFETY: connect on our socket with a valid sockaddr.
    let rc = unsafe { libc::connect(client.as_raw_fd(), raddr.as_ptr().cast(), rlen) };
    assert_eq!(rc, 0, "connect {remote}");
    let (mut server, peer) = listener.accept().unwrap();
    assert_eq!(peer, local);
    let mut client = client;
    client.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    server.read_exact(&mut b).unwrap();
    (client, server)
}

/// `addr` as (family, sockaddr bytes, length).
fn sockaddr(addr: SocketAddr) -> (i32, Vec<u8>, libc::socklen_t) {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: all-zero sockaddr_in is valid.
            let mut s: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            s.sin_family = libc::AF_INET as u16;
            s.sin_port = a.port().to_be();
            s.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            let len = std::mem::size_of_val(&s);
            // SAFETY: viewing a plain C struct as bytes.
            let bytes = unsafe { std::slice::from_raw_parts((&s as *const _) as *const u8, len) };
            (libc::AF_INET, bytes.to_vec(), len as libc::socklen_t)
        }
        SocketAddr::V6(a) => {
            // SAFETY: all-zero sockaddr_in6 is valid.
            let mut s: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            s.sin6_family = libc::AF_INET6 as u16;
            s.sin6_port = a.port().to_be();
            s.sin6_addr.s6_addr = a.ip().octets();
            let len = std::mem::size_of_val(&s);
            // SAFETY: viewing a plain C struct as bytes.
            let bytes = unsafe { std::slice::from_raw_parts((&s as *const _) as *const u8, len) };
            (libc::AF_INET6, bytes.to_vec(), len as libc::socklen_t)
        }
    }
}

/// [`VIP4`]/[`VIP6`] and [`CLIENT4`]/[`CLIENT6`] on lo, and a listener on
/// each VIP's port 80.
pub fn listeners() -> (TcpListener, TcpListener) {
    ip(&["addr", "add", "198.18.100.1/32", "dev", "lo"]);
    ip(&["addr", "add", "198.18.0.10/32", "dev", "lo"]);
    ip(&[
        "-6",
        "addr",
        "add",
        "2001:2::100:1/128",
        "dev",
        "lo",
        "nodad",
    ]);
    ip(&["-6", "addr", "add", "2001:2::10/128", "dev", "lo", "nodad"]);
    (
        TcpListener::bind((VIP4, 80)).unwrap(),
        TcpListener::bind((VIP6, 80)).unwrap(),
    )
}
