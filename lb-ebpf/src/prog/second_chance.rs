//! Second chance at the backend: a GUE packet whose private data names the
//! flow's previous owner, whose inner packet is TCP and not a SYN, and for
//! which this host has no connection, is forwarded to the previous owner.
//!
//! "No connection": `bpf_skc_lookup_tcp` on the inner 4-tuple (in the
//! network namespace of the receiving device) finds nothing, or only a
//! listener. An established socket, a request socket (`TCP_NEW_SYN_RECV`, a
//! handshake in progress) or a `TIME_WAIT` socket means the flow is ours.
//!
//! The forwarded packet is GUE again, without hint (so it can never be
//! forwarded twice): outer source = the outer destination it arrived with
//! (this host's address), outer destination = the hinted owner, the same UDP
//! ports (the lb's per-flow source port keeps the previous owner's RSS
//! spread), TTL / hop limit 64, IPv4 DSCP/ECN and DF or the IPv6
//! class/flow-label word kept from the received outer header. The next hop
//! comes from `bpf_fib_lookup` (output lookup); out `XDP_TX` when it is the
//! ingress interface, else `bpf_redirect`. GUE rather than IPIP because the
//! packet already has its UDP header (the rewrite only drops the hint's
//! words) and IPIP would put every forwarded flow on one receive queue.

use core::mem::size_of;

use aya_ebpf::{
    EbpfContext,
    bindings::{bpf_fib_lookup, bpf_sock_tuple, xdp_action},
    helpers::generated::{
        bpf_fib_lookup as fib_lookup_helper, bpf_redirect, bpf_sk_release, bpf_skc_lookup_tcp,
    },
    programs::XdpContext,
};
use lb_common::{
    flow::{FAMILY_V4, PROTO_TCP, PROTO_UDP},
    gue::{GUE_BASE_LEN, GUE_PROTO_IPV4, GueHeader},
    net::{AF_INET, AF_INET6},
};
use lb_ebpf::{
    Packet,
    wire::{
        emit_ipv4::{Ipv4Fields, emit_ipv4},
        ethernet::{ETH_LEN, ETH_P_IP, ETH_P_IPV6, EthHdr},
        ipv4::{IP_OFFSET, IPV4_LEN, Ipv4Hdr},
        ipv6::{IPV6_LEN, Ipv6Hdr},
        packet::View,
        tcp::{TCP_SYN, TcpHdr},
        udp::{UDP_LEN, UdpHdr},
    },
};

use crate::prog::{
    decap_gue::{Gue, OuterIp, is_local},
    frame::{Grown, shrink_head},
    words,
};

/// Output lookup, as for a locally generated packet (ip_forward need not be on).
const BPF_FIB_LOOKUP_OUTPUT: u32 = 1 << 1;
const BPF_FIB_LKUP_RET_SUCCESS: i64 = 0;
/// `BPF_F_CURRENT_NETNS`: look sockets up in the receiving device's namespace.
const CURRENT_NETNS: u64 = u64::MAX;
/// `TCP_LISTEN` (include/net/tcp_states.h).
const TCP_LISTEN: u32 = 10;

/// What to do with a hinted packet.
pub enum Decision {
    /// Ours (a local connection exists), a SYN, not TCP, or the hint names
    /// this host: pass up.
    PassLocal,
    /// No local connection: forward to the previous owner.
    Forward,
    /// No local connection, but the hint cannot be reached from the outer
    /// header's family: pass up.
    CannotForward,
}

/// `struct bpf_sock_tuple`'s IPv4 member.
#[repr(C)]
struct TupleV4 {
    saddr: u32,
    daddr: u32,
    sport: u16,
    dport: u16,
}

/// `struct bpf_sock_tuple`'s IPv6 member.
#[repr(C)]
struct TupleV6 {
    saddr: [u32; 4],
    daddr: [u32; 4],
    sport: u16,
    dport: u16,
}

