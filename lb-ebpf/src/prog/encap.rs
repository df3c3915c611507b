//! Stage 4, direct-server-return encapsulation toward the backend, with the
//! next hop's MACs, out XDP_TX or XDP_REDIRECT: IPv4-in-IPv4 / IPv6-in-IPv6,
//! or GUE (outer IP + UDP from a per-flow source port to the GUE port + GUE
//! header, with the second-chance hint when there is one; `lb_common::gue`)
//! for services configured with `encap: gue`. With a per-flow source prefix
//! in the settings, the outer source address varies per flow too. The outer
//! IPv4 header is written by `lb_ebpf::wire::emit_ipv4`, UDP and GUE by
//! `lb_ebpf::wire::emit_gue`.
//!
//! Outer header choices: TTL / hop limit 64; DSCP+ECN (IPv4 `tos`) copied from
//! the inner header; IPv4 id 0 with DF copied from the inner header (the outer
//! packet is never fragmented by us: too-big packets are answered instead);
//! IPv6 outer version/traffic class/flow label word copied from the inner one.

use core::{mem::size_of, ptr::addr_of};

use aya_ebpf::{
    EbpfContext,
    bindings::{bpf_fib_lookup, xdp_action},
    helpers::generated::{bpf_fib_lookup as fib_lookup_helper, bpf_redirect},
    programs::XdpContext,
};
use lb_common::{
    BACKEND_ENCAP_GUE, BACKEND_HAS_NEXT_HOP, BackendEntry, BackendStats, GlobalCounter,
    SETTINGS_HAS_GATEWAY, SETTINGS_HAS_SOURCE_V4, SETTINGS_HAS_SOURCE_V6,
    SETTINGS_SOURCE_PREFIX_V4, SETTINGS_SOURCE_PREFIX_V6, Settings,
    flow::{FAMILY_V4, PROTO_UDP},
    flow_hash,
    gue::{DEFAULT_GUE_PORT, GUE_PROTO_IPV4, GUE_PROTO_IPV6, gue_source_port},
    net::{AF_INET, AF_INET6},
    per_flow_source_v4, per_flow_source_v6,
};
use lb_ebpf::{
    Packet, Parsed,
    wire::{
        emit_gue::{Hint, emit_gue, emit_udp},
        emit_ipv4::{Ipv4Fields, emit_ipv4},
        ethernet::{ETH_LEN, ETH_P_IP, ETH_P_IPV6},
        ipv4::{IP_DF, IPPROTO_IPIP, IPV4_LEN, Ipv4Hdr},
        ipv6::{IPPROTO_IPV6, IPV6_LEN, Ipv6Hdr},
        udp::UDP_LEN,
    },
};

use crate::{
    maps::{BACKEND_STATS, LIVE_SETTINGS},
    prog::{
        balance::Selected,
        counters::count,
        frame::{Grown, grow_head},
        verdict::{Step, Verdict},
        words,
    },
};

/// How encapsulation ended (its failures are `Err` drops).
pub enum Encapsulated {
    /// Encapsulated and sent: `Tx` or `Redirect`.
    Sent(Verdict),
    /// Too big for the egress (`DropTooBig` counted): the caller answers the
    /// client with a packet-too-big of MTU `mtu` (the egress MTU less the
    /// outer header).
    TooBig {
        /// The MTU to announce.
        mtu: u32,
    },
}

/// Output lookup, as for a locally generated packet (ip_forward need not be on).
const BPF_FIB_LOOKUP_OUTPUT: u32 = 1 << 1;
const BPF_FIB_LKUP_RET_SUCCESS: i64 = 0;
const BPF_FIB_LKUP_RET_FRAG_NEEDED: i64 = 8;

/// Where an encapsulated packet leaves.
struct NextHop {
    /// Destination then source MAC, as the first 12 bytes of the Ethernet
    /// header (three words: copied with three loads and stores).
    macs: [u32; 3],
    /// Egress ifindex; 0 = the ingress interface.
    ifindex: u32,
    /// Egress MTU; 0 = unchecked.
    mtu: u32,
}

/// The 12 bytes of a destination MAC followed by its source MAC, as words.
///
/// Both `BackendEntry::next_hop_mac` + `source_mac` and `Settings::gateway_mac`
/// + `interface_mac` are adjacent and 4-byte aligned in their map values.
#[inline(always)]
fn mac_pair(dst_then_src: &[u8; 6]) -> [u32; 3] {
    // SAFETY: the 12 bytes lie inside the same map value (see above), 4-byte
    // aligned; any bits are valid words.
    unsafe { (dst_then_src as *const [u8; 6] as *const [u32; 3]).read() }
}

