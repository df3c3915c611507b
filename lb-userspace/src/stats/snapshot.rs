//! One reading of an interface's pinned statistics maps, joined with the
//! agent's applied state.

use std::net::IpAddr;
use std::path::Path;

use aya::maps::{MapData, PerCpuArray};
use lb_common::{BackendStats, GlobalCounter, ServiceStats};

use super::StatsError;
use crate::announce::VipAnnouncement;
use crate::state::{AppliedState, BackendState};

pub use crate::kernel::LINK_PIN;

/// Counters of one service, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceCounters {
    /// Packets to the service.
    pub packets: u64,
    /// Bytes of those packets.
    pub bytes: u64,
    /// New flows dropped for want of a backend.
    pub no_backend: u64,
}

/// Counters of one backend, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendCounters {
    /// Packets sent to the backend.
    pub packets: u64,
    /// Bytes of those packets.
    pub bytes: u64,
    /// Flows newly pinned to the backend.
    pub new_flows: u64,
}

/// One backend as read.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendSnapshot {
    /// Backend address.
    pub address: IpAddr,
    /// Backend id (index into BACKENDS / BACKEND_STATS).
    pub id: u32,
    /// Shown state.
    pub state: BackendState,
    /// Configured weight.
    pub weight: u32,
    /// Slots in the live Maglev table.
    pub slots: u32,
    /// Counters.
    pub counters: BackendCounters,
}

impl BackendSnapshot {
    /// Share of the service's table held by this backend, 0.0 ..= 1.0
    /// (0 when the table is empty).
    pub fn share(&self, table_size: u32) -> f64 {
        if table_size == 0 {
            0.0
        } else {
            f64::from(self.slots) / f64::from(table_size)
        }
    }
}

/// One service as read.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceSnapshot {
    /// Service name.
    pub name: String,
    /// VIP.
    pub vip: IpAddr,
    /// Port (0 = every port).
    pub port: u16,
    /// "tcp" or "udp".
    pub protocol: String,
    /// How its packets go to the backends: "ipip" (IPv4-in-IPv4 /
    /// IPv6-in-IPv6) or "gue".
    pub encap: String,
    /// Index into SERVICE_STATS.
    pub service_id: u32,
    /// Size of the live Maglev table (0 = no backend takes new flows).
    pub table_size: u32,
    /// True while in panic mode.
    pub panic: bool,
    /// Fingerprint of the live table (slot -> backend address), when known.
    pub fingerprint: Option<u32>,
    /// Counters.
    pub counters: ServiceCounters,
    /// Backends in config order.
    pub backends: Vec<BackendSnapshot>,
}

/// Everything `lb stats` shows about one interface at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// Interface name.
    pub iface: String,
    /// True when the XDP link is pinned (the datapath is attached).
    pub attached: bool,
    /// XDP mode live ("native" / "skb"), when the agent's state is known.
    pub xdp_mode: Option<String>,
    /// Time of the agent's last apply, Unix ms, when known.
    pub applied_at_unix_ms: Option<u64>,
    /// Duration of the agent's last apply in seconds, when known.
    pub last_apply_seconds: Option<f64>,
    /// Services in config order (empty without an applied state).
    pub services: Vec<ServiceSnapshot>,
    /// Global counters, indexed like [`GlobalCounter::ALL`]: the global
    /// map's values plus, for `conntrack_hit`, `tx` and `redirect`, the
    /// shares of every backend id the state names, applied or retired
    /// (without a state, only the global map's values).
    pub global: Vec<u64>,
    /// True while the node drains (every VIP withdrawn, forwarding continues).
    pub draining: bool,
    /// Each VIP's announcement, in address order (empty without a state).
    pub vips: Vec<VipAnnouncement>,
}

