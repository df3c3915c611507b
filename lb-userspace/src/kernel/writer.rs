//! The map writer: the planner's [`MapOp`]s (settings, backends with their
//! next hops, tables, services), applied all or nothing (journalled by
//! `undo`). It keeps no view of its own: every entry it writes is spelled out
//! by an op.

use std::net::IpAddr;

use aya::maps::{Array, ArrayOfMaps, HashMap as BpfHashMap, MapData, PerCpuArray};
use lb_common::{
    BACKEND_ENCAP_GUE, BACKEND_HAS_NEXT_HOP, BACKEND_LIVE, BackendEntry, BackendStats,
    ServiceEntry, ServiceStats, Settings, VipKey, address_words,
};

use super::{Datapath, KernelError, NextHop, inner_table, sys};
use crate::config::EncapConfig;
use crate::plan::MapOp;

/// The kernel's internal `ENOTSUPP` (524), which some BPF commands return.
const KERNEL_ENOTSUPP: i32 = 524;

impl Datapath {
    /// Sets the connection table's insert budget (per second per CPU, 0 = no
    /// limit), keeping its secret: applies [`MapOp::SetInsertBudget`].
    pub fn set_insert_budget(&mut self, budget: u32) -> Result<(), KernelError> {
        self.apply(&[MapOp::SetInsertBudget { budget }])
    }

    /// Writes SETTINGS for this interface and `encap` (see
    /// [`crate::plan::settings()`]): applies [`MapOp::PutSettings`]. The agent
    /// writes them through its plans; tools and tests call this.
    pub fn write_settings(&mut self, encap: &EncapConfig) -> Result<Settings, KernelError> {
        let settings = crate::plan::settings(&self.iface.link(), encap);
        self.apply(&[MapOp::PutSettings { settings }])?;
        Ok(settings)
    }

    /// Backend `id`'s entry.
    pub(super) fn backend_entry(&mut self, id: u32) -> Result<BackendEntry, KernelError> {
        let m: Array<_, BackendEntry> = Array::try_from(self.map_mut(lb_common::MAP_BACKENDS)?)?;
        Ok(m.get(&id, 0)?)
    }

    /// Writes backend `id`'s entry.
    pub(super) fn write_backend(
        &mut self,
        id: u32,
        entry: BackendEntry,
    ) -> Result<(), KernelError> {
        let mut m: Array<_, BackendEntry> =
            Array::try_from(self.map_mut(lb_common::MAP_BACKENDS)?)?;
        m.set(id, entry, 0)?;
        Ok(())
    }

    /// Applies map operations in order, all or nothing: when one fails, every
    /// entry already written is put back as it was (see `undo`) before the
    /// error is returned, so packets never see part of a plan.
    /// A run of consecutive `PutTable`s is stored with one batch write, a run
    /// of consecutive `SetVipFilterWord`s of distinct words with one write of
    /// the filter (see `vip_filter`).
    pub fn apply(&mut self, ops: &[MapOp]) -> Result<(), KernelError> {
        let mut journal = Vec::new();
        let Err((index, cause)) = self.apply_journalled(ops, &mut journal) else {
            return Ok(());
        };
        let restored = journal.len();
        let failed = self.undo(journal);
        let op = ops.get(index).map_or_else(String::new, MapOp::describe);
        if failed.is_empty() {
            Err(KernelError::RolledBack {
                index: index + 1,
                total: ops.len(),
                op,
                cause: Box::new(cause),
                restored,
            })
        } else {
            Err(KernelError::RollbackFailed {
                index: index + 1,
                total: ops.len(),
                op,
                cause: Box::new(cause),
                failed: failed.iter().map(ToString::to_string).collect(),
            })
        }
    }

    /// Applies `ops`, recording in `journal` what each write replaces; on
    /// failure, the index of the failing op and its error.
    fn apply_journalled(
        &mut self,
        ops: &[MapOp],
        journal: &mut Vec<super::undo::Undo>,
    ) -> Result<(), (usize, KernelError)> {
        let mut at = 0;
        while at < ops.len() {
            let run = &ops[at..at + run_len(&ops[at..])];
            self.record_run(run, journal)
                .map_err(|(i, e)| (at + i, e))?;
            let done = match run[0] {
                MapOp::PutTable { .. } => self.put_tables(run),
                MapOp::SetVipFilterWord { .. } => self.set_filter_words(run),
                _ => self.apply_one(&run[0]),
            };
            done.map_err(|e| (at, e))?;
            at += run.len();
        }
        Ok(())
    }

