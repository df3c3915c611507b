//! The GUE encapsulation contract between the balancer (`lb_xdp`) and the
//! backend-side decapsulator (`lb_decap`): Generic UDP Encapsulation
//! (draft-ietf-intarea-gue-09), variant 0, carrying lb's *previous owner hint*
//! in the header's private data.
//!
//! ```text
//! outer IPv4 or IPv6 (protocol 17)
//! UDP   src = gue_source_port(flow hash)  dst = configured port (DEFAULT_GUE_PORT)
//!       length = UDP header + GUE header + inner packet, checksum 0
//! GUE   byte 0: version 0 (2 bits), C 0 (1 bit), Hlen (5 bits)
//!       byte 1: inner protocol: 4 (IPv4) or 41 (IPv6)
//!       bytes 2-3: flags, 0 (no extension fields)
//! private data, only when Hlen > 0 (Hlen = 2 for an IPv4 hint, 5 for IPv6):
//!       bytes 0-1: HINT_MAGIC (network order), byte 2: HINT_KIND_PREVIOUS_OWNER,
//!       byte 3: family (FAMILY_V4 / FAMILY_V6), then the previous owner's
//!       address: 4 or 16 bytes, network order
//! inner IPv4 or IPv6 packet, unchanged
//! ```
//!
//! Hlen counts the 32-bit words after the first GUE word, so a header without a
//! hint is 4 bytes and one with a hint 12 (IPv4 owner) or 24 (IPv6 owner). The
//! outer UDP checksum is zero for both outer families (RFC 6935/6936 allow it
//! for tunnels; `lb_decap` does not check it, as Katran and GLB do not). A
//! decapsulator that does not know the hint skips it (the private data is
//! covered by Hlen), so plain GUE receivers still get the inner packet.

use crate::flow::{FAMILY_V4, FAMILY_V6};

/// Length of the first GUE word (version, C, Hlen, protocol, flags).
pub const GUE_BASE_LEN: usize = 4;
/// Default UDP destination port of GUE packets (the port Katran uses).
pub const DEFAULT_GUE_PORT: u16 = 6080;
/// First UDP source port of the per-flow range: sources are
/// `GUE_SOURCE_PORT_BASE + (hash & GUE_SOURCE_PORT_MASK)` (49152-65535).
pub const GUE_SOURCE_PORT_BASE: u16 = 49152;
/// Mask applied to the flow hash for the UDP source port.
pub const GUE_SOURCE_PORT_MASK: u16 = 0x3fff;
/// First two bytes of lb's private data (network order): "LB".
pub const HINT_MAGIC: u16 = 0x4c42;
/// Private-data kind: the address of the backend that owned the flow before
/// the last Maglev change.
pub const HINT_KIND_PREVIOUS_OWNER: u8 = 1;
/// Length of the private data's first word (magic, kind, family).
pub const HINT_HEAD_LEN: usize = 4;

/// Inner protocol value of the GUE header for an IPv4 payload.
pub const GUE_PROTO_IPV4: u8 = crate::net::PROTO_IPIP;
/// Inner protocol value of the GUE header for an IPv6 payload.
pub const GUE_PROTO_IPV6: u8 = crate::net::PROTO_IPV6;

/// The first GUE word; fields as on the wire.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GueHeader {
    /// Version (top 2 bits, 0), C (next bit, 0 = data) and Hlen (low 5 bits).
    pub version_c_hlen: u8,
    /// Inner IP protocol: [`GUE_PROTO_IPV4`] or [`GUE_PROTO_IPV6`].
    pub protocol: u8,
    /// Flags, network order; 0 (no extension fields).
    pub flags: u16,
}

/// The first word of the hint in the private data; fields as on the wire.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HintHeader {
    /// [`HINT_MAGIC`], network order.
    pub magic: u16,
    /// [`HINT_KIND_PREVIOUS_OWNER`].
    pub kind: u8,
    /// Family of the address that follows: [`FAMILY_V4`] or [`FAMILY_V6`].
    pub family: u8,
}

