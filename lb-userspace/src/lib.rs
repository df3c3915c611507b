//! The lb agent and CLI as a library: pure logic (config, Maglev, planning,
//! health state) and a thin aya layer, so that tests can drive every part of it.
//!
//! - [`announce`]: VIP host routes for the host's BGP daemon (pure rule + `ip`).
//! - [`config`]: the YAML schema, parsing and validation (`lb check`).
//! - [`maglev`]: weighted Maglev table building (pure).
//! - [`object`]: the embedded XDP object.
//! - [`stats`]: counter snapshots, rates and renderings (`lb stats`, `lb watch`).
//! - [`metrics`]: the Prometheus endpoint and live status page (`lb run --metrics`).
//! - [`netns`] and [`private_dir`]: pins and state keyed by network namespace,
//!   in directories only root can change.

pub mod agent;
pub mod announce;
pub mod config;
pub mod health;
pub mod kernel;
pub mod maglev;
pub mod metrics;
pub mod netns;
pub mod object;
pub mod plan;
pub mod private_dir;
pub mod state;
pub mod stats;
