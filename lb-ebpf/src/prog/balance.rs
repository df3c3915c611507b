//! Stage 3, select a backend: the connection table for established flows,
//! else the service's Maglev pick (recorded for new flows, never for ICMP
//! errors).

use lb_common::{
    BACKEND_LIVE, BackendEntry, BackendId, FlowEntry, FlowKey, FlowPlace, GlobalCounter,
    ServiceEntry, flow_hash,
};
use lb_ebpf::{
    Kind, Packet, Parsed,
    keys::flow_key,
    wire::tcp::{TCP_ACK, TCP_SYN},
};

use crate::{
    maps::{BACKEND_STATS, BACKENDS, MAGLEV_TABLES, SERVICE_STATS},
    prog::{
        classify::Target,
        counters::count,
        flows,
        verdict::{Step, Verdict},
        vip::service,
    },
};

/// The backend the frame `p` of `target` goes to.
#[inline(always)]
pub fn select(
    pkt: &Packet,
    p: &Parsed,
    target: &Target,
) -> Step<(BackendId, &'static BackendEntry)> {
    match target {
        Target::Flow => forward(pkt, p),
        Target::IcmpError(e) => pick_for_error(&e.key, &e.svc).ok_or(Verdict::dropped()),
    }
}

/// TCP/UDP (to a port the VIP filter says a service may serve): established
/// flows first (the connection table, one bucket read), then the service and
/// a Maglev pick for new flows and misses.
#[inline(always)]
fn forward(pkt: &Packet, p: &Parsed) -> Step<(BackendId, &'static BackendEntry)> {
    let frame_len = pkt.len() as u64;
    let key = flow_key(&p.src, &p.dst, p.src_port, p.dst_port, p.protocol, p.family);
    let tcp = p.kind == Kind::Tcp;
    let syn = tcp && p.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN;
    let place = flows::place(&key);
    if !syn && let Some((id, backend)) = pinned(&place) {
        // Only VIP flows are ever pinned, and a backend id belongs to one
        // service until it is retired (which makes the entry stale): the flow's
        // service is the backend's, no VIPS lookup needed.
        count(GlobalCounter::ConntrackHit);
        count_service(backend.service_id, frame_len);
        return Ok((id, backend));
    }
    let Some(svc) = service(p.dst, p.dst_port, p.protocol, p.family) else {
        return Err(Verdict::pass_not_vip());
    };
    count_service(svc.service_id, frame_len);
    if !syn {
        count_miss(tcp);
    }
    pick_new(&key, &place, &svc, true).ok_or(Verdict::dropped())
}

/// Adds a packet of `len` bytes to service `service_id`'s counters.
#[inline(always)]
fn count_service(service_id: u32, len: u64) {
    if let Some(s) = SERVICE_STATS.get_ptr_mut(service_id) {
        // SAFETY: this CPU's slot.
        unsafe {
            (*s).packets += 1;
            (*s).bytes += len;
        }
    }
}

/// Counts a connection-table miss (and a non-SYN miss for TCP).
#[inline(always)]
fn count_miss(tcp: bool) {
    count(GlobalCounter::ConntrackMiss);
    if tcp {
        count(GlobalCounter::NonSynMiss);
    }
}

/// The backend flow `key` is pinned to, when its entry is still valid (the
/// backend LIVE and of the generation the flow was pinned with).
#[inline(always)]
fn pinned(place: &FlowPlace) -> Option<(BackendId, &'static BackendEntry)> {
    let pin = flows::lookup(place)?;
    let b = BACKENDS.get(pin.backend_id)?;
    if b.flags & BACKEND_LIVE != 0 && b.generation == pin.generation {
        Some((pin.backend_id, b))
    } else {
        None
    }
}

/// The backend of an ICMP error's flow `key` (service `svc`): its valid
/// connection-table entry, else the Maglev pick, which an error never records.
/// Hits and misses are counted (`NonSynMiss` is for TCP segments only); `None`
/// (counted) when the service has no backend for a new flow.
#[inline(always)]
fn pick_for_error(key: &FlowKey, svc: &ServiceEntry) -> Option<(BackendId, &'static BackendEntry)> {
    let place = flows::place(key);
    if let Some(found) = pinned(&place) {
        count(GlobalCounter::ConntrackHit);
        return Some(found);
    }
    count_miss(false);
    pick_new(key, &place, svc, false)
}

/// A Maglev pick for flow `key` (at `place` in the connection table) of
/// service `svc`, recorded in the connection table when `insert` (within the
/// insert budget); counts the backend's new flow. `None` (counted) when the
/// service has no backend for a new flow. The pick uses the unkeyed
/// [`flow_hash`]: every node picks the same backend for a flow.
#[inline(always)]
fn pick_new(
    key: &FlowKey,
    place: &FlowPlace,
    svc: &ServiceEntry,
    insert: bool,
) -> Option<(BackendId, &'static BackendEntry)> {
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
        let pin = FlowEntry {
            backend_id: id,
            generation: b.generation,
        };
        flows::record(place, pin);
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
