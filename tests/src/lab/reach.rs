//! Probes of the path second chance uses between backends: a backend's decap
//! hands a packet it has no socket for to the flow's previous owner, so one
//! backend must reach another through the router with the largest packet the
//! balancer and the decap ever send (a full-size client packet inside GUE with
//! the previous-owner hint).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use lb_common::flow::FAMILY_V6;
use lb_common::gue::{gue_header_len, gue_hlen};

use super::addr::LinkAddrs;
use super::cmd;
use super::error::{LabError, Result};
use super::netns::NetNs;
use super::udp::udp_request_payload;

/// MTU of the client's link: the largest inner packet.
pub const CLIENT_MTU: usize = 1500;
/// Bytes GUE adds at most: outer IPv6, UDP, GUE with an IPv6 previous owner.
pub const GUE_MAX_OVERHEAD: usize = 40 + 8 + gue_header_len(gue_hlen(Some(FAMILY_V6)));
/// The largest IP packet on a backend link: a full-size client packet in GUE.
pub const LARGEST_GUE_PACKET: usize = CLIENT_MTU + GUE_MAX_OVERHEAD;

/// Sets "don't fragment" (path MTU discovery "do") on a UDP socket of the given family.
fn dont_fragment(socket: &UdpSocket, v6: bool) -> std::io::Result<()> {
    let (level, name, value) = if v6 {
        (
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_DO,
        )
    } else {
        (
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_DO,
        )
    };
    // SAFETY: a valid socket fd and a pointer to an int of the given length.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// From inside `ns`, sends one UDP request to `to` whose IP packet is exactly
/// `ip_len` bytes with "don't fragment" set, and returns the answer (a lab
/// server answers with its backend's name). Fails when any link on the way is
/// too small (the datagram is dropped, not fragmented) or nothing answers.
pub fn ask_unfragmented(ns: &NetNs, to: SocketAddr, ip_len: usize) -> Result<String> {
    let v6 = to.is_ipv6();
    let headers = if v6 { 40 + 8 } else { 20 + 8 };
    let payload = vec![b'x'; ip_len - headers];
    let what = format!(
        "UDP request of {ip_len} bytes (DF) from {} to {to}",
        ns.name()
    );
    ns.run(|| -> std::io::Result<String> {
        let any: IpAddr = if v6 {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        };
        let socket = UdpSocket::bind(SocketAddr::new(any, 0))?;
        dont_fragment(&socket, v6)?;
        socket.connect(to)?;
        socket.set_read_timeout(Some(Duration::from_millis(500)))?;
        udp_request_payload(&socket, &payload)
    })?
    .map_err(LabError::io(what))
}

/// The packet a backend's decap sends when it hands a packet on to the
/// flow's previous owner, built by hand: GUE without a hint to `owner`'s
/// `gue_port`, carrying a UDP request from `client` (a socket bound in
/// `client_ns`) to `service`. Sent from inside `from`; the owner's decap
/// strips it and its server answers the client directly. Returns that
/// answer (the owner's name).
pub fn ask_through_gue(
    from: &NetNs,
    owner: IpAddr,
    gue_port: u16,
    client_ns: &NetNs,
    client: IpAddr,
    service: SocketAddr,
) -> Result<String> {
    let what = format!(
        "GUE from {} to {owner}:{gue_port} carrying {client} -> {service}",
        from.name()
    );
    let io = |e: std::io::Error| LabError::Io {
        what: what.clone(),
        source: e,
    };
    let answer_socket = client_ns
        .run(|| UdpSocket::bind(SocketAddr::new(client, 0)))?
        .map_err(io)?;
    answer_socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .map_err(io)?;
    let port = answer_socket.local_addr().map_err(io)?.port();
    let packet = gue_request(client, port, service, b"ping").ok_or_else(|| LabError::Output {
        command: what.clone(),
        message: "client and service of different families".into(),
    })?;
    let sender = from
        .run(|| {
            let any: IpAddr = match owner {
                IpAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
                IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
            };
            UdpSocket::bind(SocketAddr::new(any, 0))
        })?
        .map_err(io)?;
    let mut buf = [0u8; 256];
    let mut last = std::io::Error::from(std::io::ErrorKind::TimedOut);
    for _ in 0..4 {
        sender
            .send_to(&packet, SocketAddr::new(owner, gue_port))
            .map_err(io)?;
        match answer_socket.recv(&mut buf) {
            Ok(n) => return Ok(String::from_utf8_lossy(&buf[..n]).trim().to_owned()),
            Err(e) => last = e,
        }
    }
    Err(io(last))
}

/// What a balancer sends for a flow that takes the second chance, built by
/// hand: GUE to `backend`'s `gue_port` naming `previous_owner`, carrying a
/// TCP ACK (not a SYN) from `client:port` to `service` of a connection that
/// `backend` does not have. Sent from inside `from` (any namespace that
/// routes to the backend).
pub fn send_hinted_ack(
    from: &NetNs,
    backend: SocketAddr,
    previous_owner: IpAddr,
    client: SocketAddr,
    service: SocketAddr,
) -> Result<()> {
    let what = format!(
        "hinted GUE ACK to {backend} (previous owner {previous_owner}) from {}",
        from.name()
    );
    let packet = hinted_ack(client, service, previous_owner).ok_or_else(|| LabError::Output {
        command: what.clone(),
        message: "mixed address families".into(),
    })?;
    from.run(|| {
        let any: IpAddr = match backend.ip() {
            IpAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
            IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
        };
        UdpSocket::bind(SocketAddr::new(any, 0))?.send_to(&packet, backend)
    })?
    .map(drop)
    .map_err(LabError::io(what))
}

/// GUE with the previous-owner hint, then an IP/TCP ACK from `client` to
/// `service` (checksums computed); `None` when the families differ.
fn hinted_ack(client: SocketAddr, service: SocketAddr, owner: IpAddr) -> Option<Vec<u8>> {
    use lb_common::flow::{FAMILY_V4, FAMILY_V6};
    let (builder, protocol) = ip_builder(client.ip(), service.ip())?;
    let hint = match owner {
        IpAddr::V4(a) => {
            let mut bytes = [0u8; 16];
            bytes[..4].copy_from_slice(&a.octets());
            (FAMILY_V4, bytes)
        }
        IpAddr::V6(a) => (FAMILY_V6, a.octets()),
    };
    let mut out = vec![0u8; 64];
    let len = lb_common::gue::emit_gue(&mut out, protocol, Some(hint))?;
    out.truncate(len);
    builder
        .tcp(client.port(), service.port(), 0x1000_0000, 64240)
        .ack(0x2000_0000)
        .write(&mut out, b"ping\n")
        .ok()?;
    Some(out)
}

/// An etherparse builder from `client` to `service` and the GUE inner
/// protocol for it; `None` when the families differ.
fn ip_builder(
    client: IpAddr,
    service: IpAddr,
) -> Option<(etherparse::PacketBuilderStep<etherparse::IpHeaders>, u8)> {
    use etherparse::PacketBuilder;
    use lb_common::gue::{GUE_PROTO_IPV4, GUE_PROTO_IPV6};
    Some(match (client, service) {
        (IpAddr::V4(c), IpAddr::V4(s)) => (
            PacketBuilder::ipv4(c.octets(), s.octets(), 64),
            GUE_PROTO_IPV4,
        ),
        (IpAddr::V6(c), IpAddr::V6(s)) => (
            PacketBuilder::ipv6(c.octets(), s.octets(), 64),
            GUE_PROTO_IPV6,
        ),
        _ => return None,
    })
}

/// A GUE header (no hint) followed by an IP/UDP packet from `client:port` to
/// `service` with `payload` (checksums computed); `None` when the families differ.
fn gue_request(client: IpAddr, port: u16, service: SocketAddr, payload: &[u8]) -> Option<Vec<u8>> {
    use lb_common::gue::emit_gue;
    let (builder, protocol) = ip_builder(client, service.ip())?;
    let builder = builder.udp(port, service.port());
    let mut out = vec![0u8; 4];
    let len = emit_gue(&mut out, protocol, None)?;
    out.truncate(len);
    builder.write(&mut out, payload).ok()?;
    Some(out)
}

/// Gives backend namespace `backend` a neighbour entry (state STALE: known,
/// to be confirmed on use) for its gateway, the router's `r_if` on `link`,
/// in both families, as any host that has talked to its gateway has. XDP
/// cannot resolve a neighbour: without it a backend that has sent nothing
/// yet (a fresh namespace, a backend just added) cannot hand a packet on
/// (`bpf_fib_lookup` answers "no neighbour"; the decap counts
/// `hint_forward_failed` and passes the packet up, which resets it).
pub fn seed_gateway_neighbours(
    router: &str,
    r_if: &str,
    backend: &str,
    link: LinkAddrs,
) -> Result<()> {
    let out = cmd::run_args("ip", &["-n", router, "-j", "link", "show", "dev", r_if])?;
    let info: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| LabError::Output {
            command: format!("ip -n {router} -j link show dev {r_if}"),
            message: e.to_string(),
        })?;
    let Some(mac) = info[0]["address"].as_str() else {
        return Err(LabError::Output {
            command: format!("ip -n {router} -j link show dev {r_if}"),
            message: format!("no address in {info}"),
        });
    };
    for gateway in [link.router_v4().to_string(), link.router_v6().to_string()] {
        cmd::ip_in(
            backend,
            &[
                "neigh",
                "replace",
                &gateway,
                "lladdr",
                mac,
                "dev",
                super::topology::BACKEND_IFACE,
                "nud",
                "stale",
            ],
        )?;
    }
    Ok(())
}
