//! Unit tests of rates and renderings on synthetic snapshots.

use std::time::Duration;

use lb_common::GlobalCounter;

use super::*;
use crate::netns::NetnsId;
use crate::state::BackendState;

/// A snapshot with one IPv4 service of two backends and one IPv6 service.
pub(crate) fn sample(scale: u64) -> Snapshot {
    let mut global = vec![0; GlobalCounter::ALL.len()];
    global[GlobalCounter::ConntrackHit as usize] = 1000 * scale;
    global[GlobalCounter::DropNoBackend as usize] = 3 * scale;
    Snapshot {
        iface: "veth-lb".into(),
        attached: true,
        xdp_mode: Some("native".into()),
        applied_at_unix_ms: Some(1_709_210_096_000),
        last_apply_seconds: Some(0.0125),
        services: vec![
            ServiceSnapshot {
                name: "web".into(),
                vip: "198.18.100.1".parse().unwrap(),
                port: 80,
                protocol: "tcp".into(),
                encap: "ipip".into(),
                service_id: 0,
                table_size: 13,
                panic: false,
                fingerprint: Some(0x0bad_cafe),
                counters: ServiceCounters {
                    packets: 100 * scale,
                    bytes: 6400 * scale,
                    no_backend: 0,
                },
                backends: vec![
                    BackendSnapshot {
                        address: "198.18.3.2".parse().unwrap(),
                        id: 0,
                        state: BackendState::Active,
                        weight: 3,
                        slots: 10,
                        counters: BackendCounters {
                            packets: 70 * scale,
                            bytes: 4480 * scale,
                            new_flows: 7 * scale,
                        },
                    },
                    BackendSnapshot {
                        address: "198.18.3.3".parse().unwrap(),
                        id: 5,
                        state: BackendState::Draining,
                        weight: 0,
                        slots: 3,
                        counters: BackendCounters {
                            packets: 30 * scale,
                            bytes: 1920 * scale,
                            new_flows: 2 * scale,
                        },
                    },
                ],
            },
            ServiceSnapshot {
                name: "dns6".into(),
                vip: "2001:2::100:1".parse().unwrap(),
                port: 53,
                protocol: "udp".into(),
                encap: "gue".into(),
                service_id: 1,
                table_size: 0,
                panic: true,
                fingerprint: None,
                counters: ServiceCounters {
                    packets: 5 * scale,
                    bytes: 500 * scale,
                    no_backend: 5 * scale,
                },
                backends: vec![BackendSnapshot {
                    address: "2001:2::3:2".parse().unwrap(),
                    id: 2,
                    state: BackendState::Down,
                    weight: 1,
                    slots: 0,
                    counters: BackendCounters::default(),
                }],
            },
        ],
        global,
        draining: false,
        vips: vec![
            crate::announce::VipAnnouncement {
                vip: "198.18.100.1".parse().unwrap(),
                announced: true,
                reason: "backends live".into(),
            },
            crate::announce::VipAnnouncement {
                vip: "2001:2::100:1".parse().unwrap(),
                announced: false,
                reason: "every backend down".into(),
            },
        ],
    }
}

#[test]
fn rates_are_differences_over_elapsed_time() {
    let prev = sample(1);
    let next = sample(3);
    let r = Rates::between(&prev, &next, Duration::from_millis(500));
    // web: packets 100 -> 300 in 0.5 s = 400/s.
    let web = r.service(0).unwrap();
    assert_eq!(web.packets_per_s, 400.0);
    assert_eq!(web.bytes_per_s, 2.0 * 6400.0 * 2.0);
    assert_eq!(web.no_backend_per_s, 0.0);
    let b0 = r.backend(0, 0).unwrap();
    assert_eq!(b0.packets_per_s, 280.0);
    assert_eq!(b0.bytes_per_s, 4480.0 * 4.0);
    assert_eq!(b0.new_flows_per_s, 28.0);
    assert_eq!(r.backend(0, 1).unwrap().new_flows_per_s, 8.0);
    assert_eq!(r.service(1).unwrap().no_backend_per_s, 20.0);
    assert_eq!(r.global[GlobalCounter::ConntrackHit as usize], 4000.0);
    assert_eq!(r.global[GlobalCounter::DropNoBackend as usize], 12.0);
    assert_eq!(r.global[GlobalCounter::Tx as usize], 0.0);
}

#[test]
fn new_services_and_backends_have_no_rate_and_resets_count_zero() {
    let mut prev = sample(2);
    prev.services[0].backends.remove(1);
    prev.services.remove(1);
    let next = sample(1);
    let r = Rates::between(&prev, &next, Duration::from_secs(1));
    assert!(r.service(1).is_none(), "dns6 is new");
    assert!(r.backend(0, 1).is_none(), "backend 5 is new");
    // Counters went backwards (maps recreated): 0, not a huge number.
    assert_eq!(r.backend(0, 0).unwrap().packets_per_s, 0.0);
    assert_eq!(r.service(0).unwrap().packets_per_s, 0.0);
    // A zero interval yields zeros, not infinities.
    let z = Rates::between(&sample(1), &sample(2), Duration::ZERO);
    assert_eq!(z.service(0).unwrap().packets_per_s, 0.0);
}

