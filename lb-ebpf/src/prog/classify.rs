//! Stage 2, classify: what a parsed frame asks of the load balancer. Frames
//! that are not for a service get their verdict here; ICMP goes to its leaf,
//! [`crate::prog::icmp`]. Before the parse, [`to_a_vip_address`] passes a frame
//! whose destination is certainly not a VIP on one filter read.

use lb_common::GlobalCounter;
use lb_ebpf::{Kind, Packet, Parsed, destination};

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

/// Stage 1, before the parse: a frame that is not IP, or whose destination's
/// VIP filter bit is clear, passes (`pass_not_vip`) on one array read and the
/// two header views, without parsing the rest: whatever else it holds, every
/// branch of [`classify`] would pass it the same way.
#[inline(always)]
pub fn to_a_vip_address(pkt: &Packet) -> Step<()> {
    match destination(pkt) {
        Some((dst, family)) if maybe_vip(&dst, family) => Ok(()),
        _ => Err(Verdict::pass_not_vip()),
    }
}

/// Classifies the parsed frame `p` (of a frame [`to_a_vip_address`] let on).
#[inline(always)]
pub fn classify(pkt: &Packet, p: &Parsed) -> Step<Target> {
    match p.kind {
        // Packets no service can serve pass after the VIP filter (its service
        // bits: no hash lookup at all; the address's bit was checked before
        // the parse).
        Kind::Tcp | Kind::Udp => {
            if maybe_service_of_vip(&p.dst, p.dst_port, p.protocol, p.family) {
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
