//! The planner: pure, deterministic diff of the applied state against a desired
//! config (and health view) into an ordered list of map operations.
//!
//! Ordering guarantees (what makes every step safe for packets in flight):
//! 1. new backend ids are zeroed and written (LIVE) before any table refers to them;
//!    backends coming back up are made LIVE before they get slots again;
//! 2. removed services leave VIPS before any new service could reuse anything;
//! 3. each changed service gets a fresh table at its *spare* index (all of
//!    them first, in one run of `PutTable`s), then its VIPS entry flips to it
//!    (the atomic swap described in `lb_common::maps`). A GUE service with
//!    second chance keeps the old table as its *previous* one
//!    (`PutServiceWithPrevious`); since the spare it refills may be the
//!    previous table of its current entry, the entry of a service that is or
//!    was GUE is first rewritten without a previous table (before the run of
//!    `PutTable`s);
//! 4. only then are removed backends retired and down backends made non-LIVE,
//!    so no live table ever points to a retired id.
//!
//! Ids freed by this plan (removed services, retired backends) are never reused
//! in the same plan; a retired backend id is reused later with generation + 1
//! (stale connection-table entries carry the old generation and are re-picked).
//!
//! Files: [`ops`] (the operations), [`keys`] (map keys), `ids` (id
//! allocation), `service` (one service's backends and table), `table`
//! (Maglev tables), [`next_hops`] and [`mod@settings`] (the other entries a plan
//! writes), [`repair`] (entries a failed rollback left unknown).

mod ids;
pub mod keys;
#[cfg(test)]
pub(crate) mod model;
pub mod next_hops;
pub mod ops;
pub mod repair;
mod service;
pub mod settings;
mod table;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use lb_common::{MAX_BACKENDS, MAX_SERVICES, VipKey, vip_filter_words};

pub use keys::{applied_protocol_number, applied_service_key, protocol_name, protocol_number};
pub use next_hops::{NO_NEXT_HOPS, NextHop, NextHops, next_hop_ops};
pub use ops::MapOp;
pub use repair::repair_ops;
pub use settings::{Link, settings};

use crate::config::{Config, ServiceConfig};
use crate::health::HealthSnapshot;
use crate::maglev::MaglevError;
use crate::state::{AppliedService, RetiredBackend};
use ids::Ids;
use service::{Context, Phases, plan_service};

/// What happened to one service in a plan (for the one-line event log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceChange {
    /// Service name.
    pub name: String,
    /// Human-readable changes: `+198.18.3.2`, `-198.18.3.3`, `198.18.3.4 drain`,
    /// `198.18.3.5 weight 1->3`, `198.18.3.6 down`, `added`, `removed`, ...
    pub changes: Vec<String>,
    /// Table slots whose backend changed (old table vs new, by address).
    pub slots_moved: u32,
    /// New table size (0 = no backend takes new flows).
    pub table_size: u32,
}

/// The outcome of planning.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Services as they will be once `ops` are applied.
    pub services: Vec<AppliedService>,
    /// Retired backend ids afterwards.
    pub retired: Vec<RetiredBackend>,
    /// Map operations, in order.
    pub ops: Vec<MapOp>,
    /// Per-service summary (changed services only).
    pub changes: Vec<ServiceChange>,
}

impl Plan {
    /// True when nothing changes.
    pub fn is_noop(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    /// A Maglev table could not be built.
    #[error("service {service}: {source}")]
    Maglev {
        /// Service name.
        service: String,
        /// The error.
        source: MaglevError,
    },
    /// More services than the datapath holds.
    #[error("more than {MAX_SERVICES} services")]
    TooManyServices,
    /// More backend ids than the datapath holds.
    #[error("more than {MAX_BACKENDS} backend ids in use")]
    TooManyBackends,
}

/// What the planner needs to know about health: is this backend of this
/// service up? (Only asked for services with a health check, once per
/// backend.) Implemented by values, never by the live monitor.
pub trait HealthView {
    /// True when the backend passes its health check (or is not probed).
    fn is_up(&self, service: &str, address: IpAddr) -> bool;
}

/// Every backend is up.
pub struct AllUp;

impl HealthView for AllUp {
    fn is_up(&self, _: &str, _: IpAddr) -> bool {
        true
    }
}

impl HealthView for HealthSnapshot {
    fn is_up(&self, service: &str, address: IpAddr) -> bool {
        HealthSnapshot::is_up(self, service, address)
    }
}

/// The previous applied view the planner diffs against.
#[derive(Clone, Debug, PartialEq)]
pub struct Previous<'a> {
    /// Maglev table size of the previous apply (0 = nothing applied).
    pub maglev_table_size: u32,
    /// Services as applied.
    pub services: &'a [AppliedService],
    /// Retired backend ids.
    pub retired: &'a [RetiredBackend],
    /// Next hops known toward backend addresses (written with each backend
    /// entry the plan writes).
    pub next_hops: &'a NextHops,
}

impl Default for Previous<'_> {
    /// Nothing applied, no next hop known.
    fn default() -> Self {
        Previous {
            maglev_table_size: 0,
            services: &[],
            retired: &[],
            next_hops: &NO_NEXT_HOPS,
        }
    }
}

