//! One test per kind of problem: location, line and message.

use super::*;

#[test]
fn syntax_error_has_a_line() {
    let all = problems("services:\n  - name: web\n   vip: [\n");
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].location, "yaml");
    assert!(all[0].message.starts_with("syntax error"), "{:?}", all[0]);
    assert!(all[0].line.is_some());
}

#[test]
fn document_not_a_mapping() {
    one_problem("- a\n- b\n", 1, "(top level)", "must be a mapping");
}

#[test]
fn unknown_top_level_key() {
    one_problem(
        &format!("colour: blue\n{}", web("")),
        1,
        "(top level)",
        "unknown key \"colour\"",
    );
}

#[test]
fn unknown_service_key() {
    one_problem(
        &web("    wieght: 3\n"),
        9,
        "services[web]",
        "unknown key \"wieght\"",
    );
}

#[test]
fn unknown_backend_key() {
    let text = web("").replace("198.18.4.2", "198.18.4.2\n        wieght: 2");
    one_problem(
        &text,
        9,
        "services[web].backends[198.18.4.2]",
        "unknown key \"wieght\"",
    );
}

#[test]
fn unknown_health_check_key() {
    one_problem(
        &web("    health_check:\n      intervall_ms: 5\n"),
        10,
        "services[web].health_check",
        "unknown key \"intervall_ms\"",
    );
}

#[test]
fn unknown_encapsulation_key() {
    one_problem(
        &format!("encapsulation:\n  source: 1.2.3.4\n{}", web("")),
        2,
        "encapsulation",
        "unknown key \"source\"",
    );
}

#[test]
fn missing_required_keys() {
    let text = "services:\n  - name: web\n    backends:\n      - weight: 2\n";
    let all = problems(text);
    let summary: Vec<(Option<usize>, &str, &str)> = all
        .iter()
        .map(|p| (p.line, p.location.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (Some(2), "services[web]", "missing required key \"vip\""),
            (Some(2), "services[web]", "missing required key \"port\""),
            (
                Some(2),
                "services[web]",
                "missing required key \"protocol\""
            ),
            (
                Some(4),
                "services[web].backends[#1]",
                "missing required key \"address\""
            ),
        ]
    );
}

#[test]
fn missing_services() {
    one_problem(
        "maglev_table_size: 7\n",
        1,
        "(top level)",
        "missing required key \"services\"",
    );
}

#[test]
fn service_without_name_is_numbered() {
    let text = web("").replace("name: web", "vip6: x");
    let all = problems(&text);
    assert!(all.iter().all(|p| p.location == "services[#1]"), "{all:?}");
    assert!(
        all.iter()
            .any(|p| p.message.contains("missing required key \"name\""))
    );
}

#[test]
fn wrong_types() {
    let text = web("    panic_threshold: high\n")
        .replace("port: 80", "port: eighty")
        .replace("protocol: tcp", "protocol: [tcp]");
    let all = problems(&text);
    assert_eq!(all.len(), 3, "{all:#?}");
    assert_problem(
        &all[0],
        4,
        "services[web].port",
        "port must be a whole number, got string \"eighty\"",
    );
    assert_problem(
        &all[1],
        5,
        "services[web].protocol",
        "protocol must be a string",
    );
    assert_problem(
        &all[2],
        9,
        "services[web].panic_threshold",
        "must be a number",
    );
}

#[test]
fn bad_weight_and_drain() {
    let text = web("")
        .replace("198.18.3.2", "198.18.3.2\n        weight: -1")
        .replace("198.18.4.2", "198.18.4.2\n        drain: maybe");
    let all = problems(&text);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_problem(
        &all[0],
        8,
        "services[web].backends[198.18.3.2].weight",
        "weight -1 out of range",
    );
    assert_problem(
        &all[1],
        10,
        "services[web].backends[198.18.4.2].drain",
        "true or false",
    );
}

#[test]
fn bad_addresses() {
    let text = web("")
        .replace("198.18.100.1", "198.18.100")
        .replace("198.18.4.2", "198.18.3.x");
    let all = problems(&text);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_problem(
        &all[0],
        3,
        "services[web].vip",
        "invalid address \"198.18.100\"",
    );
    assert_problem(
        &all[1],
        8,
        "services[web].backends[198.18.3.x]",
        "invalid address \"198.18.3.x\"",
    );
}

#[test]
fn family_mismatch() {
    let text = web("").replace("198.18.4.2", "2001:2:0:4::2");
    one_problem(
        &text,
        8,
        "services[web].backends[2001:2:0:4::2]",
        "backend 2001:2:0:4::2 is IPv6 but the VIP 198.18.100.1 is IPv4",
    );
}

#[test]
fn duplicate_service_name() {
    let second = web("")
        .replace("services:\n", "")
        .replace("port: 80", "port: 81");
    let text = format!("{}{second}", web(""));
    one_problem(
        &text,
        9,
        "services[web]",
        "duplicate service name \"web\" (first at line 2)",
    );
}

