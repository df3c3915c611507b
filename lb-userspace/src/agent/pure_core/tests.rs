//! The core replayed through event sequences: what it asks for, in which
//! order, and what it believes the maps hold after each outcome.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::config::{
    BackendConfig, EncapConfig, HealthCheckConfig, HealthCheckKind, Protocol, ServiceConfig,
};
use crate::health::{HealthEvent, HealthState, TargetKey, Transition};
use crate::plan::settings;
use crate::state::BackendState;

pub(super) const M: u32 = 13;

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(super) fn link() -> Link {
    Link {
        ifindex: 7,
        mtu: 1500,
        mac: [2, 0, 0, 0, 0, 1],
        v4: Some("198.18.0.1".parse().unwrap()),
        v6: None,
    }
}

pub(super) fn empty_state() -> AppliedState {
    AppliedState {
        ifname: "lb0".into(),
        ifindex: 7,
        pin_dir: "/nowhere".into(),
        config_path: "/nowhere.yaml".into(),
        applied_at_unix_ms: 0,
        last_apply_seconds: 0.0,
        xdp_mode: "skb".into(),
        maglev_table_size: 0,
        services: Vec::new(),
        retired_backends: Vec::new(),
        announce: Default::default(),
    }
}

pub(super) fn core() -> AgentCore {
    AgentCore::new(CoreStart {
        link: link(),
        applied: empty_state(),
        insert_budget: 0,
    })
}

fn service(name: &str, backends: &[&str], checked: bool) -> ServiceConfig {
    ServiceConfig {
        name: name.into(),
        vip: ip("198.18.100.1"),
        port: if name == "web" { 80 } else { 443 },
        protocol: Protocol::Tcp,
        backends: backends
            .iter()
            .map(|a| BackendConfig {
                address: ip(a),
                weight: 1,
                drain: false,
            })
            .collect(),
        health_check: checked.then(|| HealthCheckConfig {
            kind: HealthCheckKind::Tcp,
            port: 80,
            path: "/".into(),
            interval_ms: 1000,
            timeout_ms: 500,
            rise: 2,
            fall: 3,
        }),
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

fn loaded(config: Config, why: &str, at: Instant) -> Event {
    Event::ConfigLoaded {
        config,
        why: why.into(),
        started: at,
        health: HealthSnapshot::all_up(),
    }
}

fn done() -> Event {
    Event::Applied(ApplyOutcome::Done { at_unix_ms: 42 })
}

fn ops_of(effects: &[Effect]) -> Option<&[MapOp]> {
    effects.iter().find_map(|e| match e {
        Effect::Apply { ops } => Some(ops.as_slice()),
        _ => None,
    })
}

fn messages(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Log(l) => Some(l.message.clone()),
            _ => None,
        })
        .collect()
}

fn targets(effects: &[Effect]) -> Option<Vec<(String, IpAddr)>> {
    effects.iter().find_map(|e| match e {
        Effect::SetHealthTargets(t) => {
            Some(t.iter().map(|t| (t.service.clone(), t.address)).collect())
        }
        _ => None,
    })
}

/// A core with `web` (two backends) applied.
fn applied_web(now: Instant) -> AgentCore {
    let mut c = core();
    c.handle(
        loaded(
            config(vec![service("web", &["198.18.3.2", "198.18.3.3"], false)]),
            "initial apply",
            now,
        ),
        now,
    );
    c.handle(done(), now);
    c
}

