//! The backend YAML: schema, parsing and validation.
//!
//! `parse` turns text into a validated [`Config`] or a [`ConfigError`] listing
//! *every* problem found, each naming the service/backend (and line when known).

mod announce;
mod fields;
pub mod input;
mod lines;
pub mod report;
pub mod schema;
mod source_prefix;
#[cfg(test)]
mod tests;
mod validate;
mod warnings;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

pub use announce::{AnnounceConfig, DEFAULT_ROUTE_PROTOCOL};
pub use warnings::warnings;

/// Default Maglev table size (prime).
pub const DEFAULT_MAGLEV_TABLE_SIZE: u32 = 65537;

/// Default panic threshold of a service.
pub const DEFAULT_PANIC_THRESHOLD: f64 = 0.5;

/// Default second-chance grace period of a GUE service, in seconds.
pub const DEFAULT_SECOND_CHANCE_S: u32 = 300;

/// Longest second-chance grace period accepted, in seconds (one day).
pub const MAX_SECOND_CHANCE_S: u32 = 86_400;

/// A validated configuration.
#[derive(Clone, Debug, PartialEq, schemars::JsonSchema)]
#[schemars(
    deny_unknown_fields,
    title = "lb configuration (lb.yaml)",
    description = "The services lb balances. `lb check` also checks what a schema cannot \
                   express: a prime table size, unique names and (VIP, port, protocol), \
                   backends of the VIP's address family, timeout below interval."
)]
pub struct Config {
    /// Maglev table size `M` (prime), shared by every service.
    #[schemars(
        default = "schema::default_maglev_table_size",
        range(min = 2, max = lb_common::maps::MAX_TABLE_SIZE)
    )]
    pub maglev_table_size: u32,
    /// Connection-table capacity in flows.
    #[schemars(
        default = "schema::default_conntrack_entries",
        range(min = 1, max = lb_common::maps::MAX_CONNTRACK_ENTRIES)
    )]
    pub conntrack_entries: u32,
    /// Connection-table inserts allowed per second per CPU (0 = no limit).
    #[schemars(default = "schema::default_conntrack_insert_budget")]
    pub conntrack_insert_budget: u32,
    /// Encapsulation settings.
    #[schemars(default)]
    pub encapsulation: EncapConfig,
    /// Services in file order.
    #[schemars(length(max = lb_common::maps::MAX_SERVICES))]
    pub services: Vec<ServiceConfig>,
    /// VIP announcement (`announce:`): node drain and route protocol.
    #[schemars(default)]
    pub announce: AnnounceConfig,
}

/// Encapsulation settings (`encapsulation:` key). Unset fields default to the
/// interface's own addresses / the FIB.
#[derive(Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EncapConfig {
    /// Outer IPv4 source.
    pub source_v4: Option<Ipv4Addr>,
    /// Outer IPv6 source.
    pub source_v6: Option<Ipv6Addr>,
    /// Fallback next-hop MAC when the FIB has none.
    #[schemars(with = "Option<String>", regex(pattern = schema::MAC_PATTERN))]
    pub gateway_mac: Option<[u8; 6]>,
    /// UDP destination port of GUE packets (services with `encap: gue`);
    /// default 6080 (`lb_common::gue::DEFAULT_GUE_PORT`).
    #[schemars(range(min = 1))]
    pub gue_port: Option<u16>,
    /// Per-flow outer IPv4 source: `198.18.5.0/24` makes each flow's outer
    /// source `prefix | (flow hash & host bits)`, so that backends' RSS and
    /// routers' ECMP spread the flows. The prefix must route back to this node
    /// (ICMP errors about encapsulated packets go to the outer source).
    #[schemars(with = "Option<String>")]
    pub source_prefix_v4: Option<SourcePrefix<Ipv4Addr>>,
    /// Per-flow outer IPv6 source, as `source_prefix_v4`; at most the low 32
    /// bits vary.
    #[schemars(with = "Option<String>")]
    pub source_prefix_v6: Option<SourcePrefix<Ipv6Addr>>,
}

