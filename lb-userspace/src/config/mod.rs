//! The backend YAML: schema, parsing and validation.
//!
//! `parse` turns text into a validated [`Config`] or a [`ConfigError`] listing
//! *every* problem found, each naming the service/backend (and line when known).

mod fields;
mod lines;
#[cfg(test)]
mod tests;
mod validate;
mod warnings;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

pub use warnings::warnings;

/// Default Maglev table size (prime).
pub const DEFAULT_MAGLEV_TABLE_SIZE: u32 = 65537;

/// Default panic threshold of a service.
pub const DEFAULT_PANIC_THRESHOLD: f64 = 0.5;

/// A validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Maglev table size `M` (prime), shared by every service.
    pub maglev_table_size: u32,
    /// Connection-table capacity in flows.
    pub conntrack_entries: u32,
    /// Connection-table inserts allowed per second per CPU (0 = no limit).
    pub conntrack_insert_budget: u32,
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
    let doc: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(doc) => doc,
        Err(error) => {
            return Err(ConfigError::Invalid(vec![Problem {
                line: error.location().map(|l| l.line()),
                location: "yaml".into(),
                message: syntax_message(&error),
            }]));
        }
    };
    let mut ctx = fields::Ctx {
        lines: lines::LineMap::new(text),
        problems: Vec::new(),
    };
    match validate::document(&mut ctx, &doc) {
        Some(config) if ctx.problems.is_empty() => Ok(config),
        _ => {
            let mut problems = ctx.problems;
            // File order; problems without a line keep their relative order last.
            problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
            Err(ConfigError::Invalid(problems))
        }
    }
}

/// serde_yaml's message without its trailing " at line N column M".
fn syntax_message(error: &serde_yaml::Error) -> String {
    let message = error.to_string();
    match message.find(" at line ") {
        Some(at) => format!("syntax error: {}", &message[..at]),
        None => format!("syntax error: {message}"),
    }
}

impl fmt::Display for Problem {
    /// `line 12: services[web]: message` (without `line N: ` when unknown).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        write!(f, "{}: {}", self.location, self.message)
    }
}

impl Default for HealthCheckConfig {
    /// TCP connect on port 0 (callers set the service port), path "/", every
    /// 1000 ms with a 500 ms timeout, rise 2, fall 3.
    fn default() -> Self {
        HealthCheckConfig {
            kind: HealthCheckKind::Tcp,
            port: 0,
            path: "/".into(),
            interval_ms: 1000,
            timeout_ms: 500,
            rise: 2,
            fall: 3,
        }
    }
}

impl Config {
    /// Total number of backends over all services.
    pub fn backend_count(&self) -> usize {
        self.services.iter().map(|s| s.backends.len()).sum()
    }
}

impl Protocol {
    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// Reads, parses and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text)
}
