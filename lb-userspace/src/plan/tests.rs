//! Planner unit tests: every kind of event -> the exact map operations.

use std::collections::HashSet;
use std::net::IpAddr;

use std::collections::BTreeMap;

use lb_common::ServiceEntry;

use super::*;
use crate::config::{
    BackendConfig, EncapConfig, HealthCheckConfig, HealthCheckKind, Protocol, ServiceConfig,
};
use crate::maglev::{MaglevTable, WeightedBackend, fingerprint};
use crate::state::{AppliedBackend, AppliedState, BackendState};

const M: u32 = 13;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn backend(addr: &str, weight: u32, drain: bool) -> BackendConfig {
    BackendConfig {
        address: ip(addr),
        weight,
        drain,
    }
}

fn service(name: &str, vip: &str, port: u16, backends: Vec<BackendConfig>) -> ServiceConfig {
    ServiceConfig {
        name: name.into(),
        vip: ip(vip),
        port,
        protocol: Protocol::Tcp,
        backends,
        health_check: None,
        panic_threshold: 0.0,
        encap: crate::config::Encapsulation::Ipip,
        second_chance_s: crate::config::DEFAULT_SECOND_CHANCE_S,
    }
}

fn config(services: Vec<ServiceConfig>) -> Config {
    Config {
        maglev_table_size: M,
        conntrack_entries: 1024,
        conntrack_insert_budget: 0,
        encapsulation: EncapConfig::default(),
        services,
        announce: Default::default(),
    }
}

/// Health view with a set of (service, address) that are down.
struct Down(HashSet<(String, IpAddr)>);

impl HealthView for Down {
    fn is_up(&self, service: &str, address: IpAddr) -> bool {
        !self.0.contains(&(service.to_string(), address))
    }
}

fn empty() -> Previous<'static> {
    Previous::default()
}

fn prev(p: &Plan) -> Previous<'_> {
    Previous {
        maglev_table_size: M,
        services: &p.services,
        retired: &p.retired,
        ..Previous::default()
    }
}

/// The expected slots (as backend ids) of a table over (address, weight, id).
fn table(members: &[(&str, u32, u32)]) -> Vec<u32> {
    let weighted: Vec<WeightedBackend> = members
        .iter()
        .map(|&(a, w, _)| WeightedBackend {
            address: ip(a),
            weight: w,
        })
        .collect();
    let t = MaglevTable::build(M, &weighted).unwrap();
    t.slots().iter().map(|&i| members[i as usize].2).collect()
}

fn put_service(vip: &str, port: u16, id: u32, index: u32, size: u32) -> MapOp {
    MapOp::PutService {
        key: VipKey::new(ip(vip), port, 6),
        entry: ServiceEntry {
            service_id: id,
            table_index: index,
            table_size: size,
            flags: 0,
            ..Default::default()
        },
    }
}

fn put_backend(id: u32, addr: &str, generation: u32, live: bool) -> MapOp {
    put_backend_of(0, id, addr, generation, live)
}

fn put_backend_of(service_id: u32, id: u32, addr: &str, generation: u32, live: bool) -> MapOp {
    MapOp::PutBackend {
        id,
        address: ip(addr),
        generation,
        live,
        service_id,
        next_hop: None,
        gue: false,
    }
}

/// The ops without the VIP filter writes (checked on their own below).
fn without_filter(ops: &[MapOp]) -> Vec<MapOp> {
    ops.iter()
        .filter(|op| !matches!(op, MapOp::SetVipFilterWord { .. }))
        .cloned()
        .collect()
}

/// The filter words of service `vip`:80/tcp (its address bit and its own).
fn filter_words(vip: &str) -> BTreeMap<u32, u64> {
    vip_filter_words([VipKey::new(ip(vip), 80, 6)])
}

fn web(backends: Vec<BackendConfig>) -> Config {
    config(vec![service("web", "198.18.100.1", 80, backends)])
}

fn initial() -> Plan {
    plan(
        &empty(),
        &web(vec![
            backend("198.18.3.2", 1, false),
            backend("198.18.3.3", 1, false),
        ]),
        &AllUp,
    )
    .unwrap()
}

