//! Second chance, the balancer's side: which backend owned a flow under the
//! service's previous Maglev table (`lb_common::ServiceEntry`), to be named
//! as the GUE hint so that the backend receiving a connection it does not
//! know hands it on to that previous owner. A leaf of [`super::balance`]
//! (the backend side's forward is `lb_decap`'s).

use aya_ebpf::helpers::generated::bpf_ktime_get_ns;
use lb_common::{
    BACKEND_ENCAP_GUE, BACKEND_LIVE, BackendEntry, BackendId, GlobalCounter, ServiceEntry,
};

use crate::{
    maps::{BACKENDS, MAGLEV_TABLES},
    prog::counters::count,
};

/// The previous owner of a flow of Maglev hash `hash` that the live table of
/// `svc` gives to `current` (entry `b`): the previous table's pick, when
/// the service uses GUE, its previous table is still within its grace period
/// (`bpf_ktime_get_ns` = `CLOCK_MONOTONIC`, as the agent wrote the deadline),
/// and the pick is another backend, LIVE and of the same service. Counts
/// `SecondChanceFlows` when it names one.
#[inline(always)]
pub fn previous_owner(
    svc: &ServiceEntry,
    hash: u32,
    current: BackendId,
    b: &BackendEntry,
) -> Option<(BackendId, &'static BackendEntry)> {
    if b.flags & BACKEND_ENCAP_GUE == 0 || svc.previous_table_size == 0 {
        return None;
    }
    // SAFETY: plain helper call.
    let now = unsafe { bpf_ktime_get_ns() };
    if now >= svc.previous_until_ns {
        return None;
    }
    let slot = hash % svc.previous_table_size;
    let &previous = MAGLEV_TABLES.get_value(svc.previous_table_index, &slot)?;
    if previous == current {
        return None;
    }
    let h = BACKENDS.get(previous)?;
    if h.flags & BACKEND_LIVE == 0 || h.service_id != svc.service_id {
        return None;
    }
    count(GlobalCounter::SecondChanceFlows);
    Some((previous, h))
}

/// The backend a pinned flow (to `backend`) names as its hint `hint`, while
/// that backend is LIVE and still of the flow's service; the hint outlives
/// the grace period (it was chosen when the flow arrived here).
#[inline(always)]
pub fn hinted_backend(hint: BackendId, backend: &BackendEntry) -> Option<&'static BackendEntry> {
    let h = BACKENDS.get(hint)?;
    (h.flags & BACKEND_LIVE != 0 && h.service_id == backend.service_id).then_some(h)
}