#[test]
fn duplicate_vip_port_protocol() {
    let second = web("")
        .replace("services:\n", "")
        .replace("name: web", "name: www");
    let text = format!("{}{second}", web(""));
    one_problem(
        &text,
        9,
        "services[www]",
        "same VIP, port and protocol (198.18.100.1:80/tcp) as service \"web\"",
    );
    // Another protocol on the same VIP and port is a different service.
    let udp = second.replace("protocol: tcp", "protocol: udp");
    parse(&format!("{}{udp}", web(""))).unwrap();
}

#[test]
fn duplicate_backend() {
    let text = web("").replace("198.18.4.2", "198.18.3.2");
    one_problem(
        &text,
        8,
        "services[web].backends[198.18.3.2]",
        "duplicate backend 198.18.3.2 (also backend #1",
    );
}

#[test]
fn port_out_of_range() {
    let text = web("").replace("port: 80", "port: 65536");
    one_problem(
        &text,
        4,
        "services[web].port",
        "port 65536 out of range 0..=65535",
    );
}

#[test]
fn unknown_protocol() {
    let text = web("").replace("protocol: tcp", "protocol: sctp");
    one_problem(
        &text,
        5,
        "services[web].protocol",
        "unknown protocol \"sctp\"",
    );
}

#[test]
fn non_prime_table_size() {
    one_problem(
        &format!("maglev_table_size: 65536\n{}", web("")),
        1,
        "maglev_table_size",
        "maglev_table_size 65536 is not prime",
    );
    one_problem(
        &format!("maglev_table_size: 1\n{}", web("")),
        1,
        "maglev_table_size",
        "not prime",
    );
}

#[test]
fn table_size_too_large() {
    one_problem(
        &format!("maglev_table_size: 16777259\n{}", web("")),
        1,
        "maglev_table_size",
        "exceeds the datapath maximum 16777213",
    );
}

#[test]
fn zero_conntrack_entries() {
    one_problem(
        &format!("conntrack_entries: 0\n{}", web("")),
        1,
        "conntrack_entries",
        "at least 1",
    );
}

#[test]
fn conntrack_entries_beyond_the_largest_table() {
    one_problem(
        &format!("conntrack_entries: 268435457\n{}", web("")),
        1,
        "conntrack_entries",
        "conntrack_entries 268435457 out of range 0..=268435456",
    );
}

#[test]
fn negative_insert_budget() {
    one_problem(
        &format!("conntrack_insert_budget: -5\n{}", web("")),
        1,
        "conntrack_insert_budget",
        "conntrack_insert_budget",
    );
}

#[test]
fn no_backends() {
    let text = "services:\n  - name: web\n    vip: 198.18.100.1\n    port: 80\n    protocol: tcp\n    backends: []\n";
    one_problem(text, 6, "services[web].backends", "service has no backends");
}

#[test]
fn backend_as_bare_address() {
    let text = web("").replace("- address: 198.18.4.2", "- 198.18.4.2");
    one_problem(
        &text,
        8,
        "services[web].backends[198.18.4.2]",
        "must be a mapping",
    );
}

#[test]
fn too_many_services() {
    let mut text = String::from("maglev_table_size: 7\nservices:\n");
    for i in 0..=lb_common::maps::MAX_SERVICES {
        text.push_str(&format!(
            "  - {{name: s{i}, vip: 198.18.100.1, port: {i}, protocol: tcp, backends: [{{address: 198.18.3.2}}]}}\n"
        ));
    }
    one_problem(
        &text,
        2,
        "services",
        "1025 services, the datapath holds at most 1024",
    );
}

/// `count` services, `vips` distinct VIP addresses between them.
fn services_on_vips(count: u32, vips: u32) -> String {
    let mut text = String::from("maglev_table_size: 7\nservices:\n");
    for i in 0..count {
        let vip = std::net::Ipv4Addr::from(0xc612_0000 + (i % vips));
        text.push_str(&format!(
            "  - {{name: s{i}, vip: {vip}, port: {}, protocol: tcp, backends: [{{address: 198.18.3.2}}]}}\n",
            i + 1
        ));
    }
    text
}

/// The VIPS map holds one entry per service plus one marker per VIP address:
/// `lb check` accepts exactly what fits (the apply of 513 distinct VIPs failed
/// halfway with E2BIG after `lb check` had passed it).
#[test]
fn vip_map_capacity() {
    let max = lb_common::maps::MAX_VIP_ENTRIES;
    parse(&services_on_vips(max / 2, max / 2)).expect("512 services on 512 VIPs fit");
    one_problem(
        &services_on_vips(max / 2 + 1, max / 2 + 1),
        2,
        "services",
        "513 services on 513 distinct VIP addresses need 1026 VIP map entries",
    );
    parse(&services_on_vips(max - 1, 1)).expect("1023 services on one VIP fit");
    one_problem(
        &services_on_vips(max, 1),
        2,
        "services",
        "1024 services on 1 distinct VIP addresses need 1025 VIP map entries",
    );
    one_problem(
        &services_on_vips(1000, 1000),
        2,
        "services",
        "need 2000 VIP map entries (one per service plus one per VIP address), the datapath holds at most 1024",
    );
}