#[test]
fn initial_apply_writes_backends_then_table_then_stats_marker_and_service() {
    let p = initial();
    assert_eq!(
        without_filter(&p.ops),
        vec![
            MapOp::ZeroBackendStats { id: 0 },
            MapOp::ZeroBackendStats { id: 1 },
            put_backend(0, "198.18.3.2", 1, true),
            put_backend(1, "198.18.3.3", 1, true),
            MapOp::PutTable {
                index: 0,
                slots: table(&[("198.18.3.2", 1, 0), ("198.18.3.3", 1, 1)]),
            },
            MapOp::ZeroServiceStats { id: 0 },
            MapOp::PutVipMarker {
                vip: ip("198.18.100.1")
            },
            put_service("198.18.100.1", 80, 0, 0, M),
        ]
    );
    let s = &p.services[0];
    assert_eq!((s.service_id, s.table_parity, s.table_size), (0, 0, M));
    assert_eq!(s.backends.iter().map(|b| b.slots).sum::<u32>(), M);
    assert!(s.backends.iter().all(|b| b.state == BackendState::Active));
}

#[test]
fn reload_of_the_same_config_is_a_noop() {
    let p0 = initial();
    let p1 = plan(
        &prev(&p0),
        &web(vec![
            backend("198.18.3.2", 1, false),
            backend("198.18.3.3", 1, false),
        ]),
        &AllUp,
    )
    .unwrap();
    assert!(p1.is_noop());
    assert!(p1.changes.is_empty());
    assert_eq!(p1.services, p0.services);
}

#[test]
fn adding_a_backend_gives_it_a_fresh_id_and_flips_the_table() {
    let p0 = initial();
    let p1 = plan(
        &prev(&p0),
        &web(vec![
            backend("198.18.3.2", 1, false),
            backend("198.18.3.3", 1, false),
            backend("198.18.3.4", 1, false),
        ]),
        &AllUp,
    )
    .unwrap();
    assert_eq!(
        without_filter(&p1.ops),
        vec![
            MapOp::ZeroBackendStats { id: 2 },
            put_backend(2, "198.18.3.4", 1, true),
            MapOp::PutTable {
                index: 1,
                slots: table(&[
                    ("198.18.3.2", 1, 0),
                    ("198.18.3.3", 1, 1),
                    ("198.18.3.4", 1, 2)
                ]),
            },
            put_service("198.18.100.1", 80, 0, 1, M),
        ]
    );
    assert_eq!(p1.changes[0].changes, vec!["+198.18.3.4".to_string()]);
    // Only slots that went to the new backend moved.
    let new_slots = p1.services[0].backends[2].slots;
    assert_eq!(p1.changes[0].slots_moved, new_slots);
}

#[test]
fn draining_keeps_the_backend_live_without_slots() {
    let p0 = initial();
    let p1 = plan(
        &prev(&p0),
        &web(vec![
            backend("198.18.3.2", 1, false),
            backend("198.18.3.3", 1, true),
        ]),
        &AllUp,
    )
    .unwrap();
    assert_eq!(
        without_filter(&p1.ops),
        vec![
            MapOp::PutTable {
                index: 1,
                slots: table(&[("198.18.3.2", 1, 0)]),
            },
            put_service("198.18.100.1", 80, 0, 1, M),
        ]
    );
    let b = &p1.services[0].backends[1];
    assert_eq!((b.state, b.slots), (BackendState::Draining, 0));
    assert_eq!(p1.changes[0].slots_moved, p0.services[0].backends[1].slots);
}

#[test]
fn weight_zero_is_like_drain() {
    let p0 = initial();
    let p1 = plan(
        &prev(&p0),
        &web(vec![
            backend("198.18.3.2", 1, false),
            backend("198.18.3.3", 0, false),
        ]),
        &AllUp,
    )
    .unwrap();
    assert_eq!(
        without_filter(&p1.ops),
        vec![
            MapOp::PutTable {
                index: 1,
                slots: table(&[("198.18.3.2", 1, 0)]),
            },
            put_service("198.18.100.1", 80, 0, 1, M),
        ]
    );
    assert_eq!(p1.services[0].backends[1].state, BackendState::Draining);
}