/// How a packet is encapsulated: the bytes added in front of the inner
/// packet and, for GUE, the UDP ports and the hint.
struct Tunnel {
    /// Bytes added: outer IP header (+ UDP + GUE header for GUE).
    overhead: usize,
    /// GUE fields; `None` for IPv4-in-IPv4 / IPv6-in-IPv6.
    gue: Option<Gue>,
}

/// The GUE fields of a [`Tunnel`].
struct Gue {
    /// UDP source port (host order), from the flow hash.
    src_port: u16,
    /// UDP destination port, network order.
    dst_port: u16,
    /// The previous owner, when second chance names one.
    hint: Hint,
}

/// The tunnel toward backend `b` for a packet of family `v4` (flow hash
/// `hash`), naming `hint` (the previous owner) when the backend's service
/// uses GUE.
#[inline(always)]
fn tunnel(
    b: &BackendEntry,
    v4: bool,
    hash: u32,
    hint: Option<&BackendEntry>,
    settings: &Settings,
) -> Tunnel {
    let ip = if v4 { IPV4_LEN } else { IPV6_LEN };
    if b.flags & BACKEND_ENCAP_GUE == 0 {
        return Tunnel {
            overhead: ip,
            gue: None,
        };
    }
    let hint = match hint {
        None => Hint::None,
        Some(h) if v4 => Hint::V4(h.addr[0]),
        Some(h) => Hint::V6(words::read_address(&h.addr)),
    };
    let dst_port = if settings.gue_port != 0 {
        settings.gue_port
    } else {
        DEFAULT_GUE_PORT.to_be()
    };
    Tunnel {
        overhead: ip + UDP_LEN + hint.gue_len(),
        gue: Some(Gue {
            src_port: gue_source_port(hash),
            dst_port,
            hint,
        }),
    }
}

