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
//!    previous table of its current entry, that entry is first rewritten
//!    without a previous table (before the run of `PutTable`s);
//! 4. only then are removed backends retired and down backends made non-LIVE,
//!    so no live table ever points to a retired id.
//!
//! Ids freed by this plan (removed services, retired backends) are never reused
//! in the same plan; a retired backend id is reused later with generation + 1
//! (stale connection-table entries carry the old generation and are re-picked).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use lb_common::{MAX_BACKENDS, MAX_SERVICES, ServiceEntry, VipKey, vip_filter_words};

use crate::config::{Config, Encapsulation, Protocol, ServiceConfig};
use crate::health::select_for_service;
use crate::maglev::{MaglevError, MaglevTable, NO_BACKEND, WeightedBackend, fingerprint};
use crate::state::{AppliedBackend, AppliedService, BackendState, RetiredBackend};

/// One operation on the datapath's maps, in the order the plan lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapOp {
    /// Zero a backend id's per-CPU counters (before the id is given out).
    ZeroBackendStats {
        /// Backend id.
        id: u32,
    },
    /// Write a backend entry (next-hop fields are filled by the datapath layer).
    PutBackend {
        /// Backend id.
        id: u32,
        /// Backend address.
        address: IpAddr,
        /// Generation written to the entry.
        generation: u32,
        /// Whether `BACKEND_LIVE` is set (false: health down, flows re-picked).
        live: bool,
        /// The service the id belongs to (where hits count their packets).
        service_id: u32,
        /// Whether `BACKEND_ENCAP_GUE` is set (the service uses GUE).
        gue: bool,
    },
    /// Zero a service id's per-CPU counters (before the id is given out).
    ZeroServiceStats {
        /// Service id.
        id: u32,
    },
    /// Install a fresh inner Maglev array at `index` of MAGLEV_TABLES.
    PutTable {
        /// Outer index (`2 * service_id + parity`).
        index: u32,
        /// One backend id per slot.
        slots: Vec<u32>,
    },
    /// Insert or replace a VIPS entry (the atomic flip).
    PutService {
        /// VIPS key.
        key: VipKey,
        /// New value.
        entry: ServiceEntry,
    },
    /// Insert or replace a VIPS entry that names the previous table (second
    /// chance); the datapath layer sets `previous_until_ns` to now +
    /// `grace_s` (`CLOCK_MONOTONIC`) as it writes.
    PutServiceWithPrevious {
        /// VIPS key.
        key: VipKey,
        /// New value (its `previous_until_ns` is replaced).
        entry: ServiceEntry,
        /// Seconds the previous table stays in use.
        grace_s: u32,
    },
    /// Insert the address marker of a VIP (`VIP_ADDRESS_MARKER_PROTOCOL`).
    PutVipMarker {
        /// The VIP.
        vip: IpAddr,
    },
    /// Delete a VIPS entry.
    DeleteService {
        /// VIPS key.
        key: VipKey,
    },
    /// Delete the address marker of a VIP no service uses any more.
    DeleteVipMarker {
        /// The VIP.
        vip: IpAddr,
    },
    /// Delete an inner table no VIPS entry refers to any more.
    DeleteTable {
        /// Outer index.
        index: u32,
    },
    /// Write one word of the VIP address filter bitmap.
    SetVipFilterWord {
        /// Word index.
        word: u32,
        /// The word's bits.
        bits: u64,
    },
    /// Clear `BACKEND_LIVE` of a removed backend: its pinned flows are re-picked.
    RetireBackend {
        /// Backend id.
        id: u32,
        /// Backend address (kept in the entry).
        address: IpAddr,
        /// Its last generation.
        generation: u32,
    },
}

impl MapOp {
    /// A short description for error messages: `PutService 198.18.100.1:80/6`.
    pub fn describe(&self) -> String {
        let endpoint = |key: &VipKey| {
            format!(
                "{} port {} protocol {}",
                key.address(),
                u16::from_be(key.port),
                key.protocol
            )
        };
        match self {
            MapOp::ZeroBackendStats { id } => format!("zero counters of backend id {id}"),
            MapOp::PutBackend { id, address, .. } => format!("write backend id {id} ({address})"),
            MapOp::ZeroServiceStats { id } => format!("zero counters of service id {id}"),
            MapOp::PutTable { index, slots } => {
                format!("store Maglev table {index} ({} slots)", slots.len())
            }
            MapOp::PutService { key, .. } => format!("write VIPS entry {}", endpoint(key)),
            MapOp::PutServiceWithPrevious { key, .. } => {
                format!("write VIPS entry {} with its previous table", endpoint(key))
            }
            MapOp::PutVipMarker { vip } => format!("write VIPS address marker of {vip}"),
            MapOp::DeleteService { key } => format!("delete VIPS entry {}", endpoint(key)),
            MapOp::DeleteVipMarker { vip } => format!("delete VIPS address marker of {vip}"),
            MapOp::DeleteTable { index } => format!("delete Maglev table {index}"),
            MapOp::SetVipFilterWord { word, .. } => format!("write VIP filter word {word}"),
            MapOp::RetireBackend { id, address, .. } => {
                format!("retire backend id {id} ({address})")
            }
        }
    }
}

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
/// service up? (Only asked for services with a health check.)
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

