//! The HTTP endpoint of `lb run --metrics ADDR`: Prometheus metrics
//! (`/metrics`), a live status page (`/`) and the JSON it polls
//! (`/stats.json`, the shape of `lb stats --json`), all read fresh from the
//! pinned maps and the agent's state file.
//!
//! - [`encode`]: the OpenMetrics encoding of a snapshot (pure).
//! - [`server`]: the listener: a tiny HTTP/1.1 responder on tokio that caps its
//!   concurrent connections and survives descriptor exhaustion (EMFILE).
//! - [`page`]: the status page's routes, its embedded assets and the sampler
//!   that turns successive snapshots into rates.
//! - [`limits`]: raising the process's descriptor limit and sizing the
//!   connection cap from it.

pub mod encode;
pub mod limits;
pub mod page;
pub mod server;

pub use encode::encode_snapshot;
pub use server::{CONTENT_TYPE, MetricsServer, serve};

use std::net::SocketAddr;

/// Errors of the metrics endpoint.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr} for metrics: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}
