//! What the monitor probes and reports: targets (a backend of a service with
//! the service's check), their status, and the transition events.

use std::net::IpAddr;
use std::time::Instant;

use super::state::{HealthState, Transition};
use crate::config::{Config, HealthCheckConfig};

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

/// What [`super::HealthMonitor::update_targets`] did.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServiceConfig;

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
