//! Counter shares a backend id's record holds for others, moved out of it
//! when the id leaves its service:
//!
//! - the global counters `conntrack_hit`, `tx` and `redirect`
//!   ([`BackendStats::global_share`]), moved into GLOBAL_STATS before the
//!   id's record is zeroed for reuse ([`MapOp::ZeroBackendStats`]);
//! - its service's hits (`hits`, `hit_bytes`: [`ServiceStats::plus_share`]),
//!   moved into the service's record, and `conntrack_hit` with them, right
//!   after the id is retired ([`MapOp::RetireBackend`]), so that the service's
//!   counters, which readers sum over the ids it holds, never go back.
//!
//! Each move keeps every total readers compute the same (what leaves one
//! record is added to another), so it is not journalled: an apply rolled back
//! after it leaves the totals as they were.
//!
//! [`MapOp::ZeroBackendStats`]: crate::plan::MapOp::ZeroBackendStats
//! [`MapOp::RetireBackend`]: crate::plan::MapOp::RetireBackend

use aya::maps::PerCpuArray;
use lb_common::{BackendStats, GlobalCounter, ServiceStats};

use super::{Datapath, KernelError, per_cpu};

impl Datapath {
    /// Moves backend `id`'s shares of the global counters (`conntrack_hit`,
    /// `tx`, `redirect`: [`BackendStats::global_share`]) into GLOBAL_STATS,
    /// CPU by CPU, before its record is zeroed for reuse, so that those
    /// counters never go back. The datapath never writes these three global
    /// entries (it counts them in the backend records), so this read-add-write
    /// races with no one.
    pub(super) fn fold_backend_shares(&mut self, id: u32) -> Result<(), KernelError> {
        let stats: PerCpuArray<_, BackendStats> =
            PerCpuArray::try_from(self.map_mut(lb_common::MAP_BACKEND_STATS)?)?;
        let shares = stats.get(&id, 0)?;
        for c in lb_common::PER_BACKEND_GLOBALS {
            let add: Vec<u64> = shares.iter().map(|s| s.global_share(c)).collect();
            self.add_to_global(c, &add)?;
        }
        Ok(())
    }

    /// Moves retired backend `id`'s hits, its former service's share, into
    /// the record of service `service_id` (packets and bytes) and into
    /// GLOBAL_STATS (`conntrack_hit`), CPU by CPU, and clears them from the
    /// id's record. Called once the id's entry is retired: its flows' entries
    /// are stale from then on, so no packet adds a hit to it any more (one
    /// already past the lookup may, within microseconds, and a miss counted
    /// in the service's record meanwhile may be lost to this
    /// read-add-write: a few packets, once per retired backend).
    pub(super) fn fold_service_share(
        &mut self,
        id: u32,
        service_id: u32,
    ) -> Result<(), KernelError> {
        let mut stats: PerCpuArray<_, BackendStats> =
            PerCpuArray::try_from(self.map_mut(lb_common::MAP_BACKEND_STATS)?)?;
        let records = stats.get(&id, 0)?;
        if records.iter().all(|r| r.hits == 0 && r.hit_bytes == 0) {
            return Ok(());
        }
        let cleared: Vec<BackendStats> = records.iter().map(|r| r.without_hits()).collect();
        stats.set(id, per_cpu(lb_common::MAP_BACKEND_STATS, cleared)?, 0)?;

        let mut services: PerCpuArray<_, ServiceStats> =
            PerCpuArray::try_from(self.map_mut(lb_common::MAP_SERVICE_STATS)?)?;
        let own = services.get(&service_id, 0)?;
        let sums: Vec<ServiceStats> = own
            .iter()
            .zip(records.iter())
            .map(|(s, r)| s.plus_share(r))
            .collect();
        services.set(service_id, per_cpu(lb_common::MAP_SERVICE_STATS, sums)?, 0)?;

        let hits: Vec<u64> = records.iter().map(|r| r.hits).collect();
        self.add_to_global(GlobalCounter::ConntrackHit, &hits)
    }

    /// Adds `add` (one value per CPU) to global counter `c`.
    fn add_to_global(&mut self, c: GlobalCounter, add: &[u64]) -> Result<(), KernelError> {
        if add.iter().all(|&v| v == 0) {
            return Ok(());
        }
        let mut global: PerCpuArray<_, u64> =
            PerCpuArray::try_from(self.map_mut(lb_common::MAP_GLOBAL_STATS)?)?;
        let own = global.get(&(c as u32), 0)?;
        let sums: Vec<u64> = own
            .iter()
            .zip(add.iter())
            .map(|(g, a)| g.wrapping_add(*a))
            .collect();
        global.set(c as u32, per_cpu(lb_common::MAP_GLOBAL_STATS, sums)?, 0)?;
        Ok(())
    }
}
