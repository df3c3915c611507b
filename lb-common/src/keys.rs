//! Map keys built from addresses: the one encoding of an IP address, a
//! service and a VIP's address marker as the maps store them, used by the
//! agent's planner, its kernel layer, `lb decap`, the tests and the bench.
//!
//! `core::net` types only, so the datapath could use them too; the VIP
//! filter's word map needs `std` and is under the `user` feature.

use core::net::IpAddr;

use crate::maps::{DecapKey, VIP_ADDRESS_MARKER_PROTOCOL, VipKey};
use crate::net::{FAMILY_V4, FAMILY_V6};
use crate::vip_filter::{service_filter_bit, vip_filter_bit};

/// An address as the maps store it: network-order words (IPv4 in word 0,
/// the other words zero) and its family tag ([`FAMILY_V4`] / [`FAMILY_V6`]).
pub fn address_words(addr: IpAddr) -> ([u32; 4], u8) {
    match addr {
        IpAddr::V4(a) => ([u32::from_ne_bytes(a.octets()), 0, 0, 0], FAMILY_V4),
        IpAddr::V6(a) => {
            let o = a.octets();
            let mut w = [0u32; 4];
            for (word, c) in w.iter_mut().zip(o.chunks_exact(4)) {
                *word = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
            }
            (w, FAMILY_V6)
        }
    }
}

/// The address stored as `words` of `family` (the inverse of [`address_words`]).
pub fn words_address(words: &[u32; 4], family: u8) -> IpAddr {
    if family == FAMILY_V6 {
        let mut o = [0u8; 16];
        for (chunk, w) in o.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w.to_ne_bytes());
        }
        IpAddr::from(o)
    } else {
        IpAddr::from(words[0].to_ne_bytes())
    }
}

impl VipKey {
    /// The key of service (`vip`, `port`, `protocol`): `port` in host order
    /// (stored in network order, as the datapath reads it), 0 = every port.
    pub fn new(vip: IpAddr, port: u16, protocol: u8) -> Self {
        let (addr, family) = address_words(vip);
        Self {
            addr,
            port: port.to_be(),
            protocol,
            family,
        }
    }

    /// The key of `vip`'s address marker (port 0, protocol
    /// [`VIP_ADDRESS_MARKER_PROTOCOL`]).
    pub fn marker(vip: IpAddr) -> Self {
        Self::new(vip, 0, VIP_ADDRESS_MARKER_PROTOCOL)
    }

    /// The VIP address of the key.
    pub fn address(&self) -> IpAddr {
        words_address(&self.addr, self.family)
    }

    /// The two VIP filter bits of this service: its address's
    /// ([`vip_filter_bit`]) and its own ([`service_filter_bit`]).
    pub fn filter_bits(&self) -> [u32; 2] {
        [
            vip_filter_bit(&self.addr, self.family),
            service_filter_bit(&self.addr, self.port, self.protocol, self.family),
        ]
    }
}

impl From<IpAddr> for DecapKey {
    /// The key of a local address the decapsulator accepts.
    fn from(addr: IpAddr) -> Self {
        let (addr, family) = address_words(addr);
        Self {
            addr,
            family,
            pad: [0; 3],
        }
    }
}

/// The non-zero words of the VIP filter ([`crate::vip_filter`]) for the
/// services `keys`: the bit of each VIP address and the bit of each service,
/// by word index.
#[cfg(feature = "user")]
pub fn vip_filter_words(
    keys: impl IntoIterator<Item = VipKey>,
) -> std::collections::BTreeMap<u32, u64> {
    let mut words = std::collections::BTreeMap::new();
    for key in keys {
        for bit in key.filter_bits() {
            let (word, mask) = crate::vip_filter::vip_filter_slot(bit);
            *words.entry(word).or_default() |= mask;
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use core::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::net::PROTO_TCP;

    #[test]
    fn addresses_are_network_order_words_with_their_family() {
        let v4 = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
        let (w, family) = address_words(v4);
        assert_eq!(family, FAMILY_V4);
        assert_eq!(w[0].to_ne_bytes(), [198, 18, 0, 1]);
        assert_eq!(&w[1..], &[0, 0, 0]);
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x0102));
        let (w, family) = address_words(v6);
        assert_eq!(family, FAMILY_V6);
        assert_eq!(w[0].to_ne_bytes(), [0x20, 0x01, 0, 2]);
        assert_eq!(w[3].to_ne_bytes(), [0, 0, 1, 2]);
        assert_eq!(words_address(&w, family), v6);
        let (w, family) = address_words(v4);
        assert_eq!(words_address(&w, family), v4);
    }

    #[test]
    fn keys_store_the_port_in_network_order_and_markers_use_port_and_protocol_zero() {
        let vip = IpAddr::V4(Ipv4Addr::new(198, 18, 100, 1));
        let key = VipKey::new(vip, 80, PROTO_TCP);
        assert_eq!(key.port.to_ne_bytes(), [0, 80]);
        assert_eq!((key.protocol, key.family), (PROTO_TCP, FAMILY_V4));
        let marker = VipKey::marker(vip);
        assert_eq!((marker.port, marker.protocol), (0, 0));
        assert_eq!(marker.addr, key.addr);
        let decap = DecapKey::from(vip);
        assert_eq!(
            (decap.addr, decap.family, decap.pad),
            (key.addr, FAMILY_V4, [0; 3])
        );
    }

    #[cfg(feature = "user")]
    #[test]
    fn filter_words_hold_the_address_and_the_service_bit() {
        let key = VipKey::new(IpAddr::V4(Ipv4Addr::new(198, 18, 100, 1)), 443, PROTO_TCP);
        let words = vip_filter_words([key, key]);
        let bits: u32 = words.values().map(|w| w.count_ones()).sum();
        assert_eq!(bits, 2, "{words:?}");
        for bit in key.filter_bits() {
            let (word, mask) = crate::vip_filter::vip_filter_slot(bit);
            assert_ne!(words[&word] & mask, 0);
        }
    }
}
