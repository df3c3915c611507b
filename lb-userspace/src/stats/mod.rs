//! Counters for people and scrapers: a [`Snapshot`] of the pinned per-CPU
//! statistics maps of one interface joined with the agent's
//! [`AppliedState`](crate::state::AppliedState) (names, weights, states, slots),
//! per-second [`Rates`] between two snapshots, and renderings as a plain-text
//! table ([`render_text`]) and as JSON ([`report_json`]).
//!
//! Reading only needs the pins, so `lb stats`, `lb watch` and the metrics
//! endpoint work whether or not the agent runs.

mod error;
mod json;
mod nodes;
mod rates;
mod snapshot;
mod target;
mod text;

pub use error::StatsError;
pub use json::{JsonReport, report_json};
pub use nodes::{NodeView, render_nodes_text};
pub use rates::{BackendRate, Rates, ServiceRate};
pub use snapshot::{BackendCounters, BackendSnapshot, ServiceCounters, ServiceSnapshot, Snapshot};
pub use target::{Target, pinned_interfaces, resolve_target};
pub use text::render_text;

#[cfg(test)]
pub(crate) mod tests;
