//! One item of `services:` and its backends.

use std::collections::HashMap;
use std::net::IpAddr;

use serde_yaml::Value;

use super::ReadService;
use super::health_check::health_check;
use crate::config::fields::{Ctx, Field, MapView, describe, shortened};
use crate::config::input::MAX_NAME_BYTES;
use crate::config::lines::Block;
use crate::config::{
    BackendConfig, DEFAULT_PANIC_THRESHOLD, DEFAULT_SECOND_CHANCE_S, Encapsulation,
    MAX_SECOND_CHANCE_S, Protocol, ServiceConfig,
};

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

/// One item of `services:`.
pub(super) fn service(
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
