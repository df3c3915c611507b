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
use super::state::{BackendHealth, HealthState, ProbeOutcome, Transition};
use crate::config::{Config, HealthCheckConfig, ServiceConfig};

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

/// Identity of a probed target: a backend of a service. The same address in
/// two services is two targets (their checks may differ), sharing one
/// per-host cap.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetKey {
    /// Service name.
    pub service: String,
    /// Backend address (probed directly, not through the VIP).
    pub address: IpAddr,
}

/// Something to probe: a backend of a service and the service's check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthTarget {
    /// Service name.
    pub service: String,
    /// Backend address.
    pub address: IpAddr,
    /// The service's health check.
    pub check: HealthCheckConfig,
}

impl HealthTarget {
    /// The target's identity.
    pub fn key(&self) -> TargetKey {
        TargetKey {
            service: self.service.clone(),
            address: self.address,
        }
    }
}

/// Every backend of every service that has a `health_check`, in config
/// order. Draining and weight-0 backends are probed too, so their state is
/// known when they are put back.
pub fn targets_from_config(config: &Config) -> Vec<HealthTarget> {
    config
        .services
        .iter()
        .filter_map(|s| s.health_check.as_ref().map(|check| (s, check)))
        .flat_map(|(s, check)| {
            s.backends.iter().map(move |b| HealthTarget {
                service: s.name.clone(),
                address: b.address,
                check: check.clone(),
            })
        })
        .collect()
}

/// A backend changed state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthEvent {
    /// Service name.
    pub service: String,
    /// Backend address.
    pub address: IpAddr,
    /// What changed.
    pub transition: Transition,
    /// When the deciding probe finished.
    pub at: Instant,
    /// Length of the run of results that caused it (`fall` or `rise`).
    pub consecutive: u32,
    /// For [`Transition::UpToDown`]: the last probe's error, e.g.
    /// `connect failed: Connection refused (os error 111)`.
    pub reason: Option<String>,
}

impl std::fmt::Display for HealthEvent {
    /// One log line: `backend 198.18.3.2 of service web: up -> down after 3
    /// failed probes (connect failed: ...)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.transition {
            Transition::UpToDown => "failed",
            Transition::DownToUp => "successful",
        };
        write!(
            f,
            "backend {} of service {}: {} after {} {what} probes",
            self.address, self.service, self.transition, self.consecutive
        )?;
        if let Some(reason) = &self.reason {
            write!(f, " ({reason})")?;
        }
        Ok(())
    }
}

/// Current health of one target, for `lb stats` / `lb watch` / metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetStatus {
    /// Service name.
    pub service: String,
    /// Backend address.
    pub address: IpAddr,
    /// Up or down.
    pub state: HealthState,
    /// When the current state began (when the target was added, if never changed).
    pub since: Instant,
    /// Current run of successes.
    pub consecutive_successes: u32,
    /// Current run of failures.
    pub consecutive_failures: u32,
    /// When the last probe finished, if any.
    pub last_probe: Option<Instant>,
    /// Error of the last probe, `None` if it passed (or none ran yet).
    pub last_error: Option<String>,
    /// Probes finished since the target was added.
    pub probes: u64,
    /// Failed probes since the target was added.
    pub failures: u64,
    /// Transitions since the target was added.
    pub transitions: u64,
}

/// What [`HealthMonitor::update_targets`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpdateSummary {
    /// New targets (start Up, first probe within one interval).
    pub added: usize,
    /// Targets no longer wanted; their tasks are stopped and state dropped.
    pub removed: usize,
    /// Targets whose probe changed (kind, port, path, interval, timeout):
    /// task restarted, state and counters kept.
    pub restarted: usize,
    /// Targets left as they were (possibly with new rise/fall).
    pub kept: usize,
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

    #[test]
    fn event_log_line() {
        let mut event = HealthEvent {
            service: "web".into(),
            address: IpAddr::from([198, 18, 3, 2]),
            transition: Transition::UpToDown,
            at: Instant::now(),
            consecutive: 3,
            reason: Some("HTTP status 503".into()),
        };
        assert_eq!(
            event.to_string(),
            "backend 198.18.3.2 of service web: up -> down after 3 failed probes (HTTP status 503)"
        );
        event.transition = Transition::DownToUp;
        event.consecutive = 2;
        event.reason = None;
        assert_eq!(
            event.to_string(),
            "backend 198.18.3.2 of service web: down -> up after 2 successful probes"
        );
    }

    #[test]
    fn targets_cover_checked_services_only() {
        use crate::config::{BackendConfig, HealthCheckKind, Protocol};
        let backend = |last: u8, drain: bool| BackendConfig {
            address: IpAddr::from([198, 18, 3, last]),
            weight: 1,
            drain,
        };
        let check = HealthCheckConfig {
            kind: HealthCheckKind::Http,
            port: 8080,
            path: "/healthz".into(),
            interval_ms: 1000,
            timeout_ms: 500,
            rise: 2,
            fall: 3,
        };
        let service = |name: &str, check: Option<HealthCheckConfig>| ServiceConfig {
            name: name.into(),
            vip: IpAddr::from([198, 18, 0, 10]),
            port: 80,
            protocol: Protocol::Tcp,
            backends: vec![backend(1, false), backend(2, true)],
            health_check: check,
            panic_threshold: 0.5,
            encap: crate::config::Encapsulation::Ipip,
            second_chance_s: crate::config::DEFAULT_SECOND_CHANCE_S,
        };
        let config = Config {
            maglev_table_size: 65537,
            conntrack_entries: 1024,
            conntrack_insert_budget: 0,
            encapsulation: Default::default(),
            services: vec![service("plain", None), service("web", Some(check.clone()))],
            announce: Default::default(),
        };
        let targets = targets_from_config(&config);
        let keys: Vec<_> = targets
            .iter()
            .map(|t| (t.service.as_str(), t.address))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("web", IpAddr::from([198, 18, 3, 1])),
                ("web", IpAddr::from([198, 18, 3, 2])),
            ]
        );
        assert!(targets.iter().all(|t| t.check == check));
    }
}
