//! Walks the YAML document, building a [`Config`] and collecting every problem.

use std::collections::HashMap;
use std::net::IpAddr;

use lb_common::maps::{
    DEFAULT_CONNTRACK_ENTRIES, DEFAULT_INSERT_BUDGET, MAX_BACKENDS, MAX_SERVICES, MAX_TABLE_SIZE,
    MAX_VIP_ENTRIES, vip_entries,
};
use serde_yaml::Value;

use crate::maglev::is_prime;

use super::fields::{Ctx, Field, MapView, describe, shortened};
use super::input::{MAX_NAME_BYTES, MAX_PATH_BYTES};
use super::lines::Block;
use super::{
    BackendConfig, Config, DEFAULT_MAGLEV_TABLE_SIZE, DEFAULT_PANIC_THRESHOLD,
    DEFAULT_SECOND_CHANCE_S, EncapConfig, Encapsulation, HealthCheckConfig, HealthCheckKind,
    MAX_SECOND_CHANCE_S, Protocol, ServiceConfig,
};

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
const SERVICE_KEYS: &[&str] = &[
    "name",
    "vip",
    "port",
    "protocol",
    "backends",
    "health_check",
    "panic_threshold",
    "encap",
    "second_chance_s",
];
const BACKEND_KEYS: &[&str] = &["address", "weight", "drain"];
const HEALTH_KEYS: &[&str] = &[
    "kind",
    "port",
    "path",
    "interval_ms",
    "timeout_ms",
    "rise",
    "fall",
];

/// A service as read, with where it is (for cross-service checks).
struct ReadService {
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
        .uint(ctx, "conntrack_entries", u64::from(u32::MAX))
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
                    service(ctx, i, item, block, line)
                })
                .collect();
            cross_checks(ctx, &top, &read);
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