#[test]
fn text_without_rates_shows_every_figure() {
    let text = render_text(&sample(1), None);
    assert!(
        text.starts_with(
            "interface veth-lb: attached (native), last apply 2024-02-29 12:34:56 UTC\n"
        ),
        "{text}"
    );
    assert!(!text.contains("PKT/S"), "{text}");
    assert!(
        text.contains(
            "service web  198.18.100.1:80/tcp  encap ipip  table 13  fingerprint 0badcafe\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("service dns6  [2001:2::100:1]:53/udp  encap gue  table 0  PANIC\n"),
        "{text}"
    );
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix} in\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        line("198.18.3.2"),
        [
            "198.18.3.2",
            "0",
            "active",
            "3",
            "10",
            "76.9%",
            "70",
            "4480",
            "7"
        ]
    );
    assert_eq!(
        line("198.18.3.3"),
        [
            "198.18.3.3",
            "5",
            "draining",
            "0",
            "3",
            "23.1%",
            "30",
            "1920",
            "2"
        ]
    );
    assert_eq!(
        line("2001:2::3:2"),
        ["2001:2::3:2", "2", "down", "1", "0", "0.0%", "0", "0", "0"]
    );
    assert_eq!(line("conntrack_hit"), ["conntrack_hit", "1000"]);
    assert_eq!(line("drop_no_backend"), ["drop_no_backend", "3"]);
    for c in GlobalCounter::ALL {
        assert!(text.contains(c.label()), "{} missing", c.label());
    }
    // Columns line up: every backend row of "web" is as wide as its header.
    let lines: Vec<&str> = text.lines().collect();
    let h = lines
        .iter()
        .position(|l| l.trim_start().starts_with("BACKEND"))
        .unwrap();
    assert_eq!(lines[h].len(), lines[h + 1].len(), "{text}");
}

