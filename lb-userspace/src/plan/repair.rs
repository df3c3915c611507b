//! Repair after an apply whose rollback failed: every entry the failed ops
//! touched is rewritten to what the applied view says it holds (or deleted
//! when the view has none), in the same safe order as a plan: filter bits
//! set, LIVE backends, tables, VIPS entries, deletions, non-LIVE backends,
//! filter bits cleared. A VIPS entry rewritten names no previous table (its
//! service gives up second chance until its next table change).
//! Settings and the insert budget are not map entries of the view; the agent's
//! core rewrites those itself.
//!
//! Previous tables (second chance) stay safe through a repair:
//! - a failed write may have left an entry naming the view's *live* table as
//!   its previous one (a `PutServiceWithPrevious` that landed). Refilling that
//!   table before the entry is rewritten is harmless: every apply starts with
//!   the repair, so a table a plan names as previous holds the view's slots,
//!   and the repair writes those same slots again (a whole new inner table
//!   with equal contents, nothing a packet reads changes);
//! - an entry of the view may name its *spare* table as previous. A touched
//!   spare is deleted, so that entry is rewritten first, naming none.

use std::collections::{BTreeMap, BTreeSet};

use lb_common::{ServiceEntry, vip_filter_words};

use super::Previous;
use super::keys::applied_service_key;
use super::ops::MapOp;
use super::table::{build_table, members};
use crate::config::Encapsulation;
use crate::health::Candidate;

/// The writes that put every entry `touched` wrote back to the view `prev`.
pub fn repair_ops(prev: &Previous<'_>, touched: &[MapOp]) -> Vec<MapOp> {
    let mut backends = BTreeSet::new();
    let mut tables = BTreeSet::new();
    let mut keys = Vec::new();
    let mut markers = BTreeSet::new();
    for op in touched {
        match op {
            MapOp::SetVipFilterWord { .. } => {}
            MapOp::PutBackend {
                id,
                address,
                generation,
                ..
            }
            | MapOp::RetireBackend {
                id,
                address,
                generation,
                ..
            } => {
                backends.insert((*id, *address, *generation));
            }
            MapOp::PutTable { index, .. } | MapOp::DeleteTable { index } => {
                tables.insert(*index);
            }
            MapOp::PutService { key, .. }
            | MapOp::PutServiceWithPrevious { key, .. }
            | MapOp::DeleteService { key } => {
                if !keys.contains(key) {
                    keys.push(*key);
                }
            }
            MapOp::PutVipMarker { vip } | MapOp::DeleteVipMarker { vip } => {
                markers.insert(*vip);
            }
            MapOp::PutSettings { .. }
            | MapOp::SetInsertBudget { .. }
            | MapOp::ZeroBackendStats { .. }
            | MapOp::ZeroServiceStats { .. } => {}
        }
    }
    // An entry may name a touched table as its previous one (its spare):
    // it is rewritten too, naming none, before that table is deleted.
    for s in prev.services {
        if tables.contains(&(2 * s.service_id + 1 - s.table_parity)) {
            let key = applied_service_key(s);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    // Filter bits: the view's and every bit the failed ops wrote first (a
    // VIPS entry they left keeps its bits until it is deleted), the view's
    // alone last.
    let filter = vip_filter_words(prev.services.iter().map(applied_service_key));
    let viewed = |word: &u32| filter.get(word).copied().unwrap_or(0);
    let mut written: BTreeMap<u32, u64> = BTreeMap::new();
    for op in touched {
        if let MapOp::SetVipFilterWord { word, bits } = op {
            *written.entry(*word).or_insert_with(|| viewed(word)) |= bits;
        }
    }
    let mut ops: Vec<MapOp> = written
        .iter()
        .map(|(&word, &bits)| MapOp::SetVipFilterWord { word, bits })
        .collect();
    let filter_last: Vec<MapOp> = written
        .iter()
        .filter(|&(word, &bits)| bits != viewed(word))
        .map(|(&word, _)| MapOp::SetVipFilterWord {
            word,
            bits: viewed(&word),
        })
        .collect();
    let mut late = Vec::new();
    let mut seen_ids = BTreeSet::new();
    for &(id, address, generation) in &backends {
        if !seen_ids.insert(id) {
            continue;
        }
        let applied = prev
            .services
            .iter()
            .find_map(|s| s.backends.iter().find(|b| b.id == id).map(|b| (s, b)));
        match applied {
            Some((s, b)) => {
                let live = Candidate::of_applied(b).is_live(s.panic);
                let op = MapOp::PutBackend {
                    id,
                    address: b.address,
                    generation: b.generation,
                    live,
                    service_id: s.service_id,
                    next_hop: prev.next_hops.get(&b.address).copied(),
                    gue: s.encap == Encapsulation::Gue,
                };
                if live { ops.push(op) } else { late.push(op) }
            }
            // Retired in the view, or an id the failed apply gave out: not
            // LIVE (no table of the view refers to it).
            None => late.push(MapOp::RetireBackend {
                id,
                address,
                generation: prev
                    .retired
                    .iter()
                    .find(|r| r.id == id)
                    .map_or(generation, |r| r.generation),
                next_hop: None,
            }),
        }
    }
    let mut deletions = Vec::new();
    for &index in &tables {
        let live = prev
            .services
            .iter()
            .find(|s| 2 * s.service_id + s.table_parity == index && s.table_size > 0);
        let table = live.and_then(|s| {
            let m = members(&s.backends, s.panic);
            build_table(s.table_size, &m, &s.name).ok().flatten()
        });
        match table {
            Some((_, slots)) => ops.push(MapOp::PutTable { index, slots }),
            None => deletions.push(MapOp::DeleteTable { index }),
        }
    }
    let mut removals = Vec::new();
    // Markers before the entries of their VIP.
    for vip in markers {
        if prev.services.iter().any(|s| s.vip == vip) {
            ops.push(MapOp::PutVipMarker { vip });
        } else {
            removals.push(MapOp::DeleteVipMarker { vip });
        }
    }
    let mut service_removals = Vec::new();
    for key in keys {
        let applied = prev.services.iter().find(|s| applied_service_key(s) == key);
        match applied {
            Some(s) => ops.push(MapOp::PutService {
                key,
                entry: ServiceEntry {
                    service_id: s.service_id,
                    table_index: 2 * s.service_id + s.table_parity,
                    table_size: s.table_size,
                    ..ServiceEntry::default()
                },
            }),
            None => service_removals.push(MapOp::DeleteService { key }),
        }
    }
    // Entries before the markers of their VIP.
    service_removals.extend(removals);
    let removals = service_removals;
    ops.extend(removals);
    ops.extend(deletions);
    ops.extend(late);
    ops.extend(filter_last);
    ops
}
