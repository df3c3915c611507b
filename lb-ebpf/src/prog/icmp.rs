//! ICMP: echo replies from a VIP, forwarding of ICMP errors about VIP flows,
//! and "fragmentation needed" / "packet too big" answers.

use core::ptr::addr_of;

use aya_ebpf::{
    bindings::xdp_action,
    helpers::generated::{
        bpf_csum_diff, bpf_xdp_adjust_head, bpf_xdp_adjust_tail, bpf_xdp_get_buff_len,
    },
    programs::XdpContext,
};
use lb_common::{GlobalCounter, flow::FAMILY_V4};
use lb_ebpf::{
    Kind, Packet, Parsed,
    checksum::{fold, update16},
    keys::flow_key,
    parse::embedded_flow,
    wire::{
        ethernet::{ETH_LEN, EthHdr},
        icmp::{
            ICMP_DEST_UNREACH, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_FRAG_NEEDED, ICMP_LEN,
            ICMPV6_ECHO_REPLY, ICMPV6_ECHO_REQUEST, ICMPV6_PKT_TOOBIG, IcmpHdr,
        },
        ipv4::{IP_DF, IPPROTO_ICMP, IPV4_LEN, Ipv4Hdr},
        ipv6::{IPPROTO_ICMPV6, IPV6_LEN, Ipv6Hdr},
        packet::{load, store},
    },
};

use crate::prog::{
    balance::{drop, pass_not_vip, pick_for_error},
    counters::count,
    encap,
    vip::{is_vip_address, service},
};

/// Bytes of the offending IPv6 packet quoted in a "packet too big" (header + 8).
const V6_QUOTE: usize = IPV6_LEN + 8;
/// Largest IPv4 quote: a 60-byte header + 8 bytes.
const V4_MAX_QUOTE: usize = 68;

/// Handles an ICMP / ICMPv6 packet.
#[inline(always)]
pub fn handle(ctx: &XdpContext, pkt: &Packet, p: &Parsed) -> u32 {
    let Some(icmp) = pkt.ptr_at::<IcmpHdr>(p.l4_off) else {
        return pass_not_vip();
    };
    // SAFETY: in bounds.
    let type_ = unsafe { load(addr_of!((*icmp).type_)) };
    let v4 = p.family == FAMILY_V4;
    let (echo, error) = if v4 {
        (ICMP_ECHO_REQUEST, ICMP_DEST_UNREACH)
    } else {
        (ICMPV6_ECHO_REQUEST, ICMPV6_PKT_TOOBIG)
    };
    if type_ == echo {
        if !is_vip_address(p.dst, p.family) {
            return pass_not_vip();
        }
        return echo_reply(pkt, p);
    }
    if type_ == error {
        if let Some(action) = forward_error(ctx, pkt, p) {
            return action;
        }
    }
    if is_vip_address(p.dst, p.family) {
        count(GlobalCounter::PassUnsupported);
        xdp_action::XDP_PASS
    } else {
        pass_not_vip()
    }
}

/// Sends an ICMP error about a VIP flow to that flow's backend; `None` when
/// the error is not addressed to a VIP or the embedded packet is not a VIP
/// flow. Only errors addressed to a VIP are the load balancer's to route: one
/// to another host that merely quotes a VIP flow (a backend's direct reply
/// bounced toward that backend, say) is that host's business and passes.
#[inline(always)]
fn forward_error(ctx: &XdpContext, pkt: &Packet, p: &Parsed) -> Option<u32> {
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
    let Some((id, backend)) = pick_for_error(&key, &svc) else {
        return Some(xdp_action::XDP_DROP);
    };
    let action = encap::send(ctx, pkt, p, &key, id, backend, None);
    if action != xdp_action::XDP_DROP {
        count(GlobalCounter::IcmpErrorForwarded);
    }
    Some(action)
}