#[test]
fn text_with_rates_adds_rate_columns() {
    let r = Rates::between(&sample(1), &sample(2), Duration::from_secs(2));
    let text = render_text(&sample(2), Some(&r));
    assert!(text.contains("rates per second over 2.00 s"), "{text}");
    let backend: Vec<&str> = text
        .lines()
        .find(|l| l.trim_start().starts_with("198.18.3.2"))
        .unwrap()
        .split_whitespace()
        .collect();
    // packets 140 (35.0/s), bytes 8960 (2.2k/s), new flows 14 (3.5/s)
    assert_eq!(
        backend,
        [
            "198.18.3.2",
            "0",
            "active",
            "3",
            "10",
            "76.9%",
            "140",
            "35.0",
            "8960",
            "2.2k",
            "14",
            "3.5"
        ]
    );
    let hit: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("conntrack_hit"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(hit, ["conntrack_hit", "2000", "500.0"]);
}

#[test]
fn json_has_the_documented_shape() {
    let prev = sample(1);
    let next = sample(2);
    let r = Rates::between(&prev, &next, Duration::from_secs(1));
    let v = serde_json::to_value(report_json(&next, Some(&r))).unwrap();
    assert_eq!(v["iface"], "veth-lb");
    assert_eq!(v["attached"], true);
    assert_eq!(v["xdp_mode"], "native");
    assert_eq!(v["applied_at_unix_ms"], 1_709_210_096_000u64);
    assert_eq!(v["interval_s"], 1.0);
    let web = &v["services"][0];
    assert_eq!(web["name"], "web");
    assert_eq!(web["vip"], "198.18.100.1");
    assert_eq!(web["port"], 80);
    assert_eq!(web["protocol"], "tcp");
    assert_eq!(web["table_size"], 13);
    assert_eq!(web["panic"], false);
    assert_eq!(web["packets"], 200);
    assert_eq!(web["bytes"], 12800);
    assert_eq!(web["no_backend"], 0);
    assert_eq!(web["rate"]["packets_per_s"], 100.0);
    let b = &web["backends"][1];
    assert_eq!(b["address"], "198.18.3.3");
    assert_eq!(b["id"], 5);
    assert_eq!(b["state"], "draining");
    assert_eq!(b["weight"], 0);
    assert_eq!(b["slots"], 3);
    assert_eq!(b["share"], 3.0 / 13.0);
    assert_eq!(b["packets"], 60);
    assert_eq!(b["bytes"], 3840);
    assert_eq!(b["new_flows"], 4);
    assert_eq!(b["rate"]["packets_per_s"], 30.0);
    assert_eq!(b["rate"]["bytes_per_s"], 1920.0);
    assert_eq!(b["rate"]["new_flows_per_s"], 2.0);
    assert_eq!(v["services"][1]["backends"][0]["state"], "down");
    assert_eq!(v["services"][1]["panic"], true);
    assert_eq!(v["global"]["conntrack_hit"], 2000);
    assert_eq!(v["global_rate"]["conntrack_hit"], 1000.0);
    assert_eq!(
        v["global"].as_object().unwrap().len(),
        GlobalCounter::ALL.len()
    );

    let bare = serde_json::to_value(report_json(&next, None)).unwrap();
    assert!(bare["interval_s"].is_null());
    assert!(bare["global_rate"].is_null());
    assert!(bare["services"][0]["rate"].is_null());
    assert!(bare["services"][0]["backends"][0]["rate"].is_null());
}

#[test]
fn target_resolution_picks_the_only_interface_or_asks() {
    let root = std::env::temp_dir().join(format!("lb-stats-target-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let state_dir = root.join("state");
    let pins = root.join("pins");
    let ns = NetnsId(4026532000);
    let err = resolve_target(&pins, &state_dir, ns, None).unwrap_err();
    assert!(matches!(err, StatsError::NothingPinned { .. }), "{err}");
    let ns_pins = pins.join("ns4026532000");
    for iface in ["eth-b", "eth-a"] {
        crate::private_dir::ensure_all(&ns_pins.join(iface)).unwrap();
        std::fs::write(ns_pins.join(iface).join(lb_common::MAP_GLOBAL_STATS), b"").unwrap();
        if iface == "eth-b" {
            let t = resolve_target(&pins, &state_dir, ns, None).unwrap();
            assert_eq!(t, Target::new(&pins, &state_dir, ns, "eth-b"));
            assert_eq!(t.pin_dir, ns_pins.join("eth-b"));
            assert_eq!(t.state_path, state_dir.join("ns4026532000/eth-b.json"));
        }
    }
    // Another namespace's interfaces are not this one's.
    let other = NetnsId(4026532001);
    let err = resolve_target(&pins, &state_dir, other, None).unwrap_err();
    assert!(matches!(err, StatsError::NothingPinned { .. }), "{err}");
    // A directory without pins does not count, nor does a decapsulator's.
    std::fs::create_dir_all(ns_pins.join("stale")).unwrap();
    std::fs::create_dir_all(ns_pins.join("decap-eth-c")).unwrap();
    std::fs::write(
        ns_pins
            .join("decap-eth-c")
            .join(lb_common::MAP_GLOBAL_STATS),
        b"",
    )
    .unwrap();
    let err = resolve_target(&pins, &state_dir, ns, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "several interfaces are attached (eth-a, eth-b); choose one with --iface"
    );
    let err = Target::new(&pins, &state_dir, ns, "nope")
        .snapshot()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "nothing attached to nope: no pinned maps under {} \
             (is lb run running or has it been stopped?)",
            ns_pins.join("nope").display()
        )
    );
    // A symbolic link planted where an interface's pins go is refused.
    std::os::unix::fs::symlink(ns_pins.join("eth-a"), ns_pins.join("eth-z")).unwrap();
    let err = Target::new(&pins, &state_dir, ns, "eth-z")
        .snapshot()
        .unwrap_err();
    assert!(err.to_string().contains("is a symbolic link"), "{err}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn announcements_and_fingerprints_show_in_text_and_json() {
    let mut snap = sample(1);
    let text = render_text(&snap, None);
    assert!(
        text.contains("vip 198.18.100.1  announced (backends live)\n"),
        "{text}"
    );
    assert!(
        text.contains("vip 2001:2::100:1  NOT announced: every backend down\n"),
        "{text}"
    );
    assert!(!text.contains("DRAINING"), "{text}");
    let v = serde_json::to_value(report_json(&snap, None)).unwrap();
    assert_eq!(v["draining"], false);
    assert_eq!(v["vips"][0]["vip"], "198.18.100.1");
    assert_eq!(v["vips"][0]["announced"], true);
    assert_eq!(v["vips"][0]["reason"], "backends live");
    assert_eq!(v["vips"][1]["announced"], false);
    assert_eq!(v["vips"][1]["reason"], "every backend down");
    assert_eq!(v["services"][0]["fingerprint"], "0badcafe");
    assert_eq!(v["services"][0]["encap"], "ipip");
    assert_eq!(v["services"][1]["encap"], "gue");
    assert!(v["services"][1]["fingerprint"].is_null());

    snap.draining = true;
    let text = render_text(&snap, None);
    assert!(
        text.contains("node DRAINING: every VIP withdrawn"),
        "{text}"
    );
    let v = serde_json::to_value(report_json(&snap, None)).unwrap();
    assert_eq!(v["draining"], true);
}