#[test]
fn removing_a_backend_retires_it_after_the_flip() {
    let p0 = initial();
    let p1 = plan(
        &prev(&p0),
        &web(vec![backend("198.18.3.2", 1, false)]),
        &AllUp,
    )
    .unwrap();
    assert_eq!(
        without_filter(&p1.ops),
        vec![
            MapOp::PutTable {
                index: 1,
                slots: table(&[("198.18.3.2", 1, 0)]),
            },
            put_service("198.18.100.1", 80, 0, 1, M),
            MapOp::RetireBackend {
                id: 1,
                address: ip("198.18.3.3"),
                generation: 1,
                next_hop: None,
            },
        ]
    );
    assert_eq!(
        p1.retired,
        vec![RetiredBackend {
            id: 1,
            generation: 1
        }]
    );
    // A later add reuses a fresh id first; the retired id is not reused in the same plan.
    let p2 = plan(
        &prev(&p1),
        &web(vec![
            backend("198.18.3.2", 1, false),
            backend("198.18.3.9", 1, false),
        ]),
        &AllUp,
    )
    .unwrap();
    assert_eq!(p2.services[0].backends[1].id, 2);
}

#[test]
fn reweighting_rebuilds_with_the_new_weights() {
    let p0 = initial();
    let p1 = plan(
        &prev(&p0),
        &web(vec![
            backend("198.18.3.2", 1, false),
            backend("198.18.3.3", 3, false),
        ]),
        &AllUp,
    )
    .unwrap();
    let slots = table(&[("198.18.3.2", 1, 0), ("198.18.3.3", 3, 1)]);
    let expected_moved = table(&[("198.18.3.2", 1, 0), ("198.18.3.3", 1, 1)])
        .iter()
        .zip(&slots)
        .filter(|(a, b)| a != b)
        .count() as u32;
    assert_eq!(
        without_filter(&p1.ops),
        vec![
            MapOp::PutTable { index: 1, slots },
            put_service("198.18.100.1", 80, 0, 1, M),
        ]
    );
    assert_eq!(p1.changes[0].slots_moved, expected_moved);
    assert_eq!(
        p1.changes[0].changes,
        vec!["198.18.3.3 weight 1->3".to_string()]
    );
}

#[test]
fn adding_and_removing_a_service() {
    let p0 = initial();
    let mut cfg = web(vec![
        backend("198.18.3.2", 1, false),
        backend("198.18.3.3", 1, false),
    ]);
    cfg.services.push(service(
        "dns",
        "198.18.100.2",
        53,
        vec![backend("198.18.4.2", 1, false)],
    ));
    let p1 = plan(&prev(&p0), &cfg, &AllUp).unwrap();
    assert_eq!(
        without_filter(&p1.ops),
        vec![
            MapOp::ZeroBackendStats { id: 2 },
            put_backend_of(1, 2, "198.18.4.2", 1, true),
            MapOp::PutTable {
                index: 2,
                slots: vec![2; M as usize],
            },
            MapOp::ZeroServiceStats { id: 1 },
            MapOp::PutVipMarker {
                vip: ip("198.18.100.2")
            },
            put_service("198.18.100.2", 53, 1, 2, M),
        ]
    );
    // Remove the first one: VIPS entry, marker, table, then its backends retire.
    let cfg2 = config(vec![cfg.services[1].clone()]);
    let p2 = plan(&prev(&p1), &cfg2, &AllUp).unwrap();
    assert_eq!(
        without_filter(&p2.ops),
        vec![
            MapOp::DeleteService {
                key: VipKey::new(ip("198.18.100.1"), 80, 6),
            },
            MapOp::DeleteVipMarker {
                vip: ip("198.18.100.1")
            },
            MapOp::DeleteTable { index: 0 },
            MapOp::RetireBackend {
                id: 0,
                address: ip("198.18.3.2"),
                generation: 1,
                next_hop: None,
            },
            MapOp::RetireBackend {
                id: 1,
                address: ip("198.18.3.3"),
                generation: 1,
                next_hop: None,
            },
        ]
    );
    assert_eq!(p2.services.len(), 1);
    assert_eq!(p2.services[0].service_id, 1);
    // The freed service id 0 is reused by the next new service.
    let mut cfg3 = cfg2.clone();
    cfg3.services.push(service(
        "web2",
        "198.18.100.3",
        80,
        vec![backend("198.18.3.2", 1, false)],
    ));
    let p3 = plan(&prev(&p2), &cfg3, &AllUp).unwrap();
    assert_eq!(p3.services[1].service_id, 0);
}

