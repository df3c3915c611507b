//! Stage 3, select a backend: the connection table for established flows,
//! else the service's Maglev pick (recorded for new flows, never for ICMP
//! errors), with the flow's second-chance hint ([`previous_owner`]).

use lb_common::{
    BACKEND_LIVE, BackendEntry, BackendId, FlowEntry, FlowKey, FlowPlace, GlobalCounter,
    ServiceEntry, flow_hash, flow_table::PIN_GENERATION_MASK,
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
        flows, previous_owner,
        verdict::{Step, Verdict},
        vip::service,
    },
};

/// The backend a frame goes to, and what its encapsulation needs.
pub struct Selected {
    /// The backend's id.
    pub id: BackendId,
    /// Its entry.
    pub backend: &'static BackendEntry,
    /// The flow's previous owner (second chance), named in the GUE header.
    pub hint: Option<&'static BackendEntry>,
    /// The flow (the ICMP error's quoted flow for errors): its unkeyed
    /// [`flow_hash`] gives GUE's source port and a per-flow outer source.
    pub key: FlowKey,
    /// The frame's length when the flow's entry named the backend (a
    /// connection-table hit: `conntrack_hit` and the service's share, added
    /// to the backend's record with the packet), else 0 (a frame is never
    /// empty). A number, not a `bool`, so that no enum layout hides a
    /// discriminant beside the entry pointer, which the verifier refuses to
    /// see shifted.
    pub hit_len: u64,
}

/// The backend the frame `p` of `target` goes to.
#[inline(always)]
pub fn select(pkt: &Packet, p: &Parsed, target: &Target) -> Step<Selected> {
    match target {
        Target::Flow => forward(pkt, p),
        Target::IcmpError(e) => {
            let len = pkt.len() as u64;
            let (id, backend, hits) =
                pick_for_error(&e.key, &e.svc, len).ok_or(Verdict::dropped())?;
            Ok(Selected {
                id,
                backend,
                hint: None,
                key: e.key,
                hit_len: len * hits,
            })
        }
    }
}

/// TCP/UDP (to a port the VIP filter says a service may serve): established
/// flows first (the connection table, one bucket read), then the service and
/// a Maglev pick for new flows and misses.
#[inline(always)]
fn forward(pkt: &Packet, p: &Parsed) -> Step<Selected> {
    let frame_len = pkt.len() as u64;
    let key = flow_key(&p.src, &p.dst, p.src_port, p.dst_port, p.protocol, p.family);
    let tcp = p.kind == Kind::Tcp;
    let syn = tcp && p.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN;
    let place = flows::place(&key);
    if !syn && let Some((id, backend, hint)) = pinned(&place) {
        // Only VIP flows are ever pinned, and a backend id belongs to one
        // service until it is retired (which makes the entry stale): the flow's
        // service is the backend's, no VIPS lookup needed. The hit is
        // counted with the packet, in the backend's record, for the service
        // too (`lb_common::ServiceStats::plus_share`).
        let hint = hint.and_then(|h| previous_owner::hinted_backend(h, backend));
        return Ok(Selected {
            id,
            backend,
            hint,
            key,
            hit_len: frame_len,
        });
    }
    let Some(svc) = service(p.dst, p.dst_port, p.protocol, p.family) else {
        return Err(Verdict::pass_not_vip());
    };
    count_service(svc.service_id, frame_len);
    if !syn {
        count_miss(tcp);
    }
    let (id, backend, hint) =
        pick_new(&key, &place, &svc, true, tcp && !syn).ok_or(Verdict::dropped())?;
    Ok(Selected {
        id,
        backend,
        hint,
        key,
        hit_len: 0,
    })
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
/// backend LIVE and of the generation the flow was pinned with), and the
/// flow's second-chance hint (a backend id), if it has one.
#[inline(always)]
fn pinned(place: &FlowPlace) -> Option<(BackendId, &'static BackendEntry, Option<BackendId>)> {
    let (pin, hint) = flows::lookup(place)?;
    let b = BACKENDS.get(pin.backend_id)?;
    if b.flags & BACKEND_LIVE != 0 && b.generation & PIN_GENERATION_MASK == pin.generation {
        Some((pin.backend_id, b, hint))
    } else {
        None
    }
}

/// The backend of an ICMP error's flow `key` (service `svc`; the error is
/// `frame_len` bytes): its valid connection-table entry (1 hit), else the
/// Maglev pick (0), which an error never records. Misses are counted here
/// (`NonSynMiss` is for TCP segments only), for the service too; hits with
/// the packet; `None` (counted) when the service has no backend for a new
/// flow.
#[inline(always)]
fn pick_for_error(
    key: &FlowKey,
    svc: &ServiceEntry,
    frame_len: u64,
) -> Option<(BackendId, &'static BackendEntry, u64)> {
    let place = flows::place(key);
    if let Some((id, b, _)) = pinned(&place) {
        // Counted for the service with the hit, in the backend's record.
        return Some((id, b, 1));
    }
    count_miss(false);
    count_service(svc.service_id, frame_len);
    pick_new(key, &place, svc, false, false).map(|(id, b, _)| (id, b, 0))
}

/// A Maglev pick for flow `key` (at `place` in the connection table) of
/// service `svc`; counts the backend's new flow. `None` (counted) when the
/// service has no backend for a new flow. The pick uses the unkeyed
/// [`flow_hash`]: every node picks the same backend for a flow.
///
/// The pick is recorded in the connection table when `insert` (within the
/// insert budget). `moved` (a TCP segment without SYN: a connection that may
/// have started elsewhere) asks for second chance: the previous owner, when
/// the service still has a previous table that gives the flow to another
/// backend ([`previous_owner::previous_owner`]), is returned as the hint and
/// recorded with the pin, so the flow keeps naming it for its life here.
#[inline(always)]
fn pick_new(
    key: &FlowKey,
    place: &FlowPlace,
    svc: &ServiceEntry,
    insert: bool,
    moved: bool,
) -> Option<(
    BackendId,
    &'static BackendEntry,
    Option<&'static BackendEntry>,
)> {
    let size = svc.table_size;
    if size == 0 {
        return no_backend(svc);
    }
    let hash = flow_hash(key);
    let slot = hash % size;
    let Some(&id) = MAGLEV_TABLES.get_value(svc.table_index, &slot) else {
        return no_backend(svc);
    };
    let Some(b) = BACKENDS.get(id) else {
        return no_backend(svc);
    };
    if b.flags & BACKEND_LIVE == 0 {
        return no_backend(svc);
    }
    let hint = if moved {
        previous_owner::previous_owner(svc, hash, id, b)
    } else {
        None
    };
    if insert {
        let pin = FlowEntry {
            backend_id: id,
            generation: b.generation,
        };
        flows::record(place, pin, hint.map(|(hint_id, _)| hint_id));
    }
    if let Some(s) = BACKEND_STATS.get_ptr_mut(id) {
        // SAFETY: this CPU's slot.
        unsafe { (*s).new_flows += 1 };
    }
    Some((id, b, hint.map(|(_, h)| h)))
}

#[inline(always)]
fn no_backend<T>(svc: &ServiceEntry) -> Option<T> {
    count(GlobalCounter::DropNoBackend);
    if let Some(s) = SERVICE_STATS.get_ptr_mut(svc.service_id) {
        // SAFETY: this CPU's slot.
        unsafe { (*s).no_backend += 1 };
    }
    None
}
