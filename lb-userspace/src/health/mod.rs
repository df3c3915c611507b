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
//! - [`jitter`], [`limits`]: probe spreading and concurrency caps.
//!
//! The agent's loop: build targets with [`targets_from_config`], hand them to
//! [`HealthMonitor::update_targets`] (again on every reload), and on each
//! [`HealthEvent`] log one line, recompute the service's backends with
//! [`HealthMonitor::selection`] (log loudly when `panic`), and rebuild its
//! Maglev table. Users' view: README.md, "Health checks".

pub mod jitter;
pub mod limits;
pub mod monitor;
pub mod probe;
pub mod selection;
pub mod state;

#[cfg(test)]
mod tests;

pub use monitor::{
    HealthEvent, HealthMonitor, HealthTarget, MonitorConfig, TargetKey, TargetStatus,
    UpdateSummary, targets_from_config,
};
pub use probe::ProbeError;
pub use selection::{Candidate, Selection, select, select_for_service};
pub use state::{BackendHealth, HealthState, ProbeOutcome, Transition};