#[test]
fn a_second_service_on_a_vip_shares_the_marker() {
    let p0 = initial();
    let mut cfg = web(vec![
        backend("198.18.3.2", 1, false),
        backend("198.18.3.3", 1, false),
    ]);
    cfg.services.push(service(
        "https",
        "198.18.100.1",
        443,
        vec![backend("198.18.3.2", 1, false)],
    ));
    let p1 = plan(&prev(&p0), &cfg, &AllUp).unwrap();
    assert!(
        !p1.ops
            .iter()
            .any(|o| matches!(o, MapOp::PutVipMarker { .. }))
    );
    let p2 = plan(&prev(&p1), &config(vec![cfg.services[0].clone()]), &AllUp).unwrap();
    assert!(
        !p2.ops
            .iter()
            .any(|o| matches!(o, MapOp::DeleteVipMarker { .. }))
    );
}

#[test]
fn retired_ids_are_reused_with_the_next_generation_when_fresh_ones_run_out() {
    // Previous state: every id in use except retired id 7 (generation 3).
    let services = vec![AppliedService {
        name: "web".into(),
        vip: ip("198.18.100.1"),
        port: 80,
        protocol: "tcp".into(),
        service_id: 0,
        table_parity: 0,
        table_size: M,
        panic: false,
        backends: vec![AppliedBackend {
            address: ip("198.18.3.2"),
            id: 0,
            generation: 1,
            weight: 1,
            drain: false,
            state: BackendState::Active,
            slots: M,
        }],
        fingerprint: None,
        encap: Default::default(),
    }];
    let retired: Vec<RetiredBackend> = (1..MAX_BACKENDS)
        .map(|id| RetiredBackend {
            id,
            generation: if id == 7 { 3 } else { 1 },
        })
        .collect();
    let p = Previous {
        maglev_table_size: M,
        services: &services,
        retired: &retired,
        ..Previous::default()
    };
    let p1 = plan(
        &p,
        &web(vec![
            backend("198.18.3.2", 1, false),
            backend("198.18.3.3", 1, false),
        ]),
        &AllUp,
    )
    .unwrap();
    // The lowest retired id (1) with generation 2.
    assert_eq!(
        &p1.ops[..2],
        &[
            MapOp::ZeroBackendStats { id: 1 },
            put_backend(1, "198.18.3.3", 2, true)
        ]
    );
    assert!(!p1.retired.iter().any(|r| r.id == 1));
}

fn checked(mut cfg: Config, panic_threshold: f64) -> Config {
    for s in &mut cfg.services {
        s.panic_threshold = panic_threshold;
        s.health_check = Some(HealthCheckConfig {
            kind: HealthCheckKind::Tcp,
            port: 80,
            path: "/".into(),
            interval_ms: 1000,
            timeout_ms: 500,
            rise: 2,
            fall: 3,
        });
    }
    cfg
}