/// An address prefix (`base/len`, host bits of `base` zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourcePrefix<A> {
    /// The prefix's first address.
    pub base: A,
    /// Prefix length in bits.
    pub len: u8,
}

impl SourcePrefix<Ipv4Addr> {
    /// The host bits that vary per flow (host order): `!0 >> len`.
    pub fn host_mask(&self) -> u32 {
        u32::MAX.checked_shr(u32::from(self.len)).unwrap_or(0)
    }
}

impl SourcePrefix<Ipv6Addr> {
    /// The host bits of the last 32-bit word that vary per flow (host order):
    /// `128 - len` bits, at most 32.
    pub fn host_mask(&self) -> u32 {
        let bits = 128u32.saturating_sub(u32::from(self.len));
        if bits >= 32 {
            u32::MAX
        } else {
            (1u32 << bits) - 1
        }
    }
}

/// How a service's packets travel to its backends.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    schemars::JsonSchema,
    serde::Serialize,
    serde::Deserialize,
)]
#[schemars(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Encapsulation {
    /// IPv4-in-IPv4 / IPv6-in-IPv6 by the VIP's family.
    #[default]
    Ipip,
    /// Generic UDP Encapsulation (`lb_common::gue`): per-flow UDP source
    /// port, and the second-chance hint.
    Gue,
}

impl Encapsulation {
    /// `ipip` or `gue`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encapsulation::Ipip => "ipip",
            Encapsulation::Gue => "gue",
        }
    }
}

/// Transport protocol of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, schemars::JsonSchema)]
#[schemars(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// One service: a (VIP, port, protocol) and its backends.
#[derive(Clone, Debug, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Unique name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Virtual IP.
    pub vip: IpAddr,
    /// Port; 0 = every port of the VIP.
    pub port: u16,
    /// Protocol.
    pub protocol: Protocol,
    /// Backends in file order.
    #[schemars(length(min = 1))]
    pub backends: Vec<BackendConfig>,
    /// Health checking; `None` = every backend is considered healthy.
    #[schemars(description = "Health checking; absent = every backend is considered healthy.")]
    pub health_check: Option<HealthCheckConfig>,
    /// Fraction (0.0..=1.0) of healthy backends under which all are treated as
    /// healthy (panic mode); 0 disables. Default 0.5.
    #[schemars(
        default = "schema::default_panic_threshold",
        range(min = 0.0, max = 1.0)
    )]
    pub panic_threshold: f64,
    /// Encapsulation toward the backends: `ipip` (default; IPv4-in-IPv4 or
    /// IPv6-in-IPv6 by family) or `gue` (UDP with a per-flow source port; the
    /// only one that carries the second-chance hint).
    #[schemars(default)]
    pub encap: Encapsulation,
    /// Second chance (`encap: gue` only): seconds the previous Maglev table is
    /// kept after a table change, so that moved connections are sent with
    /// their previous owner as hint; 0 = off. Default 300.
    #[schemars(
        default = "schema::default_second_chance_s",
        range(max = MAX_SECOND_CHANCE_S)
    )]
    pub second_chance_s: u32,
}

/// One backend of a service.
#[derive(Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BackendConfig {
    /// Address (same family as the VIP).
    pub address: IpAddr,
    /// Relative weight; 0 = no new flows.
    #[schemars(default = "schema::default_weight")]
    pub weight: u32,
    /// Draining: no new flows, established flows continue.
    #[schemars(default)]
    pub drain: bool,
}

/// Kind of health probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[schemars(rename_all = "lowercase")]
pub enum HealthCheckKind {
    /// TCP connect.
    Tcp,
    /// HTTP GET; 2xx/3xx is healthy.
    Http,
}