impl HealthView for crate::health::HealthMonitor {
    fn is_up(&self, service: &str, address: IpAddr) -> bool {
        self.state(service, address)
            .is_none_or(|s| s == crate::health::HealthState::Up)
    }
}

/// The previous applied view the planner diffs against.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Previous<'a> {
    /// Maglev table size of the previous apply (0 = nothing applied).
    pub maglev_table_size: u32,
    /// Services as applied.
    pub services: &'a [AppliedService],
    /// Retired backend ids.
    pub retired: &'a [RetiredBackend],
}

/// The protocol's IP number.
pub fn protocol_number(protocol: Protocol) -> u8 {
    protocol.number()
}

/// The protocol's name as stored in [`AppliedService::protocol`].
pub fn protocol_name(protocol: Protocol) -> &'static str {
    protocol.as_str()
}

type ServiceIdentity = (IpAddr, u16, String);

fn identity_of_applied(s: &AppliedService) -> ServiceIdentity {
    (s.vip, s.port, s.protocol.clone())
}

fn identity_of_config(s: &ServiceConfig) -> ServiceIdentity {
    (s.vip, s.port, protocol_name(s.protocol).to_string())
}

/// A backend is in the live table when it is eligible and (up or the service panics).
fn in_table(b: &AppliedBackend, panic: bool) -> bool {
    b.weight > 0 && !b.drain && (b.state != BackendState::Down || panic)
}

/// A backend is LIVE unless it is down (and its service does not panic).
fn is_live(b: &AppliedBackend, panic: bool) -> bool {
    b.state != BackendState::Down || panic
}

/// The table members of a service: (address, weight, id) of backends in the table.
fn members(backends: &[AppliedBackend], panic: bool) -> Vec<(IpAddr, u32, u32)> {
    backends
        .iter()
        .filter(|b| in_table(b, panic))
        .map(|b| (b.address, b.weight, b.id))
        .collect()
}

/// Builds a table over `members`; slots hold the members' addresses' ids.
fn build_table(
    size: u32,
    members: &[(IpAddr, u32, u32)],
    service: &str,
) -> Result<Option<(MaglevTable, Vec<u32>)>, PlanError> {
    if members.is_empty() {
        return Ok(None);
    }
    let weighted: Vec<WeightedBackend> = members
        .iter()
        .map(|&(address, weight, _)| WeightedBackend { address, weight })
        .collect();
    let table = MaglevTable::build(size, &weighted).map_err(|source| PlanError::Maglev {
        service: service.to_string(),
        source,
    })?;
    let ids = table
        .slots()
        .iter()
        .map(|&i| {
            if i == NO_BACKEND {
                NO_BACKEND
            } else {
                members[i as usize].2
            }
        })
        .collect();
    Ok(Some((table, ids)))
}

/// Slot addresses of a table over `members` (None slots when empty).
fn slot_addresses(
    table: &Option<(MaglevTable, Vec<u32>)>,
    members: &[(IpAddr, u32, u32)],
) -> Vec<Option<IpAddr>> {
    match table {
        None => Vec::new(),
        Some((t, _)) => t
            .slots()
            .iter()
            .map(|&i| (i != NO_BACKEND).then(|| members[i as usize].0))
            .collect(),
    }
}

/// The fingerprint (slot -> address) of a table over `members`; an empty one
/// when there is no table.
fn table_fingerprint(
    table: &Option<(MaglevTable, Vec<u32>)>,
    members: &[(IpAddr, u32, u32)],
) -> u32 {
    let addresses: Vec<IpAddr> = members.iter().map(|m| m.0).collect();
    match table {
        Some((t, _)) => fingerprint(t.slots(), &addresses),
        None => fingerprint(&[], &[]),
    }
}