/// The rule above for a packet whose GUE header `gue` carries a hint.
#[inline(always)]
pub fn decide(ctx: &XdpContext, pkt: &Packet, gue: &Gue, outer: &OuterIp) -> Decision {
    let Some((hint_family, hint_addr)) = gue.hint else {
        return Decision::PassLocal;
    };
    let has_socket = if gue.inner_protocol == GUE_PROTO_IPV4 {
        has_socket_v4(ctx, pkt, gue.inner_off)
    } else {
        has_socket_v6(ctx, pkt, gue.inner_off)
    };
    if has_socket {
        Decision::PassLocal
    } else if hint_family != outer.family {
        Decision::CannotForward
    } else if is_local(hint_family, &hint_addr) {
        Decision::PassLocal
    } else {
        Decision::Forward
    }
}

/// The TCP header of the inner packet at `tcp_off`, if it is not a SYN.
#[inline(always)]
fn non_syn_ports(pkt: &Packet, tcp_off: usize) -> Option<(u16, u16)> {
    let tcp = pkt.view::<TcpHdr>(tcp_off)?;
    let (sport, dport, flags) = (tcp.src_port(), tcp.dst_port(), tcp.flags());
    if flags & TCP_SYN != 0 {
        return None;
    }
    Some((sport, dport))
}

/// Whether the socket lookup result `sk` is a connection (anything but a listener).
#[inline(always)]
fn is_connection(sk: *mut aya_ebpf::bindings::bpf_sock) -> bool {
    if sk.is_null() {
        return false;
    }
    // SAFETY: `sk` is the non-null socket `bpf_skc_lookup_tcp` returned with
    // a reference held until the release below; the verifier allows reading
    // `state`, a field of every socket kind (sock_common) it can return.
    let state = unsafe { (*sk).state };
    // SAFETY: `sk` is the referenced socket of the lookup, released exactly
    // once and not used afterwards.
    unsafe { bpf_sk_release(sk as *mut _) };
    state != TCP_LISTEN
}

/// Whether the inner IPv4 packet at `off` is ours: not a TCP non-SYN (then
/// the rule does not apply: `true`), or its connection exists here.
#[inline(always)]
fn has_socket_v4(ctx: &XdpContext, pkt: &Packet, off: usize) -> bool {
    let Some(ip) = pkt.view::<Ipv4Hdr>(off) else {
        return true;
    };
    let (vihl, frag_off, protocol) = (ip.version_ihl(), ip.frag_off(), ip.protocol());
    let (saddr, daddr) = (ip.src(), ip.dst());
    let ihl = ((vihl & 0x0f) as usize) * 4;
    if protocol != PROTO_TCP || u16::from_be(frag_off) & IP_OFFSET != 0 || ihl < IPV4_LEN {
        return true;
    }
    let Some((sport, dport)) = non_syn_ports(pkt, off + ihl) else {
        return true;
    };
    has_connection(
        ctx,
        &mut TupleV4 {
            saddr,
            daddr,
            sport,
            dport,
        },
    )
}

/// Like [`has_socket_v4`] for an inner IPv6 packet (TCP directly after the
/// fixed header; extension headers: not forwarded).
#[inline(always)]
fn has_socket_v6(ctx: &XdpContext, pkt: &Packet, off: usize) -> bool {
    let Some(ip) = pkt.view::<Ipv6Hdr>(off) else {
        return true;
    };
    let (next_hdr, saddr, daddr) = (ip.next_hdr(), ip.src(), ip.dst());
    if next_hdr != PROTO_TCP {
        return true;
    }
    let Some((sport, dport)) = non_syn_ports(pkt, off + IPV6_LEN) else {
        return true;
    };
    has_connection(
        ctx,
        &mut TupleV6 {
            saddr,
            daddr,
            sport,
            dport,
        },
    )
}