/// One item of `services:`.
fn service(
    ctx: &mut Ctx<'_>,
    index: usize,
    value: &Value,
    block: Option<Block>,
    services_line: Option<usize>,
) -> Option<ReadService> {
    let name = value
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= MAX_NAME_BYTES);
    let location = match name {
        Some(name) => format!("services[{name}]"),
        None => format!("services[#{}]", index + 1),
    };
    let line = block
        .and_then(|b| ctx.lines.first_line(b))
        .or(services_line);
    let view = MapView::new(ctx, value, block, line, location.clone(), SERVICE_KEYS)?;
    let line = view.line;

    let name = match view.string(ctx, "name").required(ctx, &view, "name") {
        Some("") => {
            view.report(ctx, "name", "name must not be empty");
            None
        }
        Some(long) if long.len() > MAX_NAME_BYTES => {
            view.report(
                ctx,
                "name",
                format!(
                    "name of {} bytes, longer than the limit of {MAX_NAME_BYTES}",
                    long.len()
                ),
            );
            None
        }
        other => other.map(str::to_string),
    };

    let vip = match view.scalar_text(ctx, "vip").required(ctx, &view, "vip") {
        Some(text) => match text.parse::<IpAddr>() {
            Ok(vip) => Some(vip),
            Err(_) => {
                view.report(
                    ctx,
                    "vip",
                    format!("invalid address {:?}", shortened(&text)),
                );
                None
            }
        },
        None => None,
    };

    let port = view
        .uint(ctx, "port", u64::from(u16::MAX))
        .required(ctx, &view, "port")
        .map(|p| p as u16);

    let protocol = match view
        .string(ctx, "protocol")
        .required(ctx, &view, "protocol")
    {
        Some("tcp") => Some(Protocol::Tcp),
        Some("udp") => Some(Protocol::Udp),
        Some(other) => {
            view.report(
                ctx,
                "protocol",
                format!(
                    "unknown protocol {:?} (expected tcp or udp)",
                    shortened(other)
                ),
            );
            None
        }
        None => None,
    };

    let backends = match view.get("backends") {
        None => {
            view.missing(ctx, "backends");
            None
        }
        Some(Value::Sequence(items)) => {
            if items.is_empty() {
                view.report(ctx, "backends", "service has no backends");
            }
            let blocks = view
                .key_block(ctx, "backends")
                .map(|b| ctx.lines.items(b))
                .unwrap_or_default();
            let backends_line = view.key_line(ctx, "backends");
            let mut seen: HashMap<IpAddr, usize> = HashMap::new();
            let mut all = Some(Vec::new());
            for (i, item) in items.iter().enumerate() {
                let block = (blocks.len() == items.len()).then(|| blocks[i]);
                let backend = backend(ctx, &location, i, item, block, backends_line, vip);
                if let Some((backend, line, backend_location)) = &backend
                    && let Some(first) = seen.insert(backend.address, i)
                {
                    ctx.report(
                        *line,
                        backend_location.clone(),
                        format!(
                            "duplicate backend {} (also backend #{} of this service)",
                            backend.address,
                            first + 1
                        ),
                    );
                }
                match (backend, all.as_mut()) {
                    (Some((b, _, _)), Some(all)) => all.push(b),
                    _ => all = None,
                }
            }
            all
        }
        Some(other) => {
            view.report(
                ctx,
                "backends",
                format!("backends must be a list, got {}", describe(other)),
            );
            None
        }
    };

    let health_check = match view.get("health_check") {
        None => Some(None),
        Some(value) => health_check(ctx, &view, value, port).map(Some),
    };

    let panic_threshold = match view.float(ctx, "panic_threshold") {
        Field::Absent => Some(DEFAULT_PANIC_THRESHOLD),
        Field::Invalid => None,
        Field::Value(x) if (0.0..=1.0).contains(&x) => Some(x),
        Field::Value(x) => {
            view.report(
                ctx,
                "panic_threshold",
                format!("panic_threshold {x} outside 0.0..=1.0"),
            );
            None
        }
    };

    let encap = match view.string(ctx, "encap") {
        Field::Absent => Some(Encapsulation::Ipip),
        Field::Invalid => None,
        Field::Value("ipip") => Some(Encapsulation::Ipip),
        Field::Value("gue") => Some(Encapsulation::Gue),
        Field::Value(other) => {
            view.report(
                ctx,
                "encap",
                format!(
                    "unknown encap {:?} (expected ipip or gue)",
                    shortened(other)
                ),
            );
            None
        }
    };

    let second_chance_s = match view.uint(ctx, "second_chance_s", u64::from(u32::MAX)) {
        Field::Absent => Some(DEFAULT_SECOND_CHANCE_S),
        Field::Invalid => None,
        Field::Value(s) if s <= u64::from(MAX_SECOND_CHANCE_S) => Some(s as u32),
        Field::Value(s) => {
            view.report(
                ctx,
                "second_chance_s",
                format!("second_chance_s {s} exceeds the limit of {MAX_SECOND_CHANCE_S} (one day)"),
            );
            None
        }
    };

    Some(ReadService {
        config: ServiceConfig {
            name: name?,
            vip: vip?,
            port: port?,
            protocol: protocol?,
            backends: backends?,
            health_check: health_check?,
            panic_threshold: panic_threshold?,
            encap: encap?,
            second_chance_s: second_chance_s?,
        },
        line,
        location,
    })
}

/// One item of a service's `backends:`; with its line and location.
fn backend(
    ctx: &mut Ctx<'_>,
    service: &str,
    index: usize,
    value: &Value,
    block: Option<Block>,
    backends_line: Option<usize>,
    vip: Option<IpAddr>,
) -> Option<(BackendConfig, Option<usize>, String)> {
    let address_text = match value {
        // `- 198.18.3.2` alone is a common slip: say what is expected.
        Value::String(s) => Some(s.clone()),
        _ => value.get("address").and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }),
    };
    let location = match &address_text {
        Some(text) if text.len() <= MAX_ADDRESS_TEXT => format!("{service}.backends[{text}]"),
        _ => format!("{service}.backends[#{}]", index + 1),
    };
    let line = block
        .and_then(|b| ctx.lines.first_line(b))
        .or(backends_line);
    let view = MapView::new(ctx, value, block, line, location.clone(), BACKEND_KEYS)?;
    let line = view.line;

    let address = match view
        .scalar_text(ctx, "address")
        .required(ctx, &view, "address")
    {
        Some(text) => match text.parse::<IpAddr>() {
            Ok(address) => {
                if let Some(vip) = vip
                    && vip.is_ipv4() != address.is_ipv4()
                {
                    view.report_on_line_of(
                        ctx,
                        "address",
                        format!(
                            "backend {address} is {} but the VIP {vip} is {}",
                            family(address),
                            family(vip)
                        ),
                    );
                }
                Some(address)
            }
            Err(_) => {
                view.report_on_line_of(
                    ctx,
                    "address",
                    format!("invalid address {:?}", shortened(&text)),
                );
                None
            }
        },
        None => None,
    };
    let weight = view
        .uint(ctx, "weight", u64::from(u32::MAX))
        .or_default(1)
        .map(|w| w as u32);
    let drain = view.boolean(ctx, "drain").or_default(false);
    Some((
        BackendConfig {
            address: address?,
            weight: weight?,
            drain: drain?,
        },
        line,
        location,
    ))
}

