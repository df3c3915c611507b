//! The VIP address filter: a bitmap the datapath checks before any hash lookup.
//!
//! Most traffic a load balancer's NIC sees on a busy host is not for a VIP (SSH,
//! the agent's own traffic, other hosts' packets). [`MAP_VIP_FILTER`] holds one
//! bit per [`vip_filter_bit`] value; the agent sets the bit of every VIP address
//! it serves (and clears bits no VIP uses any more, after the VIP is gone). A
//! clear bit proves the address is not a VIP, so the packet passes after one
//! read of the bitmap (a global of the program: a load at a fixed address,
//! no map lookup). A set bit only says "maybe": the
//! datapath goes on to its hash lookups, so collisions cost time, never
//! correctness.
//!
//! The same bitmap holds one bit per service ([`service_filter_bit`] of its
//! address, port and protocol; the port-0 wildcard service of an address has
//! the bit of port 0). A TCP/UDP packet is only looked at further when the bit
//! of its own port or of port 0 is set, so a packet to a VIP address on a port
//! no service serves also passes after two more reads, with no hash lookup
//! (connection table included).
//!
//! [`MAP_VIP_FILTER`]: crate::MAP_VIP_FILTER

use crate::flow::FAMILY_V6;

/// Words (`u64`) of the filter bitmap.
pub const VIP_FILTER_WORDS: u32 = 1024;
/// Bits of the filter bitmap.
pub const VIP_FILTER_BITS: u32 = VIP_FILTER_WORDS * 64;

// The datapath bounds a word index with a mask.
const _: () = assert!(VIP_FILTER_WORDS.is_power_of_two());

/// The filter bit of address `addr` (network-order words, IPv4 in word 0) of
/// `family`: a cheap fold of the address, in `0..VIP_FILTER_BITS`.
///
/// The fold keeps addresses that differ in any one octet of the same /16 apart
/// (the usual VIP layout: a few addresses in one prefix).
#[inline(always)]
pub fn vip_filter_bit(addr: &[u32; 4], family: u8) -> u32 {
    let mut x = addr[0];
    if family == FAMILY_V6 {
        x ^= addr[1].rotate_left(7) ^ addr[2].rotate_left(13) ^ addr[3].rotate_left(19) ^ 0x5bd1;
    }
    (x ^ (x >> 16)) & (VIP_FILTER_BITS - 1)
}

/// The filter bit of service (`addr`, `port`, `protocol`) of `family` (port in
/// network order, as in [`crate::VipKey`]): the address's fold mixed with the
/// port and protocol, in `0..VIP_FILTER_BITS`.
#[inline(always)]
pub fn service_filter_bit(addr: &[u32; 4], port: u16, protocol: u8, family: u8) -> u32 {
    let x = vip_filter_bit(addr, family) ^ 0x9e37;
    let y = (u32::from(port) | (u32::from(protocol) << 16)).wrapping_mul(0x9e37_79b1);
    (x ^ (y >> 15) ^ (y >> 3)) & (VIP_FILTER_BITS - 1)
}

/// Word index and bit mask of `bit` in the bitmap.
#[inline(always)]
pub fn vip_filter_slot(bit: u32) -> (u32, u64) {
    (bit / 64, 1u64 << (bit % 64))
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::flow::FAMILY_V4;

    fn v4(a: [u8; 4]) -> [u32; 4] {
        [u32::from_ne_bytes(a), 0, 0, 0]
    }

    #[test]
    fn bits_stay_in_range_and_are_deterministic() {
        for i in 0..=255u8 {
            let b = vip_filter_bit(&v4([198, 18, 100, i]), FAMILY_V4);
            assert!(b < VIP_FILTER_BITS);
            assert_eq!(b, vip_filter_bit(&v4([198, 18, 100, i]), FAMILY_V4));
        }
        let (word, mask) = vip_filter_slot(VIP_FILTER_BITS - 1);
        assert_eq!(word, VIP_FILTER_WORDS - 1);
        assert_eq!(mask, 1 << 63);
    }

    #[test]
    fn addresses_of_one_prefix_get_distinct_bits() {
        let mut seen = std::collections::BTreeSet::new();
        for third in 0..=255u8 {
            for fourth in [1u8, 2, 3, 200] {
                assert!(seen.insert(vip_filter_bit(&v4([198, 18, third, fourth]), FAMILY_V4)));
            }
        }
    }

    #[test]
    fn ports_of_one_address_get_distinct_bits_apart_from_the_address_bit() {
        let a = v4([198, 18, 100, 1]);
        let mut seen = std::collections::BTreeSet::new();
        seen.insert(vip_filter_bit(&a, FAMILY_V4));
        for port in [0u16, 22, 53, 80, 443, 8080, 8443, 5353] {
            for protocol in [6u8, 17] {
                let bit = service_filter_bit(&a, port.to_be(), protocol, FAMILY_V4);
                assert!(bit < VIP_FILTER_BITS);
                assert!(seen.insert(bit), "port {port} protocol {protocol}");
            }
        }
        // A few hundred services over a handful of addresses leave most of
        // the other ports' bits clear.
        let mut set = std::collections::BTreeSet::new();
        for i in 1..=8u8 {
            for port in 1..=40u16 {
                set.insert(service_filter_bit(
                    &v4([198, 18, 100, i]),
                    port.to_be(),
                    6,
                    FAMILY_V4,
                ));
            }
        }
        let unserved = (1000..2000u16)
            .filter(|p| {
                set.contains(&service_filter_bit(
                    &v4([198, 18, 100, 1]),
                    p.to_be(),
                    6,
                    FAMILY_V4,
                ))
            })
            .count();
        assert!(
            unserved < 20,
            "{unserved} of 1000 unserved ports look served"
        );
    }

    #[test]
    fn ipv6_addresses_that_differ_in_the_last_word_differ() {
        let a = [0x0200_0120u32, 0, 0, 0x0100_0000];
        let b = [0x0200_0120u32, 0, 0, 0x0200_0000];
        assert_ne!(vip_filter_bit(&a, FAMILY_V6), vip_filter_bit(&b, FAMILY_V6));
    }
}
