//! `lb_decap`: strips the outer IPv4/IPv6 header of IPv4-in-IPv4 / IPv6-in-IPv6
//! packets addressed to this host and passes the inner packet up the stack;
//! UDP packets go to the GUE stage (`decap_gue`).

use aya_ebpf::{
    bindings::xdp_action, helpers::generated::bpf_xdp_adjust_head, programs::XdpContext,
};
use lb_common::{
    DecapCounter,
    flow::{FAMILY_V4, FAMILY_V6, PROTO_UDP},
};
use lb_ebpf::{
    Packet,
    keys::decap_key,
    wire::{
        ethernet::{ETH_LEN, ETH_P_IP, ETH_P_IPV6, EthHdr},
        ipv4::{IP_DF, IP_MF, IP_OFFSET, IPPROTO_IPIP, IPV4_LEN, Ipv4Hdr},
        ipv6::{IPPROTO_IPV6, IPV6_LEN, Ipv6Hdr},
    },
};

use crate::{
    maps::DECAP_ADDRS,
    prog::{
        counters::count_decap,
        decap_gue::{self, OuterIp},
        frame::frame,
    },
};

/// Entry point of `lb_decap`.
#[inline(always)]
pub fn run(ctx: &XdpContext) -> u32 {
    let pkt = frame(ctx);
    let Some(eth) = pkt.view::<EthHdr>(0) else {
        return xdp_action::XDP_PASS;
    };
    let e = eth.get();
    let ether_type = u16::from_be(e.ether_type);
    if ether_type == ETH_P_IP {
        let Some(ip) = pkt.view::<Ipv4Hdr>(ETH_LEN) else {
            return xdp_action::XDP_PASS;
        };
        let (vihl, protocol, dst) = (ip.version_ihl(), ip.protocol(), ip.dst());
        if protocol == PROTO_UDP {
            let ihl = ((vihl & 0x0f) as usize) * 4;
            if vihl >> 4 != 4 || ihl < IPV4_LEN {
                return xdp_action::XDP_PASS;
            }
            let frag_off = ip.frag_off();
            let outer = OuterIp {
                family: FAMILY_V4,
                header_len: ihl,
                local: [dst, 0, 0, 0],
                tos: ip.tos(),
                df: frag_off & IP_DF.to_be(),
                first_word: 0,
                fragment: frag_off & (IP_MF | IP_OFFSET).to_be() != 0,
            };
            return decap_gue::run(ctx, &pkt, &e, &outer);
        }
        if protocol != IPPROTO_IPIP {
            return xdp_action::XDP_PASS;
        }
        let key = decap_key(&[dst, 0, 0, 0], FAMILY_V4);
        let ihl = ((vihl & 0x0f) as usize) * 4;
        if DECAP_ADDRS.get_ptr(key).is_none()
            || vihl >> 4 != 4
            || ihl < IPV4_LEN
            || pkt.view::<Ipv4Hdr>(ETH_LEN + ihl).is_none()
        {
            count_decap(DecapCounter::Passed);
            return xdp_action::XDP_PASS;
        }
        strip(ctx, &pkt, &e, ihl, ETH_P_IP, DecapCounter::DecapV4)
    } else if ether_type == ETH_P_IPV6 {
        let Some(ip) = pkt.view::<Ipv6Hdr>(ETH_LEN) else {
            return xdp_action::XDP_PASS;
        };
        let (next_hdr, dst) = (ip.next_hdr(), ip.dst());
        if next_hdr == PROTO_UDP {
            let outer = OuterIp {
                family: FAMILY_V6,
                header_len: IPV6_LEN,
                local: dst,
                tos: 0,
                df: 0,
                first_word: ip.version_tc_flow(),
                fragment: false,
            };
            return decap_gue::run(ctx, &pkt, &e, &outer);
        }
        if next_hdr != IPPROTO_IPV6 {
            return xdp_action::XDP_PASS;
        }
        let key = decap_key(&dst, FAMILY_V6);
        if DECAP_ADDRS.get_ptr(key).is_none() || pkt.view::<Ipv6Hdr>(ETH_LEN + IPV6_LEN).is_none() {
            count_decap(DecapCounter::Passed);
            return xdp_action::XDP_PASS;
        }
        strip(ctx, &pkt, &e, IPV6_LEN, ETH_P_IPV6, DecapCounter::DecapV6)
    } else {
        xdp_action::XDP_PASS
    }
}

/// Writes the Ethernet header just before the inner packet (`outer_len` bytes
/// in) and moves the frame start there.
#[inline(always)]
pub fn strip(
    ctx: &XdpContext,
    pkt: &Packet,
    e: &EthHdr,
    outer_len: usize,
    inner_type: u16,
    counter: DecapCounter,
) -> u32 {
    let Some(new_eth) = pkt.view::<EthHdr>(outer_len) else {
        count_decap(DecapCounter::Passed);
        return xdp_action::XDP_PASS;
    };
    new_eth.set(EthHdr {
        dst: e.dst,
        src: e.src,
        ether_type: inner_type.to_be(),
    });
    // SAFETY: plain helper call; no packet view is used afterwards.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, outer_len as i32) } != 0 {
        return xdp_action::XDP_DROP;
    }
    count_decap(counter);
    xdp_action::XDP_PASS
}