#[test]
fn a_long_name_is_refused() {
    let name = "n".repeat(crate::config::input::MAX_NAME_BYTES + 1);
    one_problem(
        &web("").replace("name: web", &format!("name: {name}")),
        2,
        "services[#1].name",
        "name of 256 bytes, longer than the limit of 255",
    );
}

#[test]
fn too_many_backends() {
    let mut text = String::from("services:\n");
    for s in 0..2u32 {
        text.push_str(&format!(
            "  - name: s{s}\n    vip: 2001:2::1\n    port: {s}\n    protocol: tcp\n    backends:\n"
        ));
        for b in 0..(lb_common::maps::MAX_BACKENDS / 2 + 1) {
            text.push_str(&format!("      - address: 2001:2:0:3::{b:x}\n"));
        }
    }
    one_problem(
        &text,
        1,
        "services",
        "65538 backends in total, the datapath holds at most 65536",
    );
}

#[test]
fn bad_gateway_mac() {
    one_problem(
        &format!("encapsulation:\n  gateway_mac: aa:bb:cc:dd:ee\n{}", web("")),
        2,
        "encapsulation.gateway_mac",
        "invalid MAC address \"aa:bb:cc:dd:ee\"",
    );
}

#[test]
fn wrong_source_family() {
    one_problem(
        &format!("encapsulation:\n  source_v4: 2001:2::1\n{}", web("")),
        2,
        "encapsulation.source_v4",
        "invalid IPv4 address",
    );
}

#[test]
fn health_check_timeout_not_below_interval() {
    one_problem(
        &web("    health_check:\n      interval_ms: 500\n"),
        9,
        "services[web].health_check.timeout_ms",
        "timeout_ms (500) must be less than interval_ms (500)",
    );
}

#[test]
fn health_check_rise_and_fall_zero() {
    let all = problems(&web("    health_check:\n      rise: 0\n      fall: 0\n"));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_problem(
        &all[0],
        10,
        "services[web].health_check.rise",
        "rise must be at least 1",
    );
    assert_problem(
        &all[1],
        11,
        "services[web].health_check.fall",
        "fall must be at least 1",
    );
}

#[test]
fn health_check_needs_a_port_for_port_zero_services() {
    let text = web("    health_check:\n      kind: tcp\n").replace("port: 80", "port: 0");
    one_problem(
        &text,
        9,
        "services[web].health_check",
        "set health_check.port",
    );
    let text = web("    health_check:\n      port: 8080\n").replace("port: 80\n", "port: 0\n");
    parse(&text).unwrap();
}

#[test]
fn health_check_path_and_kind() {
    let all = problems(&web(
        "    health_check:\n      kind: grpc\n      path: healthz\n",
    ));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_problem(
        &all[0],
        10,
        "services[web].health_check.kind",
        "unknown health check kind \"grpc\"",
    );
    assert_problem(
        &all[1],
        11,
        "services[web].health_check.path",
        "path \"healthz\" must start with '/'",
    );
}

#[test]
fn panic_threshold_out_of_range() {
    one_problem(
        &web("    panic_threshold: 1.5\n"),
        9,
        "services[web].panic_threshold",
        "panic_threshold 1.5 outside 0.0..=1.0",
    );
}

#[test]
fn every_problem_is_reported() {
    let text = "\
maglev_table_size: 100
services:
  - name: web
    vip: 198.18.100.1
    port: 99999
    protocol: tcp
    backends:
      - address: 198.18.3.x
      - address: 2001:2::2
  - name: web
    vip: nope
    port: 80
    protocol: udp
    backends: []
";
    let all = problems(text);
    let lines: Vec<Option<usize>> = all.iter().map(|p| p.line).collect();
    assert_eq!(
        lines,
        [Some(1), Some(5), Some(8), Some(9), Some(11), Some(14)],
        "{all:#?}"
    );
}

#[test]
fn announce_protocol_out_of_range_or_reserved() {
    one_problem(
        &format!("announce:\n  protocol: 300\n{}", web("")),
        2,
        "announce.protocol",
        "protocol 300 out of range 0..=255",
    );
    one_problem(
        &format!("announce:\n  protocol: 2\n{}", web("")),
        2,
        "announce.protocol",
        "protocol 2 is reserved for kernel",
    );
    one_problem(
        &format!("announce:\n  protocol: 12\n{}", web("")),
        2,
        "announce.protocol",
        "reserved for bird",
    );
}

#[test]
fn announce_bad_keys_and_types() {
    one_problem(
        &format!("announce:\n  enabled: sometimes\n{}", web("")),
        2,
        "announce.enabled",
        "must be true or false",
    );
    one_problem(
        &format!("announce:\n  enable: false\n{}", web("")),
        2,
        "announce",
        "unknown key \"enable\"",
    );
    one_problem(
        &format!("announce: yes\n{}", web("")),
        1,
        "announce",
        "must be a mapping",
    );
}