/// Address length of a hint for `family` (4 or 16), or `None` for another value.
pub const fn hint_address_len(family: u8) -> Option<usize> {
    match family {
        FAMILY_V4 => Some(4),
        FAMILY_V6 => Some(16),
        _ => None,
    }
}

/// The Hlen (32-bit words after the first GUE word) of a header carrying a hint
/// of `family`, or 0 for `None` (no hint).
pub const fn gue_hlen(hint_family: Option<u8>) -> u8 {
    match hint_family {
        Some(FAMILY_V4) => ((HINT_HEAD_LEN + 4) / 4) as u8,
        Some(_) => ((HINT_HEAD_LEN + 16) / 4) as u8,
        None => 0,
    }
}

/// Bytes of the whole GUE header (first word and private data) of Hlen `hlen`.
pub const fn gue_header_len(hlen: u8) -> usize {
    GUE_BASE_LEN + 4 * (hlen & 0x1f) as usize
}

/// The first GUE word for an inner `inner_protocol` and Hlen `hlen`.
pub const fn gue_header(inner_protocol: u8, hlen: u8) -> GueHeader {
    GueHeader {
        version_c_hlen: hlen & 0x1f,
        protocol: inner_protocol,
        flags: 0,
    }
}

/// Bytes GUE adds in front of the inner packet for outer family `family`
/// (20-byte IPv4 or 40-byte IPv6 header, 8-byte UDP header, the GUE header)
/// with or without a hint (whose address is of the same family).
pub const fn gue_overhead(family: u8, with_hint: bool) -> usize {
    let ip = if family == FAMILY_V4 { 20 } else { 40 };
    let hint = if with_hint { gue_hlen(Some(family)) } else { 0 };
    ip + 8 + gue_header_len(hint)
}

/// The outer UDP source port (host order) of a flow with hash `flow_hash`:
/// flows to one backend spread over 16,384 ports, so the backend NIC's RSS and
/// the routers' ECMP spread them too.
pub const fn gue_source_port(flow_hash: u32) -> u16 {
    GUE_SOURCE_PORT_BASE + ((flow_hash as u16) & GUE_SOURCE_PORT_MASK)
}

/// Writes the GUE header (first word and, with `hint`, the private data) into
/// the start of `out` and returns its length; `None` when `out` is too short
/// or the hint's family is unknown. `hint` is (family, address bytes in network
/// order; IPv4 in the first 4).
pub fn emit_gue(out: &mut [u8], inner_protocol: u8, hint: Option<(u8, [u8; 16])>) -> Option<usize> {
    let hlen = match hint {
        Some((family, _)) => {
            hint_address_len(family)?;
            gue_hlen(Some(family))
        }
        None => 0,
    };
    let len = gue_header_len(hlen);
    let out = out.get_mut(..len)?;
    out[0] = hlen;
    out[1] = inner_protocol;
    out[2] = 0;
    out[3] = 0;
    if let Some((family, addr)) = hint {
        let addr_len = hint_address_len(family)?;
        out[4..6].copy_from_slice(&HINT_MAGIC.to_be_bytes());
        out[6] = HINT_KIND_PREVIOUS_OWNER;
        out[7] = family;
        out[8..8 + addr_len].copy_from_slice(&addr[..addr_len]);
    }
    Some(len)
}

/// A GUE header read back: inner protocol, total header length and the hint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedGue {
    /// Inner IP protocol.
    pub inner_protocol: u8,
    /// Bytes of the GUE header, private data included.
    pub header_len: usize,
    /// The previous owner (family, address bytes; IPv4 in the first 4), when
    /// the private data carries lb's hint.
    pub hint: Option<(u8, [u8; 16])>,
}