    /// Writes the words of `ops` (all `SetVipFilterWord`) with one write of
    /// the filter.
    fn set_filter_words(&mut self, ops: &[MapOp]) -> Result<(), KernelError> {
        let words = ops.iter().filter_map(|op| match op {
            MapOp::SetVipFilterWord { word, bits } => Some((*word, *bits)),
            _ => None,
        });
        super::vip_filter::write_words(&mut self.ebpf, words)
    }

    /// Creates and fills the inner tables of `ops` (all `PutTable`), then
    /// stores them into MAGLEV_TABLES in one batch.
    fn put_tables(&mut self, ops: &[MapOp]) -> Result<(), KernelError> {
        let mut tables = Vec::with_capacity(ops.len());
        for op in ops {
            if let MapOp::PutTable { index, slots } = op {
                let inner =
                    inner_table::create_filled(slots).map_err(|source| KernelError::MapCall {
                        map: lb_common::MAP_MAGLEV_TABLES,
                        op: "create an inner table",
                        source,
                    })?;
                tables.push((*index, inner));
            }
        }
        self.store_tables(&tables)
    }

    /// Stores `(index, table)`s into MAGLEV_TABLES (one batch write when the
    /// kernel has it).
    fn store_tables(&mut self, tables: &[(u32, MapData)]) -> Result<(), KernelError> {
        use std::os::fd::AsFd as _;
        match inner_table::put_all(self.tables_fd.as_fd(), tables) {
            Ok(()) => Ok(()),
            // A kernel without batch writes on array-of-maps: one write each.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINVAL | KERNEL_ENOTSUPP | libc::EOPNOTSUPP)
                ) =>
            {
                tracing::debug!("batch store of Maglev tables refused ({e}); storing one by one");
                let mut outer: ArrayOfMaps<_, MapData> =
                    ArrayOfMaps::try_from(self.map_mut(lb_common::MAP_MAGLEV_TABLES)?)?;
                for (index, inner) in tables {
                    outer.set(*index, inner, 0)?;
                }
                Ok(())
            }
            Err(source) => Err(KernelError::MapCall {
                map: lb_common::MAP_MAGLEV_TABLES,
                op: "batch update",
                source,
            }),
        }
    }

    /// Empties slot `index` of MAGLEV_TABLES (absent is not an error).
    pub(super) fn delete_table(&mut self, index: u32) -> Result<(), KernelError> {
        use std::os::fd::AsFd as _;
        sys::delete_u32(self.tables_fd.as_fd(), index).map_err(|source| KernelError::MapCall {
            map: lb_common::MAP_MAGLEV_TABLES,
            op: "delete",
            source,
        })
    }

    fn apply_one(&mut self, op: &MapOp) -> Result<(), KernelError> {
        match op {
            MapOp::ZeroBackendStats { id } => {
                self.fold_backend_shares(*id)?;
                let zero = super::per_cpu(
                    lb_common::MAP_BACKEND_STATS,
                    vec![BackendStats::default(); self.nr_cpus],
                )?;
                let mut m: PerCpuArray<_, BackendStats> =
                    PerCpuArray::try_from(self.map_mut(lb_common::MAP_BACKEND_STATS)?)?;
                m.set(*id, zero, 0)?;
            }
            MapOp::ZeroServiceStats { id } => {
                let zero = super::per_cpu(
                    lb_common::MAP_SERVICE_STATS,
                    vec![ServiceStats::default(); self.nr_cpus],
                )?;
                let mut m: PerCpuArray<_, ServiceStats> =
                    PerCpuArray::try_from(self.map_mut(lb_common::MAP_SERVICE_STATS)?)?;
                m.set(*id, zero, 0)?;
            }
            MapOp::PutSettings { settings } => {
                super::live::put_settings(&mut self.ebpf, *settings)?
            }
            MapOp::SetInsertBudget { budget } => {
                let mut config = super::live::flow_table_config(&mut self.ebpf)?;
                config.insert_budget = *budget;
                super::live::put_flow_table_config(&mut self.ebpf, config)?;
            }
            MapOp::PutBackend {
                id,
                address,
                generation,
                live,
                service_id,
                next_hop,
                gue,
            } => self.write_backend(
                *id,
                backend_entry(*address, *generation, *live, *service_id, *gue, *next_hop),
            )?,
            MapOp::RetireBackend {
                id,
                address,
                generation,
                next_hop,
            } => {
                let service_id = self.backend_entry(*id)?.service_id;
                self.write_backend(
                    *id,
                    backend_entry(*address, *generation, false, 0, false, *next_hop),
                )?;
                self.fold_service_share(*id, service_id)?;
            }
            MapOp::SetVipFilterWord { .. } => self.set_filter_words(std::slice::from_ref(op))?,
            MapOp::PutTable { .. } => self.put_tables(std::slice::from_ref(op))?,
            MapOp::DeleteTable { index } => self.delete_table(*index)?,
            MapOp::PutService { key, entry } => {
                let mut m: BpfHashMap<_, VipKey, ServiceEntry> =
                    BpfHashMap::try_from(self.map_mut(lb_common::MAP_VIPS)?)?;
                m.insert(key, entry, 0)?;
            }
            MapOp::PutServiceWithPrevious {
                key,
                entry,
                grace_s,
            } => {
                let mut entry = *entry;
                entry.previous_until_ns = sys::monotonic_ns()
                    .map_err(|source| KernelError::Syscall {
                        call: "clock_gettime(CLOCK_MONOTONIC)",
                        source,
                    })?
                    .saturating_add(u64::from(*grace_s) * 1_000_000_000);
                let mut m: BpfHashMap<_, VipKey, ServiceEntry> =
                    BpfHashMap::try_from(self.map_mut(lb_common::MAP_VIPS)?)?;
                m.insert(key, entry, 0)?;
            }
            MapOp::PutVipMarker { vip } => {
                let mut m: BpfHashMap<_, VipKey, ServiceEntry> =
                    BpfHashMap::try_from(self.map_mut(lb_common::MAP_VIPS)?)?;
                m.insert(VipKey::marker(*vip), ServiceEntry::default(), 0)?;
            }
            MapOp::DeleteService { key } => {
                let mut m: BpfHashMap<_, VipKey, ServiceEntry> =
                    BpfHashMap::try_from(self.map_mut(lb_common::MAP_VIPS)?)?;
                ignore_missing(m.remove(key))?;
            }
            MapOp::DeleteVipMarker { vip } => {
                let mut m: BpfHashMap<_, VipKey, ServiceEntry> =
                    BpfHashMap::try_from(self.map_mut(lb_common::MAP_VIPS)?)?;
                ignore_missing(m.remove(&VipKey::marker(*vip)))?;
            }
        }
        Ok(())
    }
}