/// Plans the map operations that take the datapath from `prev` to `config`
/// with the health view `health`.
pub fn plan(
    prev: &Previous<'_>,
    config: &Config,
    health: &dyn HealthView,
) -> Result<Plan, PlanError> {
    let m = config.maglev_table_size;
    let size_changed = prev.maglev_table_size != m;
    let prev_by_identity: HashMap<ServiceIdentity, &AppliedService> = prev
        .services
        .iter()
        .map(|s| (identity_of_applied(s), s))
        .collect();
    let desired: BTreeSet<ServiceIdentity> =
        config.services.iter().map(identity_of_config).collect();

    // Ids in use before this plan (never reused within it).
    let used_service_ids: BTreeSet<u32> = prev.services.iter().map(|s| s.service_id).collect();
    let mut used_backend_ids: BTreeSet<u32> = prev
        .services
        .iter()
        .flat_map(|s| s.backends.iter().map(|b| b.id))
        .collect();
    let mut retired: BTreeMap<u32, u32> =
        prev.retired.iter().map(|r| (r.id, r.generation)).collect();
    used_backend_ids.extend(retired.keys().copied());
    let mut next_fresh_backend = 0u32;
    let mut next_fresh_service = 0u32;
    let mut taken_service_ids: BTreeSet<u32> = used_service_ids.clone();
    // Retired ids available for reuse (retired before this plan).
    let mut reusable: Vec<(u32, u32)> = retired.iter().map(|(&id, &g)| (id, g)).collect();
    reusable.reverse(); // pop() gives the lowest id

    let mut new_backend_ops = Vec::new(); // zero stats + put live, and back-up puts
    let mut removal_ops = Vec::new(); // deleted services
    let mut drop_previous_ops = Vec::new(); // entries forget the table about to be overwritten
    let mut new_tables = Vec::new(); // fresh tables at spare (unused) indices
    let mut table_ops = Vec::new(); // service flips (and new services' stats, markers)
    let mut late_ops = Vec::new(); // retire / down
    let mut changes = Vec::new();
    let mut services = Vec::new();
    let mut newly_retired: Vec<(u32, u32)> = Vec::new();

    // Removed services first (their VIPS entries go before anything else moves).
    let mut remaining_vips: BTreeSet<IpAddr> = config.services.iter().map(|s| s.vip).collect();
    let prev_vips: BTreeSet<IpAddr> = prev.services.iter().map(|s| s.vip).collect();
    for s in prev.services {
        if desired.contains(&identity_of_applied(s)) {
            continue;
        }
        removal_ops.push(MapOp::DeleteService {
            key: applied_service_key(s),
        });
        for b in &s.backends {
            late_ops.push(MapOp::RetireBackend {
                id: b.id,
                address: b.address,
                generation: b.generation,
            });
            newly_retired.push((b.id, b.generation));
        }
        changes.push(ServiceChange {
            name: s.name.clone(),
            changes: vec!["removed".into()],
            slots_moved: s.table_size,
            table_size: 0,
        });
    }
    for vip in &prev_vips {
        if !remaining_vips.contains(vip) {
            removal_ops.push(MapOp::DeleteVipMarker { vip: *vip });
        }
    }
    // Tables of removed services are dropped after every VIPS entry is gone.
    for s in prev.services {
        if !desired.contains(&identity_of_applied(s)) {
            removal_ops.push(MapOp::DeleteTable {
                index: 2 * s.service_id + s.table_parity,
            });
        }
    }

    for svc in &config.services {
        let identity = identity_of_config(svc);
        let old = prev_by_identity.get(&identity).copied();
        let service_id = match old {
            Some(o) => o.service_id,
            None => {
                while taken_service_ids.contains(&next_fresh_service) {
                    next_fresh_service += 1;
                }
                if next_fresh_service >= MAX_SERVICES {
                    return Err(PlanError::TooManyServices);
                }
                taken_service_ids.insert(next_fresh_service);
                next_fresh_service
            }
        };
        let selection = select_for_service(svc, |a| health.is_up(&svc.name, a));
        let checked = svc.health_check.is_some();
        let old_backends: HashMap<IpAddr, &AppliedBackend> = old
            .map(|o| o.backends.iter().map(|b| (b.address, b)).collect())
            .unwrap_or_default();
        let mut change_list = Vec::new();
        if old.is_none() {
            change_list.push("added".to_string());
            table_ops.push(MapOp::ZeroServiceStats { id: service_id });
            if !prev_vips.contains(&svc.vip)
                && !table_ops.contains(&MapOp::PutVipMarker { vip: svc.vip })
            {
                table_ops.push(MapOp::PutVipMarker { vip: svc.vip });
            }
        }
        let mut backends = Vec::new();
        for bc in &svc.backends {
            let down = checked && !health.is_up(&svc.name, bc.address);
            let state = if down {
                BackendState::Down
            } else if bc.drain || bc.weight == 0 {
                BackendState::Draining
            } else {
                BackendState::Active
            };
            let (id, generation) = match old_backends.get(&bc.address) {
                Some(ob) => {
                    if ob.weight != bc.weight {
                        change_list.push(format!(
                            "{} weight {}->{}",
                            bc.address, ob.weight, bc.weight
                        ));
                    }
                    if ob.drain != bc.drain {
                        change_list.push(format!(
                            "{} {}",
                            bc.address,
                            if bc.drain { "drain" } else { "undrain" }
                        ));
                    }
                    if (ob.state == BackendState::Down) != down {
                        change_list.push(format!(
                            "{} {}",
                            bc.address,
                            if down { "down" } else { "up" }
                        ));
                    }
                    (ob.id, ob.generation)
                }
                None => {
                    while used_backend_ids.contains(&next_fresh_backend) {
                        next_fresh_backend += 1;
                    }
                    let (id, generation) = if next_fresh_backend < MAX_BACKENDS {
                        used_backend_ids.insert(next_fresh_backend);
                        (next_fresh_backend, 1)
                    } else {
                        let (id, g) = reusable.pop().ok_or(PlanError::TooManyBackends)?;
                        retired.remove(&id);
                        (id, g.wrapping_add(1).max(1))
                    };
                    if old.is_some() {
                        change_list.push(format!("+{}", bc.address));
                    }
                    new_backend_ops.push(MapOp::ZeroBackendStats { id });
                    (id, generation)
                }
            };
            backends.push(AppliedBackend {
                address: bc.address,
                id,
                generation,
                weight: bc.weight,
                drain: bc.drain,
                state,
                slots: 0,
            });
        }
        let panic = selection.panic;
        let gue = svc.encap == Encapsulation::Gue;
        let encap_changed = old.is_some_and(|o| o.encap != svc.encap);
        if let Some(o) = old
            && encap_changed
        {
            change_list.push(format!(
                "encap {}->{}",
                o.encap.as_str(),
                svc.encap.as_str()
            ));
        }
        if let Some(o) = old {
            if o.panic != panic {
                change_list.push(if panic {
                    "panic".into()
                } else {
                    "panic over".into()
                });
            }
            let kept: BTreeSet<IpAddr> = svc.backends.iter().map(|b| b.address).collect();
            for ob in &o.backends {
                if !kept.contains(&ob.address) {
                    change_list.push(format!("-{}", ob.address));
                    late_ops.push(MapOp::RetireBackend {
                        id: ob.id,
                        address: ob.address,
                        generation: ob.generation,
                    });
                    newly_retired.push((ob.id, ob.generation));
                }
            }
        }
        // Liveness changes and new backends.
        for b in &backends {
            let live = is_live(b, panic);
            match old_backends.get(&b.address) {
                None => new_backend_ops.push(MapOp::PutBackend {
                    id: b.id,
                    address: b.address,
                    generation: b.generation,
                    live,
                    service_id,
                    gue,
                }),
                Some(ob) => {
                    let was_live = is_live(ob, old.is_some_and(|o| o.panic));
                    if live != was_live || encap_changed {
                        let op = MapOp::PutBackend {
                            id: b.id,
                            address: b.address,
                            generation: b.generation,
                            live,
                            service_id,
                            gue,
                        };
                        if live {
                            new_backend_ops.push(op);
                        } else {
                            late_ops.push(op);
                        }
                    }
                }
            }
        }
        // The table.
        let new_members = members(&backends, panic);
        let old_members = old
            .map(|o| members(&o.backends, o.panic))
            .unwrap_or_default();
        let same_table = old.is_some() && !size_changed && {
            let mut a = new_members.clone();
            let mut b = old_members.clone();
            a.sort();
            b.sort();
            a == b
        };
        let (parity, table_size, slots_by_id, fingerprint) = if same_table {
            let o = old.expect("same_table implies old");
            let counts = old_slot_counts(o);
            let fingerprint = match o.fingerprint {
                Some(f) => f,
                // A state from before fingerprints: compute it once.
                None => table_fingerprint(&build_table(m, &new_members, &svc.name)?, &new_members),
            };
            (o.table_parity, o.table_size, counts, fingerprint)
        } else {
            let parity = match old {
                Some(o) => 1 - o.table_parity,
                None => 0,
            };
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
            let moved = if old_addrs.len() == new_addrs.len() {
                old_addrs
                    .iter()
                    .zip(&new_addrs)
                    .filter(|(a, b)| a != b)
                    .count() as u32
            } else {
                old_addrs.len().max(new_addrs.len()) as u32
            };
            let mut counts: HashMap<u32, u32> = HashMap::new();
            let table_size = match &built {
                Some((_, ids)) => {
                    for &id in ids {
                        *counts.entry(id).or_default() += 1;
                    }
                    new_tables.push(MapOp::PutTable {
                        index,
                        slots: ids.clone(),
                    });
                    ids.len() as u32
                }
                None => 0,
            };
            let key = VipKey::new(svc.vip, svc.port, protocol_number(svc.protocol));
            let entry = ServiceEntry {
                service_id,
                table_index: index,
                table_size,
                ..ServiceEntry::default()
            };
            match old {
                // Second chance: the old live table stays, named as the
                // previous one. The spare about to be refilled may be the
                // previous table of the current entry: the entry forgets it
                // first.
                Some(o) if gue && svc.second_chance_s > 0 && o.table_size > 0 && table_size > 0 => {
                    let old_index = 2 * service_id + o.table_parity;
                    drop_previous_ops.push(MapOp::PutService {
                        key,
                        entry: ServiceEntry {
                            service_id,
                            table_index: old_index,
                            table_size: o.table_size,
                            ..ServiceEntry::default()
                        },
                    });
                    table_ops.push(MapOp::PutServiceWithPrevious {
                        key,
                        entry: ServiceEntry {
                            previous_table_index: old_index,
                            previous_table_size: o.table_size,
                            ..entry
                        },
                        grace_s: svc.second_chance_s,
                    });
                }
                _ => table_ops.push(MapOp::PutService { key, entry }),
            }
            if table_size == 0 && old.is_some_and(|o| o.table_size > 0) {
                change_list.push("no backend takes new flows".into());
            }
            if size_changed && old.is_some() {
                change_list.push(format!("table size {}->{}", prev.maglev_table_size, m));
            }
            if change_list.is_empty() {
                change_list.push("table rebuilt".into());
            }
            changes.push(ServiceChange {
                name: svc.name.clone(),
                changes: change_list.clone(),
                slots_moved: moved,
                table_size,
            });
            (parity, table_size, counts, fingerprint)
        };
        if same_table && !change_list.is_empty() {
            changes.push(ServiceChange {
                name: svc.name.clone(),
                changes: change_list,
                slots_moved: 0,
                table_size,
            });
        }
        for b in &mut backends {
            b.slots = slots_by_id.get(&b.id).copied().unwrap_or(0);
        }
        services.push(AppliedService {
            name: svc.name.clone(),
            vip: svc.vip,
            port: svc.port,
            protocol: protocol_name(svc.protocol).to_string(),
            service_id,
            table_parity: parity,
            table_size,
            panic,
            backends,
            fingerprint: Some(fingerprint),
            encap: svc.encap,
        });
    }
    remaining_vips.clear();

    for (id, g) in newly_retired {
        retired.insert(id, g);
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
    let mut ops: Vec<MapOp> = union
        .iter()
        .filter(|&(w, &bits)| old_filter.get(w).copied().unwrap_or(0) != bits)
        .map(|(&word, &bits)| MapOp::SetVipFilterWord { word, bits })
        .collect();
    ops.extend(new_backend_ops);
    ops.extend(removal_ops);
    ops.extend(drop_previous_ops);
    // Every new table before the first flip: they sit at indices nothing reads
    // yet, and consecutive table writes share one kernel grace period.
    ops.extend(new_tables);
    ops.extend(table_ops);
    ops.extend(late_ops);
    ops.extend(
        union
            .iter()
            .map(|(&word, &bits)| (word, bits, new_filter.get(&word).copied().unwrap_or(0)))
            .filter(|&(_, bits, new)| bits != new)
            .map(|(word, _, bits)| MapOp::SetVipFilterWord { word, bits }),
    );
    Ok(Plan {
        services,
        retired: retired
            .into_iter()
            .map(|(id, generation)| RetiredBackend { id, generation })
            .collect(),
        ops,
        changes,
    })
}

/// The VIPS key of an applied service.
pub fn applied_service_key(s: &AppliedService) -> VipKey {
    let protocol = if s.protocol == protocol_name(Protocol::Udp) {
        protocol_number(Protocol::Udp)
    } else {
        protocol_number(Protocol::Tcp)
    };
    VipKey::new(s.vip, s.port, protocol)
}

/// Slot counts per backend id of an unchanged service (from the applied view).
fn old_slot_counts(o: &AppliedService) -> HashMap<u32, u32> {
    o.backends.iter().map(|b| (b.id, b.slots)).collect()
}

#[cfg(test)]
mod gue_tests;
#[cfg(test)]
mod tests;