#[test]
fn the_first_apply_writes_settings_in_the_plan_then_state_targets_and_announcements() {
    let now = Instant::now();
    let mut c = core();
    let cfg = config(vec![service("web", &["198.18.3.2"], true)]);
    let effects = c.handle(loaded(cfg.clone(), "initial apply", now), now);
    assert!(matches!(&effects[0], Effect::ResolveNextHops(a) if a == &[ip("198.18.3.2")]));
    let ops = ops_of(&effects).expect("an apply");
    let want = settings(&link(), &EncapConfig::default());
    assert_eq!(ops[0], MapOp::PutSettings { settings: want });
    assert!(
        ops.iter()
            .filter(|o| matches!(o, MapOp::PutSettings { .. }))
            .count()
            == 1
    );
    assert!(
        targets(&effects).is_none(),
        "targets follow the applied config only"
    );
    assert!(c.config().is_none() && c.applied().services.is_empty());

    let effects = c.handle(done(), now + Duration::from_millis(3));
    assert_eq!(
        targets(&effects),
        Some(vec![("web".into(), ip("198.18.3.2"))])
    );
    let kinds: Vec<&str> = effects
        .iter()
        .map(|e| match e {
            Effect::SetHealthTargets(_) => "targets",
            Effect::WriteState { .. } => "state",
            Effect::Log(_) => "log",
            Effect::SyncAnnouncements { .. } => "announce",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["targets", "state", "log", "announce"]);
    let log = &messages(&effects)[0];
    assert!(
        log.starts_with("initial apply: web: added (13 slots moved, table 13) — "),
        "{log}"
    );
    assert!(log.ends_with("applied in 3.0 ms"), "{log}");
    assert_eq!(c.config(), Some(&cfg));
    assert_eq!(c.applied().applied_at_unix_ms, 42);
    assert_eq!(c.applied().services[0].table_size, M);

    // The same config again: no settings, an apply of nothing, "no change".
    let effects = c.handle(loaded(cfg, "SIGHUP", now), now);
    assert_eq!(ops_of(&effects), Some(&[][..]));
    let effects = c.handle(done(), now);
    assert!(targets(&effects).is_none());
    assert!(messages(&effects)[0].starts_with("SIGHUP: no change — 0 map ops"));
}

#[test]
fn changed_settings_and_insert_budget_are_ops_of_the_plan() {
    let now = Instant::now();
    let mut c = applied_web(now);
    let mut cfg = c.config().unwrap().clone();
    cfg.encapsulation.gateway_mac = Some([2, 0, 0, 0, 0, 9]);
    cfg.conntrack_insert_budget = 500;
    let effects = c.handle(loaded(cfg.clone(), "SIGHUP", now), now);
    let ops = ops_of(&effects).unwrap();
    assert_eq!(
        ops,
        [
            MapOp::PutSettings {
                settings: settings(&link(), &cfg.encapsulation)
            },
            MapOp::SetInsertBudget { budget: 500 },
        ]
    );
    // Rolled back: the next try writes them again.
    c.handle(
        Event::Applied(ApplyOutcome::RolledBack {
            error: "E2BIG".into(),
        }),
        now,
    );
    let effects = c.handle(Event::RefreshTick, now);
    assert_eq!(ops_of(&effects).unwrap().len(), 2);
    c.handle(done(), now);
    let effects = c.handle(loaded(cfg, "SIGHUP", now), now);
    assert_eq!(ops_of(&effects), Some(&[][..]));
}

#[test]
fn a_rolled_back_reload_keeps_the_old_view_and_targets_and_is_retried_on_the_next_tick() {
    let now = Instant::now();
    let mut c = applied_web(now);
    let before = c.applied().clone();
    let old = c.config().unwrap().clone();
    let new = config(vec![
        service("web", &["198.18.3.2", "198.18.3.3"], false),
        service("api", &["198.18.3.4"], true),
    ]);
    let effects = c.handle(loaded(new.clone(), "config file changed", now), now);
    assert!(targets(&effects).is_none());
    let effects = c.handle(
        Event::Applied(ApplyOutcome::RolledBack {
            error: "map operation 3 of 9 failed".into(),
        }),
        now,
    );
    assert_eq!(
        messages(&effects),
        ["config file changed: apply failed: map operation 3 of 9 failed"]
    );
    assert!(
        targets(&effects).is_none(),
        "the monitor keeps the applied config's targets"
    );
    assert_eq!(c.applied(), &before);
    assert_eq!(c.config(), Some(&old));
    assert!(c.has_wanted());

    // The next tick re-plans the wanted config from the unchanged view.
    let effects = c.handle(Event::RefreshTick, now);
    assert!(matches!(effects[0], Effect::ResolveNextHops(_)));
    assert!(matches!(effects[1], Effect::SyncAnnouncements { .. }));
    let ops = ops_of(&effects).expect("a retry");
    assert!(ops.contains(&MapOp::ZeroServiceStats { id: 1 }));
    let effects = c.handle(done(), now);
    assert_eq!(
        targets(&effects),
        Some(vec![("api".into(), ip("198.18.3.4"))])
    );
    assert!(!c.has_wanted());
    assert_eq!(c.config(), Some(&new));
}

#[test]
fn a_refused_plan_changes_nothing() {
    let now = Instant::now();
    let mut c = applied_web(now);
    let before = c.applied().clone();
    let mut bad = c.config().unwrap().clone();
    bad.maglev_table_size = 12;
    let effects = c.handle(loaded(bad, "SIGHUP", now), now);
    assert!(ops_of(&effects).is_none());
    assert!(effects.iter().any(|e| matches!(e, Effect::PlanFailed(_))));
    assert!(messages(&effects)[0].starts_with("SIGHUP: apply failed: plan: service web:"));
    assert_eq!(c.applied(), &before);
    assert!(!c.has_wanted());
}

fn health_event(address: &str, transition: Transition) -> HealthEvent {
    HealthEvent {
        service: "web".into(),
        address: ip(address),
        transition,
        at: Instant::now(),
        consecutive: 3,
        reason: None,
    }
}

#[test]
fn a_health_change_replans_with_its_snapshot() {
    let now = Instant::now();
    let mut c = core();
    let cfg = config(vec![service("web", &["198.18.3.2", "198.18.3.3"], true)]);
    c.handle(loaded(cfg, "initial apply", now), now);
    c.handle(done(), now);
    let down = HealthSnapshot::from_states([(
        TargetKey {
            service: "web".into(),
            address: ip("198.18.3.3"),
        },
        HealthState::Down,
    )]);
    let effects = c.handle(
        Event::HealthChanged {
            event: health_event("198.18.3.3", Transition::UpToDown),
            health: down,
        },
        now,
    );
    assert_eq!(
        messages(&effects)[0],
        "backend 198.18.3.3 of service web: up -> down after 3 failed probes"
    );
    let ops = ops_of(&effects).unwrap();
    // The new table first, the flip, then the down backend leaves LIVE.
    assert!(matches!(ops[0], MapOp::PutTable { index: 1, .. }));
    assert!(matches!(ops[1], MapOp::PutService { .. }));
    assert!(matches!(ops[2], MapOp::PutBackend { live: false, .. }));
    c.handle(done(), now);
    let web = &c.applied().services[0];
    assert_eq!(web.backends[1].state, BackendState::Down);
    assert_eq!((web.backends[0].slots, web.backends[1].slots), (M, 0));
}

#[test]
fn next_hops_are_written_through_applies_and_carried_by_later_plans() {
    let now = Instant::now();
    let mut c = applied_web(now);
    let nh = NextHop {
        ifindex: 7,
        mtu: 1500,
        mac: [2, 0, 0, 0, 0, 2],
        source_mac: [2, 0, 0, 0, 0, 1],
    };
    let resolved = |address: &str, next_hop| Event::NextHopResolved {
        address: ip(address),
        next_hop,
    };
    let effects = c.handle(resolved("198.18.3.3", Some(nh)), now);
    let ops = ops_of(&effects).unwrap().to_vec();
    assert_eq!(
        ops,
        [MapOp::PutBackend {
            id: 1,
            address: ip("198.18.3.3"),
            generation: 1,
            live: true,
            service_id: 0,
            next_hop: Some(nh),
            gue: false,
        }]
    );
    assert!(c.next_hops().is_empty(), "known only once written");
    let effects = c.handle(done(), now);
    assert!(
        messages(&effects)[0].starts_with("next hop toward backend 198.18.3.3: 02:00:00:00:00:02")
    );
    assert!(
        c.handle(resolved("198.18.3.3", Some(nh)), now).is_empty(),
        "unchanged"
    );

    // No backend has the address yet: known at once, written by the plan
    // that adds the backend.
    let effects = c.handle(resolved("198.18.3.9", Some(nh)), now);
    assert!(ops_of(&effects).is_none());
    let mut cfg = c.config().unwrap().clone();
    cfg.services[0].backends.push(BackendConfig {
        address: ip("198.18.3.9"),
        weight: 1,
        drain: false,
    });
    let effects = c.handle(loaded(cfg, "SIGHUP", now), now);
    let put = ops_of(&effects)
        .unwrap()
        .iter()
        .find(|o| matches!(o, MapOp::PutBackend { id: 2, .. }))
        .cloned();
    assert!(matches!(put, Some(MapOp::PutBackend { next_hop: Some(n), .. }) if n == nh));

    // Lost while the apply is pending: waits, then is written.
    assert!(c.handle(resolved("198.18.3.3", None), now).is_empty());
    let effects = c.handle(done(), now);
    let ops = ops_of(&effects).expect("the queued next hop's apply");
    assert!(matches!(
        ops[0],
        MapOp::PutBackend {
            id: 1,
            next_hop: None,
            ..
        }
    ));
    let effects = c.handle(
        Event::Applied(ApplyOutcome::RolledBack { error: "x".into() }),
        now,
    );
    assert_eq!(
        messages(&effects),
        ["backend 198.18.3.3: writing next hop: x"]
    );
    assert_eq!(
        c.next_hops().get(&ip("198.18.3.3")),
        Some(&nh),
        "still what the entry holds"
    );
}

#[test]
fn an_uncertain_apply_is_repaired_before_the_next_plan() {
    let now = Instant::now();
    let mut c = applied_web(now);
    let before = c.applied().clone();
    let cfg = config(vec![service("web", &["198.18.3.2"], false)]);
    let effects = c.handle(loaded(cfg.clone(), "SIGHUP", now), now);
    let failed = ops_of(&effects).unwrap().to_vec();
    let effects = c.handle(
        Event::Applied(ApplyOutcome::Uncertain {
            error: "rollback failed".into(),
        }),
        now,
    );
    assert_eq!(messages(&effects).len(), 2);
    assert_eq!(c.applied(), &before);
    let effects = c.handle(Event::RefreshTick, now);
    let ops = ops_of(&effects).unwrap();
    let repair = crate::plan::repair_ops(
        &crate::plan::Previous {
            maglev_table_size: M,
            services: &before.services,
            retired: &before.retired_backends,
            ..Default::default()
        },
        &failed,
    );
    assert!(!repair.is_empty());
    assert_eq!(&ops[..repair.len()], &repair[..], "the repair comes first");
    c.handle(done(), now);
    assert_eq!(c.config(), Some(&cfg));
    // Repaired: the next apply is a plain one.
    let effects = c.handle(loaded(cfg, "SIGHUP", now), now);
    assert_eq!(ops_of(&effects), Some(&[][..]));
}

#[test]
fn unknown_next_hops_are_retried_quickly_only_after_an_apply() {
    let now = Instant::now();
    let mut c = applied_web(now);
    assert!(c.wants_fast_retry(now + Duration::from_secs(1)));
    assert!(!c.wants_fast_retry(now + FAST_NEIGHBOUR_WINDOW));
    let effects = c.handle(Event::FastRetryTick, now + Duration::from_secs(1));
    assert!(matches!(&effects[..], [Effect::ResolveNextHops(a)] if a.len() == 2));
    assert!(
        c.handle(Event::FastRetryTick, now + FAST_NEIGHBOUR_WINDOW)
            .is_empty()
    );
}

#[test]
fn a_conntrack_size_change_is_refused_with_a_warning() {
    let now = Instant::now();
    let mut c = applied_web(now);
    let mut cfg = c.config().unwrap().clone();
    cfg.conntrack_entries *= 2;
    let effects = c.handle(loaded(cfg, "SIGHUP", now), now);
    assert_eq!(
        messages(&effects)[0],
        "conntrack_entries changes take effect on `lb run --fresh` only"
    );
}
