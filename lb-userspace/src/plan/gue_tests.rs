//! Planner tests of GUE services: backend entries carry the encapsulation,
//! and a table change keeps the old table as the previous one (second
//! chance), the entry first forgetting the table about to be overwritten.

use std::net::IpAddr;

use super::*;
use lb_common::ServiceEntry;

use crate::config::{BackendConfig, EncapConfig, Encapsulation, Protocol};

const M: u32 = 13;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn web(addresses: &[&str], encap: Encapsulation, second_chance_s: u32) -> Config {
    Config {
        maglev_table_size: M,
        conntrack_entries: 1024,
        conntrack_insert_budget: 0,
        encapsulation: EncapConfig::default(),
        services: vec![ServiceConfig {
            name: "web".into(),
            vip: ip("198.18.100.1"),
            port: 80,
            protocol: Protocol::Tcp,
            backends: addresses
                .iter()
                .map(|a| BackendConfig {
                    address: ip(a),
                    weight: 1,
                    drain: false,
                })
                .collect(),
            health_check: None,
            panic_threshold: 0.0,
            encap,
            second_chance_s,
        }],
        announce: Default::default(),
    }
}

fn prev(p: &Plan) -> Previous<'_> {
    Previous {
        maglev_table_size: M,
        services: &p.services,
        retired: &p.retired,
        ..Previous::default()
    }
}

fn key() -> VipKey {
    VipKey::new(ip("198.18.100.1"), 80, 6)
}

fn entry(index: u32) -> ServiceEntry {
    ServiceEntry {
        service_id: 0,
        table_index: index,
        table_size: M,
        ..Default::default()
    }
}

/// The VIPS entry writes of `p` in order, and the indices of its tables.
fn service_and_table_ops(p: &Plan) -> (Vec<MapOp>, Vec<u32>) {
    let services = p
        .ops
        .iter()
        .filter(|op| {
            matches!(
                op,
                MapOp::PutService { .. } | MapOp::PutServiceWithPrevious { .. }
            )
        })
        .cloned()
        .collect();
    let tables = p
        .ops
        .iter()
        .filter_map(|op| match op {
            MapOp::PutTable { index, .. } => Some(*index),
            _ => None,
        })
        .collect();
    (services, tables)
}

const A: &str = "198.18.3.2";
const B: &str = "198.18.3.3";
const C: &str = "198.18.3.4";

#[test]
fn a_gue_table_change_keeps_the_old_table_as_previous() {
    let p0 = plan(
        &Previous::default(),
        &web(&[A, B], Encapsulation::Gue, 300),
        &AllUp,
    )
    .unwrap();
    assert!(
        p0.ops
            .iter()
            .any(|op| matches!(op, MapOp::PutBackend { gue: true, .. })),
        "backend entries carry BACKEND_ENCAP_GUE"
    );
    assert_eq!(p0.services[0].encap, Encapsulation::Gue);
    assert_eq!(
        service_and_table_ops(&p0),
        (
            vec![MapOp::PutService {
                key: key(),
                entry: entry(0)
            }],
            vec![0]
        )
    );

    let p1 = plan(
        &prev(&p0),
        &web(&[A, B, C], Encapsulation::Gue, 300),
        &AllUp,
    )
    .unwrap();
    let with_previous = |index: u32, previous: u32| MapOp::PutServiceWithPrevious {
        key: key(),
        entry: ServiceEntry {
            previous_table_index: previous,
            previous_table_size: M,
            ..entry(index)
        },
        grace_s: 300,
    };
    assert_eq!(
        service_and_table_ops(&p1),
        (
            vec![
                MapOp::PutService {
                    key: key(),
                    entry: entry(0)
                },
                with_previous(1, 0),
            ],
            vec![1]
        )
    );
    // Order: the entry forgets any previous table before the spare is refilled.
    let forget = p1
        .ops
        .iter()
        .position(|op| matches!(op, MapOp::PutService { .. }))
        .unwrap();
    let fill = p1
        .ops
        .iter()
        .position(|op| matches!(op, MapOp::PutTable { .. }))
        .unwrap();
    let flip = p1
        .ops
        .iter()
        .position(|op| matches!(op, MapOp::PutServiceWithPrevious { .. }))
        .unwrap();
    assert!(forget < fill && fill < flip, "{:?}", p1.ops);

    // The next change refills buffer 0, the previous table of the entry.
    let p2 = plan(&prev(&p1), &web(&[A, C], Encapsulation::Gue, 300), &AllUp).unwrap();
    assert_eq!(
        service_and_table_ops(&p2),
        (
            vec![
                MapOp::PutService {
                    key: key(),
                    entry: entry(1)
                },
                with_previous(0, 1),
            ],
            vec![0]
        )
    );
}

#[test]
fn ipip_and_second_chance_off_flip_without_a_previous_table() {
    for (encap, grace) in [(Encapsulation::Ipip, 300), (Encapsulation::Gue, 0)] {
        let p0 = plan(&Previous::default(), &web(&[A, B], encap, grace), &AllUp).unwrap();
        let p1 = plan(&prev(&p0), &web(&[A, B, C], encap, grace), &AllUp).unwrap();
        // A GUE entry still forgets its previous table first: one written by
        // an earlier flip with second chance may be the spare refilled.
        let mut puts = vec![MapOp::PutService {
            key: key(),
            entry: entry(1),
        }];
        if encap == Encapsulation::Gue {
            puts.insert(
                0,
                MapOp::PutService {
                    key: key(),
                    entry: entry(0),
                },
            );
        }
        assert_eq!(
            service_and_table_ops(&p1),
            (puts, vec![1]),
            "{encap:?} {grace}"
        );
    }
}

