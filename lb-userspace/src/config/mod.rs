//! The backend YAML: schema, parsing and validation.
//!
//! `parse` turns text into a validated [`Config`] or a [`ConfigError`] listing
//! *every* problem found, each naming the service/backend (and line when known).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// Default Maglev table size (prime).
pub const DEFAULT_MAGLEV_TABLE_SIZE: u32 = 65537;

/// A validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Maglev table size `M` (prime), shared by every service.
    pub maglev_table_size: u32,
    /// Connection-table capacity in flows.
    pub conntrack_entries: u32,
    /// Encapsulation settings.
    pub encapsulation: EncapConfig,
    /// Services in file order.
    pub services: Vec<ServiceConfig>,
}

/// Encapsulation settings (`encapsulation:` key). Unset fields default to the
/// interface's own addresses / the FIB.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncapConfig {
    /// Outer IPv4 source.
    pub source_v4: Option<Ipv4Addr>,
    /// Outer IPv6 source.
    pub source_v6: Option<Ipv6Addr>,
    /// Fallback next-hop MAC when the FIB has none.
    pub gateway_mac: Option<[u8; 6]>,
}

/// Transport protocol of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// One service: a (VIP, port, protocol) and its backends.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceConfig {
    /// Unique name.
    pub name: String,
    /// Virtual IP.
    pub vip: IpAddr,
    /// Port; 0 = every port of the VIP.
    pub port: u16,
    /// Protocol.
    pub protocol: Protocol,
    /// Backends in file order.
    pub backends: Vec<BackendConfig>,
    /// Health checking; `None` = every backend is considered healthy.
    pub health_check: Option<HealthCheckConfig>,
    /// Fraction (0.0..=1.0) of healthy backends under which all are treated as
    /// healthy (panic mode); 0 disables. Default 0.5.
    pub panic_threshold: f64,
}

/// One backend of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendConfig {
    /// Address (same family as the VIP).
    pub address: IpAddr,
    /// Relative weight; 0 = no new flows.
    pub weight: u32,
    /// Draining: no new flows, established flows continue.
    pub drain: bool,
}

/// Kind of health probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthCheckKind {
    /// TCP connect.
    Tcp,
    /// HTTP GET; 2xx/3xx is healthy.
    Http,
}

/// A service's health check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheckConfig {
    /// Probe kind.
    pub kind: HealthCheckKind,
    /// Port probed on each backend (default: the service port).
    pub port: u16,
    /// HTTP path (http only), default "/".
    pub path: String,
    /// Probe interval.
    pub interval_ms: u64,
    /// Probe timeout.
    pub timeout_ms: u64,
    /// Consecutive successes before a down backend is up again.
    pub rise: u32,
    /// Consecutive failures before an up backend is down.
    pub fall: u32,
}

/// One problem found in a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when the parser gives one.
    pub line: Option<usize>,
    /// Where: `services[web]`, `services[web].backends[198.18.3.2]`, `maglev_table_size`, ...
    pub location: String,
    /// What is wrong.
    pub message: String,
}

/// Every problem of a config that failed to load or validate.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but is invalid.
    #[error("{} problem(s) in config", .0.len())]
    Invalid(Vec<Problem>),
}

/// Parses and validates a config from YAML text.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let _ = text;
    todo!("config::parse")
}

/// Reads, parses and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text)
}
