//! All-or-nothing applies: before each map write, the entry's current value
//! is read back from the kernel and kept in a journal; when a later write
//! fails, the journal is replayed backwards, so the maps (and with them every
//! packet) are back to exactly what they held before the apply, and the
//! agent's applied view, which it only updates after a successful apply,
//! still describes them.
//!
//! Not journalled: zeroing the counters of an id the plan is about to give out
//! (no packet can reach an id before a table refers to it), and moving a
//! backend id's counter shares out of its record (`shares`: into GLOBAL_STATS
//! before the id is zeroed, into its service's record when it is retired):
//! the moved shares stay where they went, and the totals readers compute are
//! the same either way.

use std::os::fd::{AsFd as _, OwnedFd};

use aya::maps::{HashMap as BpfHashMap, MapData};
use lb_common::{BackendEntry, FlowTableConfig, ServiceEntry, Settings, VipKey};

use super::{Datapath, KernelError, inner_table, sys};
use crate::plan::MapOp;

/// What one map entry held before the apply wrote it.
#[derive(Debug)]
pub(super) enum Undo {
    /// A `BACKENDS` entry.
    Backend { id: u32, entry: BackendEntry },
    /// The `SETTINGS` value.
    Settings(Settings),
    /// The connection table's config (its insert budget).
    FlowTableConfig(FlowTableConfig),
    /// A `VIPS` entry (`None`: the key was absent).
    Vip {
        key: VipKey,
        entry: Option<ServiceEntry>,
    },
    /// A word of the VIP address filter.
    FilterWord { word: u32, bits: u64 },
    /// A `MAGLEV_TABLES` slot: the inner table it held (kept open so that a
    /// deleted table can be put back), or `None` when empty.
    Table {
        index: u32,
        previous: Option<OwnedFd>,
    },
}

impl Datapath {
    /// Reads what the ops of `run` (one write's worth, see `writer::run_len`)
    /// are about to overwrite into `journal`: a run of filter words with one
    /// read of the filter, any other op one entry at a time. On failure, the
    /// index in `run` of the op whose entry could not be read.
    pub(super) fn record_run(
        &mut self,
        run: &[MapOp],
        journal: &mut Vec<Undo>,
    ) -> Result<(), (usize, KernelError)> {
        if let [MapOp::SetVipFilterWord { .. }, ..] = run {
            let words = run.iter().filter_map(|op| match op {
                MapOp::SetVipFilterWord { word, .. } => Some(*word),
                _ => None,
            });
            return self.record_filter_words(words, journal).map_err(|e| (0, e));
        }
        for (i, op) in run.iter().enumerate() {
            self.record(op, journal).map_err(|e| (i, e))?;
        }
        Ok(())
    }

    /// Reads filter words `words` into `journal`, with one read of the filter.
    fn record_filter_words(
        &mut self,
        words: impl IntoIterator<Item = u32>,
        journal: &mut Vec<Undo>,
    ) -> Result<(), KernelError> {
        let read = super::vip_filter::read_words(&mut self.ebpf, words)?;
        journal.extend(
            read.into_iter()
                .map(|(word, bits)| Undo::FilterWord { word, bits }),
        );
        Ok(())
    }