#[test]
fn health_down_leaves_the_table_and_clears_live_then_up_restores_both() {
    let cfg = checked(
        web(vec![
            backend("198.18.3.2", 1, false),
            backend("198.18.3.3", 1, false),
        ]),
        0.0,
    );
    let p0 = plan(&empty(), &cfg, &AllUp).unwrap();
    let down = Down(HashSet::from([("web".to_string(), ip("198.18.3.3"))]));
    let p1 = plan(&prev(&p0), &cfg, &down).unwrap();
    assert_eq!(
        without_filter(&p1.ops),
        vec![
            MapOp::PutTable {
                index: 1,
                slots: table(&[("198.18.3.2", 1, 0)]),
            },
            put_service("198.18.100.1", 80, 0, 1, M),
            put_backend(1, "198.18.3.3", 1, false),
        ]
    );
    assert_eq!(p1.services[0].backends[1].state, BackendState::Down);
    assert_eq!(p1.changes[0].changes, vec!["198.18.3.3 down".to_string()]);
    // Back up: LIVE first (same id and generation), then its slots.
    let p2 = plan(&prev(&p1), &cfg, &AllUp).unwrap();
    assert_eq!(
        without_filter(&p2.ops),
        vec![
            put_backend(1, "198.18.3.3", 1, true),
            MapOp::PutTable {
                index: 0,
                slots: table(&[("198.18.3.2", 1, 0), ("198.18.3.3", 1, 1)]),
            },
            put_service("198.18.100.1", 80, 0, 0, M),
        ]
    );
}

#[test]
fn all_down_without_panic_installs_an_empty_table() {
    let cfg = checked(web(vec![backend("198.18.3.2", 1, false)]), 0.0);
    let p0 = plan(&empty(), &cfg, &AllUp).unwrap();
    let down = Down(HashSet::from([("web".to_string(), ip("198.18.3.2"))]));
    let p1 = plan(&prev(&p0), &cfg, &down).unwrap();
    assert_eq!(
        without_filter(&p1.ops),
        vec![
            put_service("198.18.100.1", 80, 0, 1, 0),
            put_backend(0, "198.18.3.2", 1, false),
        ]
    );
    assert_eq!(p1.services[0].table_size, 0);
}

#[test]
fn panic_keeps_down_backends_in_the_table_and_live() {
    let cfg = checked(
        web(vec![
            backend("198.18.3.2", 1, false),
            backend("198.18.3.3", 1, false),
        ]),
        0.5,
    );
    let p0 = plan(&empty(), &cfg, &AllUp).unwrap();
    let down = Down(HashSet::from([
        ("web".to_string(), ip("198.18.3.2")),
        ("web".to_string(), ip("198.18.3.3")),
    ]));
    let p1 = plan(&prev(&p0), &cfg, &down).unwrap();
    assert!(p1.services[0].panic);
    assert!(p1.ops.is_empty(), "{:?}", p1.ops);
}

#[test]
fn applied_view_round_trips_through_the_state_file_shape() {
    let p0 = initial();
    let st = AppliedState {
        ifname: "x".into(),
        ifindex: 1,
        pin_dir: "/x".into(),
        config_path: "/c".into(),
        applied_at_unix_ms: 0,
        last_apply_seconds: 0.0,
        xdp_mode: "skb".into(),
        maglev_table_size: M,
        services: p0.services.clone(),
        retired_backends: p0.retired.clone(),
        announce: Default::default(),
    };
    let back: AppliedState = serde_json::from_str(&serde_json::to_string(&st).unwrap()).unwrap();
    let p1 = plan(
        &Previous {
            maglev_table_size: back.maglev_table_size,
            services: &back.services,
            retired: &back.retired_backends,
            ..Previous::default()
        },
        &web(vec![
            backend("198.18.3.2", 1, false),
            backend("198.18.3.3", 1, false),
        ]),
        &AllUp,
    )
    .unwrap();
    assert!(p1.is_noop());
}

/// The filter writes at the start (`front`) or the end of `ops`.
fn filter_ops(ops: &[MapOp], front: bool) -> Vec<(u32, u64)> {
    let pick = |op: &MapOp| match op {
        MapOp::SetVipFilterWord { word, bits } => Some((*word, *bits)),
        _ => None,
    };
    if front {
        ops.iter().map_while(pick).collect()
    } else {
        let mut v: Vec<_> = ops.iter().rev().map_while(pick).collect();
        v.reverse();
        v
    }
}

