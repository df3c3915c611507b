//! Health checking of backends: a pure state machine and selection, and an
//! async prober the agent plugs in.
//!
//! - [`state`]: per-backend Up/Down machine damped by `rise`/`fall` (pure,
//!   time passed in).
//! - [`selection`]: which backends of a service take new flows, with the
//!   panic threshold (pure).
//! - [`probe`]: one TCP-connect or HTTP GET probe.
//! - [`monitor`]: [`HealthMonitor`], one jittered probe task per target under
//!   global and per-host concurrency caps, emitting [`HealthEvent`]s.
//! - [`target`]: what is probed ([`HealthTarget`]) and reported
//!   ([`TargetStatus`], [`HealthEvent`]).
//! - [`snapshot`]: [`HealthSnapshot`], every target's state at one instant,
//!   the value the agent's core plans with.
//! - [`jitter`], [`limits`]: probe spreading and concurrency caps.
//!
//! The agent's loop: hand the targets of the applied config
//! ([`targets_from_config`]) to [`HealthMonitor::update_targets`] (again after
//! every applied reload), and pass each [`HealthEvent`] with a
//! [`HealthMonitor::health_snapshot`] to the agent's core, which logs it and
//! re-plans. Users' view: README.md, "Health checks".

pub mod jitter;
pub mod limits;
pub mod monitor;
pub mod probe;
pub mod selection;
pub mod snapshot;
pub mod state;
pub mod target;

#[cfg(test)]
mod tests;

pub use monitor::{HealthMonitor, MonitorConfig};
pub use probe::ProbeError;
pub use selection::{Candidate, Selection, candidates, select, select_for_service};
pub use snapshot::HealthSnapshot;
pub use state::{BackendHealth, HealthState, ProbeOutcome, Transition};
pub use target::{
    HealthEvent, HealthTarget, TargetKey, TargetStatus, UpdateSummary, targets_from_config,
};
