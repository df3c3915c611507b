//! A service's `health_check:` mapping.

use serde_yaml::Value;

use crate::config::fields::{Ctx, Field, MapView, shortened};
use crate::config::input::MAX_PATH_BYTES;
use crate::config::{HealthCheckConfig, HealthCheckKind};

const HEALTH_KEYS: &[&str] = &[
    "kind",
    "port",
    "path",
    "interval_ms",
    "timeout_ms",
    "rise",
    "fall",
];

/// A service's `health_check:` mapping.
pub(super) fn health_check(
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