type ServiceIdentity = (IpAddr, u16, String);

fn identity_of_applied(s: &AppliedService) -> ServiceIdentity {
    (s.vip, s.port, s.protocol.clone())
}

fn identity_of_config(s: &ServiceConfig) -> ServiceIdentity {
    (s.vip, s.port, protocol_name(s.protocol).to_string())
}

/// Plans the map operations that take the datapath from `prev` to `config`
/// with the health view `health`.
pub fn plan(
    prev: &Previous<'_>,
    config: &Config,
    health: &dyn HealthView,
) -> Result<Plan, PlanError> {
    let prev_by_identity: HashMap<ServiceIdentity, &AppliedService> = prev
        .services
        .iter()
        .map(|s| (identity_of_applied(s), s))
        .collect();
    let desired: BTreeSet<ServiceIdentity> =
        config.services.iter().map(identity_of_config).collect();
    let prev_vips: BTreeSet<IpAddr> = prev.services.iter().map(|s| s.vip).collect();
    let mut ids = Ids::new(prev);
    let mut phases = Phases::default();
    let mut changes = Vec::new();

    plan_removals(
        prev,
        config,
        &desired,
        &prev_vips,
        &mut ids,
        &mut phases,
        &mut changes,
    );
    let cx = Context {
        prev,
        table_size: config.maglev_table_size,
        health,
        prev_vips: &prev_vips,
    };
    let mut services = Vec::with_capacity(config.services.len());
    for svc in &config.services {
        let old = prev_by_identity.get(&identity_of_config(svc)).copied();
        services.push(plan_service(
            &cx,
            svc,
            old,
            &mut ids,
            &mut phases,
            &mut changes,
        )?);
    }

    // The VIP filter: bits of new VIPs are set before anything points at them,
    // bits no VIP uses any more are cleared last (a stale bit only costs time).
    let old_filter = vip_filter_words(prev.services.iter().map(applied_service_key));
    let new_filter = vip_filter_words(
        config
            .services
            .iter()
            .map(|s| VipKey::new(s.vip, s.port, protocol_number(s.protocol))),
    );
    let mut union = old_filter.clone();
    for (&word, &bits) in &new_filter {
        *union.entry(word).or_default() |= bits;
    }
    let mut ops: Vec<MapOp> = changed_words(&old_filter, &union);
    ops.extend(phases.live_first);
    ops.extend(phases.removals);
    ops.extend(phases.drop_previous);
    // Every new table before the first flip: they sit at indices nothing reads
    // yet, and consecutive table writes share one kernel grace period.
    ops.extend(phases.new_tables);
    ops.extend(phases.flips);
    ops.extend(phases.late);
    ops.extend(changed_words(&union, &new_filter));
    Ok(Plan {
        services,
        retired: ids.into_retired(),
        ops,
        changes,
    })
}

/// Writes of the words of `to` (a superset of `from`'s words, or its subset)
/// whose bits differ from `from`.
fn changed_words(from: &BTreeMap<u32, u64>, to: &BTreeMap<u32, u64>) -> Vec<MapOp> {
    let words: BTreeSet<u32> = from.keys().chain(to.keys()).copied().collect();
    words
        .into_iter()
        .map(|w| {
            (
                w,
                from.get(&w).copied().unwrap_or(0),
                to.get(&w).copied().unwrap_or(0),
            )
        })
        .filter(|&(_, old, new)| old != new)
        .map(|(word, _, bits)| MapOp::SetVipFilterWord { word, bits })
        .collect()
}

/// Removed services: their VIPS entries go first, then the markers of VIPs no
/// service keeps, then their tables; their backends are retired late.
fn plan_removals(
    prev: &Previous<'_>,
    config: &Config,
    desired: &BTreeSet<ServiceIdentity>,
    prev_vips: &BTreeSet<IpAddr>,
    ids: &mut Ids,
    phases: &mut Phases,
    changes: &mut Vec<ServiceChange>,
) {
    let remaining_vips: BTreeSet<IpAddr> = config.services.iter().map(|s| s.vip).collect();
    let removed: Vec<&AppliedService> = prev
        .services
        .iter()
        .filter(|s| !desired.contains(&identity_of_applied(s)))
        .collect();
    for s in &removed {
        phases.removals.push(MapOp::DeleteService {
            key: applied_service_key(s),
        });
        for b in &s.backends {
            phases.late.push(MapOp::RetireBackend {
                id: b.id,
                address: b.address,
                generation: b.generation,
                next_hop: prev.next_hops.get(&b.address).copied(),
            });
            ids.retire(b.id, b.generation);
        }
        changes.push(ServiceChange {
            name: s.name.clone(),
            changes: vec!["removed".into()],
            slots_moved: s.table_size,
            table_size: 0,
        });
    }
    for vip in prev_vips.difference(&remaining_vips) {
        phases.removals.push(MapOp::DeleteVipMarker { vip: *vip });
    }
    // Tables of removed services are dropped after every VIPS entry is gone.
    for s in &removed {
        phases.removals.push(MapOp::DeleteTable {
            index: 2 * s.service_id + s.table_parity,
        });
    }
}

#[cfg(test)]
mod gue_tests;
#[cfg(test)]
mod tests;