/// Longest address text shown in a location (the longest IPv6 text is 45).
const MAX_ADDRESS_TEXT: usize = 64;

fn family(address: IpAddr) -> &'static str {
    if address.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// A service's `health_check:` mapping.
fn health_check(
    ctx: &mut Ctx<'_>,
    service: &MapView<'_>,
    value: &Value,
    service_port: Option<u16>,
) -> Option<HealthCheckConfig> {
    let block = service.key_block(ctx, "health_check");
    let line = service.key_line(ctx, "health_check");
    let location = format!("{}.health_check", service.location);
    let view = MapView::new(ctx, value, block, line, location, HEALTH_KEYS)?;

    let kind = match view.string(ctx, "kind").or_default("tcp") {
        Some("tcp") => Some(HealthCheckKind::Tcp),
        Some("http") => Some(HealthCheckKind::Http),
        Some(other) => {
            view.report(
                ctx,
                "kind",
                format!(
                    "unknown health check kind {:?} (expected tcp or http)",
                    shortened(other)
                ),
            );
            None
        }
        None => None,
    };
    let port = match view.uint(ctx, "port", u64::from(u16::MAX)) {
        Field::Value(0) => {
            view.report(ctx, "port", "health check port must not be 0");
            None
        }
        Field::Value(p) => Some(p as u16),
        Field::Invalid => None,
        Field::Absent => match service_port {
            Some(0) => {
                view.report_here(
                    ctx,
                    "the service listens on every port (port 0): set health_check.port",
                );
                None
            }
            other => other,
        },
    };
    let path = match view.string(ctx, "path").or_default("/") {
        Some(path) if path.len() > MAX_PATH_BYTES => {
            view.report(
                ctx,
                "path",
                format!(
                    "path of {} bytes, longer than the limit of {MAX_PATH_BYTES}",
                    path.len()
                ),
            );
            None
        }
        Some(path) if path.starts_with('/') => Some(path.to_string()),
        Some(path) => {
            view.report(
                ctx,
                "path",
                format!("path {:?} must start with '/'", shortened(path)),
            );
            None
        }
        None => None,
    };
    let interval_ms = view.uint(ctx, "interval_ms", u64::MAX).or_default(1000);
    let timeout_ms = view.uint(ctx, "timeout_ms", u64::MAX).or_default(500);
    if interval_ms == Some(0) {
        view.report(ctx, "interval_ms", "interval_ms must be at least 1");
    }
    if timeout_ms == Some(0) {
        view.report(ctx, "timeout_ms", "timeout_ms must be at least 1");
    }
    if let (Some(interval), Some(timeout)) = (interval_ms, timeout_ms)
        && interval > 0
        && timeout >= interval
    {
        view.report(
            ctx,
            "timeout_ms",
            format!("timeout_ms ({timeout}) must be less than interval_ms ({interval})"),
        );
    }
    let rise = view.uint(ctx, "rise", u64::from(u32::MAX)).or_default(2);
    let fall = view.uint(ctx, "fall", u64::from(u32::MAX)).or_default(3);
    for (key, value) in [("rise", rise), ("fall", fall)] {
        if value == Some(0) {
            view.report(ctx, key, format!("{key} must be at least 1"));
        }
    }
    Some(HealthCheckConfig {
        kind: kind?,
        port: port?,
        path: path?,
        interval_ms: interval_ms.filter(|&n| n > 0)?,
        timeout_ms: timeout_ms.filter(|&n| n > 0)?,
        rise: rise.filter(|&n| n > 0)? as u32,
        fall: fall.filter(|&n| n > 0)? as u32,
    })
}

/// Checks across services: names, (vip, port, protocol), datapath limits.
fn cross_checks(ctx: &mut Ctx<'_>, top: &MapView<'_>, services: &[Option<ReadService>]) {
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
            let proto = match config.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
            };
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
