//! `lb_xdp` as a pipeline of stages, none of which calls back into an earlier
//! one: the VIP filter on the destination and a plain TCP/UDP frame's port
//! ([`to_a_vip_address`]) -> parse ([`lb_ebpf::parse`]) -> classify
//! ([`classify`], told what the filter checked; ICMP a leaf of it) ->
//! select a backend ([`balance`]) -> encapsulate ([`encap`], or answer "too
//! big": [`too_big`]) -> verdict. Each stage returns a [`Step`]: an early
//! verdict is an `Err`, so that it reads as `?`.

use aya_ebpf::programs::XdpContext;
use lb_common::GlobalCounter;
use lb_ebpf::parse;

use crate::prog::{
    balance,
    classify::{Target, classify, to_a_vip_address},
    counters::count,
    encap::{self, Encapsulated},
    frame::frame,
    too_big,
    verdict::{Step, Verdict},
};

/// Entry point of `lb_xdp`: the XDP action for the frame of `ctx`.
#[inline(always)]
pub fn run(ctx: &XdpContext) -> u32 {
    match lb_xdp(ctx) {
        Ok(v) | Err(v) => v.action(),
    }
}

#[inline(always)]
fn lb_xdp(ctx: &XdpContext) -> Step<Verdict> {
    let pkt = frame(ctx);
    let filtered = to_a_vip_address(&pkt)?;
    let p = parse(&pkt);
    let target = classify(&pkt, &p, filtered)?;
    let sel = balance::select(&pkt, &p, &target)?;
    let verdict = match encap::send(ctx, &pkt, &p, &sel)? {
        Encapsulated::Sent(v) => v,
        Encapsulated::TooBig { mtu } => too_big::reply(ctx, &pkt, &p, mtu),
    };
    if matches!(target, Target::IcmpError(_)) && !verdict.is_drop() {
        count(GlobalCounter::IcmpErrorForwarded);
    }
    Ok(verdict)
}
