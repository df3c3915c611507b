//! The namespace lab: a one-armed direct-server-return network (client, router,
//! load balancer, backends) built from network namespaces and veth pairs, with
//! real TCP/UDP servers on the backends, a client API that tracks which backend
//! answers each connection, and control of the `lb` processes.
//!
//! [`tier`] builds several lb nodes behind a BGP/ECMP router on the same parts.
//!
//! Every name a lab creates starts with `lblab<pid>-<n>-`; dropping the [`Lab`]
//! removes all of it, and [`Lab::new`] first removes leftovers of runs whose
//! process is gone. See `docs/lab.md`.

pub mod addr;
pub mod agent;
pub mod background;
pub mod client;
pub mod cmd;
pub mod config;
pub mod decap;
pub mod error;
pub mod flows;
pub mod forward;
pub mod load;
pub mod netns;
pub mod process;
pub mod prometheus;
pub mod reach;
pub mod scenario;
pub mod server;
pub mod stats;
pub mod tier;
pub mod topology;
pub mod udp;

pub use background::{Churn, Pinger};
pub use client::{Client, ShortReport};
pub use config::{ConfigFile, LabConfig, LabEncap};
pub use error::{LabError, Result};
pub use flows::{FlowSet, Tally, TcpFlow};
pub use load::{LiveLoad, LoadSpec, LoadStatus};
pub use scenario::Scenario;
pub use topology::{Backend, Lab};
pub use udp::UdpFlow;
