//! The async prober: one tokio task per target, probing on its own jittered
//! interval under the concurrency caps, feeding the [`BackendHealth`] state
//! machines and emitting a [`HealthEvent`] per transition.
//!
//! Nothing here blocks the caller: [`HealthMonitor::update_targets`],
//! [`HealthMonitor::snapshot`] and friends only take a short lock and spawn
//! or abort tasks. The monitor does not log transitions; the agent does, one
//! line per [`HealthEvent`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::jitter::Jitter;
use super::limits::ProbeLimits;
use super::probe::{ProbeError, probe};
use super::selection::{Selection, select_for_service};
use super::snapshot::HealthSnapshot;
use super::state::{BackendHealth, HealthState, ProbeOutcome, Transition};
use super::target::{HealthEvent, HealthTarget, TargetKey, TargetStatus, UpdateSummary};
use crate::config::{HealthCheckConfig, ServiceConfig};

/// Shortest probe interval honoured; shorter configured intervals are raised to it.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// Concurrency caps of a [`HealthMonitor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MonitorConfig {
    /// Probes in flight at once, over all targets (at least 1). Default 64.
    pub max_in_flight: usize,
    /// Probes in flight at once towards one backend address (at least 1). Default 4.
    pub max_in_flight_per_host: usize,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            max_in_flight: 64,
            max_in_flight_per_host: 4,
        }
    }
}

struct Entry {
    check: HealthCheckConfig,
    health: BackendHealth,
    generation: u64,
    task: JoinHandle<()>,
    last_error: Option<String>,
    probes: u64,
    failures: u64,
    transitions: u64,
}

struct Shared {
    targets: Mutex<HashMap<TargetKey, Entry>>,
    limits: ProbeLimits,
    events: mpsc::UnboundedSender<HealthEvent>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<TargetKey, Entry>> {
        // A panic while holding the lock leaves consistent data (plain
        // counters and state), so poisoning is ignored.
        self.targets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one probe result of the task `generation` of `key`. Returns
    /// false when that task is no longer wanted (target removed/restarted).
    fn record(
        &self,
        key: &TargetKey,
        generation: u64,
        result: Result<(), ProbeError>,
        now: Instant,
    ) -> bool {
        let mut targets = self.lock();
        let Some(entry) = targets.get_mut(key) else {
            return false;
        };
        if entry.generation != generation {
            return false;
        }
        entry.probes += 1;
        let outcome = ProbeOutcome::from_ok(result.is_ok());
        entry.last_error = result.err().map(|e| e.to_string());
        if outcome == ProbeOutcome::Failure {
            entry.failures += 1;
            tracing::debug!(
                service = %key.service,
                backend = %key.address,
                error = entry.last_error.as_deref().unwrap_or_default(),
                "health probe failed"
            );
        }
        if let Some(transition) = entry.health.observe(outcome, now) {
            entry.transitions += 1;
            let consecutive = match transition {
                Transition::UpToDown => entry.health.consecutive_failures(),
                Transition::DownToUp => entry.health.consecutive_successes(),
            };
            // Sent under the lock so events of one target keep their order.
            // A closed receiver only means nobody listens any more.
            let _ = self.events.send(HealthEvent {
                service: key.service.clone(),
                address: key.address,
                transition,
                at: now,
                consecutive,
                reason: entry.last_error.clone(),
            });
        }
        true
    }
}

/// Runs health probes for a live set of targets.
///
/// Create it inside a Tokio runtime with [`HealthMonitor::new`]; the returned
/// receiver yields one [`HealthEvent`] per state transition. Dropping the
/// monitor stops every probe.
pub struct HealthMonitor {
    shared: Arc<Shared>,
    runtime: Handle,
    next_generation: Mutex<u64>,
}

impl std::fmt::Debug for HealthMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthMonitor")
            .field("targets", &self.shared.lock().len())
            .finish_non_exhaustive()
    }
}

impl HealthMonitor {
    /// A monitor with no targets, and the receiver of its events.
    ///
    /// # Panics
    /// When called outside a Tokio runtime (probe tasks are spawned on the
    /// current runtime, also when later methods are called from other threads).
    pub fn new(config: MonitorConfig) -> (Self, mpsc::UnboundedReceiver<HealthEvent>) {
        let (events, receiver) = mpsc::unbounded_channel();
        let monitor = Self {
            shared: Arc::new(Shared {
                targets: Mutex::new(HashMap::new()),
                limits: ProbeLimits::new(config.max_in_flight, config.max_in_flight_per_host),
                events,
            }),
            runtime: Handle::current(),
            next_generation: Mutex::new(0),
        };
        (monitor, receiver)
    }

    /// Makes `targets` the set being probed (a config reload): starts the new
    /// ones (Up, first probe at a random point within one interval), stops
    /// the ones not listed, and keeps the state and counters of the ones that
    /// stayed — restarting their probe task only if the probe itself changed
    /// (kind, port, path, interval or timeout); new `rise`/`fall` apply from
    /// their next probe. When a key is listed twice the last one wins.
    /// Never blocks: no probe runs in the caller.
    pub fn update_targets(&self, targets: impl IntoIterator<Item = HealthTarget>) -> UpdateSummary {
        let wanted: HashMap<TargetKey, HealthCheckConfig> =
            targets.into_iter().map(|t| (t.key(), t.check)).collect();
        let now = Instant::now();
        let mut summary = UpdateSummary::default();
        let mut map = self.shared.lock();

        let gone: Vec<TargetKey> = map
            .keys()
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(entry) = map.remove(&key) {
                entry.task.abort();
                summary.removed += 1;
            }
        }

