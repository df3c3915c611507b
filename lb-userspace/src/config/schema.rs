//! The JSON Schema of the config file, generated from the config types
//! ([`Config`] and the types it holds, which derive `schemars::JsonSchema`):
//! `lb schema` prints it and `config/lb.schema.json` ships it for editors.
//!
//! The schema describes the shape (keys, types, ranges, defaults); `lb check`
//! remains the authority for what it cannot express (primes, duplicates,
//! address families, cross-service rules).

use schemars::generate::SchemaSettings;

use super::{
    Config, DEFAULT_MAGLEV_TABLE_SIZE, DEFAULT_PANIC_THRESHOLD, HealthCheckConfig, HealthCheckKind,
};

/// Pattern of `encapsulation.gateway_mac`: six hex bytes separated by `:` or `-`.
pub const MAC_PATTERN: &str = "^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$";

/// The schema (JSON Schema draft-07, which every common editor plugin reads).
pub fn json_schema() -> serde_json::Value {
    let generator = SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<Config>();
    schema.to_value()
}

/// [`json_schema`] as pretty-printed text with a final newline (the shipped file).
pub fn json_schema_text() -> String {
    let mut text =
        serde_json::to_string_pretty(&json_schema()).expect("a JSON value always serialises");
    text.push('\n');
    text
}

/// Default of `maglev_table_size`.
pub(crate) fn default_maglev_table_size() -> u32 {
    DEFAULT_MAGLEV_TABLE_SIZE
}

/// Default of `conntrack_entries`.
pub(crate) fn default_conntrack_entries() -> u32 {
    lb_common::maps::DEFAULT_CONNTRACK_ENTRIES
}

/// Default of `conntrack_insert_budget`.
pub(crate) fn default_conntrack_insert_budget() -> u32 {
    lb_common::maps::DEFAULT_INSERT_BUDGET
}

/// Default of a service's `second_chance_s`.
pub(crate) fn default_second_chance_s() -> u32 {
    super::DEFAULT_SECOND_CHANCE_S
}

/// Default of a service's `panic_threshold`.
pub(crate) fn default_panic_threshold() -> f64 {
    DEFAULT_PANIC_THRESHOLD
}

/// Default of a backend's `weight`.
pub(crate) fn default_weight() -> u32 {
    1
}

/// Default of `health_check.kind`, as written in the file.
pub(crate) fn default_health_check_kind() -> &'static str {
    match HealthCheckConfig::default().kind {
        HealthCheckKind::Tcp => "tcp",
        HealthCheckKind::Http => "http",
    }
}

/// Default of `health_check.path`.
pub(crate) fn default_health_check_path() -> String {
    HealthCheckConfig::default().path
}

/// Default of `health_check.interval_ms`.
pub(crate) fn default_interval_ms() -> u64 {
    HealthCheckConfig::default().interval_ms
}

/// Default of `health_check.timeout_ms`.
pub(crate) fn default_timeout_ms() -> u64 {
    HealthCheckConfig::default().timeout_ms
}

/// Default of `health_check.rise`.
pub(crate) fn default_rise() -> u32 {
    HealthCheckConfig::default().rise
}

/// Default of `health_check.fall`.
pub(crate) fn default_fall() -> u32 {
    HealthCheckConfig::default().fall
}
