//! What every fuzzed frame must satisfy, whatever its bytes: an allowed
//! action; exactly one terminal counter moved (the counter identity), and the
//! one that goes with the action; a frame not addressed to a VIP passed
//! byte-identical; every transmitted frame well-formed (encapsulations with a
//! valid outer header, IPIP or GUE as the backend's service asks, and the
//! original packet intact inside; ICMP answers with valid checksums quoting
//! the original).

use std::net::IpAddr;

use lb_common::GlobalCounter as G;
use lb_common::flow::{FAMILY_V4, FAMILY_V6};
use lb_common::gue::{DEFAULT_GUE_PORT, GUE_SOURCE_PORT_BASE, parse_gue};

use crate::frames::{EGRESS_MAC, GATEWAY_MAC, NEXT_HOP_MAC};
use crate::harness::{LB_SOURCE_V4, LB_SOURCE_V6, XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX};

use super::generate::destination;
use super::setup::{
    GUE_BACKENDS, JUMBO_BACKEND_MTU, SECOND_CHANCE_BACKENDS, VIP4_WILD, backend_among, backends,
    vips,
};

/// Counters of which every frame moves exactly one.
pub const TERMINAL: [G; 12] = [
    G::PassNotVip,
    G::DropMalformed,
    G::DropFragment,
    G::DropTooBig,
    G::DropNoBackend,
    G::DropNoSource,
    G::DropNoRoute,
    G::DropInternal,
    G::PassUnsupported,
    G::Tx,
    G::Redirect,
    G::IcmpEchoReply,
];

