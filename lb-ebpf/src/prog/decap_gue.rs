//! `lb_decap`'s GUE stage: UDP to a configured GUE port, addressed to this
//! host, carrying a variant-0 GUE header (`lb_common::gue`). Strips outer IP +
//! UDP + GUE (private data included) and passes the inner packet up, unless
//! the header carries a previous-owner hint and the second-chance rule
//! (`second_chance`) forwards the packet instead.
//!
//! Malformed GUE to this host (outer fragment, version other than 0, control
//! message, non-zero flags, Hlen or UDP length beyond the packet, inner
//! protocol not IPv4/IPv6 or not matching the inner header's version) is
//! dropped and counted `GueMalformed`: the port is lb's, so nothing else on the
//! host can want it, and passing it up would only make the stack answer ICMP
//! port unreachable. UDP to other ports, or to a GUE port of another host,
//! passes unchanged (the latter counted `Passed`, as for IPIP).

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use lb_common::{
    DecapCounter,
    flow::{FAMILY_V4, FAMILY_V6},
    gue::{
        GUE_BASE_LEN, GUE_PROTO_IPV4, GUE_PROTO_IPV6, GueHeader, HINT_HEAD_LEN,
        HINT_KIND_PREVIOUS_OWNER, HINT_MAGIC, HintHeader,
    },
};
use lb_ebpf::{
    Packet,
    keys::decap_key,
    wire::{
        ethernet::{ETH_LEN, ETH_P_IP, ETH_P_IPV6, EthHdr},
        udp::{UDP_LEN, UdpHdr},
    },
};

use crate::{
    maps::{DECAP_ADDRS, DECAP_GUE_PORTS},
    prog::{
        counters::count_decap,
        decap::strip,
        second_chance::{self, Decision},
    },
};

/// The outer IP header of a UDP packet, as read by `decap::run`.
pub struct OuterIp {
    /// [`FAMILY_V4`] or [`FAMILY_V6`].
    pub family: u8,
    /// Bytes of the outer IP header (IPv4 options included).
    pub header_len: usize,
    /// The outer destination (IPv4 in word 0), network order.
    pub local: [u32; 4],
    /// IPv4: DSCP/ECN byte; IPv6: unused.
    pub tos: u8,
    /// IPv4: the DF bit of `frag_off` (network order); IPv6: unused.
    pub df: u16,
    /// IPv6: the version/traffic class/flow label word; IPv4: unused.
    pub first_word: u32,
    /// IPv4 fragment (MF set or offset non-zero).
    pub fragment: bool,
}

/// A GUE header checked against the packet.
pub struct Gue {
    /// UDP source and destination ports, network order.
    pub ports: (u16, u16),
    /// Bytes of the GUE header, private data included.
    pub header_len: usize,
    /// Offset of the inner IP header in the frame.
    pub inner_off: usize,
    /// Bytes of the inner packet (UDP length minus UDP and GUE headers).
    pub inner_len: usize,
    /// GUE inner protocol ([`GUE_PROTO_IPV4`] or [`GUE_PROTO_IPV6`]).
    pub inner_protocol: u8,
    /// The previous owner named by lb's hint: (family, address words).
    pub hint: Option<(u8, [u32; 4])>,
}

/// Whether `dst_port` (network order) is one of the configured GUE ports.
#[inline(always)]
fn is_gue_port(dst_port: u16) -> bool {
    // SAFETY: `&DECAP_GUE_PORTS` is a valid, aligned reference to a static
    // array of integers; the read is volatile only so that the compiler does
    // not fold in the default the loader rewrites.
    let ports = unsafe { core::ptr::read_volatile(&DECAP_GUE_PORTS) };
    let mut i = 0;
    while i < ports.len() {
        if ports[i] != 0 && ports[i] == dst_port {
            return true;
        }
        i += 1;
    }
    false
}

/// Whether `addr` of `family` is one of this host's decapsulation addresses.
#[inline(always)]
pub fn is_local(family: u8, addr: &[u32; 4]) -> bool {
    let key = decap_key(addr, family);
    DECAP_ADDRS.get_ptr(key).is_some()
}

