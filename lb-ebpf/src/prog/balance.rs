//! `lb_xdp`: classify, find the service and the flow's backend, encapsulate.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use lb_common::{
    BACKEND_LIVE, BackendEntry, BackendId, FlowEntry, FlowKey, GlobalCounter, ServiceEntry,
    flow_hash,
};
use lb_ebpf::{
    Kind, Packet, Parsed,
    keys::flow_key,
    parse,
    wire::tcp::{TCP_ACK, TCP_SYN},
};

use crate::{
    maps::{BACKEND_STATS, BACKENDS, CONNTRACK, MAGLEV_TABLES, SERVICE_STATS},
    prog::{
        counters::count,
        encap, icmp,
        vip::{is_vip_address, service},
    },
};

/// Entry point of `lb_xdp`.
#[inline(always)]
pub fn run(ctx: &XdpContext) -> u32 {
    let pkt = Packet::new(ctx.data(), ctx.data_end());
    let p = parse(&pkt);
    match p.kind {
        Kind::Tcp | Kind::Udp => forward(ctx, &pkt, &p),
        Kind::Icmp => icmp::handle(ctx, &pkt, &p),
        Kind::NotIp => pass_not_vip(),
        Kind::Malformed => {
            if is_vip_address(p.dst, p.family) {
                drop(GlobalCounter::DropMalformed)
            } else {
                pass_not_vip()
            }
        }
        Kind::Fragment => {
            if service(p.dst, p.dst_port, p.protocol, p.family).is_some()
                || is_vip_address(p.dst, p.family)
            {
                drop(GlobalCounter::DropFragment)
            } else {
                pass_not_vip()
            }
        }
        Kind::Other => {
            if is_vip_address(p.dst, p.family) {
                count(GlobalCounter::PassUnsupported);
                xdp_action::XDP_PASS
            } else {
                pass_not_vip()
            }
        }
    }
}

/// Counts `PassNotVip` and passes the frame unchanged.
#[inline(always)]
pub fn pass_not_vip() -> u32 {
    count(GlobalCounter::PassNotVip);
    xdp_action::XDP_PASS
}

/// Counts `c` and drops the frame.
#[inline(always)]
pub fn drop(c: GlobalCounter) -> u32 {
    count(c);
    xdp_action::XDP_DROP
}

#[inline(always)]
fn forward(ctx: &XdpContext, pkt: &Packet, p: &Parsed) -> u32 {
    let Some(svc) = service(p.dst, p.dst_port, p.protocol, p.family) else {
        return pass_not_vip();
    };
    let frame_len = pkt.len() as u64;
    if let Some(s) = SERVICE_STATS.get_ptr_mut(svc.service_id) {
        // SAFETY: this CPU's slot.
        unsafe {
            (*s).packets += 1;
            (*s).bytes += frame_len;
        }
    }
    let key = flow_key(&p.src, &p.dst, p.src_port, p.dst_port, p.protocol, p.family);
    let tcp = p.kind == Kind::Tcp;
    let syn = tcp && p.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN;
    let Some((id, backend)) = pick(&key, &svc, syn, tcp, true) else {
        return xdp_action::XDP_DROP;
    };
    encap::send(ctx, pkt, p, id, backend)
}

/// The backend of flow `key` of service `svc`: its connection-table entry when
/// valid (not for a SYN), else a Maglev pick that is recorded when `insert`.
/// `None` (counted) when the service has no backend for a new flow.
#[inline(always)]
pub fn pick(
    key: &FlowKey,
    svc: &ServiceEntry,
    syn: bool,
    tcp: bool,
    insert: bool,
) -> Option<(BackendId, &'static BackendEntry)> {
    if !syn {
        if let Some(e) = CONNTRACK.get_ptr(key) {
            // SAFETY: map value pointer.
            let e = unsafe { *e };
            if let Some(b) = BACKENDS.get(e.backend_id) {
                if b.flags & BACKEND_LIVE != 0 && b.generation == e.generation {
                    count(GlobalCounter::ConntrackHit);
                    return Some((e.backend_id, b));
                }
            }
        }
        count(GlobalCounter::ConntrackMiss);
        if tcp {
            count(GlobalCounter::NonSynMiss);
        }
    }
    let size = svc.table_size;
    if size == 0 {
        return no_backend(svc);
    }
    let slot = flow_hash(key) % size;
    let Some(&id) = MAGLEV_TABLES.get_value(svc.table_index, &slot) else {
        return no_backend(svc);
    };
    let Some(b) = BACKENDS.get(id) else {
        return no_backend(svc);
    };
    if b.flags & BACKEND_LIVE == 0 {
        return no_backend(svc);
    }
    if insert {
        let entry = FlowEntry {
            backend_id: id,
            generation: b.generation,
        };
        // An LRU insert only fails on allocation trouble; the packet still goes.
        let _ = CONNTRACK.insert(key, entry, 0);
    }
    if let Some(s) = BACKEND_STATS.get_ptr_mut(id) {
        // SAFETY: this CPU's slot.
        unsafe { (*s).new_flows += 1 };
    }
    Some((id, b))
}

#[inline(always)]
fn no_backend(svc: &ServiceEntry) -> Option<(BackendId, &'static BackendEntry)> {
    count(GlobalCounter::DropNoBackend);
    if let Some(s) = SERVICE_STATS.get_ptr_mut(svc.service_id) {
        // SAFETY: this CPU's slot.
        unsafe { (*s).no_backend += 1 };
    }
    None
}
