//! Writing encapsulation headers into a frame: the outer IPv4 header (with
//! its checksum), the outer IPv6 header, the UDP header and the GUE header
//! with lb's previous-owner hint (`lb_common::gue`).
//!
//! Each `emit_*` writes one header at a byte offset of a [`Packet`] and
//! returns `false` when it does not fit. The same functions run in the XDP
//! program (on packet pointers, every store bounds-checked for the verifier)
//! and in host unit tests on byte arrays.

use lb_common::flow::{FAMILY_V4, FAMILY_V6};
use lb_common::gue::{
    GueHeader, HINT_KIND_PREVIOUS_OWNER, HINT_MAGIC, HintHeader, gue_header, gue_hlen,
};

use crate::checksum::fold;
use crate::wire::{
    ipv4::{IPV4_LEN, Ipv4Hdr},
    ipv6::Ipv6Hdr,
    packet::{Packet, store},
    udp::UdpHdr,
};

/// Outer TTL / hop limit of encapsulated packets.
pub const OUTER_TTL: u8 = 64;

/// The fields of an outer IPv4 header that vary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OuterV4 {
    /// DSCP and ECN (copied from the inner header).
    pub tos: u8,
    /// `frag_off`, network order: the inner header's DF bit or 0.
    pub frag_off: u16,
    /// Payload protocol: 4 (IPIP) or 17 (UDP, for GUE).
    pub protocol: u8,
    /// Bytes after the outer header.
    pub payload_len: usize,
    /// Source address, network order.
    pub src: u32,
    /// Destination address, network order.
    pub dst: u32,
}

/// The outer IPv4 header of `o`: version 4, IHL 5, id 0, TTL [`OUTER_TTL`],
/// checksum computed.
#[inline(always)]
pub fn outer_ipv4(o: &OuterV4) -> Ipv4Hdr {
    let tot_len = ((o.payload_len + IPV4_LEN) as u16).to_be();
    let w0 = u16::from_ne_bytes([0x45, o.tos]);
    let w4 = u16::from_ne_bytes([OUTER_TTL, o.protocol]);
    let sum = u64::from(w0)
        + u64::from(tot_len)
        + u64::from(o.frag_off)
        + u64::from(w4)
        + u64::from(o.src & 0xffff)
        + u64::from(o.src >> 16)
        + u64::from(o.dst & 0xffff)
        + u64::from(o.dst >> 16);
    Ipv4Hdr {
        version_ihl: 0x45,
        tos: o.tos,
        tot_len,
        id: 0,
        frag_off: o.frag_off,
        ttl: OUTER_TTL,
        protocol: o.protocol,
        check: !fold(sum),
        src: o.src,
        dst: o.dst,
    }
}

/// Writes the outer IPv4 header of `o` at `off`.
#[inline(always)]
pub fn emit_ipv4(pkt: &Packet, off: usize, o: &OuterV4) -> bool {
    let Some(ip) = pkt.ptr_mut_at::<Ipv4Hdr>(off) else {
        return false;
    };
    // SAFETY: in bounds.
    unsafe { store(ip, outer_ipv4(o)) };
    true
}

/// Writes an outer IPv6 header at `off`: the inner header's
/// version/class/flow-label word `first_word` (raw), `payload_len` bytes
/// after it, next header `next_hdr`, hop limit [`OUTER_TTL`].
#[inline(always)]
pub fn emit_ipv6(
    pkt: &Packet,
    off: usize,
    first_word: u32,
    payload_len: usize,
    next_hdr: u8,
    src: &[u32; 4],
    dst: &[u32; 4],
) -> bool {
    let Some(ip) = pkt.ptr_mut_at::<Ipv6Hdr>(off) else {
        return false;
    };
    let hdr = Ipv6Hdr {
        version_tc_flow: first_word,
        payload_len: (payload_len as u16).to_be(),
        next_hdr,
        hop_limit: OUTER_TTL,
        src: *src,
        dst: *dst,
    };
    // SAFETY: in bounds.
    unsafe { store(ip, hdr) };
    true
}

/// Writes a UDP header at `off`: source port `src_port` (host order),
/// destination `dst_port` (network order), `len` bytes (header included),
/// checksum 0 (RFC 6935/6936, as GUE tunnels do).
#[inline(always)]
pub fn emit_udp(pkt: &Packet, off: usize, src_port: u16, dst_port: u16, len: usize) -> bool {
    let Some(udp) = pkt.ptr_mut_at::<UdpHdr>(off) else {
        return false;
    };
    let hdr = UdpHdr {
        src_port: src_port.to_be(),
        dst_port,
        len: (len as u16).to_be(),
        check: 0,
    };
    // SAFETY: in bounds.
    unsafe { store(udp, hdr) };
    true
}

/// The previous owner named in a GUE header's private data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hint {
    /// No hint: a 4-byte GUE header.
    None,
    /// An IPv4 previous owner (network order): 12-byte GUE header.
    V4(u32),
    /// An IPv6 previous owner (network-order words): 24-byte GUE header.
    V6([u32; 4]),
}

impl Hint {
    /// Bytes of the GUE header carrying this hint.
    #[inline(always)]
    pub const fn gue_len(&self) -> usize {
        match self {
            Hint::None => 4,
            Hint::V4(_) => 12,
            Hint::V6(_) => 24,
        }
    }
}

/// The private data of a GUE header with an IPv4 hint.
#[repr(C)]
#[derive(Clone, Copy)]
struct HintV4 {
    head: HintHeader,
    addr: u32,
}

/// The private data of a GUE header with an IPv6 hint.
#[repr(C)]
#[derive(Clone, Copy)]
struct HintV6 {
    head: HintHeader,
    addr: [u32; 4],
}

#[inline(always)]
fn hint_header(family: u8) -> HintHeader {
    HintHeader {
        magic: HINT_MAGIC.to_be(),
        kind: HINT_KIND_PREVIOUS_OWNER,
        family,
    }
}

/// Writes a GUE header (variant 0, no flags) for an inner packet of IP
/// protocol `inner_protocol` at `off`, with `hint` in its private data.
#[inline(always)]
pub fn emit_gue(pkt: &Packet, off: usize, inner_protocol: u8, hint: &Hint) -> bool {
    let Some(first) = pkt.ptr_mut_at::<GueHeader>(off) else {
        return false;
    };
    let private = off + core::mem::size_of::<GueHeader>();
    let hlen = match hint {
        Hint::None => 0,
        Hint::V4(addr) => {
            let Some(p) = pkt.ptr_mut_at::<HintV4>(private) else {
                return false;
            };
            let value = HintV4 {
                head: hint_header(FAMILY_V4),
                addr: *addr,
            };
            // SAFETY: in bounds.
            unsafe { store(p, value) };
            gue_hlen(Some(FAMILY_V4))
        }
        Hint::V6(addr) => {
            let Some(p) = pkt.ptr_mut_at::<HintV6>(private) else {
                return false;
            };
            let value = HintV6 {
                head: hint_header(FAMILY_V6),
                addr: *addr,
            };
            // SAFETY: in bounds.
            unsafe { store(p, value) };
            gue_hlen(Some(FAMILY_V6))
        }
    };
    // SAFETY: in bounds.
    unsafe { store(first, gue_header(inner_protocol, hlen)) };
    true
}

#[cfg(test)]
mod tests;
