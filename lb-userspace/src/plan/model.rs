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
use crate::config::Encapsulation;
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
    /// `BACKEND_ENCAP_GUE`.
    pub gue: bool,
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
    /// Tables rewritten with other slots, or deleted, while a VIPS entry of a
    /// GUE service named them as its previous table (a packet could have read
    /// a wrong owner).
    pub overwritten_previous: Vec<String>,
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
                gue,
            } => {
                self.backends.insert(
                    *id,
                    BackendModel {
                        address: *address,
                        generation: *generation,
                        live: *live,
                        service_id: *service_id,
                        next_hop: *next_hop,
                        gue: *gue,
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
                        gue: false,
                    },
                );
            }
            MapOp::PutTable { index, slots } => {
                // The kernel swaps in a whole new inner table: the same
                // slots again change nothing a packet could read.
                if self.tables.get(index) != Some(slots) {
                    self.note_previous_overwritten(*index);
                }
                self.tables.insert(*index, slots.clone());
            }
            MapOp::DeleteTable { index } => {
                self.note_previous_overwritten(*index);
                self.tables.remove(index);
            }
            MapOp::PutService { key, entry } => {
                self.services.insert(*key, *entry);
            }
            MapOp::PutServiceWithPrevious {
                key,
                entry,
                grace_s,
            } => {
                // The kernel layer writes now + grace; the model keeps the grace.
                let entry = ServiceEntry {
                    previous_until_ns: u64::from(*grace_s),
                    ..*entry
                };
                self.services.insert(*key, entry);
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

    /// True when the live table of `entry` holds a backend marked GUE: the
    /// datapath then reads the entry's previous table (second chance).
    fn reads_previous(&self, entry: &ServiceEntry) -> bool {
        entry.previous_table_size > 0
            && entry.table_size > 0
            && self.tables.get(&entry.table_index).is_some_and(|slots| {
                slots
                    .iter()
                    .any(|id| self.backends.get(id).is_some_and(|b| b.gue))
            })
    }

    /// Records a write to table `index` while an entry reads it as its
    /// previous table.
    fn note_previous_overwritten(&mut self, index: u32) {
        for (key, entry) in &self.services {
            if entry.previous_table_index == index && self.reads_previous(entry) {
                self.overwritten_previous.push(format!(
                    "table {index} rewritten while {key:?} names it as previous"
                ));
            }
        }
    }

    /// What a packet arriving now could see, checked: every service entry
    /// has its VIP's marker and filter bits; a non-empty one points to a
    /// table of its size whose every slot is a LIVE backend of that service,
    /// zeroed before it was first given out (as was the service's id).
    pub fn check(&self) -> Result<(), String> {
        if let Some(first) = self.overwritten_previous.first() {
            return Err(first.clone());
        }
        for (key, entry) in &self.services {
            if self.reads_previous(entry) {
                let size = self.tables.get(&entry.previous_table_index).map(Vec::len);
                if entry.previous_table_index == entry.table_index
                    || size != Some(entry.previous_table_size as usize)
                {
                    return Err(format!(
                        "{key:?}: previous table {} of {} slots: {size:?}",
                        entry.previous_table_index, entry.previous_table_size
                    ));
                }
            }
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
                    ..ServiceEntry::default()
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
                    gue: s.encap == Encapsulation::Gue,
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
        // The view does not record previous tables (second chance).
        let entries: HashMap<VipKey, ServiceEntry> = self
            .services
            .iter()
            .map(|(key, entry)| {
                let entry = ServiceEntry {
                    previous_table_index: 0,
                    previous_table_size: 0,
                    previous_until_ns: 0,
                    ..*entry
                };
                (*key, entry)
            })
            .collect();
        if entries != want_services {
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
