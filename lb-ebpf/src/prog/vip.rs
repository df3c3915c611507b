//! Service lookup and the "is this address a VIP at all" question.

use lb_common::{
    ServiceEntry, VIP_ADDRESS_MARKER_PROTOCOL, VipKey,
    flow::{PROTO_TCP, PROTO_UDP},
};

use crate::maps::VIPS;

/// The service of (addr, port, protocol), else the port-0 wildcard of the address.
#[inline(always)]
pub fn service(addr: [u32; 4], port: u16, protocol: u8, family: u8) -> Option<ServiceEntry> {
    let mut key = VipKey {
        addr,
        port,
        protocol,
        family,
    };
    if let Some(s) = VIPS.get_ptr(key) {
        // SAFETY: a map value pointer; the entry is replaced, never written in place.
        return Some(unsafe { *s });
    }
    key.port = 0;
    VIPS.get_ptr(key).map(|s| unsafe { *s })
}

/// Whether `addr` is a VIP address (cold paths: ICMP echo, fragments, malformed
/// packets): the agent's address marker entry, else a TCP/UDP wildcard service.
#[inline(always)]
pub fn is_vip_address(addr: [u32; 4], family: u8) -> bool {
    let mut key = VipKey {
        addr,
        port: 0,
        protocol: VIP_ADDRESS_MARKER_PROTOCOL,
        family,
    };
    if VIPS.get_ptr(key).is_some() {
        return true;
    }
    key.protocol = PROTO_TCP;
    if VIPS.get_ptr(key).is_some() {
        return true;
    }
    key.protocol = PROTO_UDP;
    VIPS.get_ptr(key).is_some()
}
