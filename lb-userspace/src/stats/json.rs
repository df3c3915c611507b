//! The JSON rendering of a snapshot (`lb stats --json`): a stable shape,
//! documented in README.md ("JSON (`--json`)", under `lb stats`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use lb_common::GlobalCounter;
use serde::Serialize;

use super::{Rates, Snapshot, text::state_label};
use crate::announce::VipAnnouncement;

/// The top-level JSON object.
#[derive(Debug, Serialize)]
pub struct JsonReport {
    /// Interface name.
    pub iface: String,
    /// True when the XDP link is pinned.
    pub attached: bool,
    /// "native" / "skb", or null without an applied state.
    pub xdp_mode: Option<String>,
    /// Last apply, Unix ms, or null.
    pub applied_at_unix_ms: Option<u64>,
    /// Duration of the last apply in seconds, or null.
    pub last_apply_s: Option<f64>,
    /// Seconds between the two samples the rates come from; null without rates.
    pub interval_s: Option<f64>,
    /// True while the node drains (every VIP withdrawn, forwarding continues).
    pub draining: bool,
    /// Each VIP's announcement, in address order.
    pub vips: Vec<VipAnnouncement>,
    /// Services in config order.
    pub services: Vec<JsonService>,
    /// Global counters by label.
    pub global: BTreeMap<&'static str, u64>,
    /// Global counters per second by label; null without rates.
    pub global_rate: Option<BTreeMap<&'static str, f64>>,
}

/// One service.
#[derive(Debug, Serialize)]
pub struct JsonService {
    /// Name.
    pub name: String,
    /// VIP.
    pub vip: IpAddr,
    /// Port (0 = every port).
    pub port: u16,
    /// "tcp" / "udp".
    pub protocol: String,
    /// "ipip" / "gue": how packets go to the backends.
    pub encap: String,
    /// Live Maglev table size.
    pub table_size: u32,
    /// Panic mode.
    pub panic: bool,
    /// Fingerprint of the live table: 8 hex digits (null when unknown).
    pub fingerprint: Option<String>,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// New flows dropped for want of a backend.
    pub no_backend: u64,
    /// Per-second rates; null without rates or for a new service.
    pub rate: Option<JsonServiceRate>,
    /// Backends in config order.
    pub backends: Vec<JsonBackend>,
}

/// Per-second rates of a service.
#[derive(Debug, Serialize)]
pub struct JsonServiceRate {
    /// Packets per second.
    pub packets_per_s: f64,
    /// Bytes per second.
    pub bytes_per_s: f64,
    /// No-backend drops per second.
    pub no_backend_per_s: f64,
}

/// One backend.
#[derive(Debug, Serialize)]
pub struct JsonBackend {
    /// Address.
    pub address: IpAddr,
    /// Backend id.
    pub id: u32,
    /// "active" / "draining" / "down".
    pub state: &'static str,
    /// Weight.
    pub weight: u32,
    /// Slots in the live table.
    pub slots: u32,
    /// slots / table_size (0.0 ..= 1.0).
    pub share: f64,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// New flows.
    pub new_flows: u64,
    /// Per-second rates; null without rates or for a new backend.
    pub rate: Option<JsonBackendRate>,
}

/// Per-second rates of a backend.
#[derive(Debug, Serialize)]
pub struct JsonBackendRate {
    /// Packets per second.
    pub packets_per_s: f64,
    /// Bytes per second.
    pub bytes_per_s: f64,
    /// New flows per second.
    pub new_flows_per_s: f64,
}

/// Builds the JSON report of `snap` (with `rates` when given).
pub fn report_json(snap: &Snapshot, rates: Option<&Rates>) -> JsonReport {
    let services = snap
        .services
        .iter()
        .enumerate()
        .map(|(i, s)| JsonService {
            name: s.name.clone(),
            vip: s.vip,
            port: s.port,
            protocol: s.protocol.clone(),
            encap: s.encap.clone(),
            table_size: s.table_size,
            panic: s.panic,
            fingerprint: s.fingerprint.map(crate::maglev::fingerprint_hex),
            packets: s.counters.packets,
            bytes: s.counters.bytes,
            no_backend: s.counters.no_backend,
            rate: rates.and_then(|r| r.service(i)).map(|r| JsonServiceRate {
                packets_per_s: r.packets_per_s,
                bytes_per_s: r.bytes_per_s,
                no_backend_per_s: r.no_backend_per_s,
            }),
            backends: s
                .backends
                .iter()
                .enumerate()
                .map(|(j, b)| JsonBackend {
                    address: b.address,
                    id: b.id,
                    state: state_label(b.state),
                    weight: b.weight,
                    slots: b.slots,
                    share: b.share(s.table_size),
                    packets: b.counters.packets,
                    bytes: b.counters.bytes,
                    new_flows: b.counters.new_flows,
                    rate: rates
                        .and_then(|r| r.backend(i, j))
                        .map(|r| JsonBackendRate {
                            packets_per_s: r.packets_per_s,
                            bytes_per_s: r.bytes_per_s,
                            new_flows_per_s: r.new_flows_per_s,
                        }),
                })
                .collect(),
        })
        .collect();
    JsonReport {
        iface: snap.iface.clone(),
        attached: snap.attached,
        xdp_mode: snap.xdp_mode.clone(),
        applied_at_unix_ms: snap.applied_at_unix_ms,
        last_apply_s: snap.last_apply_seconds,
        interval_s: rates.map(|r| r.elapsed.as_secs_f64()),
        draining: snap.draining,
        vips: snap.vips.clone(),
        services,
        global: GlobalCounter::ALL
            .iter()
            .map(|c| (c.label(), snap.global(*c)))
            .collect(),
        global_rate: rates.map(|r| {
            GlobalCounter::ALL
                .iter()
                .map(|c| (c.label(), r.global.get(*c as usize).copied().unwrap_or(0.0)))
                .collect()
        }),
    }
}
