//! Valid files and defaults.

use std::net::IpAddr;

use super::*;
use crate::config::{
    DEFAULT_MAGLEV_TABLE_SIZE, EncapConfig, HealthCheckConfig, HealthCheckKind, Protocol, warnings,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn defaults() {
    let config = parse(&web("")).unwrap();
    assert_eq!(config.maglev_table_size, DEFAULT_MAGLEV_TABLE_SIZE);
    assert_eq!(
        config.conntrack_entries,
        lb_common::maps::DEFAULT_CONNTRACK_ENTRIES
    );
    assert_eq!(
        config.conntrack_insert_budget,
        lb_common::maps::DEFAULT_INSERT_BUDGET
    );
    assert_eq!(config.encapsulation, EncapConfig::default());
    let s = &config.services[0];
    assert_eq!(s.name, "web");
    assert_eq!(s.vip, ip("198.18.100.1"));
    assert_eq!(s.port, 80);
    assert_eq!(s.protocol, Protocol::Tcp);
    assert_eq!(s.health_check, None);
    assert_eq!(s.panic_threshold, 0.5);
    assert_eq!(s.backends.len(), 2);
    assert_eq!(s.backends[1].address, ip("198.18.4.2"));
    assert!(s.backends.iter().all(|b| b.weight == 1 && !b.drain));
}

#[test]
fn health_check_defaults_take_the_service_port() {
    let config = parse(&web("    health_check: {}\n")).unwrap();
    assert_eq!(
        config.services[0].health_check,
        Some(HealthCheckConfig {
            kind: HealthCheckKind::Tcp,
            port: 80,
            path: "/".into(),
            interval_ms: 1000,
            timeout_ms: 500,
            rise: 2,
            fall: 3,
        })
    );
}

#[test]
fn every_key_set() {
    let text = "\
maglev_table_size: 131071
conntrack_entries: 1000
conntrack_insert_budget: 0
encapsulation:
  source_v4: 198.18.0.1
  source_v6: 2001:2::1
  gateway_mac: AA:bb:cc:dd:ee:0f
services:
  - name: dns
    vip: 2001:2:0:100::1
    port: 0
    protocol: udp
    panic_threshold: 0
    health_check:
      kind: http
      port: 8080
      path: /healthz
      interval_ms: 2000
      timeout_ms: 300
      rise: 1
      fall: 5
    backends:
      - address: 2001:2:0:3::2
        weight: 3
        drain: true
      - {address: 2001:2:0:4::2, weight: 0}
";
    let config = parse(text).unwrap();
    assert_eq!(config.maglev_table_size, 131071);
    assert_eq!(config.conntrack_entries, 1000);
    assert_eq!(config.conntrack_insert_budget, 0, "0: no limit");
    assert_eq!(
        config.encapsulation.source_v4,
        Some("198.18.0.1".parse().unwrap())
    );
    assert_eq!(
        config.encapsulation.source_v6,
        Some("2001:2::1".parse().unwrap())
    );
    assert_eq!(
        config.encapsulation.gateway_mac,
        Some([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f])
    );
    let s = &config.services[0];
    assert_eq!(
        (s.port, s.protocol, s.panic_threshold),
        (0, Protocol::Udp, 0.0)
    );
    let hc = s.health_check.as_ref().unwrap();
    assert_eq!(hc.kind, HealthCheckKind::Http);
    assert_eq!(
        (
            hc.port,
            hc.path.as_str(),
            hc.interval_ms,
            hc.timeout_ms,
            hc.rise,
            hc.fall
        ),
        (8080, "/healthz", 2000, 300, 1, 5)
    );
    assert_eq!((s.backends[0].weight, s.backends[0].drain), (3, true));
    assert_eq!((s.backends[1].weight, s.backends[1].drain), (0, false));
    assert!(
        warnings(&config)
            .iter()
            .any(|w| w.contains("no backend takes new flows"))
    );
}

#[test]
fn lab_example_file_is_valid() {
    let text = include_str!("../../../../config/lb.yaml");
    let config = parse(text).unwrap();
    let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["web", "dns", "web6"]);
    assert_eq!(config.maglev_table_size, 65537);
    assert_eq!(config.conntrack_entries, 262144);
    assert_eq!(config.backend_count(), 9);
    assert!(warnings(&config).is_empty(), "{:?}", warnings(&config));
}

#[test]
fn small_table_warns() {
    let config = parse(&format!("maglev_table_size: 101\n{}", web(""))).unwrap();
    let w = warnings(&config);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("services[web]: maglev_table_size 101"),
        "{w:?}"
    );
    assert!(warnings(&parse(&web("")).unwrap()).is_empty());
}

#[test]
fn empty_service_list_is_valid() {
    let config = parse("services: []\n").unwrap();
    assert!(config.services.is_empty());
}

#[test]
fn problem_display() {
    let p = Problem {
        line: Some(12),
        location: "services[web]".into(),
        message: "bad".into(),
    };
    assert_eq!(p.to_string(), "line 12: services[web]: bad");
    let p = Problem { line: None, ..p };
    assert_eq!(p.to_string(), "services[web]: bad");
}

#[test]
fn announce_defaults_and_values() {
    let config = parse(&web("")).unwrap();
    assert_eq!(config.announce, crate::config::AnnounceConfig::default());
    assert!(config.announce.enabled);
    assert_eq!(config.announce.protocol, 250);
    let config = parse(&format!(
        "announce:\n  enabled: false\n  protocol: 201\n{}",
        web("")
    ))
    .unwrap();
    assert!(!config.announce.enabled);
    assert_eq!(config.announce.protocol, 201);
}
