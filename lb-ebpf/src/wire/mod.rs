//! Wire formats: `#[repr(C)]` header layouts (network-order fields), the
//! [`packet::Packet`] frame with its checked header views, and the `emit`
//! functions of the headers the datapath writes.

pub mod emit_gue;
pub mod emit_ipv4;
pub mod ethernet;
pub mod icmp;
pub mod icmp_reply;
pub mod ipv4;
pub mod ipv6;
pub mod packet;
pub mod tcp;
pub mod udp;
