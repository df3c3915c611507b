//! Walks the YAML document, building a [`Config`] and collecting every problem:
//! the top level and `encapsulation:` here, one service and its backends in
//! `service`, a health check in `health_check`, the checks across services
//! in `cross_checks`.

mod cross_checks;
mod health_check;
mod service;

use std::net::IpAddr;

use lb_common::maps::{
    DEFAULT_CONNTRACK_ENTRIES, DEFAULT_INSERT_BUDGET, MAX_CONNTRACK_ENTRIES, MAX_TABLE_SIZE,
};
use serde_yaml::Value;

use crate::maglev::is_prime;

use super::fields::{Ctx, Field, MapView, describe, shortened};
use super::{Config, DEFAULT_MAGLEV_TABLE_SIZE, EncapConfig, ServiceConfig};

const TOP_KEYS: &[&str] = &[
    "maglev_table_size",
    "conntrack_entries",
    "conntrack_insert_budget",
    "encapsulation",
    "services",
    "announce",
];
const ENCAP_KEYS: &[&str] = &[
    "source_v4",
    "source_v6",
    "gateway_mac",
    "gue_port",
    "source_prefix_v4",
    "source_prefix_v6",
];

/// A service as read, with where it is (for cross-service checks).
pub(super) struct ReadService {
    config: ServiceConfig,
    line: Option<usize>,
    location: String,
}

/// Walks `doc`; `None` when any problem was reported.
pub(crate) fn document(ctx: &mut Ctx<'_>, doc: &Value) -> Option<Config> {
    let root = ctx.lines.root();
    let top = MapView::new(ctx, doc, Some(root), Some(1), String::new(), TOP_KEYS)?;

    let table_size = top
        .uint(ctx, "maglev_table_size", u64::from(u32::MAX))
        .or_default(u64::from(DEFAULT_MAGLEV_TABLE_SIZE))
        .map(|n| n as u32);
    if let Some(m) = table_size {
        if m > MAX_TABLE_SIZE {
            top.report(
                ctx,
                "maglev_table_size",
                format!("maglev_table_size {m} exceeds the datapath maximum {MAX_TABLE_SIZE}"),
            );
        } else if !is_prime(m) {
            top.report(
                ctx,
                "maglev_table_size",
                format!("maglev_table_size {m} is not prime (e.g. 65537, 131071, 1000003)"),
            );
        }
    }

    let conntrack = top
        .uint(ctx, "conntrack_entries", u64::from(MAX_CONNTRACK_ENTRIES))
        .or_default(u64::from(DEFAULT_CONNTRACK_ENTRIES))
        .map(|n| n as u32);
    if conntrack == Some(0) {
        top.report(
            ctx,
            "conntrack_entries",
            "conntrack_entries must be at least 1",
        );
    }

    let insert_budget = top
        .uint(ctx, "conntrack_insert_budget", u64::from(u32::MAX))
        .or_default(u64::from(DEFAULT_INSERT_BUDGET))
        .map(|n| n as u32);

    let encapsulation = match top.get("encapsulation") {
        None => Some(EncapConfig::default()),
        Some(value) => encap(ctx, &top, value),
    };

    let announce = match top.get("announce") {
        None => Some(super::AnnounceConfig::default()),
        Some(value) => super::announce::announce(ctx, &top, value),
    };

    let services = match top.get("services") {
        None => {
            top.missing(ctx, "services");
            None
        }
        Some(Value::Sequence(items)) => {
            let blocks = top
                .key_block(ctx, "services")
                .map(|b| ctx.lines.items(b))
                .unwrap_or_default();
            let line = top.key_line(ctx, "services");
            let read: Vec<Option<ReadService>> = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let block = (blocks.len() == items.len()).then(|| blocks[i]);
                    service::service(ctx, i, item, block, line)
                })
                .collect();
            cross_checks::cross_checks(ctx, &top, &read);
            read.into_iter()
                .map(|s| s.map(|s| s.config))
                .collect::<Option<Vec<_>>>()
        }
        Some(other) => {
            top.report(
                ctx,
                "services",
                format!("services must be a list, got {}", describe(other)),
            );
            None
        }
    };

    if !ctx.problems.is_empty() {
        return None;
    }
    Some(Config {
        maglev_table_size: table_size?,
        conntrack_entries: conntrack?,
        conntrack_insert_budget: insert_budget?,
        encapsulation: encapsulation?,
        services: services?,
        announce: announce?,
    })
}

/// The `encapsulation:` mapping.
fn encap(ctx: &mut Ctx<'_>, top: &MapView<'_>, value: &Value) -> Option<EncapConfig> {
    let block = top.key_block(ctx, "encapsulation");
    let line = top.key_line(ctx, "encapsulation");
    let view = MapView::new(ctx, value, block, line, "encapsulation".into(), ENCAP_KEYS)?;
    let mut ok = true;
    let mut config = EncapConfig::default();
    match view.scalar_text(ctx, "source_v4") {
        Field::Value(text) => match text.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => config.source_v4 = Some(a),
            _ => {
                view.report(
                    ctx,
                    "source_v4",
                    format!("invalid IPv4 address {:?}", shortened(&text)),
                );
                ok = false;
            }
        },
        Field::Invalid => ok = false,
        Field::Absent => {}
    }
    match view.scalar_text(ctx, "source_v6") {
        Field::Value(text) => match text.parse::<IpAddr>() {
            Ok(IpAddr::V6(a)) => config.source_v6 = Some(a),
            _ => {
                view.report(
                    ctx,
                    "source_v6",
                    format!("invalid IPv6 address {:?}", shortened(&text)),
                );
                ok = false;
            }
        },
        Field::Invalid => ok = false,
        Field::Absent => {}
    }
    match view.scalar_text(ctx, "gateway_mac") {
        Field::Value(text) => match parse_mac(&text) {
            Some(mac) => config.gateway_mac = Some(mac),
            None => {
                view.report(
                    ctx,
                    "gateway_mac",
                    format!(
                        "invalid MAC address {:?} (expected aa:bb:cc:dd:ee:ff)",
                        shortened(&text)
                    ),
                );
                ok = false;
            }
        },
        Field::Invalid => ok = false,
        Field::Absent => {}
    }
    match view.uint(ctx, "gue_port", u64::from(u16::MAX)) {
        Field::Value(0) => {
            view.report(ctx, "gue_port", "gue_port must be 1..=65535, got 0");
            ok = false;
        }
        Field::Value(port) => config.gue_port = Some(port as u16),
        Field::Invalid => ok = false,
        Field::Absent => {}
    }
    let v4 = super::source_prefix::read(ctx, &view, "source_prefix_v4", 32);
    let v6 = super::source_prefix::read(ctx, &view, "source_prefix_v6", 128);
    match (v4, v6) {
        (Some(v4), Some(v6)) => {
            config.source_prefix_v4 = v4.map(|(base, len)| match base {
                IpAddr::V4(base) => super::SourcePrefix { base, len },
                IpAddr::V6(_) => unreachable!("read checks the family"),
            });
            config.source_prefix_v6 = v6.map(|(base, len)| match base {
                IpAddr::V6(base) => super::SourcePrefix { base, len },
                IpAddr::V4(_) => unreachable!("read checks the family"),
            });
        }
        _ => ok = false,
    }
    ok.then_some(config)
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-`): [`lb_common::MacAddr::parse`].
pub(crate) fn parse_mac(text: &str) -> Option<[u8; 6]> {
    lb_common::MacAddr::parse(text).map(lb_common::MacAddr::octets)
}
