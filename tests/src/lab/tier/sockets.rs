//! Client sockets bound to one of the client's many source addresses before
//! connecting (std cannot bind a TCP stream before `connect`).

use std::io::{Error, ErrorKind};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::time::Duration;

/// A `sockaddr_storage` for `addr`, and its length.
fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn check(rc: libc::c_int) -> std::io::Result<libc::c_int> {
    if rc < 0 {
        Err(Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Connects a TCP stream from `src` (any port) to `dst` within `timeout`.
pub fn tcp_connect_from(
    src: IpAddr,
    dst: SocketAddr,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    let family = if dst.is_ipv6() {
        libc::AF_INET6
    } else {
        libc::AF_INET
    };
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe {
        OwnedFd::from_raw_fd(check(libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        ))?)
    };
    let (local, local_len) = sockaddr(SocketAddr::new(src, 0));
    // SAFETY: a valid sockaddr of the given length.
    check(unsafe { libc::bind(fd.as_raw_fd(), (&raw const local).cast(), local_len) })?;
    let (remote, remote_len) = sockaddr(dst);
    // SAFETY: as above.
    let rc = unsafe { libc::connect(fd.as_raw_fd(), (&raw const remote).cast(), remote_len) };
    if rc < 0 {
        let e = Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd, bounded timeout.
        let ready = check(unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) })?;
        if ready == 0 {
            return Err(ErrorKind::TimedOut.into());
        }
        let mut err: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: SO_ERROR into a c_int of the given length.
        check(unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&raw mut err).cast(),
                &mut len,
            )
        })?;
        if err != 0 {
            return Err(Error::from_raw_os_error(err));
        }
    }
    let stream = TcpStream::from(fd);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// A UDP socket bound to `src` (any port) and connected to `dst`.
pub fn udp_connect_from(src: IpAddr, dst: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind(SocketAddr::new(src, 0))?;
    socket.connect(dst)?;
    Ok(socket)
}
