//! The ICMP leaf of the classify stage (Katran's `handle_icmp` shape): it
//! answers echo requests to a VIP in place and returns what the pipeline is
//! to do with everything else, without calling back into the pipeline.
//! Errors about a VIP flow go on to the flow's backend; the rest pass.

use lb_common::{FlowKey, GlobalCounter, ServiceEntry, flow::FAMILY_V4};
use lb_ebpf::{
    Packet, Parsed,
    keys::flow_key,
    parse::embedded_flow,
    wire::{
        ethernet::ETH_LEN,
        icmp::{ICMP_DEST_UNREACH, ICMP_ECHO_REQUEST, ICMPV6_ECHO_REQUEST, ICMPV6_PKT_TOOBIG},
        icmp_reply::{echo_reply_v4, echo_reply_v6},
    },
};

use crate::prog::{
    verdict::{Step, Verdict},
    vip::{is_vip_address, service},
};

/// An ICMP error about a VIP flow: the pipeline sends it to the flow's backend.
#[derive(Clone, Copy)]
pub struct FlowError {
    /// The client->VIP flow the error is about.
    pub key: FlowKey,
    /// The flow's service.
    pub svc: ServiceEntry,
}

/// Handles an ICMP / ICMPv6 packet: `Ok` for an error about a VIP flow (to be
/// forwarded), else its verdict (echo reply sent, passed).
#[inline(always)]
pub fn handle(pkt: &Packet, p: &Parsed) -> Step<FlowError> {
    let Some(icmp) = pkt.view(p.l4_off) else {
        return Err(Verdict::pass_not_vip());
    };
    let type_ = icmp.type_();
    let v4 = p.family == FAMILY_V4;
    let (echo, error) = if v4 {
        (ICMP_ECHO_REQUEST, ICMP_DEST_UNREACH)
    } else {
        (ICMPV6_ECHO_REQUEST, ICMPV6_PKT_TOOBIG)
    };
    if type_ == echo {
        if !is_vip_address(p.dst, p.family) {
            return Err(Verdict::pass_not_vip());
        }
        return Err(echo_reply(pkt, p));
    }
    if type_ == error
        && let Some(e) = flow_error(pkt, p)
    {
        return Ok(e);
    }
    if is_vip_address(p.dst, p.family) {
        Err(Verdict::pass(GlobalCounter::PassUnsupported))
    } else {
        Err(Verdict::pass_not_vip())
    }
}

/// The VIP flow an ICMP error is about; `None` when the error is not
/// addressed to a VIP or the embedded packet is not a VIP flow. Only errors
/// addressed to a VIP are the load balancer's to route: one to another host
/// that merely quotes a VIP flow (a backend's direct reply bounced toward that
/// backend, say) is that host's business and passes.
#[inline(always)]
fn flow_error(pkt: &Packet, p: &Parsed) -> Option<FlowError> {
    if !is_vip_address(p.dst, p.family) {
        return None;
    }
    let f = embedded_flow(pkt, p)?;
    let svc = service(f.vip, f.vip_port, f.protocol, p.family)?;
    let key = flow_key(
        &f.client,
        &f.vip,
        f.client_port,
        f.vip_port,
        f.protocol,
        p.family,
    );
    Some(FlowError { key, svc })
}

/// Answers an echo request in place: MACs and addresses swapped, TTL 64, type changed.
#[inline(always)]
fn echo_reply(pkt: &Packet, p: &Parsed) -> Verdict {
    let (Some(eth), Some(icmp)) = (pkt.view(0), pkt.view(p.l4_off)) else {
        return Verdict::drop(GlobalCounter::DropMalformed);
    };
    if p.family == FAMILY_V4 {
        let Some(ip) = pkt.view(ETH_LEN) else {
            return Verdict::drop(GlobalCounter::DropMalformed);
        };
        echo_reply_v4(&eth, &ip, &icmp);
    } else {
        let Some(ip) = pkt.view(ETH_LEN) else {
            return Verdict::drop(GlobalCounter::DropMalformed);
        };
        echo_reply_v6(&eth, &ip, &icmp);
    }
    Verdict::tx(GlobalCounter::IcmpEchoReply)
}