/// Encapsulates the packet `p` toward its selected backend and sends it:
/// IPv4-in-IPv4 / IPv6-in-IPv6, or GUE when the backend's service uses it,
/// then naming the flow's previous owner (second chance), if any, in the GUE
/// header. The packet is counted in the backend's record, one lookup: its
/// connection-table hit (the service's share of it: a hit is not counted in
/// the service's record) at once, the packet, its bytes and how it left once
/// it is sent.
#[inline(always)]
pub fn send(ctx: &XdpContext, pkt: &Packet, p: &Parsed, sel: &Selected) -> Step<Encapsulated> {
    let stats = BACKEND_STATS.get_ptr_mut(sel.id);
    let frame_len = pkt.len() as u64;
    if let Some(s) = stats {
        // SAFETY: this CPU's slot; XDP runs without preemption. A hit is
        // the service's packet too (`ServiceStats::plus_share`).
        unsafe {
            (*s).hits += u64::from(sel.hit_len != 0);
            (*s).hit_bytes += sel.hit_len;
        }
    }
    let (key, b, hint) = (&sel.key, sel.backend, sel.hint);
    // SAFETY: a global of the program, written by the agent (a torn copy
    // during a rewrite is what a map's value copy could give as well).
    let settings = unsafe { &*addr_of!(LIVE_SETTINGS) };
    let v4 = p.family == FAMILY_V4;
    let (source_flag, prefix_flag) = if v4 {
        (SETTINGS_HAS_SOURCE_V4, SETTINGS_SOURCE_PREFIX_V4)
    } else {
        (SETTINGS_HAS_SOURCE_V6, SETTINGS_SOURCE_PREFIX_V6)
    };
    if settings.flags & source_flag == 0 {
        return Err(Verdict::drop(GlobalCounter::DropNoSource));
    }
    let per_flow = b.flags & BACKEND_ENCAP_GUE != 0 || settings.flags & prefix_flag != 0;
    let hash = if per_flow { flow_hash(key) } else { 0 };
    let t = tunnel(b, v4, hash, hint, settings);
    let overhead = t.overhead;
    let nh = if b.flags & BACKEND_HAS_NEXT_HOP != 0 {
        NextHop {
            macs: mac_pair(&b.next_hop_mac),
            ifindex: b.next_hop_ifindex,
            mtu: if b.next_hop_mtu != 0 {
                b.next_hop_mtu
            } else {
                settings.mtu
            },
        }
    } else if let Some(nh) = fib(ctx, p, b, settings, overhead) {
        nh
    } else if settings.flags & SETTINGS_HAS_GATEWAY != 0 {
        NextHop {
            macs: mac_pair(&settings.gateway_mac),
            ifindex: 0,
            mtu: settings.mtu,
        }
    } else {
        return Err(Verdict::drop(GlobalCounter::DropNoRoute));
    };
    if nh.mtu != 0 && p.ip_len + overhead > nh.mtu as usize {
        count(GlobalCounter::DropTooBig);
        return Ok(Encapsulated::TooBig {
            mtu: nh.mtu - overhead as u32,
        });
    }
    let ok = if v4 {
        let src = if settings.flags & SETTINGS_SOURCE_PREFIX_V4 != 0 {
            per_flow_source_v4(settings.source_v4, settings.source_host_mask_v4, hash)
        } else {
            settings.source_v4
        };
        push_v4(ctx, pkt, p, src, b.addr[0], &nh, &t)
    } else {
        let src = if settings.flags & SETTINGS_SOURCE_PREFIX_V6 != 0 {
            per_flow_source_v6(&settings.source_v6, settings.source_host_mask_v6, hash)
        } else {
            settings.source_v6
        };
        push_v6(ctx, pkt, p, &src, &b.addr, &nh, &t)
    };
    if !ok {
        return Err(Verdict::drop(GlobalCounter::DropInternal));
    }
    if let Some(g) = &t.gue {
        count(GlobalCounter::GueEncapsulated);
        if g.hint != Hint::None {
            count(GlobalCounter::SecondChancePackets);
        }
    }
    // The interface the program is attached to, from the settings already in
    // cache: ctx->rxq->dev->ifindex is a pointer chase that misses the cache.
    let ingress = if settings.ifindex != 0 {
        settings.ifindex
    } else {
        ctx.ingress_ifindex() as u32
    };
    if nh.ifindex == 0 || nh.ifindex == ingress {
        count_sent(stats, frame_len, false);
        Ok(Encapsulated::Sent(Verdict::forwarded_tx()))
    } else {
        // SAFETY: plain helper call.
        let rc = unsafe { bpf_redirect(nh.ifindex, 0) };
        if rc as u32 == xdp_action::XDP_REDIRECT {
            count_sent(stats, frame_len, true);
            Ok(Encapsulated::Sent(Verdict::forwarded_redirect()))
        } else {
            Err(Verdict::drop(GlobalCounter::DropInternal))
        }
    }
}

/// Counts a packet of `len` bytes sent to a backend in its record `stats`
/// (which readers turn into the global `tx` and `redirect` too).
#[inline(always)]
fn count_sent(stats: Option<*mut BackendStats>, len: u64, redirected: bool) {
    if let Some(s) = stats {
        // SAFETY: this CPU's slot; XDP runs without preemption.
        unsafe {
            (*s).packets += 1;
            (*s).bytes += len;
            if redirected {
                (*s).redirects += 1;
            }
        }
    }
}

