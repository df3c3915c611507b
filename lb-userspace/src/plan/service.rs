//! One desired service against its applied self: its backends (ids, states,
//! liveness writes), its table (kept, or a fresh one at the spare index and a
//! flip) and the summary line of what changed.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use lb_common::{ServiceEntry, VipKey};

use super::ids::Ids;
use super::keys::{protocol_name, protocol_number};
use super::ops::MapOp;
use super::table::{Member, build_table, members, moved_slots, slot_addresses, table_fingerprint};
use super::{HealthView, PlanError, Previous, ServiceChange};
use crate::config::{Encapsulation, ServiceConfig};
use crate::health::{Candidate, candidates, select};
use crate::state::{AppliedBackend, AppliedService};

/// The ops of a plan by phase; [`Phases::ordered`] concatenates them in the
/// order of the guarantees at the top of the module.
#[derive(Default)]
pub(super) struct Phases {
    /// New backend ids (zeroed, written) and backends coming back to LIVE.
    pub(super) live_first: Vec<MapOp>,
    /// Removed services' VIPS entries, markers, then their tables.
    pub(super) removals: Vec<MapOp>,
    /// GUE services' entries rewritten without their previous table, before
    /// the spare index it may be is refilled.
    pub(super) drop_previous: Vec<MapOp>,
    /// Fresh tables at spare indices.
    pub(super) new_tables: Vec<MapOp>,
    /// New services' counters and markers, and the VIPS flips.
    pub(super) flips: Vec<MapOp>,
    /// Retired backends and backends leaving LIVE.
    pub(super) late: Vec<MapOp>,
}

/// What planning a service reads.
pub(super) struct Context<'a> {
    /// The applied view.
    pub(super) prev: &'a Previous<'a>,
    /// Desired Maglev table size.
    pub(super) table_size: u32,
    /// Health.
    pub(super) health: &'a dyn HealthView,
    /// VIPs with an applied service (their marker exists).
    pub(super) prev_vips: &'a BTreeSet<IpAddr>,
}

/// Plans `svc` (applied as `old`, if it was): pushes its ops into `phases`
/// and its summary into `changes`, returns it as it will be applied.
pub(super) fn plan_service(
    cx: &Context<'_>,
    svc: &ServiceConfig,
    old: Option<&AppliedService>,
    ids: &mut Ids,
    phases: &mut Phases,
    changes: &mut Vec<ServiceChange>,
) -> Result<AppliedService, PlanError> {
    let service_id = match old {
        Some(o) => o.service_id,
        None => ids.service()?,
    };
    // One health answer per backend decides its state, the panic mode and
    // the table alike.
    let candidates = candidates(svc, |a| cx.health.is_up(&svc.name, a));
    let panic = select(&candidates, svc.panic_threshold).panic;
    let mut change_list = Vec::new();
    if old.is_none() {
        change_list.push("added".to_string());
        phases
            .flips
            .push(MapOp::ZeroServiceStats { id: service_id });
        let marker = MapOp::PutVipMarker { vip: svc.vip };
        if !cx.prev_vips.contains(&svc.vip) && !phases.flips.contains(&marker) {
            phases.flips.push(marker);
        }
    }
    let old_backends: HashMap<IpAddr, &AppliedBackend> = old
        .map(|o| o.backends.iter().map(|b| (b.address, b)).collect())
        .unwrap_or_default();
    let mut backends = backends_of(
        svc,
        &candidates,
        old,
        &old_backends,
        ids,
        phases,
        &mut change_list,
    )?;
    let gue = svc.encap == Encapsulation::Gue;
    let encap_changed = old.is_some_and(|o| o.encap != svc.encap);
    if let Some(o) = old.filter(|_| encap_changed) {
        change_list.push(format!(
            "encap {}->{}",
            o.encap.as_str(),
            svc.encap.as_str()
        ));
    }
    if let Some(o) = old {
        if o.panic != panic {
            change_list.push(if panic { "panic" } else { "panic over" }.into());
        }
        let kept: BTreeSet<IpAddr> = svc.backends.iter().map(|b| b.address).collect();
        for ob in o.backends.iter().filter(|b| !kept.contains(&b.address)) {
            change_list.push(format!("-{}", ob.address));
            phases.late.push(MapOp::RetireBackend {
                id: ob.id,
                address: ob.address,
                generation: ob.generation,
                next_hop: cx.prev.next_hops.get(&ob.address).copied(),
            });
            ids.retire(ob.id, ob.generation);
        }
    }
    let written = Written {
        service_id,
        panic,
        gue,
        encap_changed,
    };
    liveness_ops(cx, &backends, &written, old, &old_backends, phases);

    let table = plan_table(
        cx,
        svc,
        service_id,
        &backends,
        panic,
        old,
        phases,
        &mut change_list,
    )?;
    if table.flipped || !change_list.is_empty() {
        if table.flipped && change_list.is_empty() {
            change_list.push("table rebuilt".into());
        }
        changes.push(ServiceChange {
            name: svc.name.clone(),
            changes: change_list,
            slots_moved: table.slots_moved,
            table_size: table.size,
        });
    }
    for b in &mut backends {
        b.slots = table.slots_by_id.get(&b.id).copied().unwrap_or(0);
    }
    Ok(AppliedService {
        name: svc.name.clone(),
        vip: svc.vip,
        port: svc.port,
        protocol: protocol_name(svc.protocol).to_string(),
        service_id,
        table_parity: table.parity,
        table_size: table.size,
        panic,
        backends,
        fingerprint: Some(table.fingerprint),
        encap: svc.encap,
    })
}