/// Handles a UDP packet whose outer IP header is `outer`.
#[inline(always)]
pub fn run(ctx: &XdpContext, pkt: &Packet, e: &EthHdr, outer: &OuterIp) -> u32 {
    let l4 = ETH_LEN + outer.header_len;
    let Some(udp) = pkt.view::<UdpHdr>(l4) else {
        return xdp_action::XDP_PASS;
    };
    let (src_port, dst_port, udp_len) = (udp.src_port(), udp.dst_port(), udp.len());
    if !is_gue_port(dst_port) {
        return xdp_action::XDP_PASS;
    }
    if !is_local(outer.family, &outer.local) {
        count_decap(DecapCounter::Passed);
        return xdp_action::XDP_PASS;
    }
    let Some(gue) = parse(pkt, l4, (src_port, dst_port), u16::from_be(udp_len), outer) else {
        count_decap(DecapCounter::GueMalformed);
        return xdp_action::XDP_DROP;
    };
    if gue.hint.is_some() {
        match second_chance::decide(ctx, pkt, &gue, outer) {
            Decision::Forward => {
                if let Some(action) = second_chance::forward(ctx, &gue, outer) {
                    count_decap(DecapCounter::SecondChanceForwarded);
                    return action;
                }
                count_decap(DecapCounter::HintForwardFailed);
            }
            Decision::CannotForward => count_decap(DecapCounter::HintForwardFailed),
            Decision::PassLocal => count_decap(DecapCounter::HintPassedLocal),
        }
    }
    let inner_type = if gue.inner_protocol == GUE_PROTO_IPV4 {
        ETH_P_IP
    } else {
        ETH_P_IPV6
    };
    let counter = if outer.family == FAMILY_V4 {
        DecapCounter::GueV4
    } else {
        DecapCounter::GueV6
    };
    strip(
        ctx,
        pkt,
        e,
        outer.header_len + UDP_LEN + gue.header_len,
        inner_type,
        counter,
    )
}

/// Checks the GUE header after the UDP header at `l4`; `None` when malformed.
#[inline(always)]
fn parse(pkt: &Packet, l4: usize, ports: (u16, u16), udp_len: u16, outer: &OuterIp) -> Option<Gue> {
    if outer.fragment {
        return None;
    }
    let gue_off = l4 + UDP_LEN;
    let first = pkt.view::<GueHeader>(gue_off)?.get();
    if first.version_c_hlen >> 5 != 0 || first.flags != 0 {
        return None;
    }
    let hlen = (first.version_c_hlen & 0x1f) as usize;
    let header_len = GUE_BASE_LEN + 4 * hlen;
    let inner_off = gue_off + header_len;
    let udp_len = udp_len as usize;
    // The UDP length must cover UDP + GUE and stay inside the frame.
    if udp_len < UDP_LEN + header_len || l4 + udp_len > pkt.len() {
        return None;
    }
    let inner_len = udp_len - UDP_LEN - header_len;
    // A 4-byte read: a one-byte bounds check compiles to `p >= end`, which
    // the verifier does not turn into a readable range.
    let version = pkt.view::<[u8; 4]>(inner_off)?.get()[0] >> 4;
    match first.protocol {
        GUE_PROTO_IPV4 if version == 4 && inner_len >= 20 => {}
        GUE_PROTO_IPV6 if version == 6 && inner_len >= 40 => {}
        _ => return None,
    }
    Some(Gue {
        ports,
        header_len,
        inner_off,
        inner_len,
        inner_protocol: first.protocol,
        hint: if hlen >= 2 {
            hint(pkt, gue_off + GUE_BASE_LEN, hlen)
        } else {
            None
        },
    })
}

/// lb's previous-owner hint in private data of `hlen` words at `off`, if the
/// private data is lb's (magic and kind) and long enough for its family;
/// foreign private data is skipped (not a hint).
#[inline(always)]
fn hint(pkt: &Packet, off: usize, hlen: usize) -> Option<(u8, [u32; 4])> {
    let head = pkt.view::<HintHeader>(off)?.get();
    if u16::from_be(head.magic) != HINT_MAGIC || head.kind != HINT_KIND_PREVIOUS_OWNER {
        return None;
    }
    let addr_off = off + HINT_HEAD_LEN;
    if head.family == FAMILY_V4 {
        let [addr] = pkt.view::<[u32; 1]>(addr_off)?.get();
        Some((FAMILY_V4, [addr, 0, 0, 0]))
    } else if head.family == FAMILY_V6 && hlen >= 5 {
        Some((FAMILY_V6, pkt.view::<[u32; 4]>(addr_off)?.get()))
    } else {
        None
    }
}
