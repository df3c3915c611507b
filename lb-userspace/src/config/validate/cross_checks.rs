//! Checks across services: names, (VIP, port, protocol), datapath limits.

use std::collections::HashMap;
use std::net::IpAddr;

use lb_common::maps::{MAX_BACKENDS, MAX_SERVICES, MAX_VIP_ENTRIES, vip_entries};

use super::ReadService;
use crate::config::fields::{Ctx, MapView, shortened};
use crate::config::{Protocol, ServiceConfig};

/// Checks across services: names, (vip, port, protocol), datapath limits.
pub(super) fn cross_checks(ctx: &mut Ctx<'_>, top: &MapView<'_>, services: &[Option<ReadService>]) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut keys: HashMap<(IpAddr, u16, Protocol), &str> = HashMap::new();
    for service in services.iter().flatten() {
        let config = &service.config;
        if let Some(first) = names.insert(&config.name, service.line.unwrap_or(0)) {
            let at = if first > 0 {
                format!(" (first at line {first})")
            } else {
                String::new()
            };
            ctx.report(
                service.line,
                service.location.clone(),
                format!("duplicate service name {:?}{at}", config.name),
            );
        }
        let key = (config.vip, config.port, config.protocol);
        if let Some(other) = keys.insert(key, &config.name) {
            let proto = config.protocol.as_str();
            let endpoint = match config.vip {
                IpAddr::V4(a) => format!("{a}:{}", config.port),
                IpAddr::V6(a) => format!("[{a}]:{}", config.port),
            };
            ctx.report(
                service.line,
                service.location.clone(),
                format!(
                    "same VIP, port and protocol ({endpoint}/{proto}) as service {:?}",
                    shortened(other)
                ),
            );
        }
    }
    let read: Vec<&ServiceConfig> = services.iter().flatten().map(|s| &s.config).collect();
    let vips: std::collections::BTreeSet<IpAddr> = read.iter().map(|s| s.vip).collect();
    let entries = vip_entries(read.len() as u32, vips.len() as u32);
    if services.len() > MAX_SERVICES as usize {
        top.report(
            ctx,
            "services",
            format!(
                "{} services, the datapath holds at most {MAX_SERVICES}",
                services.len()
            ),
        );
    } else if entries > MAX_VIP_ENTRIES {
        top.report(
            ctx,
            "services",
            format!(
                "{} services on {} distinct VIP addresses need {entries} VIP map entries \
                 (one per service plus one per VIP address), the datapath holds at most \
                 {MAX_VIP_ENTRIES}",
                read.len(),
                vips.len()
            ),
        );
    }
    let backends: usize = services
        .iter()
        .flatten()
        .map(|s| s.config.backends.len())
        .sum();
    if backends > MAX_BACKENDS as usize {
        top.report(
            ctx,
            "services",
            format!("{backends} backends in total, the datapath holds at most {MAX_BACKENDS}"),
        );
    }
}
