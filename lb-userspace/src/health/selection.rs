//! Per-service choice of the backends that take new flows, with the panic
//! threshold. Pure.
//!
//! A backend is *eligible* when it is configured to take new flows (not
//! draining, weight > 0). Among the eligible ones, the healthy ones take new
//! flows — unless their share is below the service's `panic_threshold`
//! (and the threshold is > 0): then the service is in *panic mode* and every
//! eligible backend takes new flows, healthy or not, because spreading the
//! load over possibly-dead backends beats crushing the few survivors.
//!
//! With `panic_threshold` 0 (panic mode off) and no healthy eligible backend,
//! the selection is empty: the agent installs an empty table and the datapath
//! drops new flows of that service with a counter.
//!
//! This is the one definition of the rule: the planner (which backends get
//! table slots, which ids are LIVE, the state shown), the adoption of pinned
//! maps and `lb stats` all ask a [`Candidate`] ([`Candidate::takes_new_flows`],
//! [`Candidate::is_live`], [`Candidate::shown_state`]).

use std::net::IpAddr;

use crate::config::ServiceConfig;
use crate::state::{AppliedBackend, BackendState};

/// One backend of a service, as the selection sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Configured to take new flows: not draining and weight > 0.
    pub eligible: bool,
    /// Health-check state is up (or the service has no health check).
    pub healthy: bool,
}

impl Candidate {
    /// The candidate of an applied backend: eligible from its configured
    /// weight and drain flag, healthy unless its shown state is down.
    pub fn of_applied(backend: &AppliedBackend) -> Self {
        Candidate {
            eligible: backend.weight > 0 && !backend.drain,
            healthy: backend.state != BackendState::Down,
        }
    }

    /// Whether it takes new flows (has table slots) when its service does
    /// (`panic`) or does not panic: eligible, and healthy or in panic mode.
    pub fn takes_new_flows(self, panic: bool) -> bool {
        self.eligible && (self.healthy || panic)
    }

    /// Whether its backend id is LIVE (its pinned flows stay on it): healthy,
    /// or its service panics. Draining backends stay live.
    pub fn is_live(self, panic: bool) -> bool {
        self.healthy || panic
    }

    /// The state shown to users: down when unhealthy, else draining when not
    /// eligible, else active.
    pub fn shown_state(self) -> BackendState {
        if !self.healthy {
            BackendState::Down
        } else if !self.eligible {
            BackendState::Draining
        } else {
            BackendState::Active
        }
    }
}

/// The backends of a service that take new flows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Indices (into the candidates / the service's `backends`), ascending,
    /// of the backends that take new flows.
    pub take_new_flows: Vec<usize>,
    /// Panic mode: too few healthy backends, so every eligible backend takes
    /// new flows. The agent should log this loudly.
    pub panic: bool,
    /// Number of eligible backends.
    pub eligible: usize,
    /// Number of eligible backends that are healthy.
    pub healthy: usize,
}

impl Selection {
    /// Eligible backends exist but none takes new flows: every one is down and
    /// panic mode is off. New flows of the service are dropped (and counted).
    pub fn all_down(&self) -> bool {
        self.take_new_flows.is_empty() && self.eligible > 0
    }

    /// Share of eligible backends that are healthy (1.0 with none eligible).
    pub fn healthy_share(&self) -> f64 {
        if self.eligible == 0 {
            1.0
        } else {
            self.healthy as f64 / self.eligible as f64
        }
    }
}

/// Chooses the candidates that take new flows. `panic_threshold` is a share
/// in 0.0..=1.0; panic mode starts when the healthy share of the eligible
/// candidates is strictly below it. A threshold <= 0 (or NaN) disables panic.
pub fn select(candidates: &[Candidate], panic_threshold: f64) -> Selection {
    let eligible = candidates.iter().filter(|c| c.eligible).count();
    let healthy = candidates
        .iter()
        .filter(|c| c.eligible && c.healthy)
        .count();
    let panic = panic_threshold > 0.0
        && eligible > 0
        && (healthy as f64) < panic_threshold * eligible as f64;
    let take_new_flows = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.takes_new_flows(panic))
        .map(|(i, _)| i)
        .collect();
    Selection {
        take_new_flows,
        panic,
        eligible,
        healthy,
    }
}

/// [`select`] over a configured service: a backend is eligible when it is not
/// draining and has weight > 0, and healthy when `is_healthy(address)` says so.
/// A service without `health_check` has every backend healthy (`is_healthy`
/// is not called). Indices refer to `service.backends`.
pub fn select_for_service(
    service: &ServiceConfig,
    is_healthy: impl FnMut(IpAddr) -> bool,
) -> Selection {
    select(&candidates(service, is_healthy), service.panic_threshold)
}

