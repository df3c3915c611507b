//! GUE, second chance and per-flow source prefixes in the config.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use crate::config::{DEFAULT_SECOND_CHANCE_S, Encapsulation, SourcePrefix};

#[test]
fn gue_fields_parse_and_default() {
    let plain = parse(&web("")).unwrap();
    assert_eq!(plain.services[0].encap, Encapsulation::Ipip);
    assert_eq!(plain.services[0].second_chance_s, DEFAULT_SECOND_CHANCE_S);
    assert_eq!(plain.encapsulation.gue_port, None);
    let text = format!(
        "encapsulation:\n  gue_port: 7777\n  source_prefix_v4: 198.18.5.0/24\n  \
         source_prefix_v6: \"2001:2:0:5::/64\"\n{}",
        web("    encap: gue\n    second_chance_s: 60\n")
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.services[0].encap, Encapsulation::Gue);
    assert_eq!(c.services[0].second_chance_s, 60);
    assert_eq!(c.encapsulation.gue_port, Some(7777));
    let v4 = c.encapsulation.source_prefix_v4.unwrap();
    assert_eq!(
        v4,
        SourcePrefix {
            base: Ipv4Addr::new(198, 18, 5, 0),
            len: 24
        }
    );
    assert_eq!(v4.host_mask(), 0xff);
    let v6 = c.encapsulation.source_prefix_v6.unwrap();
    assert_eq!(v6.base, "2001:2:0:5::".parse::<Ipv6Addr>().unwrap());
    assert_eq!(v6.host_mask(), u32::MAX, "at most 32 bits vary");
    let narrow = SourcePrefix {
        base: Ipv6Addr::UNSPECIFIED,
        len: 120,
    };
    assert_eq!(narrow.host_mask(), 0xff);
}

#[test]
fn unknown_encap_is_named() {
    one_problem(
        &web("    encap: vxlan\n"),
        9,
        "services[web].encap",
        "unknown encap \"vxlan\" (expected ipip or gue)",
    );
}

#[test]
fn second_chance_beyond_a_day_is_refused() {
    one_problem(
        &web("    second_chance_s: 86401\n"),
        9,
        "services[web].second_chance_s",
        "second_chance_s 86401 exceeds the limit of 86400",
    );
}

#[test]
fn bad_gue_port_and_prefixes_are_named() {
    let text = format!(
        "encapsulation:\n  gue_port: 0\n  source_prefix_v4: 198.18.5.1/24\n  \
         source_prefix_v6: 198.18.5.0/24\n{}",
        web("")
    );
    let all = problems(&text);
    assert_eq!(all.len(), 3, "{all:#?}");
    assert_problem(
        &all[0],
        2,
        "encapsulation.gue_port",
        "gue_port must be 1..=65535, got 0",
    );
    assert_problem(
        &all[1],
        3,
        "encapsulation.source_prefix_v4",
        "host bits set",
    );
    assert_problem(
        &all[2],
        4,
        "encapsulation.source_prefix_v6",
        "not an IPv6 prefix",
    );
    one_problem(
        &format!("encapsulation:\n  gue_port: 70000\n{}", web("")),
        2,
        "encapsulation.gue_port",
        "gue_port 70000 out of range 0..=65535",
    );
}