/// The Internet checksum of `data` with `initial` (a partial sum) folded in.
pub fn checksum(data: &[u8], initial: u64) -> u16 {
    let mut sum = initial;
    for pair in data.chunks(2) {
        let word = if pair.len() == 2 {
            u16::from_be_bytes([pair[0], pair[1]])
        } else {
            u16::from_be_bytes([pair[0], 0])
        };
        sum += u64::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// True when `data` (checksum field included) sums to zero.
fn sums_to_zero(data: &[u8], initial: u64) -> bool {
    checksum(data, initial) == 0
}

/// The IPv6 pseudo-header sum of `src`, `dst`, `len` and `next`.
fn pseudo6(src: &[u8], dst: &[u8], len: usize, next: u8) -> u64 {
    let mut sum = 0u64;
    for pair in src.chunks(2).chain(dst.chunks(2)) {
        sum += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    sum + (len as u64 >> 16) + (len as u64 & 0xffff) + u64::from(next)
}

/// The one result of running a frame.
pub struct Outcome<'a> {
    /// The frame given.
    pub input: &'a [u8],
    /// The action returned.
    pub action: u32,
    /// The frame after the program.
    pub output: &'a [u8],
    /// Every global counter's change, in [`G::ALL`] order.
    pub moved: &'a [u64],
}

impl Outcome<'_> {
    fn moved(&self, c: G) -> u64 {
        self.moved[c as usize]
    }
}

/// Checks one outcome; `Err` says what is wrong. `Ok` gives the terminal counter.
pub fn check(o: &Outcome<'_>) -> Result<G, String> {
    if ![XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT].contains(&o.action) {
        return Err(format!("action {} is not an allowed one", o.action));
    }
    let terminal: Vec<G> = TERMINAL
        .iter()
        .copied()
        .filter(|&c| o.moved(c) != 0)
        .collect();
    let [t] = terminal[..] else {
        return Err(format!(
            "terminal counters moved: {terminal:?} (exactly one must)"
        ));
    };
    if let Some((c, n)) = G::ALL
        .iter()
        .map(|&c| (c, o.moved(c)))
        .find(|&(_, n)| n > 1)
    {
        return Err(format!("{c:?} moved by {n} for one frame"));
    }
    let is_vip = destination(o.input).is_some_and(|d| vips().contains(&d));
    if !is_vip && (o.action != XDP_PASS || t != G::PassNotVip) {
        return Err(format!(
            "not addressed to a VIP, yet action {} / {t:?}",
            o.action
        ));
    }
    match (t, o.action) {
        (G::PassNotVip | G::PassUnsupported, XDP_PASS) => {
            if o.output != o.input {
                return Err("passed, but changed".into());
            }
        }
        (
            G::DropMalformed
            | G::DropFragment
            | G::DropNoBackend
            | G::DropNoSource
            | G::DropNoRoute
            | G::DropInternal
            | G::DropTooBig,
            XDP_DROP,
        ) => {}
        (G::DropTooBig, XDP_TX) if o.moved(G::IcmpTooBigSent) == 1 => too_big_ok(o)?,
        (G::Tx, XDP_TX) | (G::Redirect, XDP_REDIRECT) => encapsulated_ok(o)?,
        (G::IcmpEchoReply, XDP_TX) => echo_reply_ok(o)?,
        (t, a) => return Err(format!("action {a} does not go with {t:?}")),
    }
    if o.moved(G::IcmpTooBigSent) == 1 && o.action != XDP_TX {
        return Err("IcmpTooBigSent counted without a transmitted answer".into());
    }
    Ok(t)
}

fn backend_address(a: IpAddr) -> bool {
    backends().iter().any(|&(_, b)| b == a)
}

/// An encapsulation: MACs of a known next hop, a valid outer header from the
/// load balancer to a backend, GUE (UDP to the GUE port from a per-flow port,
/// a GUE header, with a hint only toward the service that has a previous
/// table, naming its other backend) exactly when that backend's service asks
/// for it, and the original IP packet intact inside.
fn encapsulated_ok(o: &Outcome<'_>) -> Result<(), String> {
    let (inp, out) = (o.input, o.output);
    let macs = (&out[0..6], &out[6..12]);
    if macs != (&NEXT_HOP_MAC[..], &EGRESS_MAC[..])
        && macs != (&GATEWAY_MAC[..], &crate::frames::LB_MAC[..])
    {
        return Err(format!("encapsulated with unknown MACs {macs:02x?}"));
    }
    let inner_version = inp.get(14).map(|b| b >> 4);
    let (ip_len, inner_proto) = match inner_version {
        Some(4) => (20, 4),
        Some(6) => (40, 41),
        v => return Err(format!("encapsulated a non-IP packet (version {v:?})")),
    };
    if out[12..14] != inp[12..14] {
        return Err("outer ethertype differs from the inner family".into());
    }
    let h = out
        .get(14..14 + ip_len)
        .ok_or("no room for the outer header")?;
    // The outer header's payload length (what UDP's length must say for GUE).
    let (outer_proto, payload) = if ip_len == 20 {
        (
            h[9],
            usize::from(u16::from_be_bytes([h[2], h[3]])).saturating_sub(20),
        )
    } else {
        (h[6], usize::from(u16::from_be_bytes([h[4], h[5]])))
    };
    let gue = outer_proto == 17;
    let (gue_len, hint) = if gue {
        gue_ok(&out[14 + ip_len..], inner_proto, payload)?
    } else {
        (0, None)
    };
    if o.moved(G::SecondChancePackets) != u64::from(hint.is_some()) {
        return Err(format!(
            "hint {hint:?}, but second_chance_packets moved by {}",
            o.moved(G::SecondChancePackets)
        ));
    }
    if o.moved(G::GueEncapsulated) != u64::from(gue) {
        return Err(format!(
            "GUE {gue}, but gue_encapsulated moved by {}",
            o.moved(G::GueEncapsulated)
        ));
    }
    let outer_len = ip_len + gue_len;
    if out.len() != inp.len() + outer_len || out[14 + outer_len..] != inp[14..] {
        return Err("the inner packet is not the original one".into());
    }
    let room = out.len() - 14;
    let next = if gue { 17 } else { inner_proto };
    let dst = if ip_len == 20 {
        let tot = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let dst = IpAddr::from(<[u8; 4]>::try_from(&h[16..20]).unwrap());
        if h[0] != 0x45 || h[9] != next || h[8] != 64 {
            return Err(format!("outer IPv4 header {h:02x?}"));
        }
        if !sums_to_zero(h, 0) {
            return Err("outer IPv4 header checksum invalid".into());
        }
        if tot > room || tot < 40 || h[12..16] != LB_SOURCE_V4.octets() || !backend_address(dst) {
            return Err(format!(
                "outer IPv4 length {tot} (room {room}) or addresses {h:02x?}"
            ));
        }
        dst
    } else {
        let plen = usize::from(u16::from_be_bytes([h[4], h[5]]));
        let dst = IpAddr::from(<[u8; 16]>::try_from(&h[24..40]).unwrap());
        if h[0] >> 4 != 6 || h[6] != next || h[7] != 64 {
            return Err(format!("outer IPv6 header {h:02x?}"));
        }
        if plen + 40 > room
            || plen < 40
            || h[8..24] != LB_SOURCE_V6.octets()
            || !backend_address(dst)
        {
            return Err(format!(
                "outer IPv6 length {plen} (room {room}) or addresses"
            ));
        }
        dst
    };
    if gue != backend_among(dst, &GUE_BACKENDS) {
        return Err(format!(
            "backend {dst} reached {} GUE",
            if gue { "through" } else { "without" }
        ));
    }
    if let Some(h) = hint
        && (h == dst
            || !backend_among(h, &SECOND_CHANCE_BACKENDS)
            || !backend_among(dst, &SECOND_CHANCE_BACKENDS))
    {
        return Err(format!("GUE to {dst} names {h} as the previous owner"));
    }
    Ok(())
}

/// The UDP and GUE headers at the start of `b` (after the outer IP header,
/// whose payload is `payload` bytes) for an inner packet of protocol
/// `inner_proto`: their length and the hint's address, if any.
fn gue_ok(b: &[u8], inner_proto: u8, payload: usize) -> Result<(usize, Option<IpAddr>), String> {
    let udp = b.get(..8).ok_or("GUE frame without a UDP header")?;
    let src = u16::from_be_bytes([udp[0], udp[1]]);
    let dst = u16::from_be_bytes([udp[2], udp[3]]);
    let len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if src < GUE_SOURCE_PORT_BASE
        || dst != DEFAULT_GUE_PORT
        || len != payload
        || udp[6..8] != [0, 0]
    {
        return Err(format!(
            "GUE's UDP header {udp:02x?} (outer payload {payload})"
        ));
    }
    let g = parse_gue(&b[8..]).ok_or("not a GUE header")?;
    let hint = match g.hint {
        None if g.header_len == 4 => None,
        Some((FAMILY_V4, a)) if g.header_len == 12 => {
            Some(IpAddr::from(<[u8; 4]>::try_from(&a[..4]).unwrap()))
        }
        Some((FAMILY_V6, a)) if g.header_len == 24 => Some(IpAddr::from(a)),
        _ => return Err(format!("GUE header {g:?}")),
    };
    if g.inner_protocol != inner_proto {
        return Err(format!("GUE header {g:?} around protocol {inner_proto}"));
    }
    Ok((8 + g.header_len, hint))
}

/// MACs swapped, addresses swapped, the rest of the message unchanged.
fn reply_addressing_ok(inp: &[u8], out: &[u8], v4: bool) -> Result<(), String> {
    let headers = if v4 { 34 } else { 54 };
    if inp.len() < headers || out.len() < headers {
        return Err("an answer to a frame shorter than its headers".into());
    }
    if out[0..6] != inp[6..12] || out[6..12] != inp[0..6] {
        return Err("answer's MACs are not the request's swapped".into());
    }
    let (s, d) = if v4 {
        (26..30, 30..34)
    } else {
        (22..38, 38..54)
    };
    if out[s.clone()] != inp[d.clone()] || out[d] != inp[s] {
        return Err("answer's addresses are not the request's swapped".into());
    }
    Ok(())
}

/// An echo reply: same length and payload, checksums still valid when the
/// request's were (incremental updates keep them).
fn echo_reply_ok(o: &Outcome<'_>) -> Result<(), String> {
    let (inp, out) = (o.input, o.output);
    if out.len() != inp.len() {
        return Err("echo reply of another length".into());
    }
    let v4 = inp[14] >> 4 == 4;
    reply_addressing_ok(inp, out, v4)?;
    if v4 {
        let ihl = usize::from(inp[14] & 0x0f) * 4;
        let tot = usize::from(u16::from_be_bytes([inp[16], inp[17]]));
        let l4 = 14 + ihl;
        if ihl < 20 || l4 + 8 > out.len() {
            return Err(format!("echo reply to a request with IHL {ihl}"));
        }
        if out[l4] != 0 || out[l4 + 4..] != inp[l4 + 4..] {
            return Err("echo reply type or payload wrong".into());
        }
        if sums_to_zero(&inp[14..l4], 0) && !sums_to_zero(&out[14..l4], 0) {
            return Err("echo reply IPv4 header checksum invalid".into());
        }
        let end = (14 + tot).min(out.len());
        if l4 < end && sums_to_zero(&inp[l4..end], 0) && !sums_to_zero(&out[l4..end], 0) {
            return Err("echo reply ICMP checksum invalid".into());
        }
    } else {
        let plen = usize::from(u16::from_be_bytes([inp[18], inp[19]]));
        if out[54] != 129 || out[58..] != inp[58..] {
            return Err("echo reply type or payload wrong".into());
        }
        let end = (54 + plen).min(out.len());
        let sum =
            |f: &[u8]| sums_to_zero(&f[54..end], pseudo6(&f[22..38], &f[38..54], end - 54, 58));
        if sum(inp) && !sum(out) {
            return Err("echo reply ICMPv6 checksum invalid".into());
        }
    }
    Ok(())
}

/// A "fragmentation needed" / "packet too big" answer: fresh valid headers
/// and checksums, quoting the start of the original packet.
fn too_big_ok(o: &Outcome<'_>) -> Result<(), String> {
    let (inp, out) = (o.input, o.output);
    let v4 = out.get(12..14) == Some(&[0x08, 0x00]);
    if out.len() < 14 + 48 {
        return Err("too-big answer too short".into());
    }
    reply_addressing_ok(inp, out, v4)?;
    let mtus = [1500, JUMBO_BACKEND_MTU];
    let announced = |mtu: u32| {
        mtus.iter()
            .any(|m| overheads(inp, v4).iter().any(|o| m - o == mtu))
    };
    if v4 {
        let h = &out[14..34];
        let tot = usize::from(u16::from_be_bytes([h[2], h[3]]));
        if h[0] != 0x45 || h[9] != 1 || tot != out.len() - 14 || !sums_to_zero(h, 0) {
            return Err(format!("too-big IPv4 header {h:02x?}"));
        }
        let icmp = &out[34..];
        let mtu = u32::from(u16::from_be_bytes([icmp[6], icmp[7]]));
        if icmp[0..2] != [3, 4] || !announced(mtu) {
            return Err(format!("too-big ICMP type/code/MTU {:02x?}", &icmp[..8]));
        }
        if !sums_to_zero(icmp, 0) {
            return Err("too-big ICMP checksum invalid".into());
        }
        let quote = usize::from(inp[14] & 0x0f) * 4 + 8;
        if inp.get(14..14 + quote) != Some(&icmp[8..]) {
            return Err("too-big quote is not the original header + 8 bytes".into());
        }
    } else {
        let h = &out[14..54];
        let plen = usize::from(u16::from_be_bytes([h[4], h[5]]));
        if h[0] >> 4 != 6 || h[6] != 58 || plen != out.len() - 54 {
            return Err(format!("too-big IPv6 header {h:02x?}"));
        }
        let icmp = &out[54..];
        let mtu = u32::from_be_bytes(icmp[4..8].try_into().unwrap());
        if icmp[0..2] != [2, 0] || !announced(mtu) {
            return Err(format!("too-big ICMPv6 type/code/MTU {:02x?}", &icmp[..8]));
        }
        if !sums_to_zero(icmp, pseudo6(&h[8..24], &h[24..40], icmp.len(), 58)) {
            return Err("too-big ICMPv6 checksum invalid".into());
        }
        if inp.get(14..14 + 48) != Some(&icmp[8..]) {
            return Err("too-big quote is not the original header + 8 bytes".into());
        }
    }
    Ok(())
}

/// The encapsulation overheads a too-big answer to `inp` may take off the
/// MTU: GUE's for a UDP packet (the UDP services use GUE), IPIP's for a TCP
/// one, except to VIP4_WILD (GUE, with or without the hint), any for an ICMP
/// error (about a flow of any kind).
fn overheads(inp: &[u8], v4: bool) -> &'static [u32] {
    let protocol = inp.get(if v4 { 14 + 9 } else { 14 + 6 }).copied();
    let wild = destination(inp) == Some(VIP4_WILD.into());
    match (v4, protocol) {
        (true, Some(17)) => &[32],
        (true, Some(6)) if wild => &[32, 40],
        (true, Some(6)) => &[20],
        (true, _) => &[20, 32, 40],
        (false, Some(17)) => &[52],
        (false, Some(6)) => &[40],
        (false, _) => &[40, 52],
    }
}
