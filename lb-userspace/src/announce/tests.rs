//! Unit tests of the announcement rule and of the route difference.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::routes::{KernelRoute, changes};
use super::*;
use crate::state::AppliedBackend;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const V1: &str = "198.18.100.1";
const V2: &str = "198.18.100.2";
const V6: &str = "2001:2::100:1";

fn one(
    attached: bool,
    draining: Option<DrainCause>,
    services: &[(&str, Readiness)],
) -> Vec<(String, bool, String)> {
    let input: Vec<(IpAddr, Readiness)> = services.iter().map(|&(v, r)| (ip(v), r)).collect();
    decide(attached, draining, &input)
        .into_iter()
        .map(|a| (a.vip.to_string(), a.announced, a.reason))
        .collect()
}

#[test]
fn live_or_panic_services_announce_their_vip() {
    assert_eq!(
        one(true, None, &[(V1, Readiness::Live)]),
        vec![(V1.into(), true, REASON_LIVE.into())]
    );
    assert_eq!(
        one(true, None, &[(V6, Readiness::Panic)]),
        vec![(V6.into(), true, REASON_PANIC.into())]
    );
}

#[test]
fn one_service_taking_flows_is_enough_for_the_vip() {
    let r = one(
        true,
        None,
        &[
            (V1, Readiness::AllDown),
            (V1, Readiness::Live),
            (V1, Readiness::AllDraining),
        ],
    );
    assert_eq!(r, vec![(V1.into(), true, REASON_LIVE.into())]);
}

#[test]
fn vips_without_a_service_taking_flows_are_withdrawn_with_the_reason() {
    let r = one(
        true,
        None,
        &[
            (V1, Readiness::AllDown),
            (V2, Readiness::AllDraining),
            (V6, Readiness::DownOrDraining),
        ],
    );
    assert_eq!(
        r,
        vec![
            (V1.into(), false, "every backend down".into()),
            (V2.into(), false, "every backend draining".into()),
            (V6.into(), false, "every backend down or draining".into()),
        ]
    );
    let mixed = one(
        true,
        None,
        &[(V1, Readiness::AllDown), (V1, Readiness::AllDraining)],
    );
    assert_eq!(mixed.len(), 1);
    assert!(!mixed[0].1);
    assert_eq!(
        mixed[0].2,
        "no service takes new flows (every backend down; every backend draining)"
    );
}

#[test]
fn detached_or_draining_withdraws_everything() {
    let all = [(V1, Readiness::Live), (V6, Readiness::Panic)];
    for (attached, draining, reason) in [
        (false, None, REASON_NOT_ATTACHED),
        (false, Some(DrainCause::Config), REASON_NOT_ATTACHED),
        (true, Some(DrainCause::Config), REASON_DRAINING),
        (true, Some(DrainCause::Command), REASON_DRAINING_COMMAND),
    ] {
        let r = one(attached, draining, &all);
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|(_, a, why)| !a && why == reason), "{r:?}");
    }
}

fn service(vip: &str, table_size: u32, panic: bool, states: &[BackendState]) -> AppliedService {
    AppliedService {
        name: "s".into(),
        vip: ip(vip),
        port: 80,
        protocol: "tcp".into(),
        service_id: 0,
        table_parity: 0,
        table_size,
        panic,
        backends: states
            .iter()
            .enumerate()
            .map(|(i, &state)| AppliedBackend {
                address: IpAddr::from([198, 18, 3, i as u8 + 1]),
                id: i as u32,
                generation: 1,
                weight: 1,
                drain: state == BackendState::Draining,
                state,
                slots: 0,
            })
            .collect(),
        fingerprint: None,
        encap: Default::default(),
    }
}

#[test]
fn readiness_follows_the_live_table() {
    use BackendState::*;
    assert_eq!(
        Readiness::of(&service(V1, 7, false, &[Active, Down])),
        Readiness::Live
    );
    assert_eq!(
        Readiness::of(&service(V1, 7, true, &[Down, Down])),
        Readiness::Panic
    );
    assert_eq!(
        Readiness::of(&service(V1, 0, false, &[Down, Down])),
        Readiness::AllDown
    );
    assert_eq!(
        Readiness::of(&service(V1, 0, true, &[Draining, Draining])),
        Readiness::AllDraining
    );
    assert_eq!(
        Readiness::of(&service(V1, 0, false, &[Down, Draining])),
        Readiness::DownOrDraining
    );
    assert_eq!(
        Readiness::of(&service(V1, 0, false, &[])),
        Readiness::NoBackend
    );
    let d = decide_for(
        true,
        None,
        &[
            service(V1, 0, false, &[Down]),
            service(V6, 7, false, &[Active]),
        ],
    );
    assert_eq!(
        d.iter().map(|a| a.announced).collect::<Vec<_>>(),
        vec![false, true]
    );
}

fn route(dst: &str, dev: Option<&str>) -> KernelRoute {
    KernelRoute {
        dst: dst.into(),
        dev: dev.map(Into::into),
        gateway: None,
        kind: None,
        metric: None,
    }
}

#[test]
fn only_host_routes_on_lo_count_as_vip_routes() {
    assert_eq!(route(V1, Some("lo")).vip(), Some(ip(V1)));
    assert_eq!(route("198.18.100.1/32", Some("lo")).vip(), Some(ip(V1)));
    assert_eq!(route(V6, Some("lo")).vip(), Some(ip(V6)));
    assert_eq!(route("198.18.100.0/24", Some("lo")).vip(), None);
    assert_eq!(route(V1, Some("eth9")).vip(), None);
    assert_eq!(route("default", Some("lo")).vip(), None);
    let mut local = route(V1, Some("lo"));
    local.kind = Some("local".into());
    assert_eq!(local.vip(), None);
    let mut via = route(V1, Some("lo"));
    via.gateway = Some("198.18.0.1".into());
    assert_eq!(via.vip(), None);
}

#[test]
fn reconciliation_adds_missing_and_removes_unwanted_routes() {
    let present = vec![
        route(V1, Some("lo")),
        route(V2, Some("lo")),
        route("198.18.0.0/16", Some("lo")),
        route(V1, Some("lo")),
    ];
    let wanted: BTreeSet<IpAddr> = [ip(V1), ip(V6)].into();
    let c = changes(&present, &wanted);
    assert_eq!(c.add, vec![ip(V6)]);
    assert_eq!(
        c.remove,
        vec![
            route(V2, Some("lo")),
            route("198.18.0.0/16", Some("lo")),
            route(V1, Some("lo")),
        ]
    );
    assert_eq!(
        changes(&[route(V1, Some("lo"))], &[ip(V1)].into()),
        Default::default()
    );
}

#[test]
fn route_lists_of_ip_json_parse() {
    let v4: Vec<KernelRoute> =
        serde_json::from_str(r#"[{"dst":"198.18.100.1","dev":"lo","scope":"link","flags":[]}]"#)
            .unwrap();
    assert_eq!(v4[0].vip(), Some(ip(V1)));
    let v6: Vec<KernelRoute> = serde_json::from_str(
        r#"[{"dst":"2001:2::100:1","dev":"lo","metric":1024,"flags":[],"pref":"medium"}]"#,
    )
    .unwrap();
    assert_eq!(v6[0].metric, Some(1024));
    assert_eq!(v6[0].vip(), Some(ip(V6)));
}
