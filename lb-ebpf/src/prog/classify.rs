//! Stage 2, classify: what a parsed frame asks of the load balancer. Frames
//! that are not for a service get their verdict here; ICMP goes to its leaf,
//! [`crate::prog::icmp`]. Before the parse, [`to_a_vip_address`] passes a frame
//! whose destination is certainly not a VIP on one filter read, and a plain
//! TCP/UDP frame to a port no service serves on two more.

use lb_common::GlobalCounter;
use lb_ebpf::{Kind, Packet, Parsed, destination, plain_service_port};

use crate::prog::{
    icmp::{self, FlowError},
    verdict::{Step, Verdict},
    vip::{is_vip_address, maybe_service_of_vip, maybe_vip, service},
};

/// What the rest of the pipeline does with a frame.
pub enum Target {
    /// A TCP or UDP packet to a port a service may serve: its own flow.
    Flow,
    /// An ICMP error about a VIP flow: sent to that flow's backend.
    IcmpError(FlowError),
}

/// What the filter stage ([`to_a_vip_address`]) checked of a frame it let on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Filtered {
    /// The destination's bit only.
    Address,
    /// A plain TCP/UDP frame ([`plain_service_port`]): its service's bits
    /// too, so that [`classify`] need not read them again.
    ServicePort,
}

/// Stage 1, before the parse: a frame that is not IP, or whose destination's
/// VIP filter bit is clear, passes (`pass_not_vip`) on one bitmap read and the
/// two header views, without parsing the rest: whatever else it holds, every
/// branch of [`classify`] would pass it the same way. A plain TCP/UDP frame
/// ([`plain_service_port`]: IPv4 without options and not a fragment, IPv6
/// without extension headers) to a port whose service bits are clear (no
/// service, no port-0 wildcard) passes too, on two more bitmap reads: the
/// parse would find it TCP/UDP to that port, which [`classify`] passes the
/// same way, or malformed (a length field lies), which a port no service
/// serves passes as well (the host's stack drops it), without the parse.
#[inline(always)]
pub fn to_a_vip_address(pkt: &Packet) -> Step<Filtered> {
    let Some((dst, family)) = destination(pkt) else {
        return Err(Verdict::pass_not_vip());
    };
    if !maybe_vip(&dst, family) {
        return Err(Verdict::pass_not_vip());
    }
    match plain_service_port(pkt, family) {
        None => Ok(Filtered::Address),
        Some((port, protocol)) if maybe_service_of_vip(&dst, port, protocol, family) => {
            Ok(Filtered::ServicePort)
        }
        Some(_) => Err(Verdict::pass_not_vip()),
    }
}

/// Classifies the parsed frame `p` (of a frame [`to_a_vip_address`] let on,
/// having checked what `filtered` says).
#[inline(always)]
pub fn classify(pkt: &Packet, p: &Parsed, filtered: Filtered) -> Step<Target> {
    match p.kind {
        // Packets no service can serve pass after the VIP filter (its service
        // bits: no hash lookup at all; the address's bit was checked before
        // the parse, a plain frame's service bits too).
        Kind::Tcp | Kind::Udp => {
            if filtered == Filtered::ServicePort
                || maybe_service_of_vip(&p.dst, p.dst_port, p.protocol, p.family)
            {
                Ok(Target::Flow)
            } else {
                Err(Verdict::pass_not_vip())
            }
        }
        Kind::Icmp => icmp::handle(pkt, p).map(Target::IcmpError),
        Kind::NotIp => Err(Verdict::pass_not_vip()),
        Kind::Malformed => Err(if is_vip_address(p.dst, p.family) {
            Verdict::drop(GlobalCounter::DropMalformed)
        } else {
            Verdict::pass_not_vip()
        }),
        Kind::Fragment => Err(
            if maybe_vip(&p.dst, p.family)
                && (service(p.dst, p.dst_port, p.protocol, p.family).is_some()
                    || is_vip_address(p.dst, p.family))
            {
                Verdict::drop(GlobalCounter::DropFragment)
            } else {
                Verdict::pass_not_vip()
            },
        ),
        Kind::Other => Err(if is_vip_address(p.dst, p.family) {
            Verdict::pass(GlobalCounter::PassUnsupported)
        } else {
            Verdict::pass_not_vip()
        }),
    }
}
