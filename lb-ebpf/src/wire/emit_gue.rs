//! The UDP and GUE headers of a GUE-encapsulated packet, with lb's
//! previous-owner hint in the GUE private data (`lb_common::gue`). The outer
//! IP header before them is written by [`super::emit_ipv4`] (IPv4) or set
//! whole (IPv6) by the encapsulation stage.
//!
//! Each `emit_*` writes at a byte offset of a [`Packet`] through checked
//! views and returns `false` when the header does not fit. The same
//! functions run in the XDP program and in host unit tests on byte arrays.

use lb_common::flow::{FAMILY_V4, FAMILY_V6};
use lb_common::gue::{
    GueHeader, HINT_KIND_PREVIOUS_OWNER, HINT_MAGIC, HintHeader, gue_header, gue_hlen,
};

use crate::wire::{packet::Packet, udp::UdpHdr};

/// Writes a UDP header at `off`: source port `src_port` (host order),
/// destination `dst_port` (network order), `len` bytes (header included),
/// checksum 0 (RFC 6935/6936, as GUE tunnels do).
#[inline(always)]
pub fn emit_udp(pkt: &Packet, off: usize, src_port: u16, dst_port: u16, len: usize) -> bool {
    let Some(udp) = pkt.view::<UdpHdr>(off) else {
        return false;
    };
    udp.set(UdpHdr {
        src_port: src_port.to_be(),
        dst_port,
        len: (len as u16).to_be(),
        check: 0,
    });
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
pub struct HintV4 {
    /// Magic, kind, family.
    pub head: HintHeader,
    /// The previous owner, network order.
    pub addr: u32,
}

/// The private data of a GUE header with an IPv6 hint.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HintV6 {
    /// Magic, kind, family.
    pub head: HintHeader,
    /// The previous owner, network-order words.
    pub addr: [u32; 4],
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
    let Some(first) = pkt.view::<GueHeader>(off) else {
        return false;
    };
    let private = off + core::mem::size_of::<GueHeader>();
    let hlen = match hint {
        Hint::None => 0,
        Hint::V4(addr) => {
            let Some(p) = pkt.view::<HintV4>(private) else {
                return false;
            };
            p.set(HintV4 {
                head: hint_header(FAMILY_V4),
                addr: *addr,
            });
            gue_hlen(Some(FAMILY_V4))
        }
        Hint::V6(addr) => {
            let Some(p) = pkt.view::<HintV6>(private) else {
                return false;
            };
            p.set(HintV6 {
                head: hint_header(FAMILY_V6),
                addr: *addr,
            });
            gue_hlen(Some(FAMILY_V6))
        }
    };
    first.set(gue_header(inner_protocol, hlen));
    true
}

#[cfg(test)]
mod tests;
