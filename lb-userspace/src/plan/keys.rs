//! Map keys as the planner writes them: addresses as network-order words,
//! VIPS keys and markers, protocol numbers, VIP filter words.

use std::collections::BTreeMap;
use std::net::IpAddr;

use lb_common::flow::{FAMILY_V4, FAMILY_V6};
use lb_common::{
    VIP_ADDRESS_MARKER_PROTOCOL, VipKey, service_filter_bit, vip_filter_bit, vip_filter_slot,
};

use crate::config::Protocol;
use crate::state::AppliedService;

/// The protocol's IP number.
pub fn protocol_number(protocol: Protocol) -> u8 {
    match protocol {
        Protocol::Tcp => lb_common::flow::PROTO_TCP,
        Protocol::Udp => lb_common::flow::PROTO_UDP,
    }
}

/// The protocol's name as stored in [`AppliedService::protocol`].
pub fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

/// An address as the maps store it: network-order words and family.
pub fn address_words(addr: IpAddr) -> ([u32; 4], u8) {
    match addr {
        IpAddr::V4(a) => ([u32::from_ne_bytes(a.octets()), 0, 0, 0], FAMILY_V4),
        IpAddr::V6(a) => {
            let o = a.octets();
            let mut w = [0u32; 4];
            for (i, c) in o.chunks_exact(4).enumerate() {
                w[i] = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
            }
            (w, FAMILY_V6)
        }
    }
}

/// The VIPS key of a service.
pub fn vip_key(vip: IpAddr, port: u16, protocol: u8) -> VipKey {
    let (addr, family) = address_words(vip);
    VipKey {
        addr,
        port: port.to_be(),
        protocol,
        family,
    }
}

/// The VIPS key of a VIP's address marker.
pub fn marker_key(vip: IpAddr) -> VipKey {
    vip_key(vip, 0, VIP_ADDRESS_MARKER_PROTOCOL)
}

/// An applied service as [`vip_filter_words`] takes it.
pub fn applied_filter_entry(s: &AppliedService) -> (IpAddr, u16, u8) {
    (s.vip, s.port, applied_protocol_number(s))
}

/// The IP protocol number of an applied service ("udp" or else TCP).
pub fn applied_protocol_number(s: &AppliedService) -> u8 {
    if s.protocol == protocol_name(Protocol::Udp) {
        protocol_number(Protocol::Udp)
    } else {
        protocol_number(Protocol::Tcp)
    }
}

/// The non-zero words of the VIP filter (`lb_common::vip_filter`) for the
/// services `services` (VIP, port in host order, protocol number): the bit of
/// each VIP address and the bit of each service.
pub fn vip_filter_words(
    services: impl IntoIterator<Item = (IpAddr, u16, u8)>,
) -> BTreeMap<u32, u64> {
    let mut words = BTreeMap::new();
    for (vip, port, protocol) in services {
        let (addr, family) = address_words(vip);
        for bit in [
            vip_filter_bit(&addr, family),
            service_filter_bit(&addr, port.to_be(), protocol, family),
        ] {
            let (word, mask) = vip_filter_slot(bit);
            *words.entry(word).or_default() |= mask;
        }
    }
    words
}
