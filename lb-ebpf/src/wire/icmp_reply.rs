//! The ICMP / ICMPv6 messages the datapath writes: echo replies (rewritten in
//! place from the request) and "fragmentation needed" / "packet too big"
//! (from the VIP to the client, quoting the offending packet).

use crate::{
    checksum::{fold, update16},
    wire::{
        emit_ipv4::ORIGINATED_TTL,
        ethernet::EthHdr,
        icmp::{
            ICMP_DEST_UNREACH, ICMP_ECHO_REPLY, ICMP_FRAG_NEEDED, ICMP_LEN, ICMPV6_ECHO_REPLY,
            ICMPV6_PKT_TOOBIG, IcmpHdr,
        },
        ipv4::Ipv4Hdr,
        ipv6::{IPPROTO_ICMPV6, Ipv6Hdr},
        packet::View,
    },
};

/// Bytes of the offending IPv6 packet quoted in a "packet too big" (header + 8).
pub const V6_QUOTE: usize = crate::wire::ipv6::IPV6_LEN + 8;
/// Largest IPv4 quote: a 60-byte header + 8 bytes.
pub const V4_MAX_QUOTE: usize = 68;

/// Swaps the destination and source MACs: the frame goes back where it came from.
#[inline(always)]
pub fn swap_macs(eth: &View<'_, EthHdr>) {
    let e = eth.get();
    eth.set(EthHdr {
        dst: e.src,
        src: e.dst,
        ether_type: e.ether_type,
    });
}

/// Turns the ICMP echo request at `icmp` into its reply (`reply` type),
/// updating the checksum.
#[inline(always)]
fn echo_type(icmp: &View<'_, IcmpHdr>, reply: u8) {
    let (type_, code, check) = (icmp.type_(), icmp.code(), icmp.check());
    let old = u16::from_ne_bytes([type_, code]);
    let new = u16::from_ne_bytes([reply, code]);
    icmp.set_type(reply);
    icmp.set_check(update16(check, old, new));
}

/// Answers the IPv4 echo request in `eth` / `ip` / `icmp` in place: MACs and
/// addresses swapped, TTL 64, type echo reply, both checksums updated.
#[inline(always)]
pub fn echo_reply_v4(eth: &View<'_, EthHdr>, ip: &View<'_, Ipv4Hdr>, icmp: &View<'_, IcmpHdr>) {
    swap_macs(eth);
    echo_type(icmp, ICMP_ECHO_REPLY);
    let (src, dst, ttl, proto, check) = (ip.src(), ip.dst(), ip.ttl(), ip.protocol(), ip.check());
    ip.set_src(dst);
    ip.set_dst(src);
    ip.set_ttl(ORIGINATED_TTL);
    let check = update16(
        check,
        u16::from_ne_bytes([ttl, proto]),
        u16::from_ne_bytes([ORIGINATED_TTL, proto]),
    );
    ip.set_check(check);
}

/// Answers the ICMPv6 echo request in `eth` / `ip` / `icmp` in place: MACs and
/// addresses swapped (the pseudo-header sum is unchanged), hop limit 64, type
/// echo reply, checksum updated.
#[inline(always)]
pub fn echo_reply_v6(eth: &View<'_, EthHdr>, ip: &View<'_, Ipv6Hdr>, icmp: &View<'_, IcmpHdr>) {
    swap_macs(eth);
    echo_type(icmp, ICMPV6_ECHO_REPLY);
    let (src, dst) = (ip.src(), ip.dst());
    ip.set_src(dst);
    ip.set_dst(src);
    ip.set_hop_limit(ORIGINATED_TTL);
}

/// Sum of a 32-bit word's two halves.
#[inline(always)]
fn sum32(w: u32) -> u64 {
    u64::from(w & 0xffff) + u64::from(w >> 16)
}

/// The ICMP "fragmentation needed" header with next-hop MTU `mtu`, for a
/// quote whose one's-complement sum is `quote_sum`.
#[inline(always)]
pub fn frag_needed(mtu: u32, quote_sum: u64) -> IcmpHdr {
    let rest = u32::from_ne_bytes([0, 0, (mtu >> 8) as u8, mtu as u8]);
    let type_code = u16::from_ne_bytes([ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED]);
    IcmpHdr {
        type_: ICMP_DEST_UNREACH,
        code: ICMP_FRAG_NEEDED,
        check: !fold(quote_sum + u64::from(type_code) + sum32(rest)),
        rest,
    }
}

/// Length of an ICMPv6 "packet too big" message (header and quote).
pub const TOO_BIG_V6_LEN: usize = ICMP_LEN + V6_QUOTE;

/// The ICMPv6 "packet too big" header with MTU `mtu` from `vip` to `client`,
/// for a [`V6_QUOTE`]-byte quote whose one's-complement sum is `quote_sum`
/// (the checksum covers the pseudo-header).
#[inline(always)]
pub fn packet_too_big(mtu: u32, quote_sum: u64, client: &[u32; 4], vip: &[u32; 4]) -> IcmpHdr {
    let rest = mtu.to_be();
    let type_code = u16::from_ne_bytes([ICMPV6_PKT_TOOBIG, 0]);
    let mut sum = quote_sum
        + u64::from(type_code)
        + sum32(rest)
        + sum32((TOO_BIG_V6_LEN as u32).to_be())
        + sum32(u32::from(IPPROTO_ICMPV6).to_be());
    let mut i = 0;
    while i < 4 {
        sum += sum32(client[i]) + sum32(vip[i]);
        i += 1;
    }
    IcmpHdr {
        type_: ICMPV6_PKT_TOOBIG,
        code: 0,
        check: !fold(sum),
        rest,
    }
}

/// The IPv6 header of a "packet too big" from `vip` to `client`.
#[inline(always)]
pub fn packet_too_big_ipv6(client: &[u32; 4], vip: &[u32; 4]) -> Ipv6Hdr {
    Ipv6Hdr {
        version_tc_flow: 0x6000_0000u32.to_be(),
        payload_len: (TOO_BIG_V6_LEN as u16).to_be(),
        next_hdr: IPPROTO_ICMPV6,
        hop_limit: ORIGINATED_TTL,
        src: *vip,
        dst: *client,
    }
}

#[cfg(test)]
mod tests;