/// Whether the kernel holds a connection (not just a listener) for `tuple`:
/// `bpf_skc_lookup_tcp` in this program's network namespace.
#[inline(always)]
fn has_connection<T: SockTuple>(ctx: &XdpContext, tuple: &mut T) -> bool {
    // SAFETY: `tuple` is a live, writable `T`, which `SockTuple` promises is
    // laid out as one member of `bpf_sock_tuple`, and the size passed is its
    // size; the helper reads it only during the call. `ctx` is this
    // program's context.
    let sk = unsafe {
        bpf_skc_lookup_tcp(
            ctx.as_ptr(),
            (tuple as *mut T).cast::<bpf_sock_tuple>(),
            size_of::<T>() as u32,
            CURRENT_NETNS,
            0,
        )
    };
    is_connection(sk)
}

/// A socket-lookup tuple: the IPv4 or the IPv6 member of `bpf_sock_tuple`.
///
/// # Safety
/// Implementors are `#[repr(C)]` and laid out exactly as that member.
unsafe trait SockTuple {}
// SAFETY: `TupleV4` is `#[repr(C)]` saddr, daddr, sport, dport: the IPv4 member.
unsafe impl SockTuple for TupleV4 {}
// SAFETY: `TupleV6` is `#[repr(C)]` saddr, daddr, sport, dport: the IPv6 member.
unsafe impl SockTuple for TupleV6 {}

/// Where the forwarded packet leaves: MACs and egress ifindex.
struct NextHop {
    dmac: [u8; 6],
    smac: [u8; 6],
    ifindex: u32,
}

/// The FIB's next hop from this host (`outer.local`) to `owner`, for an
/// outer packet of `tot_len` bytes.
#[inline(always)]
fn next_hop(
    ctx: &XdpContext,
    outer: &OuterIp,
    owner: &[u32; 4],
    ports: (u16, u16),
    tot_len: usize,
) -> Option<NextHop> {
    let mut raw = core::mem::MaybeUninit::uninit();
    let params = words::zeroed_fib_params(&mut raw);
    params.l4_protocol = PROTO_UDP;
    params.sport = ports.0;
    params.dport = ports.1;
    params.__bindgen_anon_1.tot_len = tot_len as u16;
    params.ifindex = ctx.ingress_ifindex() as u32;
    if outer.family == FAMILY_V4 {
        params.family = AF_INET;
        params.__bindgen_anon_3.ipv4_src = outer.local[0];
        params.__bindgen_anon_4.ipv4_dst = owner[0];
    } else {
        params.family = AF_INET6;
        // SAFETY: writing a union's integer field.
        unsafe {
            words::copy_address(&mut params.__bindgen_anon_3.ipv6_src, &outer.local);
            words::copy_address(&mut params.__bindgen_anon_4.ipv6_dst, owner);
        }
    }
    // SAFETY: `params` is a live, writable `bpf_fib_lookup` of the size
    // passed (the helper reads and rewrites it during the call only); `ctx`
    // is this program's context.
    let rc = unsafe {
        fib_lookup_helper(
            ctx.as_ptr(),
            params,
            size_of::<bpf_fib_lookup>() as i32,
            BPF_FIB_LOOKUP_OUTPUT,
        )
    };
    if rc != BPF_FIB_LKUP_RET_SUCCESS {
        return None;
    }
    Some(NextHop {
        dmac: params.dmac,
        smac: params.smac,
        ifindex: params.ifindex,
    })
}

