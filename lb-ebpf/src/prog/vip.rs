//! Service lookup and the "is this address a VIP at all" question.

use core::ptr::{addr_of, read_volatile};

use lb_common::{
    ServiceEntry, VIP_ADDRESS_MARKER_PROTOCOL, VIP_FILTER_WORDS,
    flow::{PROTO_TCP, PROTO_UDP},
    service_filter_bit, vip_filter_bit, vip_filter_slot,
};

use lb_ebpf::keys::vip_key;

use crate::maps::{VIP_FILTER, VIPS};

/// False when `addr` is certainly not a VIP (its filter bit is clear): one
/// read of the bitmap at a fixed address instead of hash lookups. True
/// means "maybe".
#[inline(always)]
pub fn maybe_vip(addr: &[u32; 4], family: u8) -> bool {
    filter_has(vip_filter_bit(addr, family))
}

/// Whether filter bit `bit` is set: one read of [`VIP_FILTER`] at a fixed
/// address.
#[inline(always)]
fn filter_has(bit: u32) -> bool {
    let (word, mask) = vip_filter_slot(bit);
    // In bounds for the verifier too: a mask, not a comparison.
    let word = (word & (VIP_FILTER_WORDS - 1)) as usize;
    // SAFETY: `word` < VIP_FILTER_WORDS; volatile: the agent writes the
    // words while packets are read (any value is a valid bitmap).
    let bits = unsafe { read_volatile(addr_of!(VIP_FILTER[word])) };
    bits & mask != 0
}

/// False when no service serves (`addr`, `port`, `protocol`) of an address
/// whose own filter bit is set ([`maybe_vip`], checked before the parse):
/// neither the service's bit nor that of the address's port-0 wildcard is set
/// (two reads of the bitmap). No hash lookup. True means "maybe".
#[inline(always)]
pub fn maybe_service_of_vip(addr: &[u32; 4], port: u16, protocol: u8, family: u8) -> bool {
    filter_has(service_filter_bit(addr, port, protocol, family))
        || filter_has(service_filter_bit(addr, 0, protocol, family))
}

/// The service of (addr, port, protocol), else the port-0 wildcard of the address.
#[inline(always)]
pub fn service(addr: [u32; 4], port: u16, protocol: u8, family: u8) -> Option<ServiceEntry> {
    if let Some(s) = VIPS.get_ptr(vip_key(&addr, port, protocol, family)) {
        // SAFETY: a map value pointer; the entry is replaced, never written in place.
        return Some(unsafe { *s });
    }
    // SAFETY: as above.
    VIPS.get_ptr(vip_key(&addr, 0, protocol, family))
        .map(|s| unsafe { *s })
}

/// Whether `addr` is a VIP address (cold paths: ICMP echo, fragments, malformed
/// packets): the agent's address marker entry, else a TCP/UDP wildcard service.
#[inline(always)]
pub fn is_vip_address(addr: [u32; 4], family: u8) -> bool {
    if !maybe_vip(&addr, family) {
        return false;
    }
    VIPS.get_ptr(vip_key(&addr, 0, VIP_ADDRESS_MARKER_PROTOCOL, family))
        .is_some()
        || VIPS.get_ptr(vip_key(&addr, 0, PROTO_TCP, family)).is_some()
        || VIPS.get_ptr(vip_key(&addr, 0, PROTO_UDP, family)).is_some()
}