/// Reads a GUE header at the start of `bytes` (host-side reference decoder;
/// the datapath has its own bounded reader of the same format). `None` for a
/// version other than 0, a control message, flags or a truncated header.
pub fn parse_gue(bytes: &[u8]) -> Option<ParsedGue> {
    let first = bytes.get(..GUE_BASE_LEN)?;
    if first[0] >> 5 != 0 || first[2] != 0 || first[3] != 0 {
        return None;
    }
    let hlen = first[0] & 0x1f;
    let header_len = gue_header_len(hlen);
    let private = bytes.get(GUE_BASE_LEN..header_len)?;
    let mut hint = None;
    if private.len() >= HINT_HEAD_LEN
        && u16::from_be_bytes([private[0], private[1]]) == HINT_MAGIC
        && private[2] == HINT_KIND_PREVIOUS_OWNER
    {
        let family = private[3];
        if let Some(addr_len) = hint_address_len(family)
            && let Some(raw) = private.get(HINT_HEAD_LEN..HINT_HEAD_LEN + addr_len)
        {
            let mut addr = [0u8; 16];
            addr[..addr_len].copy_from_slice(raw);
            hint = Some((family, addr));
        }
    }
    Some(ParsedGue {
        inner_protocol: first[1],
        header_len,
        hint,
    })
}

const _: () = assert!(core::mem::size_of::<GueHeader>() == GUE_BASE_LEN);
const _: () = assert!(core::mem::size_of::<HintHeader>() == HINT_HEAD_LEN);
const _: () = assert!(gue_header_len(gue_hlen(Some(FAMILY_V4))) == 12);
const _: () = assert!(gue_header_len(gue_hlen(Some(FAMILY_V6))) == 24);
const _: () = assert!(gue_overhead(FAMILY_V4, false) == 32);
const _: () = assert!(gue_overhead(FAMILY_V4, true) == 40);
const _: () = assert!(gue_overhead(FAMILY_V6, false) == 52);
const _: () = assert!(gue_overhead(FAMILY_V6, true) == 72);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_without_hint_is_one_word() {
        let mut out = [0xffu8; 32];
        assert_eq!(emit_gue(&mut out, GUE_PROTO_IPV4, None), Some(4));
        assert_eq!(out[..4], [0, 4, 0, 0]);
        let parsed = parse_gue(&out[..4]).unwrap();
        assert_eq!(parsed.header_len, 4);
        assert_eq!(parsed.hint, None);
    }

    #[test]
    fn ipv4_hint_round_trips_byte_exact() {
        let mut out = [0u8; 32];
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&[198, 18, 2, 10]);
        let len = emit_gue(&mut out, GUE_PROTO_IPV4, Some((FAMILY_V4, addr))).unwrap();
        assert_eq!(len, 12);
        assert_eq!(out[..12], [2, 4, 0, 0, 0x4c, 0x42, 1, 4, 198, 18, 2, 10]);
        let parsed = parse_gue(&out[..12]).unwrap();
        assert_eq!(parsed.hint, Some((FAMILY_V4, addr)));
        assert_eq!(parsed.inner_protocol, GUE_PROTO_IPV4);
    }

    #[test]
    fn ipv6_hint_round_trips() {
        let mut out = [0u8; 32];
        let addr = [0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11];
        let len = emit_gue(&mut out, GUE_PROTO_IPV6, Some((FAMILY_V6, addr))).unwrap();
        assert_eq!(len, 24);
        assert_eq!(out[0], 5);
        assert_eq!(parse_gue(&out[..24]).unwrap().hint, Some((FAMILY_V6, addr)));
        assert_eq!(parse_gue(&out[..23]), None, "truncated private data");
    }

    #[test]
    fn foreign_private_data_is_skipped_not_a_hint() {
        let bytes = [1, 4, 0, 0, 0xde, 0xad, 0xbe, 0xef];
        let parsed = parse_gue(&bytes).unwrap();
        assert_eq!((parsed.header_len, parsed.hint), (8, None));
        assert_eq!(
            parse_gue(&[0x40, 4, 0, 0]),
            None,
            "version 1 is not variant 0"
        );
        assert_eq!(
            parse_gue(&[0x20, 4, 0, 0]),
            None,
            "control messages are not data"
        );
    }

    #[test]
    fn source_ports_stay_in_the_ephemeral_range() {
        assert_eq!(gue_source_port(0), 49152);
        assert_eq!(gue_source_port(u32::MAX), 65535);
        assert_ne!(gue_source_port(1), gue_source_port(2));
    }
}