        for (key, check) in wanted {
            match map.get_mut(&key) {
                Some(entry) if entry.check == check => summary.kept += 1,
                Some(entry) => {
                    entry.health.set_thresholds(check.rise, check.fall);
                    if same_probe(&entry.check, &check) {
                        summary.kept += 1;
                    } else {
                        entry.task.abort();
                        entry.generation = self.generation();
                        entry.task = self.spawn(key.clone(), check.clone(), entry.generation);
                        summary.restarted += 1;
                    }
                    entry.check = check;
                }
                None => {
                    let generation = self.generation();
                    let task = self.spawn(key.clone(), check.clone(), generation);
                    map.insert(
                        key,
                        Entry {
                            health: BackendHealth::new(check.rise, check.fall, now),
                            check,
                            generation,
                            task,
                            last_error: None,
                            probes: 0,
                            failures: 0,
                            transitions: 0,
                        },
                    );
                    summary.added += 1;
                }
            }
        }
        summary
    }

    /// The status of every target, sorted by service then address.
    pub fn snapshot(&self) -> Vec<TargetStatus> {
        let map = self.shared.lock();
        let mut all: Vec<TargetStatus> = map.iter().map(|(k, e)| status(k, e)).collect();
        drop(map);
        all.sort_by(|a, b| (&a.service, a.address).cmp(&(&b.service, b.address)));
        all
    }

    /// The status of one target, `None` if it is not probed.
    pub fn status(&self, service: &str, address: IpAddr) -> Option<TargetStatus> {
        let key = TargetKey {
            service: service.to_owned(),
            address,
        };
        self.shared.lock().get(&key).map(|e| status(&key, e))
    }

    /// Every target's state at one instant, read under one lock: the value the
    /// agent's core plans with (a probe finishing meanwhile changes the next
    /// snapshot, never this one).
    pub fn health_snapshot(&self) -> HealthSnapshot {
        let map = self.shared.lock();
        HealthSnapshot::from_states(map.iter().map(|(k, e)| (k.clone(), e.health.state())))
    }

    /// The state of one target, `None` if it is not probed.
    pub fn state(&self, service: &str, address: IpAddr) -> Option<HealthState> {
        self.status(service, address).map(|s| s.state)
    }

    /// The backends of `service` that take new flows, using the current
    /// states (a backend not probed counts as healthy) and the service's
    /// `panic_threshold`; see [`select_for_service`].
    pub fn selection(&self, service: &ServiceConfig) -> Selection {
        let map = self.shared.lock();
        let mut key = TargetKey {
            service: service.name.clone(),
            address: IpAddr::from([0, 0, 0, 0]),
        };
        select_for_service(service, |address| {
            key.address = address;
            map.get(&key).is_none_or(|e| e.health.is_up())
        })
    }

    /// Number of targets probed.
    pub fn len(&self) -> usize {
        self.shared.lock().len()
    }

    /// Whether no target is probed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn generation(&self) -> u64 {
        let mut g = self
            .next_generation
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *g += 1;
        *g
    }

    fn spawn(&self, key: TargetKey, check: HealthCheckConfig, generation: u64) -> JoinHandle<()> {
        let host = self.shared.limits.host(key.address);
        self.runtime.spawn(probe_loop(
            Arc::clone(&self.shared),
            host,
            key,
            check,
            generation,
        ))
    }
}

impl Drop for HealthMonitor {
    fn drop(&mut self) {
        for entry in self.shared.lock().values() {
            entry.task.abort();
        }
    }
}

/// Whether two checks probe the same way (only rise/fall differ).
fn same_probe(a: &HealthCheckConfig, b: &HealthCheckConfig) -> bool {
    a.kind == b.kind
        && a.port == b.port
        && a.path == b.path
        && a.interval_ms == b.interval_ms
        && a.timeout_ms == b.timeout_ms
}

fn status(key: &TargetKey, e: &Entry) -> TargetStatus {
    TargetStatus {
        service: key.service.clone(),
        address: key.address,
        state: e.health.state(),
        since: e.health.since(),
        consecutive_successes: e.health.consecutive_successes(),
        consecutive_failures: e.health.consecutive_failures(),
        last_probe: e.health.last_observed(),
        last_error: e.last_error.clone(),
        probes: e.probes,
        failures: e.failures,
        transitions: e.transitions,
    }
}

/// One target's probe loop: a first probe at a random offset within the
/// interval, then one every interval ±10%, each under the host and global caps.
async fn probe_loop(
    shared: Arc<Shared>,
    host: Arc<Semaphore>,
    key: TargetKey,
    check: HealthCheckConfig,
    generation: u64,
) {
    let interval = Duration::from_millis(check.interval_ms).max(MIN_INTERVAL);
    let mut jitter = Jitter::random();
    let mut next = tokio::time::Instant::now() + jitter.first_delay(interval);
    loop {
        tokio::time::sleep_until(next).await;
        let result = {
            let _permit = shared.limits.acquire(&host).await;
            probe(key.address, &check).await
        };
        if !shared.record(&key, generation, result, Instant::now()) {
            return;
        }
        // Fixed rate; after a probe that overran its slot (slow timeout,
        // queued on a cap) the next one starts at once.
        next = (next + jitter.round_delay(interval)).max(tokio::time::Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_can_be_shared_across_tasks() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<HealthMonitor>();
        shareable::<HealthEvent>();
        shareable::<TargetStatus>();
    }
}
