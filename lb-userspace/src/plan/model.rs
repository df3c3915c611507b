//! Test support: an in-memory model of the datapath's maps that applies
//! [`MapOp`]s one at a time, checks after each what a packet arriving then
//! could see (the ordering guarantees at the top of [`super`]), and compares
//! the maps with what an applied view says they hold.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use lb_common::{ServiceEntry, Settings, VipKey, vip_filter_slot, vip_filter_words};

use super::keys::applied_service_key;
use super::next_hops::{NextHop, NextHops};
use super::ops::MapOp;
use crate::health::Candidate;
use crate::state::AppliedService;

/// One BACKENDS entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendModel {
    /// Address.
    pub address: IpAddr,
    /// Generation.
    pub generation: u32,
    /// `BACKEND_LIVE`.
    pub live: bool,
    /// Service id.
    pub service_id: u32,
    /// Next hop.
    pub next_hop: Option<NextHop>,
}

/// The maps.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MapsModel {
    /// SETTINGS (never written: `None`).
    pub settings: Option<Settings>,
    /// The connection table's insert budget.
    pub insert_budget: u32,
    /// BACKENDS entries ever written.
    pub backends: BTreeMap<u32, BackendModel>,
    /// MAGLEV_TABLES slots holding a table.
    pub tables: BTreeMap<u32, Vec<u32>>,
    /// VIPS service entries.
    pub services: HashMap<VipKey, ServiceEntry>,
    /// VIPS address markers.
    pub markers: BTreeSet<IpAddr>,
    /// Non-zero VIP filter words.
    pub filter: BTreeMap<u32, u64>,
    /// Backend ids whose counters were zeroed (kept across rollbacks: not
    /// journalled).
    pub zeroed_backends: BTreeSet<u32>,
    /// Service ids whose counters were zeroed.
    pub zeroed_services: BTreeSet<u32>,
}

impl MapsModel {
    /// Applies one op.
    pub fn apply(&mut self, op: &MapOp) {
        match op {
            MapOp::PutSettings { settings } => self.settings = Some(*settings),
            MapOp::SetInsertBudget { budget } => self.insert_budget = *budget,
            MapOp::ZeroBackendStats { id } => {
                self.zeroed_backends.insert(*id);
            }
            MapOp::ZeroServiceStats { id } => {
                self.zeroed_services.insert(*id);
            }
            MapOp::PutBackend {
                id,
                address,
                generation,
                live,
                service_id,
                next_hop,
            } => {
                self.backends.insert(
                    *id,
                    BackendModel {
                        address: *address,
                        generation: *generation,
                        live: *live,
                        service_id: *service_id,
                        next_hop: *next_hop,
                    },
                );
            }
            MapOp::RetireBackend {
                id,
                address,
                generation,
                next_hop,
            } => {
                self.backends.insert(
                    *id,
                    BackendModel {
                        address: *address,
                        generation: *generation,
                        live: false,
                        service_id: 0,
                        next_hop: *next_hop,
                    },
                );
            }
            MapOp::PutTable { index, slots } => {
                self.tables.insert(*index, slots.clone());
            }
            MapOp::DeleteTable { index } => {
                self.tables.remove(index);
            }
            MapOp::PutService { key, entry } => {
                self.services.insert(*key, *entry);
            }
            MapOp::DeleteService { key } => {
                self.services.remove(key);
            }
            MapOp::PutVipMarker { vip } => {
                self.markers.insert(*vip);
            }
            MapOp::DeleteVipMarker { vip } => {
                self.markers.remove(vip);
            }
            MapOp::SetVipFilterWord { word, bits } => {
                if *bits == 0 {
                    self.filter.remove(word);
                } else {
                    self.filter.insert(*word, *bits);
                }
            }
        }
    }