/// Answers an echo request in place: MACs and addresses swapped, TTL 64, type changed.
#[inline(always)]
fn echo_reply(pkt: &Packet, p: &Parsed) -> u32 {
    let Some(eth) = pkt.ptr_mut_at::<EthHdr>(0) else {
        return drop(GlobalCounter::DropMalformed);
    };
    let Some(icmp) = pkt.ptr_mut_at::<IcmpHdr>(p.l4_off) else {
        return drop(GlobalCounter::DropMalformed);
    };
    // SAFETY: all pointers are in bounds (checked above and below).
    unsafe {
        let e = load(eth);
        store(
            eth,
            EthHdr {
                dst: e.src,
                src: e.dst,
                ether_type: e.ether_type,
            },
        );
        let (type_, code, check) = (
            load(addr_of!((*icmp).type_)),
            load(addr_of!((*icmp).code)),
            load(addr_of!((*icmp).check)),
        );
        let reply = if p.family == FAMILY_V4 {
            ICMP_ECHO_REPLY
        } else {
            ICMPV6_ECHO_REPLY
        };
        let old = u16::from_ne_bytes([type_, code]);
        let new = u16::from_ne_bytes([reply, code]);
        (*icmp).type_ = reply;
        store(
            addr_of!((*icmp).check) as *mut u16,
            update16(check, old, new),
        );
        if p.family == FAMILY_V4 {
            let Some(ip) = pkt.ptr_mut_at::<Ipv4Hdr>(ETH_LEN) else {
                return drop(GlobalCounter::DropMalformed);
            };
            let (src, dst, ttl, proto, check) = (
                load(addr_of!((*ip).src)),
                load(addr_of!((*ip).dst)),
                load(addr_of!((*ip).ttl)),
                load(addr_of!((*ip).protocol)),
                load(addr_of!((*ip).check)),
            );
            store(addr_of!((*ip).src) as *mut u32, dst);
            store(addr_of!((*ip).dst) as *mut u32, src);
            (*ip).ttl = 64;
            let check = update16(
                check,
                u16::from_ne_bytes([ttl, proto]),
                u16::from_ne_bytes([64, proto]),
            );
            store(addr_of!((*ip).check) as *mut u16, check);
        } else {
            let Some(ip) = pkt.ptr_mut_at::<Ipv6Hdr>(ETH_LEN) else {
                return drop(GlobalCounter::DropMalformed);
            };
            let (src, dst) = (load(addr_of!((*ip).src)), load(addr_of!((*ip).dst)));
            store(addr_of!((*ip).src) as *mut [u32; 4], dst);
            store(addr_of!((*ip).dst) as *mut [u32; 4], src);
            (*ip).hop_limit = 64;
        }
    }
    count(GlobalCounter::IcmpEchoReply);
    xdp_action::XDP_TX
}

/// One's-complement partial sum of `len` packet bytes at `ptr` (a multiple of 4).
#[inline(always)]
fn csum_bytes(ptr: *const u8, len: u32) -> u64 {
    // SAFETY: the caller proved `len` bytes at `ptr` in bounds.
    let s = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, ptr as *mut u32, len, 0) };
    u64::from(s as u32)
}

#[inline(always)]
fn sum32(w: u32) -> u64 {
    u64::from(w & 0xffff) + u64::from(w >> 16)
}

/// Answers a packet too big for the egress: IPv4 with DF gets "fragmentation
/// needed" (next-hop MTU `mtu`), IPv6 "packet too big" (MTU `mtu`), from the
/// VIP to the client out the ingress interface. Other packets (IPv4 without DF,
/// ICMP itself) are just dropped; `DropTooBig` is counted by the caller.
#[inline(always)]
pub fn too_big(ctx: &XdpContext, pkt: &Packet, p: &Parsed, mtu: u32) -> u32 {
    if p.kind == Kind::Icmp {
        return xdp_action::XDP_DROP;
    }
    let Some(eth) = pkt.ptr_at::<EthHdr>(0) else {
        return xdp_action::XDP_DROP;
    };
    // SAFETY: in bounds.
    let e = unsafe { load(eth) };
    if p.family == FAMILY_V4 {
        too_big_v4(ctx, pkt, p, mtu, &e)
    } else {
        too_big_v6(ctx, pkt, p, mtu, &e)
    }
}

#[inline(always)]
fn too_big_v4(ctx: &XdpContext, pkt: &Packet, p: &Parsed, mtu: u32, e: &EthHdr) -> u32 {
    let Some(ip) = pkt.ptr_at::<[u8; V4_MAX_QUOTE]>(ETH_LEN) else {
        return xdp_action::XDP_DROP;
    };
    let ip = ip as *const Ipv4Hdr;
    // SAFETY: in bounds (68 bytes checked).
    let (vihl, frag_off) = unsafe {
        (
            load(addr_of!((*ip).version_ihl)),
            load(addr_of!((*ip).frag_off)),
        )
    };
    if frag_off & IP_DF.to_be() == 0 {
        return xdp_action::XDP_DROP;
    }
    let quote = ((vihl & 0x0f) as u32) * 4 + 8;
    let quote_sum = csum_bytes(ip as *const u8, quote);
    let rest = u32::from_ne_bytes([0, 0, (mtu >> 8) as u8, mtu as u8]);
    let type_code = u16::from_ne_bytes([ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED]);
    let icmp_check = !fold(quote_sum + u64::from(type_code) + sum32(rest));
    let (client, vip) = (p.src[0], p.dst[0]);
    // SAFETY: plain helper call; pointers re-derived afterwards.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -((IPV4_LEN + ICMP_LEN) as i32)) } != 0 {
        return xdp_action::XDP_DROP;
    }
    let pkt = Packet::new(ctx.data(), ctx.data_end());
    let Some(eth) = pkt.ptr_mut_at::<EthHdr>(0) else {
        return xdp_action::XDP_DROP;
    };
    let Some(ip) = pkt.ptr_mut_at::<Ipv4Hdr>(ETH_LEN) else {
        return xdp_action::XDP_DROP;
    };
    let Some(icmp) = pkt.ptr_mut_at::<IcmpHdr>(ETH_LEN + IPV4_LEN) else {
        return xdp_action::XDP_DROP;
    };
    let tot_len = ((IPV4_LEN + ICMP_LEN) as u16 + quote as u16).to_be();
    let w4 = u16::from_ne_bytes([64, IPPROTO_ICMP]);
    let sum = u64::from(u16::from_ne_bytes([0x45, 0]))
        + u64::from(tot_len)
        + u64::from(w4)
        + sum32(vip)
        + sum32(client);
    let hdr = Ipv4Hdr {
        version_ihl: 0x45,
        tos: 0,
        tot_len,
        id: 0,
        frag_off: 0,
        ttl: 64,
        protocol: IPPROTO_ICMP,
        check: !fold(sum),
        src: vip,
        dst: client,
    };
    // SAFETY: in bounds.
    unsafe {
        store(
            eth,
            EthHdr {
                dst: e.src,
                src: e.dst,
                ether_type: e.ether_type,
            },
        );
        store(ip, hdr);
        store(
            icmp,
            IcmpHdr {
                type_: ICMP_DEST_UNREACH,
                code: ICMP_FRAG_NEEDED,
                check: icmp_check,
                rest,
            },
        );
    }
    let want = (ETH_LEN + IPV4_LEN + ICMP_LEN) as i32 + quote as i32;
    finish_reply(ctx, want)
}