#[test]
fn vip_filter_bits_are_set_first_and_cleared_last() {
    let p0 = initial();
    let old = filter_words("198.18.100.1");
    assert_eq!(old.values().map(|b| b.count_ones()).sum::<u32>(), 2);
    let expected: Vec<(u32, u64)> = old.iter().map(|(w, b)| (*w, *b)).collect();
    assert_eq!(filter_ops(&p0.ops, true), expected);
    assert_eq!(
        p0.ops
            .iter()
            .filter(|op| matches!(op, MapOp::SetVipFilterWord { .. }))
            .count(),
        expected.len()
    );
    // Move the service to another VIP: the new bits are set before anything
    // else, the old ones cleared after everything else.
    let moved = config(vec![service(
        "web",
        "198.18.100.7",
        80,
        vec![backend("198.18.3.2", 1, false)],
    )]);
    let p1 = plan(&prev(&p0), &moved, &AllUp).unwrap();
    let new = filter_words("198.18.100.7");
    assert_ne!(old, new);
    let mut union = old.clone();
    for (w, b) in &new {
        *union.entry(*w).or_default() |= b;
    }
    let set_first: Vec<(u32, u64)> = union
        .iter()
        .filter(|(w, b)| old.get(w) != Some(b))
        .map(|(w, b)| (*w, *b))
        .collect();
    let cleared_last: Vec<(u32, u64)> = union
        .iter()
        .filter(|(w, b)| new.get(w) != Some(b))
        .map(|(w, _)| (*w, new.get(w).copied().unwrap_or(0)))
        .collect();
    assert!(!set_first.is_empty() && !cleared_last.is_empty());
    assert_eq!(filter_ops(&p1.ops, true), set_first);
    assert_eq!(filter_ops(&p1.ops, false), cleared_last);
    // Nothing changes: no filter write.
    let p2 = plan(&prev(&p1), &moved, &AllUp).unwrap();
    assert!(p2.ops.is_empty(), "{:?}", p2.ops);
}

#[test]
fn the_filter_has_a_bit_per_service_port() {
    let mut cfg = web(vec![backend("198.18.3.2", 1, false)]);
    cfg.services.push(service(
        "dns",
        "198.18.100.1",
        53,
        vec![backend("198.18.4.2", 1, false)],
    ));
    let p = plan(&empty(), &cfg, &AllUp).unwrap();
    let set: BTreeMap<u32, u64> = filter_ops(&p.ops, true).into_iter().collect();
    let has = |bit: u32| {
        let (w, m) = lb_common::vip_filter_slot(bit);
        set.get(&w).is_some_and(|b| b & m != 0)
    };
    let (addr, family) = lb_common::address_words(ip("198.18.100.1"));
    assert!(has(lb_common::vip_filter_bit(&addr, family)));
    for (port, protocol) in [(80u16, 6u8), (53, 6)] {
        assert!(has(lb_common::service_filter_bit(
            &addr,
            port.to_be(),
            protocol,
            family
        )));
    }
    let unserved = (1000..1100u16)
        .filter(|p| has(lb_common::service_filter_bit(&addr, p.to_be(), 6, family)))
        .count();
    assert!(unserved <= 2, "{unserved} unserved ports have a bit");
}

#[test]
fn every_new_table_comes_before_the_first_flip() {
    // Two services change at once (a new table size): both tables are written
    // in one run, before either VIPS entry flips.
    let mut cfg = web(vec![backend("198.18.3.2", 1, false)]);
    cfg.services.push(service(
        "dns",
        "198.18.100.2",
        53,
        vec![backend("198.18.4.2", 1, false)],
    ));
    let p0 = plan(&empty(), &cfg, &AllUp).unwrap();
    cfg.maglev_table_size = 65521;
    let p1 = plan(&prev(&p0), &cfg, &AllUp).unwrap();
    let kinds: Vec<&str> = p1
        .ops
        .iter()
        .map(|op| match op {
            MapOp::PutTable { .. } => "table",
            MapOp::PutService { .. } => "flip",
            _ => "other",
        })
        .filter(|k| *k != "other")
        .collect();
    assert_eq!(kinds, ["table", "table", "flip", "flip"]);
}