/// What every backend entry of a service carries.
struct Written {
    service_id: u32,
    panic: bool,
    gue: bool,
    /// The encapsulation changed: every kept backend is rewritten.
    encap_changed: bool,
}

/// The service's backends in config order: kept ones keep their id and
/// generation, new ones get an id (zeroed first). Logs what changed.
fn backends_of(
    svc: &ServiceConfig,
    candidates: &[Candidate],
    old: Option<&AppliedService>,
    old_backends: &HashMap<IpAddr, &AppliedBackend>,
    ids: &mut Ids,
    phases: &mut Phases,
    change_list: &mut Vec<String>,
) -> Result<Vec<AppliedBackend>, PlanError> {
    let mut backends = Vec::with_capacity(svc.backends.len());
    for (bc, candidate) in svc.backends.iter().zip(candidates) {
        let up = candidate.healthy;
        let (id, generation) = match old_backends.get(&bc.address) {
            Some(ob) => {
                if ob.weight != bc.weight {
                    change_list.push(format!(
                        "{} weight {}->{}",
                        bc.address, ob.weight, bc.weight
                    ));
                }
                if ob.drain != bc.drain {
                    let what = if bc.drain { "drain" } else { "undrain" };
                    change_list.push(format!("{} {what}", bc.address));
                }
                if Candidate::of_applied(ob).healthy != up {
                    let what = if up { "up" } else { "down" };
                    change_list.push(format!("{} {what}", bc.address));
                }
                (ob.id, ob.generation)
            }
            None => {
                let (id, generation) = ids.backend()?;
                if old.is_some() {
                    change_list.push(format!("+{}", bc.address));
                }
                phases.live_first.push(MapOp::ZeroBackendStats { id });
                (id, generation)
            }
        };
        backends.push(AppliedBackend {
            address: bc.address,
            id,
            generation,
            weight: bc.weight,
            drain: bc.drain,
            state: candidate.shown_state(),
            slots: 0,
        });
    }
    Ok(backends)
}

/// New backends are written (LIVE or not); kept ones are rewritten when their
/// liveness (or the service's encapsulation) changes: early when they are
/// LIVE, late when they stop being LIVE.
fn liveness_ops(
    cx: &Context<'_>,
    backends: &[AppliedBackend],
    w: &Written,
    old: Option<&AppliedService>,
    old_backends: &HashMap<IpAddr, &AppliedBackend>,
    phases: &mut Phases,
) {
    for b in backends {
        let live = Candidate::of_applied(b).is_live(w.panic);
        let op = MapOp::PutBackend {
            id: b.id,
            address: b.address,
            generation: b.generation,
            live,
            service_id: w.service_id,
            next_hop: cx.prev.next_hops.get(&b.address).copied(),
            gue: w.gue,
        };
        match old_backends.get(&b.address) {
            None => phases.live_first.push(op),
            Some(ob) => {
                let was_live = Candidate::of_applied(ob).is_live(old.is_some_and(|o| o.panic));
                match (was_live, live) {
                    (false, true) => phases.live_first.push(op),
                    (true, false) => phases.late.push(op),
                    (true, true) if w.encap_changed => phases.live_first.push(op),
                    (false, false) if w.encap_changed => phases.late.push(op),
                    _ => {}
                }
            }
        }
    }
}