/// The BACKENDS entry of a backend: its address, generation, liveness,
/// service, encapsulation (GUE or IPIP) and (when known) next hop.
fn backend_entry(
    address: IpAddr,
    generation: u32,
    live: bool,
    service_id: u32,
    gue: bool,
    next_hop: Option<NextHop>,
) -> BackendEntry {
    let (addr, family) = address_words(address);
    let mut e = BackendEntry {
        addr,
        generation,
        flags: if live { BACKEND_LIVE } else { 0 } | if gue { BACKEND_ENCAP_GUE } else { 0 },
        family,
        service_id,
        ..Default::default()
    };
    if let Some(nh) = next_hop {
        e.flags |= BACKEND_HAS_NEXT_HOP;
        e.next_hop_ifindex = nh.ifindex;
        e.next_hop_mtu = nh.mtu;
        e.next_hop_mac = nh.mac;
        e.source_mac = nh.source_mac;
    }
    e
}

/// `Ok` also when the key was not there.
pub(super) fn ignore_missing(r: Result<(), aya::maps::MapError>) -> Result<(), KernelError> {
    match r {
        Err(aya::maps::MapError::KeyNotFound) => Ok(()),
        Err(aya::maps::MapError::SyscallError(e))
            if e.io_error.raw_os_error() == Some(libc::ENOENT) =>
        {
            Ok(())
        }
        other => Ok(other?),
    }
}

/// How many ops from the start of `ops` (not empty) are written together: a
/// run of `PutTable`s, or of `SetVipFilterWord`s while no word repeats (a
/// word set twice keeps both writes, in order), else one op.
fn run_len(ops: &[MapOp]) -> usize {
    match ops[0] {
        MapOp::PutTable { .. } => ops
            .iter()
            .take_while(|op| matches!(op, MapOp::PutTable { .. }))
            .count(),
        MapOp::SetVipFilterWord { .. } => {
            let mut words = std::collections::BTreeSet::new();
            ops.iter()
                .take_while(
                    |op| matches!(op, MapOp::SetVipFilterWord { word, .. } if words.insert(*word)),
                )
                .count()
        }
        _ => 1,
    }
}

#[cfg(test)]
mod run_tests {
    use super::*;

    fn word(word: u32) -> MapOp {
        MapOp::SetVipFilterWord { word, bits: 1 }
    }

    #[test]
    fn filter_words_are_written_together_until_a_word_repeats() {
        let delete = MapOp::DeleteTable { index: 3 };
        assert_eq!(run_len(&[word(1), word(2), word(3), delete.clone()]), 3);
        assert_eq!(run_len(&[word(1), word(2), word(1)]), 2);
        assert_eq!(run_len(&[word(1)]), 1);
        assert_eq!(run_len(&[delete.clone(), word(1)]), 1);
    }
}