    /// Reads what `op` is about to overwrite into `journal`.
    fn record(&mut self, op: &MapOp, journal: &mut Vec<Undo>) -> Result<(), KernelError> {
        match op {
            MapOp::ZeroBackendStats { .. } | MapOp::ZeroServiceStats { .. } => {}
            MapOp::PutSettings { .. } => {
                journal.push(Undo::Settings(super::live::settings(&mut self.ebpf)?));
            }
            MapOp::SetInsertBudget { .. } => {
                let config = super::live::flow_table_config(&mut self.ebpf)?;
                journal.push(Undo::FlowTableConfig(config));
            }
            MapOp::PutBackend { id, .. } | MapOp::RetireBackend { id, .. } => {
                let entry = self.backend_entry(*id)?;
                journal.push(Undo::Backend { id: *id, entry });
            }
            MapOp::SetVipFilterWord { word, .. } => self.record_filter_words([*word], journal)?,
            MapOp::PutService { key, .. }
            | MapOp::PutServiceWithPrevious { key, .. }
            | MapOp::DeleteService { key } => {
                let entry = self.vip_entry(key)?;
                journal.push(Undo::Vip { key: *key, entry });
            }
            MapOp::PutVipMarker { vip } | MapOp::DeleteVipMarker { vip } => {
                let key = VipKey::marker(*vip);
                let entry = self.vip_entry(&key)?;
                journal.push(Undo::Vip { key, entry });
            }
            MapOp::PutTable { index, .. } | MapOp::DeleteTable { index } => {
                let previous =
                    inner_table_at(self.tables_fd.as_fd(), *index).map_err(|source| {
                        KernelError::MapCall {
                            map: lb_common::MAP_MAGLEV_TABLES,
                            op: "lookup",
                            source,
                        }
                    })?;
                journal.push(Undo::Table {
                    index: *index,
                    previous,
                });
            }
        }
        Ok(())
    }

    fn vip_entry(&mut self, key: &VipKey) -> Result<Option<ServiceEntry>, KernelError> {
        let m: BpfHashMap<_, VipKey, ServiceEntry> =
            BpfHashMap::try_from(self.map_mut(lb_common::MAP_VIPS)?)?;
        match m.get(key, 0) {
            Ok(entry) => Ok(Some(entry)),
            Err(aya::maps::MapError::KeyNotFound) => Ok(None),
            Err(aya::maps::MapError::SyscallError(e))
                if e.io_error.raw_os_error() == Some(libc::ENOENT) =>
            {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Puts back everything in `journal`, last write first. Returns the
    /// errors of entries that could not be restored (none in practice: every
    /// restore writes a slot the apply itself just wrote).
    pub(super) fn undo(&mut self, journal: Vec<Undo>) -> Vec<KernelError> {
        let mut failed = Vec::new();
        for undo in journal.into_iter().rev() {
            if let Err(e) = self.restore(undo) {
                failed.push(e);
            }
        }
        failed
    }

    fn restore(&mut self, undo: Undo) -> Result<(), KernelError> {
        match undo {
            Undo::Backend { id, entry } => self.write_backend(id, entry)?,
            Undo::Settings(settings) => super::live::put_settings(&mut self.ebpf, settings)?,
            Undo::FlowTableConfig(config) => {
                super::live::put_flow_table_config(&mut self.ebpf, config)?;
            }
            Undo::Vip { key, entry } => {
                let mut m: BpfHashMap<_, VipKey, ServiceEntry> =
                    BpfHashMap::try_from(self.map_mut(lb_common::MAP_VIPS)?)?;
                match entry {
                    Some(entry) => m.insert(key, entry, 0)?,
                    None => super::writer::ignore_missing(m.remove(&key))?,
                }
            }
            Undo::FilterWord { word, bits } => {
                super::vip_filter::write_words(&mut self.ebpf, [(word, bits)])?;
            }
            Undo::Table { index, previous } => match previous {
                Some(fd) => {
                    let table = MapData::from_fd(fd)?;
                    inner_table::put_all(self.tables_fd.as_fd(), &[(index, table)]).map_err(
                        |source| KernelError::MapCall {
                            map: lb_common::MAP_MAGLEV_TABLES,
                            op: "restore",
                            source,
                        },
                    )?;
                }
                None => self.delete_table(index)?,
            },
        }
        Ok(())
    }
}

/// The inner map at `index` of the array-of-maps `outer`, opened (the
/// kernel returns its id; the id gives a file descriptor), or `None` when the
/// slot is empty (or its map was freed between the two calls).
fn inner_table_at(
    outer: std::os::fd::BorrowedFd<'_>,
    index: u32,
) -> std::io::Result<Option<OwnedFd>> {
    match sys::lookup_u32(outer, index)? {
        Some(id) => sys::map_fd_by_id(id),
        None => Ok(None),
    }
}