/// Re-encapsulates the hinted packet toward its previous owner (GUE without
/// hint) and sends it; `None` (packet untouched) when there is no next hop.
#[inline(always)]
pub fn forward(ctx: &XdpContext, gue: &Gue, outer: &OuterIp) -> Option<u32> {
    let (_, owner) = gue.hint?;
    let v4 = outer.family == FAMILY_V4;
    let new_ip_len = if v4 { IPV4_LEN } else { IPV6_LEN };
    let udp_len = UDP_LEN + GUE_BASE_LEN + gue.inner_len;
    let nh = next_hop(ctx, outer, &owner, gue.ports, new_ip_len + udp_len)?;
    // Old: Ethernet | outer IP | UDP | GUE + private data | inner.
    // New: Ethernet | outer IP (no options) | UDP | GUE word | inner.
    let shrink = (outer.header_len + gue.header_len) - (new_ip_len + GUE_BASE_LEN);
    if !write_headers(ctx, shrink, gue, outer, &owner, &nh, udp_len) {
        return Some(xdp_action::XDP_DROP);
    }
    if nh.ifindex == ctx.ingress_ifindex() as u32 {
        return Some(xdp_action::XDP_TX);
    }
    // SAFETY: a plain helper call taking integers only, no pointers.
    let rc = unsafe { bpf_redirect(nh.ifindex, 0) };
    Some(if rc as u32 == xdp_action::XDP_REDIRECT {
        xdp_action::XDP_REDIRECT
    } else {
        xdp_action::XDP_DROP
    })
}

/// Drops the first `shrink` bytes of the frame and writes the forwarded
/// packet's Ethernet, outer IP, UDP and GUE headers at its new start; `false`
/// if the helper fails or the frame is too short. No view of the frame from
/// before is used afterwards.
#[inline(always)]
fn write_headers(
    ctx: &XdpContext,
    shrink: usize,
    gue: &Gue,
    outer: &OuterIp,
    owner: &[u32; 4],
    nh: &NextHop,
    udp_len: usize,
) -> bool {
    if outer.family == FAMILY_V4 {
        let Some(Grown::<Ipv4Hdr> { pkt, eth, ip }) = shrink_head(ctx, shrink) else {
            return false;
        };
        let fields = Ipv4Fields {
            tos: outer.tos,
            payload_len: udp_len as u16,
            frag_off: outer.df,
            protocol: PROTO_UDP,
            src: outer.local[0],
            dst: owner[0],
        };
        emit_ipv4(&ip, &fields);
        write_l2_l4(&pkt, &eth, ETH_P_IP, IPV4_LEN, gue, nh, udp_len)
    } else {
        let Some(Grown::<Ipv6Hdr> { pkt, eth, ip }) = shrink_head(ctx, shrink) else {
            return false;
        };
        ip.set(Ipv6Hdr {
            version_tc_flow: outer.first_word,
            payload_len: (udp_len as u16).to_be(),
            next_hdr: PROTO_UDP,
            hop_limit: 64,
            src: outer.local,
            dst: *owner,
        });
        write_l2_l4(&pkt, &eth, ETH_P_IPV6, IPV6_LEN, gue, nh, udp_len)
    }
}

/// Writes the forwarded packet's Ethernet header and, after the outer IP
/// header of `ip_len` bytes, its UDP header and GUE word (no private data);
/// `false` if the frame is too short.
#[inline(always)]
fn write_l2_l4(
    pkt: &Packet,
    eth: &View<'_, EthHdr>,
    ether_type: u16,
    ip_len: usize,
    gue: &Gue,
    nh: &NextHop,
    udp_len: usize,
) -> bool {
    let l4 = ETH_LEN + ip_len;
    let Some(udp) = pkt.view::<UdpHdr>(l4) else {
        return false;
    };
    let Some(word) = pkt.view::<GueHeader>(l4 + UDP_LEN) else {
        return false;
    };
    eth.set(EthHdr {
        dst: nh.dmac,
        src: nh.smac,
        ether_type: ether_type.to_be(),
    });
    udp.set(UdpHdr {
        src_port: gue.ports.0,
        dst_port: gue.ports.1,
        len: (udp_len as u16).to_be(),
        check: 0,
    });
    word.set(GueHeader {
        version_c_hlen: 0,
        protocol: gue.inner_protocol,
        flags: 0,
    });
    true
}