/// A service's health check.
#[derive(Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// Probe kind.
    #[schemars(default = "schema::default_health_check_kind")]
    pub kind: HealthCheckKind,
    /// Port probed on each backend (default: the service port).
    #[schemars(with = "Option<u16>", range(min = 1))]
    pub port: u16,
    /// HTTP path (http only), default "/".
    #[schemars(default = "schema::default_health_check_path", regex(pattern = "^/"))]
    pub path: String,
    /// Probe interval.
    #[schemars(default = "schema::default_interval_ms", range(min = 1))]
    pub interval_ms: u64,
    /// Probe timeout.
    #[schemars(default = "schema::default_timeout_ms", range(min = 1))]
    pub timeout_ms: u64,
    /// Consecutive successes before a down backend is up again.
    #[schemars(default = "schema::default_rise", range(min = 1))]
    pub rise: u32,
    /// Consecutive failures before an up backend is down.
    #[schemars(default = "schema::default_fall", range(min = 1))]
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
    /// The path is not a regular file (a FIFO, a device, a directory...).
    #[error("cannot read {path}: it is {what}, not a regular file")]
    NotRegularFile {
        /// The file.
        path: String,
        /// What it is instead.
        what: &'static str,
    },
    /// The file is larger than [`input::MAX_CONFIG_BYTES`].
    #[error(
        "cannot read {path}: {size} bytes, more than the limit of {} bytes",
        input::MAX_CONFIG_BYTES
    )]
    TooLarge {
        /// The file.
        path: String,
        /// Its size (or as much as was read).
        size: u64,
    },
    /// Reading and checking the file took longer than allowed (the agent reads
    /// off its main loop, with a timeout).
    #[error("reading {path} took longer than {seconds} s; not applied")]
    TimedOut {
        /// The file.
        path: String,
        /// The timeout.
        seconds: u64,
    },
    /// The file was read but is invalid.
    #[error("{} problem(s) in config", .0.len())]
    Invalid(Vec<Problem>),
}

/// Parses and validates a config from YAML text.
/// The text is first checked against the limits of [`input`] (line length,
/// nesting, one document).
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    if let Err(problem) = input::check_shape(text) {
        return Err(ConfigError::Invalid(vec![problem]));
    }
    let doc: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(doc) => doc,
        Err(error) => {
            // The parser places an error at end of input one line past the
            // last; errors without a place get the line they are about.
            let lines = text.split('\n').count();
            let line = match error.location() {
                Some(at) => at.line().clamp(1, lines),
                None => unplaced_error_line(text, &error.to_string()),
            };
            return Err(ConfigError::Invalid(vec![Problem {
                line: Some(line),
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

/// The line a parser error without a position is about: the first alias for
/// "repetition limit exceeded" (an alias bomb), else the document's first
/// significant line.
fn unplaced_error_line(text: &str, message: &str) -> usize {
    let significant = |l: &&str| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    };
    let alias = |l: &&str| l.contains(" *") || l.contains("[*") || l.contains(",*");
    let lines: Vec<&str> = text.split('\n').collect();
    let found = if message.contains("repetition limit") {
        lines.iter().position(|l| significant(l) && alias(l))
    } else {
        None
    };
    found
        .or_else(|| lines.iter().position(significant))
        .map_or(1, |i| i + 1)
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

    /// The IP protocol number ([`lb_common::net::PROTO_TCP`] or
    /// [`lb_common::net::PROTO_UDP`]).
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => lb_common::net::PROTO_TCP,
            Protocol::Udp => lb_common::net::PROTO_UDP,
        }
    }
}

/// Reads (a regular file within [`input::MAX_CONFIG_BYTES`]), parses and
/// validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    parse_bytes(&input::read_file(path)?)
}

/// Parses and validates a config file's bytes (UTF-8 checked first).
pub fn parse_bytes(bytes: &[u8]) -> Result<Config, ConfigError> {
    let text = input::decode(bytes).map_err(|problem| ConfigError::Invalid(vec![problem]))?;
    parse(text)
}
