//! Configs the datapath-layer tests apply without YAML.

use lb::config::{BackendConfig, Config, EncapConfig, Encapsulation, Protocol, ServiceConfig};

/// Maglev table size of [`web_service`]'s config (small, prime).
pub const WEB_TABLE_SIZE: u32 = 251;

/// One TCP service `web` on 198.18.100.1:80 over `backends` (weight 1 each),
/// encapsulated with `encap` and a `second_chance_s` grace period, in a
/// config with a 251-slot Maglev table and a 4,096-flow connection table.
pub fn web_service(backends: &[&str], encap: Encapsulation, second_chance_s: u32) -> Config {
    Config {
        maglev_table_size: WEB_TABLE_SIZE,
        conntrack_entries: 4096,
        conntrack_insert_budget: 0,
        encapsulation: EncapConfig::default(),
        services: vec![ServiceConfig {
            name: "web".into(),
            vip: "198.18.100.1".parse().expect("a literal address"),
            port: 80,
            protocol: Protocol::Tcp,
            backends: backends
                .iter()
                .map(|a| BackendConfig {
                    address: a.parse().expect("a backend address"),
                    weight: 1,
                    drain: false,
                })
                .collect(),
            health_check: None,
            panic_threshold: 0.5,
            encap,
            second_chance_s,
        }],
        announce: Default::default(),
    }
}