/// Same config, planned from scratch twice (two processes, two nodes): the
/// same operations bit for bit, backend ids and generations included.
#[test]
fn the_same_config_plans_identically_from_scratch() {
    let cfg = web(vec![
        backend("198.18.3.2", 1, false),
        backend("198.18.3.3", 2, false),
        backend("198.18.3.4", 1, true),
    ]);
    let a = plan(&empty(), &cfg, &AllUp).unwrap();
    let b = plan(&empty(), &cfg, &AllUp).unwrap();
    assert_eq!(a, b);
    assert!(a.services[0].fingerprint.is_some());
}

/// A node that saw 198.18.3.2 come later gave it another id, so its table
/// holds other ids, but every slot names the same address: same fingerprint,
/// equal to the one `lb maglev` computes from the config.
#[test]
fn fingerprints_agree_across_histories_and_with_the_config() {
    let all = vec![
        backend("198.18.3.2", 1, false),
        backend("198.18.3.3", 1, false),
        backend("198.18.3.4", 2, false),
    ];
    let fresh = plan(&empty(), &web(all.clone()), &AllUp).unwrap();
    let first = plan(&empty(), &web(all[1..].to_vec()), &AllUp).unwrap();
    let later = plan(&prev(&first), &web(all.clone()), &AllUp).unwrap();
    let id = |p: &Plan| p.services[0].backends[0].id;
    assert_ne!(id(&fresh), id(&later), "histories must differ in ids");
    assert_eq!(fresh.services[0].fingerprint, later.services[0].fingerprint);
    assert_ne!(first.services[0].fingerprint, later.services[0].fingerprint);
    // An unchanged service keeps its fingerprint without rebuilding.
    let again = plan(&prev(&later), &web(all.clone()), &AllUp).unwrap();
    assert!(again.ops.is_empty());
    assert_eq!(again.services[0].fingerprint, later.services[0].fingerprint);
    // The config-only computation (lb maglev).
    let input: Vec<WeightedBackend> = all
        .iter()
        .map(|b| WeightedBackend {
            address: b.address,
            weight: b.weight,
        })
        .collect();
    let table = MaglevTable::build(M, &input).unwrap();
    assert_eq!(
        fresh.services[0].fingerprint,
        Some(table.fingerprint(&input))
    );
    // A state written before fingerprints: computed once, the same value.
    let mut old = later.services.clone();
    old[0].fingerprint = None;
    let adopted = plan(
        &Previous {
            maglev_table_size: M,
            services: &old,
            retired: &later.retired,
            ..Previous::default()
        },
        &web(all),
        &AllUp,
    )
    .unwrap();
    assert_eq!(
        adopted.services[0].fingerprint,
        fresh.services[0].fingerprint
    );
}

#[test]
fn an_empty_table_has_the_same_fingerprint_everywhere() {
    let cfg = checked(web(vec![backend("198.18.3.2", 1, false)]), 0.0);
    let down = Down([("web".to_string(), ip("198.18.3.2"))].into());
    let p = plan(&empty(), &cfg, &down).unwrap();
    assert_eq!(p.services[0].table_size, 0);
    assert_eq!(p.services[0].fingerprint, Some(fingerprint(&[], &[])));
}

#[test]
fn map_ops_describe_themselves_for_error_messages() {
    let key = VipKey::new("198.18.100.1".parse().unwrap(), 80, 6);
    let put = MapOp::PutService {
        key,
        entry: ServiceEntry::default(),
    };
    assert_eq!(
        put.describe(),
        "write VIPS entry 198.18.100.1 port 80 protocol 6"
    );
    let v6 = MapOp::DeleteService {
        key: VipKey::new("2001:2::1".parse().unwrap(), 53, 17),
    };
    assert_eq!(
        v6.describe(),
        "delete VIPS entry 2001:2::1 port 53 protocol 17"
    );
    let table = MapOp::PutTable {
        index: 3,
        slots: vec![0; 13],
    };
    assert_eq!(table.describe(), "store Maglev table 3 (13 slots)");
}
