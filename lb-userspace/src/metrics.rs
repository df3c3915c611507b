//! The HTTP endpoint of `lb run --metrics ADDR`: Prometheus metrics
//! (`/metrics`), a live status page (`/`) and the JSON it polls
//! (`/stats.json`, the shape of `lb stats --json`), all read fresh from the
//! pinned maps and the agent's state file.
//!
//! - [`encode_snapshot`] (here): the OpenMetrics encoding of a snapshot (pure).
//! - [`server`]: the listener: a tiny HTTP/1.1 responder on tokio that caps its
//!   concurrent connections and survives descriptor exhaustion (EMFILE).
//! - [`page`]: the status page's routes, its embedded assets and the sampler
//!   that turns successive snapshots into rates.
//! - [`decap`]: the decapsulator's counters in the same text format, for
//!   `lb decap --stats --format prometheus` (pure).
//! - [`limits`]: raising the process's descriptor limit and sizing the
//!   connection cap from it.

pub mod decap;
pub mod limits;
pub mod page;
pub mod server;

pub use server::{CONTENT_TYPE, MetricsServer, serve};

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;

use lb_common::GlobalCounter;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::state::BackendState;
use crate::stats::Snapshot;

/// Errors of the metrics endpoint.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr} for metrics: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

type Labels = Vec<(&'static str, String)>;

/// Encodes a snapshot as an OpenMetrics text exposition (pure).
pub fn encode_snapshot(snap: &Snapshot) -> String {
    let mut registry = Registry::default();
    let counter_family = |registry: &mut Registry, name: &str, help: &str| {
        let family = Family::<Labels, Counter>::default();
        registry.register(name, help, family.clone());
        family
    };
    let gauge_family = |registry: &mut Registry, name: &str, help: &str| {
        let family = Family::<Labels, Gauge>::default();
        registry.register(name, help, family.clone());
        family
    };
    let attached = Gauge::<i64>::default();
    registry.register(
        "lb_attached",
        "1 while the XDP program is attached (its link is pinned)",
        attached.clone(),
    );
    attached.set(i64::from(snap.attached));
    if let Some(seconds) = snap.last_apply_seconds {
        let last_apply = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "lb_agent_last_apply_seconds",
            "Duration of the agent's last apply (config change or health change to maps updated)",
            last_apply.clone(),
        );
        last_apply.set(seconds);
    }
    if let Some(ms) = snap.applied_at_unix_ms {
        let applied_at = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "lb_agent_last_apply_timestamp_seconds",
            "Unix time of the agent's last apply",
            applied_at.clone(),
        );
        applied_at.set(ms as f64 / 1000.0);
    }
    let b_packets = counter_family(
        &mut registry,
        "lb_backend_packets",
        "Packets sent to a backend",
    );
    let b_bytes = counter_family(
        &mut registry,
        "lb_backend_bytes",
        "Bytes sent to a backend (before encapsulation)",
    );
    let b_flows = counter_family(
        &mut registry,
        "lb_backend_new_flows",
        "Flows newly pinned to a backend",
    );
    let b_up = gauge_family(
        &mut registry,
        "lb_backend_up",
        "1 unless the backend is down (failed health checks)",
    );
    let b_weight = gauge_family(&mut registry, "lb_backend_weight", "Configured weight");
    let b_slots = gauge_family(
        &mut registry,
        "lb_backend_slots",
        "Slots the backend holds in its service's Maglev table",
    );
    let s_packets = counter_family(&mut registry, "lb_service_packets", "Packets to a service");
    let s_bytes = counter_family(&mut registry, "lb_service_bytes", "Bytes to a service");
    let s_no_backend = counter_family(
        &mut registry,
        "lb_service_no_backend",
        "New flows of a service dropped for want of a backend",
    );
    let vip_announced = gauge_family(
        &mut registry,
        "lb_vip_announced",
        "1 while the VIP's host route is installed for the BGP daemon to announce",
    );
    let draining = Gauge::<i64>::default();
    registry.register(
        "lb_node_draining",
        "1 while the node drains (announce.enabled: false): every VIP withdrawn",
        draining.clone(),
    );
    draining.set(i64::from(snap.draining));
    let fingerprint = gauge_family(
        &mut registry,
        "lb_service_table_fingerprint",
        "Fingerprint of the service's live Maglev table (slot -> backend address); equal on nodes that agree",
    );
    for v in &snap.vips {
        vip_announced
            .get_or_create(&vec![("vip", v.vip.to_string())])
            .set(i64::from(v.announced));
    }
    for svc in snap.services.iter() {
        if let Some(f) = svc.fingerprint {
            fingerprint
                .get_or_create(&vec![("service", svc.name.clone())])
                .set(i64::from(f));
        }
    }
    let s_panic = gauge_family(
        &mut registry,
        "lb_service_panic",
        "1 while the service is in panic mode (too few healthy backends: all of them are used)",
    );
    let events = counter_family(
        &mut registry,
        "lb_datapath_events",
        "Global datapath counters (connection table, passes, drops, ICMP)",
    );

    for svc in &snap.services {
        let s_labels: Labels = vec![("service", svc.name.clone())];
        s_packets
            .get_or_create(&s_labels)
            .inc_by(svc.counters.packets);
        s_bytes.get_or_create(&s_labels).inc_by(svc.counters.bytes);
        s_no_backend
            .get_or_create(&s_labels)
            .inc_by(svc.counters.no_backend);
        s_panic.get_or_create(&s_labels).set(i64::from(svc.panic));
        for b in &svc.backends {
            let labels: Labels = vec![
                ("service", svc.name.clone()),
                ("backend", b.address.to_string()),
            ];
            b_packets.get_or_create(&labels).inc_by(b.counters.packets);
            b_bytes.get_or_create(&labels).inc_by(b.counters.bytes);
            b_flows.get_or_create(&labels).inc_by(b.counters.new_flows);
            b_up.get_or_create(&labels)
                .set(i64::from(b.state != BackendState::Down));
            b_weight.get_or_create(&labels).set(i64::from(b.weight));
            b_slots.get_or_create(&labels).set(i64::from(b.slots));
        }
    }
    for c in GlobalCounter::ALL {
        events
            .get_or_create(&vec![("counter", c.label().to_string())])
            .inc_by(snap.global(*c));
    }
    let mut out = String::new();
    encode(&mut out, &registry).expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_series_with_labels() {
        let text = encode_snapshot(&crate::stats::tests::sample(2));
        let has = |line: &str| {
            assert!(
                text.lines().any(|l| l == line),
                "missing line {line:?} in\n{text}"
            );
        };
        has("# TYPE lb_backend_packets counter");
        has(r#"lb_backend_packets_total{service="web",backend="198.18.3.2"} 140"#);
        has(r#"lb_backend_bytes_total{service="web",backend="198.18.3.3"} 3840"#);
        has(r#"lb_backend_new_flows_total{service="web",backend="198.18.3.2"} 14"#);
        has(r#"lb_backend_up{service="web",backend="198.18.3.3"} 1"#);
        has(r#"lb_backend_up{service="dns6",backend="2001:2::3:2"} 0"#);
        has(r#"lb_backend_weight{service="web",backend="198.18.3.2"} 3"#);
        has(r#"lb_backend_slots{service="web",backend="198.18.3.3"} 3"#);
        has(r#"lb_service_packets_total{service="web"} 200"#);
        has(r#"lb_service_bytes_total{service="dns6"} 1000"#);
        has(r#"lb_service_no_backend_total{service="dns6"} 10"#);
        has(r#"lb_service_panic{service="web"} 0"#);
        has(r#"lb_service_panic{service="dns6"} 1"#);
        has(r#"lb_datapath_events_total{counter="conntrack_hit"} 2000"#);
        has(r#"lb_datapath_events_total{counter="drop_no_backend"} 6"#);
        has("lb_attached 1");
        has("lb_node_draining 0");
        has(r#"lb_vip_announced{vip="198.18.100.1"} 1"#);
        has(r#"lb_vip_announced{vip="2001:2::100:1"} 0"#);
        has(&format!(
            r#"lb_service_table_fingerprint{{service="web"}} {}"#,
            0x0bad_cafe_u32
        ));
        assert!(!text.contains(r#"lb_service_table_fingerprint{service="dns6"}"#));
        has("lb_agent_last_apply_seconds 0.0125");
        has("lb_agent_last_apply_timestamp_seconds 1709210096.0");
        for c in GlobalCounter::ALL {
            assert!(
                text.contains(&format!("counter=\"{}\"", c.label())),
                "{} missing",
                c.label()
            );
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