#[inline(always)]
fn too_big_v6(ctx: &XdpContext, pkt: &Packet, p: &Parsed, mtu: u32, e: &EthHdr) -> u32 {
    let Some(quoted) = pkt.ptr_at::<[u8; V6_QUOTE]>(ETH_LEN) else {
        return xdp_action::XDP_DROP;
    };
    let quote_sum = csum_bytes(quoted as *const u8, V6_QUOTE as u32);
    let rest = mtu.to_be();
    let type_code = u16::from_ne_bytes([ICMPV6_PKT_TOOBIG, 0]);
    let icmp_len = (ICMP_LEN + V6_QUOTE) as u32;
    let (client, vip) = (p.src, p.dst);
    let mut sum = quote_sum
        + u64::from(type_code)
        + sum32(rest)
        + sum32(icmp_len.to_be())
        + sum32(u32::from(IPPROTO_ICMPV6).to_be());
    let mut i = 0;
    while i < 4 {
        sum += sum32(client[i]) + sum32(vip[i]);
        i += 1;
    }
    // SAFETY: plain helper call; pointers re-derived afterwards.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -((IPV6_LEN + ICMP_LEN) as i32)) } != 0 {
        return xdp_action::XDP_DROP;
    }
    let pkt = Packet::new(ctx.data(), ctx.data_end());
    let Some(eth) = pkt.ptr_mut_at::<EthHdr>(0) else {
        return xdp_action::XDP_DROP;
    };
    let Some(ip) = pkt.ptr_mut_at::<Ipv6Hdr>(ETH_LEN) else {
        return xdp_action::XDP_DROP;
    };
    let Some(icmp) = pkt.ptr_mut_at::<IcmpHdr>(ETH_LEN + IPV6_LEN) else {
        return xdp_action::XDP_DROP;
    };
    // SAFETY: in bounds.
    unsafe {
        store(
            eth,
            EthHdr {
                dst: e.src,
                src: e.dst,
                ether_type: e.ether_type,
            },
        );
        store(
            ip,
            Ipv6Hdr {
                version_tc_flow: 0x6000_0000u32.to_be(),
                payload_len: (icmp_len as u16).to_be(),
                next_hdr: IPPROTO_ICMPV6,
                hop_limit: 64,
                src: vip,
                dst: client,
            },
        );
        store(
            icmp,
            IcmpHdr {
                type_: ICMPV6_PKT_TOOBIG,
                code: 0,
                check: !fold(sum),
                rest,
            },
        );
    }
    finish_reply(ctx, (ETH_LEN + IPV6_LEN) as i32 + icmp_len as i32)
}

/// Trims the reply to `want` bytes and sends it back out the ingress.
#[inline(always)]
fn finish_reply(ctx: &XdpContext, want: i32) -> u32 {
    // The helper, not data_end - data: the verifier refuses arithmetic on pkt_end.
    // SAFETY: plain helper call.
    let have = unsafe { bpf_xdp_get_buff_len(ctx.ctx) } as i32;
    // SAFETY: plain helper call.
    if unsafe { bpf_xdp_adjust_tail(ctx.ctx, want - have) } != 0 {
        return xdp_action::XDP_DROP;
    }
    count(GlobalCounter::IcmpTooBigSent);
    xdp_action::XDP_TX
}
