//! Stage 2, classify: what a parsed frame asks of the load balancer. Frames
//! that are not for a service get their verdict here; ICMP goes to its leaf,
//! [`crate::prog::icmp`].

use lb_common::GlobalCounter;
use lb_ebpf::{Kind, Packet, Parsed};

use crate::prog::{
    icmp::{self, FlowError},
    verdict::{Step, Verdict},
    vip::{is_vip_address, maybe_service, maybe_vip, service},
};

/// What the rest of the pipeline does with a frame.
pub enum Target {
    /// A TCP or UDP packet to a port a service may serve: its own flow.
    Flow,
    /// An ICMP error about a VIP flow: sent to that flow's backend.
    IcmpError(FlowError),
}

/// Classifies the parsed frame `p`.
#[inline(always)]
pub fn classify(pkt: &Packet, p: &Parsed) -> Step<Target> {
    match p.kind {
        // Packets no service can serve pass after the VIP filter (its service
        // bits: no hash lookup at all).
        Kind::Tcp | Kind::Udp => {
            if maybe_service(&p.dst, p.dst_port, p.protocol, p.family) {
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
