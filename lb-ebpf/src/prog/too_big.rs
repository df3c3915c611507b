//! The "too big" leaf: a packet too big for the egress is answered, IPv4
//! with DF by an ICMP "fragmentation needed" (next-hop MTU `mtu`), IPv6 by
//! an ICMPv6 "packet too big" (MTU `mtu`), from the VIP to the client, out the
//! ingress interface. Other packets (IPv4 without DF, ICMP itself) are just
//! dropped; `DropTooBig` is counted by the encapsulation stage.

use aya_ebpf::{
    helpers::generated::{bpf_xdp_adjust_tail, bpf_xdp_get_buff_len},
    programs::XdpContext,
};
use lb_common::{GlobalCounter, flow::FAMILY_V4};
use lb_ebpf::{
    Kind, Packet, Parsed,
    wire::{
        emit_ipv4::{Ipv4Fields, emit_ipv4},
        ethernet::{ETH_LEN, EthHdr},
        icmp::{ICMP_LEN, IcmpHdr},
        icmp_reply::{
            TOO_BIG_V6_LEN, V4_MAX_QUOTE, V6_QUOTE, frag_needed, packet_too_big,
            packet_too_big_ipv6,
        },
        ipv4::{IP_DF, IPPROTO_ICMP, IPV4_LEN, Ipv4Hdr},
        ipv6::{IPV6_LEN, Ipv6Hdr},
    },
};

use crate::prog::{
    frame::{Grown, grow_head},
    verdict::Verdict,
};

/// Answers the packet `p`, too big for an egress of MTU `mtu` + the outer header.
#[inline(always)]
pub fn reply(ctx: &XdpContext, pkt: &Packet, p: &Parsed, mtu: u32) -> Verdict {
    if p.kind == Kind::Icmp {
        return Verdict::dropped();
    }
    let Some(eth) = pkt.view::<EthHdr>(0) else {
        return Verdict::dropped();
    };
    let e = eth.get();
    let sent = if p.family == FAMILY_V4 {
        reply_v4(ctx, pkt, p, mtu, &e)
    } else {
        reply_v6(ctx, pkt, p, mtu, &e)
    };
    sent.unwrap_or(Verdict::dropped())
}

/// The Ethernet header of a reply to the frame whose header was `e`.
#[inline(always)]
fn back(e: &EthHdr) -> EthHdr {
    EthHdr {
        dst: e.src,
        src: e.dst,
        ether_type: e.ether_type,
    }
}

#[inline(always)]
fn reply_v4(ctx: &XdpContext, pkt: &Packet, p: &Parsed, mtu: u32, e: &EthHdr) -> Option<Verdict> {
    let quoted = pkt.view::<[u8; V4_MAX_QUOTE]>(ETH_LEN)?;
    let ip = quoted.prefix::<Ipv4Hdr>()?;
    let (vihl, frag_off) = (ip.version_ihl(), ip.frag_off());
    if frag_off & IP_DF.to_be() == 0 {
        return None;
    }
    let quote = ((vihl & 0x0f) as usize) * 4 + 8;
    let icmp = frag_needed(mtu, quoted.sum_prefix(quote)?);
    let (client, vip) = (p.src[0], p.dst[0]);
    let Grown::<Ipv4Hdr> { pkt, eth, ip } = grow_head(ctx, IPV4_LEN + ICMP_LEN)?;
    let icmp_view = pkt.view::<IcmpHdr>(ETH_LEN + IPV4_LEN)?;
    eth.set(back(e));
    emit_ipv4(
        &ip,
        &Ipv4Fields {
            tos: 0,
            payload_len: (ICMP_LEN + quote) as u16,
            frag_off: 0,
            protocol: IPPROTO_ICMP,
            src: vip,
            dst: client,
        },
    );
    icmp_view.set(icmp);
    Some(finish(ctx, (ETH_LEN + IPV4_LEN + ICMP_LEN + quote) as i32))
}

#[inline(always)]
fn reply_v6(ctx: &XdpContext, pkt: &Packet, p: &Parsed, mtu: u32, e: &EthHdr) -> Option<Verdict> {
    let quoted = pkt.view::<[u8; V6_QUOTE]>(ETH_LEN)?;
    let (client, vip) = (p.src, p.dst);
    let icmp = packet_too_big(mtu, quoted.sum_prefix(V6_QUOTE)?, &client, &vip);
    let Grown::<Ipv6Hdr> { pkt, eth, ip } = grow_head(ctx, IPV6_LEN + ICMP_LEN)?;
    let icmp_view = pkt.view::<IcmpHdr>(ETH_LEN + IPV6_LEN)?;
    eth.set(back(e));
    ip.set(packet_too_big_ipv6(&client, &vip));
    icmp_view.set(icmp);
    Some(finish(ctx, (ETH_LEN + IPV6_LEN + TOO_BIG_V6_LEN) as i32))
}

/// Trims the reply to `want` bytes and sends it back out the ingress.
#[inline(always)]
fn finish(ctx: &XdpContext, want: i32) -> Verdict {
    // The helper, not data_end - data: the verifier refuses arithmetic on pkt_end.
    // SAFETY: plain helper call.
    let have = unsafe { bpf_xdp_get_buff_len(ctx.ctx) } as i32;
    // SAFETY: plain helper call; no packet view is used after the trim.
    if unsafe { bpf_xdp_adjust_tail(ctx.ctx, want - have) } != 0 {
        return Verdict::dropped();
    }
    Verdict::tx(GlobalCounter::IcmpTooBigSent)
}