    /// What a packet arriving now could see, checked: every service entry
    /// has its VIP's marker and filter bits; a non-empty one points to a
    /// table of its size whose every slot is a LIVE backend of that service,
    /// zeroed before it was first given out (as was the service's id).
    pub fn check(&self) -> Result<(), String> {
        for (key, entry) in &self.services {
            let vip = key.address();
            if !self.markers.contains(&vip) {
                return Err(format!("VIPS entry {key:?} without the marker of {vip}"));
            }
            for bit in key.filter_bits() {
                let (word, mask) = vip_filter_slot(bit);
                if self.filter.get(&word).copied().unwrap_or(0) & mask == 0 {
                    return Err(format!("VIPS entry {key:?}: filter bit missing"));
                }
            }
            if !self.zeroed_services.contains(&entry.service_id) {
                return Err(format!("service id {} not zeroed", entry.service_id));
            }
            if entry.table_size == 0 {
                continue;
            }
            let Some(table) = self.tables.get(&entry.table_index) else {
                return Err(format!(
                    "{key:?} points to missing table {}",
                    entry.table_index
                ));
            };
            if table.len() != entry.table_size as usize {
                return Err(format!(
                    "{key:?}: table size {} != {}",
                    table.len(),
                    entry.table_size
                ));
            }
            for &id in table {
                match self.backends.get(&id) {
                    Some(b) if b.live && b.service_id == entry.service_id => {}
                    other => {
                        return Err(format!(
                            "{key:?}: table {} slot points to backend id {id}: {other:?}",
                            entry.table_index
                        ));
                    }
                }
                if !self.zeroed_backends.contains(&id) {
                    return Err(format!("backend id {id} in a table before being zeroed"));
                }
            }
        }
        Ok(())
    }

    /// Differences between these maps and what `services` (as applied, with
    /// `retired` ids and `next_hops`) say they hold: exactly their entries
    /// and live tables, retired ids not LIVE.
    pub fn differences(
        &self,
        services: &[AppliedService],
        retired: &[u32],
        next_hops: &NextHops,
    ) -> Vec<String> {
        let mut diffs = Vec::new();
        let mut want_services = HashMap::new();
        let mut want_tables = BTreeSet::new();
        for s in services {
            let key = applied_service_key(s);
            let index = 2 * s.service_id + s.table_parity;
            want_services.insert(
                key,
                ServiceEntry {
                    service_id: s.service_id,
                    table_index: index,
                    table_size: s.table_size,
                    flags: 0,
                },
            );
            if s.table_size > 0 {
                want_tables.insert(index);
                let slots = self.tables.get(&index).map_or(&[][..], Vec::as_slice);
                for b in &s.backends {
                    let held = slots.iter().filter(|&&id| id == b.id).count() as u32;
                    if held != b.slots {
                        diffs.push(format!(
                            "{} holds {held} slots, view says {}",
                            b.address, b.slots
                        ));
                    }
                }
            }
            for b in &s.backends {
                let want = BackendModel {
                    address: b.address,
                    generation: b.generation,
                    live: Candidate::of_applied(b).is_live(s.panic),
                    service_id: s.service_id,
                    next_hop: next_hops.get(&b.address).copied(),
                };
                if self.backends.get(&b.id) != Some(&want) {
                    diffs.push(format!(
                        "backend id {}: {:?} != {want:?}",
                        b.id,
                        self.backends.get(&b.id)
                    ));
                }
            }
        }
        if self.services != want_services {
            diffs.push(format!("VIPS {:?} != {want_services:?}", self.services));
        }
        // Only the live tables: a previous table stays at its service's spare
        // index until the next flip overwrites it.
        let tables: BTreeSet<u32> = self.tables.keys().copied().collect();
        if !want_tables.is_subset(&tables) {
            diffs.push(format!("tables {tables:?} lack some of {want_tables:?}"));
        }
        let markers: BTreeSet<IpAddr> = services.iter().map(|s| s.vip).collect();
        if self.markers != markers {
            diffs.push(format!("markers {:?} != {markers:?}", self.markers));
        }
        let filter = vip_filter_words(services.iter().map(applied_service_key));
        if self.filter != filter {
            diffs.push(format!("filter {:?} != {filter:?}", self.filter));
        }
        for id in retired {
            if self.backends.get(id).is_some_and(|b| b.live) {
                diffs.push(format!("retired backend id {id} is LIVE"));
            }
        }
        diffs
    }
}