impl Snapshot {
    /// Reads the pinned maps in `pin_dir` (one interface's pin directory) and
    /// joins them with `state` (the agent's applied state, when there is one).
    pub fn read(pin_dir: &Path, state: Option<&AppliedState>) -> Result<Self, StatsError> {
        let iface = state.map(|s| s.ifname.clone()).unwrap_or_else(|| {
            pin_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        if !pin_dir.join(lb_common::MAP_GLOBAL_STATS).exists() {
            return Err(StatsError::NotAttached {
                iface,
                pin_dir: pin_dir.into(),
            });
        }
        let backend_stats: PerCpuArray<MapData, BackendStats> =
            open(pin_dir, lb_common::MAP_BACKEND_STATS)?;
        let service_stats: PerCpuArray<MapData, ServiceStats> =
            open(pin_dir, lb_common::MAP_SERVICE_STATS)?;
        let global_stats: PerCpuArray<MapData, u64> = open(pin_dir, lb_common::MAP_GLOBAL_STATS)?;

        // Every backend id's record, applied or retired, holds its share of
        // the global counters `conntrack_hit`, `tx` and `redirect`.
        let mut shares = BackendStats::default();
        let mut services = Vec::new();
        for svc in state.map(|s| s.services.as_slice()).unwrap_or_default() {
            // The service's record holds its misses; its hits are in its
            // backends' records (`ServiceStats::plus_share`), and the agent
            // moved those of the ids it retired into the record.
            let mut s = read_sum(&service_stats, lb_common::MAP_SERVICE_STATS, svc.service_id)?;
            let mut backends = Vec::with_capacity(svc.backends.len());
            for b in &svc.backends {
                let c = read_sum(&backend_stats, lb_common::MAP_BACKEND_STATS, b.id)?;
                shares = shares.plus(c);
                s.packets = s.packets.wrapping_add(c.hits);
                s.bytes = s.bytes.wrapping_add(c.hit_bytes);
                backends.push(BackendSnapshot {
                    address: b.address,
                    id: b.id,
                    state: b.state,
                    weight: b.weight,
                    slots: b.slots,
                    counters: BackendCounters {
                        packets: c.packets,
                        bytes: c.bytes,
                        new_flows: c.new_flows,
                    },
                });
            }
            services.push(ServiceSnapshot {
                name: svc.name.clone(),
                vip: svc.vip,
                port: svc.port,
                protocol: svc.protocol.clone(),
                encap: svc.encap.as_str().to_string(),
                service_id: svc.service_id,
                table_size: svc.table_size,
                panic: svc.panic,
                fingerprint: svc.fingerprint,
                counters: s,
                backends,
            });
        }
        for r in state
            .map(|s| s.retired_backends.as_slice())
            .unwrap_or_default()
        {
            shares = shares.plus(read_sum(
                &backend_stats,
                lb_common::MAP_BACKEND_STATS,
                r.id,
            )?);
        }
        let mut global = Vec::with_capacity(GlobalCounter::ALL.len());
        for c in GlobalCounter::ALL {
            let own = read_sum(&global_stats, lb_common::MAP_GLOBAL_STATS, *c as u32)?;
            global.push(own.wrapping_add(shares.global_share(*c)));
        }
        Ok(Self {
            iface,
            attached: pin_dir.join(LINK_PIN).exists(),
            xdp_mode: state.map(|s| s.xdp_mode.clone()),
            applied_at_unix_ms: state.map(|s| s.applied_at_unix_ms),
            last_apply_seconds: state.map(|s| s.last_apply_seconds),
            services,
            global,
            draining: state.is_some_and(|s| s.announce.draining),
            vips: state.map(|s| s.announce.vips.clone()).unwrap_or_default(),
        })
    }

    /// The value of one global counter.
    pub fn global(&self, counter: GlobalCounter) -> u64 {
        self.global.get(counter as usize).copied().unwrap_or(0)
    }
}

fn open<V: aya::Pod>(pin_dir: &Path, name: &str) -> Result<PerCpuArray<MapData, V>, StatsError> {
    let path = pin_dir.join(name);
    let open_err = |source| StatsError::OpenMap {
        path: path.clone(),
        source,
    };
    crate::kernel::pinned::per_cpu_array(&path).map_err(open_err)
}

/// Sums one entry over CPUs.
trait PerCpuSum: Sized {
    /// The summed form.
    type Sum;
    /// Sums the per-CPU values.
    fn sum(values: &[Self]) -> Self::Sum;
}

impl PerCpuSum for BackendStats {
    type Sum = BackendStats;
    fn sum(values: &[Self]) -> BackendStats {
        values
            .iter()
            .fold(BackendStats::default(), |a, v| a.plus(*v))
    }
}

impl PerCpuSum for ServiceStats {
    type Sum = ServiceCounters;
    fn sum(values: &[Self]) -> ServiceCounters {
        values
            .iter()
            .fold(ServiceCounters::default(), |a, v| ServiceCounters {
                packets: a.packets.wrapping_add(v.packets),
                bytes: a.bytes.wrapping_add(v.bytes),
                no_backend: a.no_backend.wrapping_add(v.no_backend),
            })
    }
}

impl PerCpuSum for u64 {
    type Sum = u64;
    fn sum(values: &[Self]) -> u64 {
        values.iter().fold(0u64, |a, v| a.wrapping_add(*v))
    }
}

fn read_sum<V: aya::Pod + PerCpuSum>(
    map: &PerCpuArray<MapData, V>,
    name: &'static str,
    index: u32,
) -> Result<V::Sum, StatsError> {
    let values = map.get(&index, 0).map_err(|source| StatsError::ReadMap {
        map: name,
        index,
        source,
    })?;
    Ok(V::sum(&values))
}