/// The candidates of a configured service, in config order: eligible when not
/// draining and of weight > 0, healthy when the service has no health check
/// or `is_healthy(address)` says so (asked once per backend, so one answer
/// decides both the selection and the state shown).
pub fn candidates(
    service: &ServiceConfig,
    mut is_healthy: impl FnMut(IpAddr) -> bool,
) -> Vec<Candidate> {
    let checked = service.health_check.is_some();
    service
        .backends
        .iter()
        .map(|b| Candidate {
            eligible: !b.drain && b.weight > 0,
            healthy: !checked || is_healthy(b.address),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{
        BackendConfig, HealthCheckConfig, HealthCheckKind, Protocol, ServiceConfig,
    };

    fn up() -> Candidate {
        Candidate {
            eligible: true,
            healthy: true,
        }
    }

    fn down() -> Candidate {
        Candidate {
            eligible: true,
            healthy: false,
        }
    }

    fn ineligible(healthy: bool) -> Candidate {
        Candidate {
            eligible: false,
            healthy,
        }
    }

    #[test]
    fn healthy_only_above_threshold() {
        let s = select(&[up(), down(), up(), up()], 0.5);
        assert_eq!(s.take_new_flows, vec![0, 2, 3]);
        assert!(!s.panic);
        assert_eq!((s.eligible, s.healthy), (4, 3));
    }

    #[test]
    fn exactly_at_threshold_is_not_panic() {
        let s = select(&[up(), down(), up(), down()], 0.5);
        assert_eq!(s.take_new_flows, vec![0, 2]);
        assert!(!s.panic);
    }

    #[test]
    fn below_threshold_panics_and_takes_all_eligible() {
        let s = select(&[up(), down(), down(), down(), ineligible(true)], 0.5);
        assert!(s.panic);
        assert_eq!(s.take_new_flows, vec![0, 1, 2, 3]);
        assert_eq!((s.eligible, s.healthy), (4, 1));
        assert!(!s.all_down());
    }

    #[test]
    fn all_down_with_threshold_panics() {
        let s = select(&[down(), down(), down()], 0.5);
        assert!(s.panic);
        assert_eq!(s.take_new_flows, vec![0, 1, 2]);
    }

    #[test]
    fn threshold_zero_never_panics_and_all_down_is_empty() {
        let s = select(&[down(), down(), down()], 0.0);
        assert!(!s.panic);
        assert!(s.take_new_flows.is_empty());
        assert!(s.all_down());

        let s = select(&[up(), down(), down(), down()], 0.0);
        assert!(!s.panic);
        assert_eq!(s.take_new_flows, vec![0]);
    }

    #[test]
    fn nan_threshold_is_off() {
        let s = select(&[down(), down()], f64::NAN);
        assert!(!s.panic);
        assert!(s.all_down());
    }

    #[test]
    fn all_down_then_one_up() {
        let mut backends = [down(), down(), down(), down()];
        let s = select(&backends, 0.0);
        assert!(s.all_down());
        backends[2] = up();
        let s = select(&backends, 0.0);
        assert_eq!(s.take_new_flows, vec![2]);
        assert!(!s.all_down());
        // With a threshold one of four is below 50%: panic, all four.
        let s = select(&backends, 0.5);
        assert!(s.panic);
        assert_eq!(s.take_new_flows, vec![0, 1, 2, 3]);
        // ...and at 25% it is not.
        let s = select(&backends, 0.25);
        assert!(!s.panic);
        assert_eq!(s.take_new_flows, vec![2]);
    }

    #[test]
    fn ineligible_never_taken_even_in_panic() {
        let s = select(&[ineligible(true), down(), ineligible(false)], 1.0);
        assert!(s.panic);
        assert_eq!(s.take_new_flows, vec![1]);
        let s = select(&[ineligible(true), ineligible(true)], 0.5);
        assert!(!s.panic);
        assert!(s.take_new_flows.is_empty());
        assert!(!s.all_down(), "no eligible backend is not 'all down'");
    }

    #[test]
    fn threshold_one_panics_on_any_down() {
        let s = select(&[up(), up(), down()], 1.0);
        assert!(s.panic);
        assert_eq!(s.take_new_flows, vec![0, 1, 2]);
        let s = select(&[up(), up()], 1.0);
        assert!(!s.panic);
    }

    fn service(health: bool, threshold: f64) -> ServiceConfig {
        let backend = |last: u8, weight: u32, drain: bool| BackendConfig {
            address: IpAddr::from([198, 18, 3, last]),
            weight,
            drain,
        };
        ServiceConfig {
            name: "web".into(),
            vip: IpAddr::from([198, 18, 0, 10]),
            port: 80,
            protocol: Protocol::Tcp,
            backends: vec![
                backend(1, 1, false),
                backend(2, 0, false),
                backend(3, 1, true),
                backend(4, 2, false),
                backend(5, 1, false),
            ],
            health_check: health.then(|| HealthCheckConfig {
                kind: HealthCheckKind::Tcp,
                port: 80,
                path: "/".into(),
                interval_ms: 1000,
                timeout_ms: 500,
                rise: 2,
                fall: 3,
            }),
            panic_threshold: threshold,
            encap: crate::config::Encapsulation::Ipip,
            second_chance_s: crate::config::DEFAULT_SECOND_CHANCE_S,
        }
    }

    #[test]
    fn service_eligibility_and_health_lookup() {
        let down = IpAddr::from([198, 18, 3, 4]);
        let s = select_for_service(&service(true, 0.5), |a| a != down);
        assert_eq!(s.take_new_flows, vec![0, 4]);
        assert_eq!((s.eligible, s.healthy), (3, 2));
        assert!(!s.panic);

        let s = select_for_service(&service(true, 0.0), |_| false);
        assert!(s.all_down());
    }

    #[test]
    fn service_without_health_check_is_all_healthy() {
        let s = select_for_service(&service(false, 0.5), |_| {
            panic!("not consulted without a health check")
        });
        assert_eq!(s.take_new_flows, vec![0, 3, 4]);
        assert!(!s.panic);
    }
}