#[test]
fn turning_second_chance_off_still_forgets_the_previous_table_first() {
    let p0 = plan(
        &Previous::default(),
        &web(&[A, B], Encapsulation::Gue, 300),
        &AllUp,
    )
    .unwrap();
    let p1 = plan(
        &prev(&p0),
        &web(&[A, B, C], Encapsulation::Gue, 300),
        &AllUp,
    )
    .unwrap();
    // Entry: table 1, previous 0. Second chance off and a change: table 0 is
    // refilled, after the entry stopped naming it.
    let p2 = plan(&prev(&p1), &web(&[A, C], Encapsulation::Gue, 0), &AllUp).unwrap();
    let mut model = crate::plan::model::MapsModel::default();
    for op in p0.ops.iter().chain(&p1.ops).chain(&p2.ops) {
        model.apply(op);
        assert_eq!(model.check(), Ok(()), "after {op:?}");
    }
    assert_eq!(
        service_and_table_ops(&p2).0,
        vec![
            MapOp::PutService {
                key: key(),
                entry: entry(1)
            },
            MapOp::PutService {
                key: key(),
                entry: entry(0)
            },
        ]
    );
}

#[test]
fn changing_the_encapsulation_rewrites_every_backend_entry_only() {
    let p0 = plan(
        &Previous::default(),
        &web(&[A, B], Encapsulation::Ipip, 300),
        &AllUp,
    )
    .unwrap();
    let p1 = plan(&prev(&p0), &web(&[A, B], Encapsulation::Gue, 300), &AllUp).unwrap();
    let backends: Vec<(u32, bool)> = p1
        .ops
        .iter()
        .map(|op| match op {
            MapOp::PutBackend { id, gue, live, .. } => {
                assert!(live);
                (*id, *gue)
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(backends, vec![(0, true), (1, true)]);
    assert_eq!(p1.changes[0].changes, vec!["encap ipip->gue".to_string()]);
    assert_eq!(p1.services[0].encap, Encapsulation::Gue);
    let p2 = plan(&prev(&p1), &web(&[A, B], Encapsulation::Gue, 300), &AllUp).unwrap();
    assert!(p2.is_noop());
}

#[test]
fn leaving_gue_with_a_table_change_forgets_the_previous_table_first() {
    let p0 = plan(
        &Previous::default(),
        &web(&[A, B], Encapsulation::Gue, 300),
        &AllUp,
    )
    .unwrap();
    let p1 = plan(
        &prev(&p0),
        &web(&[A, B, C], Encapsulation::Gue, 300),
        &AllUp,
    )
    .unwrap();
    // Entry: table 1, previous 0; the backends still GUE when table 0 is
    // refilled for the IPIP service (its removed backend keeps its flag).
    let p2 = plan(&prev(&p1), &web(&[A, C], Encapsulation::Ipip, 300), &AllUp).unwrap();
    let mut model = crate::plan::model::MapsModel::default();
    for op in p0.ops.iter().chain(&p1.ops).chain(&p2.ops) {
        model.apply(op);
        assert_eq!(model.check(), Ok(()), "after {op:?}");
    }
    assert_eq!(
        service_and_table_ops(&p2),
        (
            vec![
                MapOp::PutService {
                    key: key(),
                    entry: entry(1)
                },
                MapOp::PutService {
                    key: key(),
                    entry: entry(0)
                },
            ],
            vec![0]
        )
    );
    assert_eq!(p2.services[0].encap, Encapsulation::Ipip);
}

/// The model flags a previous table rewritten with other slots or deleted,
/// not one rewritten with its own slots (a new inner table, equal contents).
#[test]
fn the_model_flags_a_previous_table_changed_under_an_entry() {
    let named_previous = || {
        let mut maps = model::MapsModel::default();
        let gue = MapOp::PutBackend {
            id: 0,
            address: ip("198.18.3.1"),
            generation: 1,
            live: true,
            service_id: 0,
            next_hop: None,
            gue: true,
        };
        maps.apply(&gue);
        maps.apply(&MapOp::PutTable {
            index: 0,
            slots: vec![0; M as usize],
        });
        maps.apply(&MapOp::PutTable {
            index: 1,
            slots: vec![0; M as usize],
        });
        maps.apply(&MapOp::PutServiceWithPrevious {
            key: key(),
            entry: ServiceEntry {
                previous_table_index: 0,
                previous_table_size: M,
                ..entry(1)
            },
            grace_s: 300,
        });
        maps
    };
    let mut same = named_previous();
    same.apply(&MapOp::PutTable {
        index: 0,
        slots: vec![0; M as usize],
    });
    assert!(same.overwritten_previous.is_empty());
    let mut other = named_previous();
    other.apply(&MapOp::PutTable {
        index: 0,
        slots: vec![1; M as usize],
    });
    assert_eq!(other.overwritten_previous.len(), 1);
    let mut deleted = named_previous();
    deleted.apply(&MapOp::DeleteTable { index: 0 });
    assert_eq!(deleted.overwritten_previous.len(), 1);
}