/// Next hop toward the backend from the kernel FIB (and its MTU verdict).
#[inline(always)]
fn fib(
    ctx: &XdpContext,
    p: &Parsed,
    b: &BackendEntry,
    settings: &Settings,
    overhead: usize,
) -> Option<NextHop> {
    let mut raw = core::mem::MaybeUninit::uninit();
    let params = words::zeroed_fib_params(&mut raw);
    params.l4_protocol = p.protocol;
    params.__bindgen_anon_1.tot_len = (p.ip_len + overhead) as u16;
    params.ifindex = ctx.ingress_ifindex() as u32;
    if p.family == FAMILY_V4 {
        params.family = AF_INET;
        params.__bindgen_anon_3.ipv4_src = settings.source_v4;
        params.__bindgen_anon_4.ipv4_dst = b.addr[0];
    } else {
        params.family = AF_INET6;
        // SAFETY: writing a union's integer field.
        unsafe {
            words::copy_address(&mut params.__bindgen_anon_3.ipv6_src, &settings.source_v6);
            words::copy_address(&mut params.__bindgen_anon_4.ipv6_dst, &b.addr);
        }
    }
    // SAFETY: params is a valid, writable bpf_fib_lookup.
    let rc = unsafe {
        fib_lookup_helper(
            ctx.as_ptr(),
            params,
            size_of::<bpf_fib_lookup>() as i32,
            BPF_FIB_LOOKUP_OUTPUT,
        )
    };
    if rc == BPF_FIB_LKUP_RET_SUCCESS {
        let mut macs = [0u8; 12];
        macs[..6].copy_from_slice(&params.dmac);
        macs[6..].copy_from_slice(&params.smac);
        Some(NextHop {
            macs: [
                u32::from_ne_bytes([macs[0], macs[1], macs[2], macs[3]]),
                u32::from_ne_bytes([macs[4], macs[5], macs[6], macs[7]]),
                u32::from_ne_bytes([macs[8], macs[9], macs[10], macs[11]]),
            ],
            ifindex: params.ifindex,
            mtu: settings.mtu,
        })
    } else if rc == BPF_FIB_LKUP_RET_FRAG_NEEDED {
        // The route's MTU is too small: make the caller answer "too big".
        // SAFETY: the kernel filled mtu_result.
        let mtu = unsafe { params.__bindgen_anon_1.mtu_result } as u32;
        Some(NextHop {
            macs: [0; 3],
            ifindex: 0,
            mtu: if mtu == 0 { 1 } else { mtu },
        })
    } else {
        None
    }
}

/// Writes the UDP and GUE headers of `t` (when GUE) after an outer IP
/// header ending at `off`, for an inner packet of `ip_len` bytes.
#[inline(always)]
fn push_gue(pkt: &Packet, off: usize, t: &Tunnel, ip_len: usize, inner_protocol: u8) -> bool {
    let Some(g) = &t.gue else {
        return true;
    };
    let udp_len = UDP_LEN + g.hint.gue_len() + ip_len;
    emit_udp(pkt, off, g.src_port, g.dst_port, udp_len)
        && emit_gue(pkt, off + UDP_LEN, inner_protocol, &g.hint)
}

#[inline(always)]
fn push_v4(
    ctx: &XdpContext,
    pkt: &Packet,
    p: &Parsed,
    src: u32,
    dst: u32,
    nh: &NextHop,
    t: &Tunnel,
) -> bool {
    let Some(inner) = pkt.view::<Ipv4Hdr>(ETH_LEN) else {
        return false;
    };
    let (tos, frag_off) = (inner.tos(), inner.frag_off());
    let Some(Grown::<Ipv4Hdr> { pkt, eth, ip }) = grow_head(ctx, t.overhead) else {
        return false;
    };
    let outer = Ipv4Fields {
        tos,
        payload_len: (p.ip_len + t.overhead - IPV4_LEN) as u16,
        frag_off: frag_off & IP_DF.to_be(),
        protocol: if t.gue.is_some() {
            PROTO_UDP
        } else {
            IPPROTO_IPIP
        },
        src,
        dst,
    };
    eth.set_macs(nh.macs);
    eth.set_ether_type(ETH_P_IP.to_be());
    emit_ipv4(&ip, &outer);
    push_gue(&pkt, ETH_LEN + IPV4_LEN, t, p.ip_len, GUE_PROTO_IPV4)
}

#[inline(always)]
fn push_v6(
    ctx: &XdpContext,
    pkt: &Packet,
    p: &Parsed,
    src: &[u32; 4],
    dst: &[u32; 4],
    nh: &NextHop,
    t: &Tunnel,
) -> bool {
    let Some(inner) = pkt.view::<Ipv6Hdr>(ETH_LEN) else {
        return false;
    };
    let first = inner.version_tc_flow();
    let Some(Grown::<Ipv6Hdr> { pkt, eth, ip }) = grow_head(ctx, t.overhead) else {
        return false;
    };
    let hdr = Ipv6Hdr {
        version_tc_flow: first,
        payload_len: ((p.ip_len + t.overhead - IPV6_LEN) as u16).to_be(),
        next_hdr: if t.gue.is_some() {
            PROTO_UDP
        } else {
            IPPROTO_IPV6
        },
        hop_limit: 64,
        src: *src,
        dst: *dst,
    };
    eth.set_macs(nh.macs);
    eth.set_ether_type(ETH_P_IPV6.to_be());
    ip.set(hdr);
    push_gue(&pkt, ETH_LEN + IPV6_LEN, t, p.ip_len, GUE_PROTO_IPV6)
}