/// The service's table as planned.
struct TablePlan {
    parity: u32,
    size: u32,
    slots_by_id: HashMap<u32, u32>,
    fingerprint: u32,
    /// A fresh table was built and the VIPS entry flips to it.
    flipped: bool,
    slots_moved: u32,
}

/// Keeps the applied table when its members and size are unchanged; else
/// builds a fresh one at the spare index and flips the VIPS entry to it.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the parts of one service"
)]
fn plan_table(
    cx: &Context<'_>,
    svc: &ServiceConfig,
    service_id: u32,
    backends: &[AppliedBackend],
    panic: bool,
    old: Option<&AppliedService>,
    phases: &mut Phases,
    change_list: &mut Vec<String>,
) -> Result<TablePlan, PlanError> {
    let m = cx.table_size;
    let size_changed = cx.prev.maglev_table_size != m;
    let new_members = members(backends, panic);
    let old_members: Vec<Member> = old
        .map(|o| members(&o.backends, o.panic))
        .unwrap_or_default();
    if let Some(o) = old.filter(|_| !size_changed && same_members(&new_members, &old_members)) {
        let fingerprint = match o.fingerprint {
            Some(f) => f,
            // A state from before fingerprints: compute it once.
            None => table_fingerprint(&build_table(m, &new_members, &svc.name)?, &new_members),
        };
        return Ok(TablePlan {
            parity: o.table_parity,
            size: o.table_size,
            slots_by_id: o.backends.iter().map(|b| (b.id, b.slots)).collect(),
            fingerprint,
            flipped: false,
            slots_moved: 0,
        });
    }
    let parity = old.map_or(0, |o| 1 - o.table_parity);
    let index = 2 * service_id + parity;
    let built = build_table(m, &new_members, &svc.name)?;
    let fingerprint = table_fingerprint(&built, &new_members);
    let new_addrs = slot_addresses(&built, &new_members);
    let old_addrs = match old {
        Some(o) if o.table_size > 0 => {
            let old_built = build_table(o.table_size, &old_members, &o.name)?;
            slot_addresses(&old_built, &old_members)
        }
        _ => Vec::new(),
    };
    let mut slots_by_id: HashMap<u32, u32> = HashMap::new();
    let size = match &built {
        Some((_, slots)) => {
            for &id in slots {
                *slots_by_id.entry(id).or_default() += 1;
            }
            phases.new_tables.push(MapOp::PutTable {
                index,
                slots: slots.clone(),
            });
            slots.len() as u32
        }
        None => 0,
    };
    let key = VipKey::new(svc.vip, svc.port, protocol_number(svc.protocol));
    let entry = ServiceEntry {
        service_id,
        table_index: index,
        table_size: size,
        ..ServiceEntry::default()
    };
    match old {
        // The entry of a service that is or was GUE may name the spare about
        // to be refilled as its previous table (second chance, from its last
        // flip): it forgets it first. With second chance, the old live table
        // becomes the previous one.
        Some(o)
            if (svc.encap == Encapsulation::Gue || o.encap == Encapsulation::Gue)
                && o.table_size > 0
                && size > 0 =>
        {
            let old_index = 2 * service_id + o.table_parity;
            phases.drop_previous.push(MapOp::PutService {
                key,
                entry: ServiceEntry {
                    service_id,
                    table_index: old_index,
                    table_size: o.table_size,
                    ..ServiceEntry::default()
                },
            });
            phases.flips.push(
                if svc.encap == Encapsulation::Gue && svc.second_chance_s > 0 {
                    MapOp::PutServiceWithPrevious {
                        key,
                        entry: ServiceEntry {
                            previous_table_index: old_index,
                            previous_table_size: o.table_size,
                            ..entry
                        },
                        grace_s: svc.second_chance_s,
                    }
                } else {
                    MapOp::PutService { key, entry }
                },
            );
        }
        _ => phases.flips.push(MapOp::PutService { key, entry }),
    }
    if size == 0 && old.is_some_and(|o| o.table_size > 0) {
        change_list.push("no backend takes new flows".into());
    }
    if size_changed && old.is_some() {
        change_list.push(format!("table size {}->{m}", cx.prev.maglev_table_size));
    }
    Ok(TablePlan {
        parity,
        size,
        slots_by_id,
        fingerprint,
        flipped: true,
        slots_moved: moved_slots(&old_addrs, &new_addrs),
    })
}

/// The same members, in any order.
fn same_members(a: &[Member], b: &[Member]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}
