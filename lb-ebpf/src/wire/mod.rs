//! Wire formats: `#[repr(C)]` header layouts (network-order fields) and the
//! bounds-checked [`packet::Packet`] cursor over a frame.

pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod packet;
pub mod tcp;
pub mod udp;
