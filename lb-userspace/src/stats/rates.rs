//! Per-second rates between two snapshots (pure).

use std::time::Duration;

use super::Snapshot;

/// Per-second rates of one backend.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BackendRate {
    /// Packets per second.
    pub packets_per_s: f64,
    /// Bytes per second.
    pub bytes_per_s: f64,
    /// New flows per second.
    pub new_flows_per_s: f64,
}

/// Per-second rates of one service and its backends.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceRate {
    /// Packets per second.
    pub packets_per_s: f64,
    /// Bytes per second.
    pub bytes_per_s: f64,
    /// No-backend drops per second.
    pub no_backend_per_s: f64,
    /// One entry per backend of the newer snapshot's service, in its order;
    /// `None` for a backend the older snapshot did not have.
    pub backends: Vec<Option<BackendRate>>,
}

/// Per-second rates between two snapshots, aligned with the newer one.
///
/// Services are matched by service id and name, backends by id within the
/// service; something new has no rate (`None`). A counter that went backwards
/// (maps recreated) counts as 0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rates {
    /// Time between the two snapshots.
    pub elapsed: Duration,
    /// One entry per service of the newer snapshot, in its order.
    pub services: Vec<Option<ServiceRate>>,
    /// Global counters per second, indexed like `GlobalCounter::ALL`.
    pub global: Vec<f64>,
}

fn per_s(prev: u64, next: u64, secs: f64) -> f64 {
    if secs <= 0.0 {
        0.0
    } else {
        next.saturating_sub(prev) as f64 / secs
    }
}

impl Rates {
    /// Rates from `prev` to `next`, taken `elapsed` apart.
    pub fn between(prev: &Snapshot, next: &Snapshot, elapsed: Duration) -> Self {
        let secs = elapsed.as_secs_f64();
        let services = next
            .services
            .iter()
            .map(|s| {
                let p = prev
                    .services
                    .iter()
                    .find(|p| p.service_id == s.service_id && p.name == s.name)?;
                let backends = s
                    .backends
                    .iter()
                    .map(|b| {
                        let pb = p.backends.iter().find(|pb| pb.id == b.id)?;
                        Some(BackendRate {
                            packets_per_s: per_s(pb.counters.packets, b.counters.packets, secs),
                            bytes_per_s: per_s(pb.counters.bytes, b.counters.bytes, secs),
                            new_flows_per_s: per_s(
                                pb.counters.new_flows,
                                b.counters.new_flows,
                                secs,
                            ),
                        })
                    })
                    .collect();
                Some(ServiceRate {
                    packets_per_s: per_s(p.counters.packets, s.counters.packets, secs),
                    bytes_per_s: per_s(p.counters.bytes, s.counters.bytes, secs),
                    no_backend_per_s: per_s(p.counters.no_backend, s.counters.no_backend, secs),
                    backends,
                })
            })
            .collect();
        let global = next
            .global
            .iter()
            .enumerate()
            .map(|(i, n)| per_s(prev.global.get(i).copied().unwrap_or(0), *n, secs))
            .collect();
        Self {
            elapsed,
            services,
            global,
        }
    }

    /// Rates of service `i` of the newer snapshot.
    pub fn service(&self, i: usize) -> Option<&ServiceRate> {
        self.services.get(i).and_then(Option::as_ref)
    }

    /// Rates of backend `j` of service `i` of the newer snapshot.
    pub fn backend(&self, i: usize, j: usize) -> Option<&BackendRate> {
        self.service(i)
            .and_then(|s| s.backends.get(j))
            .and_then(Option::as_ref)
    }
}
