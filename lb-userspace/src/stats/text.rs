//! The plain-text rendering of a snapshot (`lb stats`, `lb watch`).

use std::fmt::Write as _;
use std::net::IpAddr;

use lb_common::GlobalCounter;

use super::{Rates, Snapshot};
use crate::state::BackendState;

/// Renders `snap` as aligned text tables: a header line, one block per service
/// (service line, then a backend table), then the global counters. Rate columns
/// appear only when `rates` is given. Counters are exact integers; rates are
/// per second with an SI suffix (k, M, G).
pub fn render_text(snap: &Snapshot, rates: Option<&Rates>) -> String {
    let mut out = String::new();
    let mode = snap.xdp_mode.as_deref().unwrap_or("unknown mode");
    let attached = if snap.attached {
        format!("attached ({mode})")
    } else {
        "NOT attached (maps pinned, no XDP link)".to_string()
    };
    let _ = write!(out, "interface {}: {attached}", snap.iface);
    match snap.applied_at_unix_ms {
        Some(ms) => {
            let _ = write!(out, ", last apply {}", utc_time(ms));
        }
        None => out.push_str(", no applied state (services unknown)"),
    }
    out.push('\n');
    if let Some(r) = rates {
        let _ = writeln!(
            out,
            "rates per second over {:.2} s",
            r.elapsed.as_secs_f64()
        );
    }
    announcements(&mut out, snap);

    for (i, svc) in snap.services.iter().enumerate() {
        out.push('\n');
        let sr = rates.map(|r| r.service(i));
        let mut line = format!(
            "service {}  {}/{}  encap {}  table {}",
            svc.name,
            endpoint(svc.vip, svc.port),
            svc.protocol,
            svc.encap,
            svc.table_size
        );
        if let Some(f) = svc.fingerprint {
            let _ = write!(line, "  fingerprint {}", crate::maglev::fingerprint_hex(f));
        }
        if svc.panic {
            line.push_str("  PANIC");
        }
        let _ = writeln!(out, "{line}");
        let mut head = vec!["", "PACKETS"];
        let mut row = vec![String::new(), svc.counters.packets.to_string()];
        if let Some(sr) = sr {
            head.push("PKT/S");
            row.push(rate(sr.map(|s| s.packets_per_s)));
        }
        head.push("BYTES");
        row.push(svc.counters.bytes.to_string());
        if let Some(sr) = sr {
            head.push("BYTES/S");
            row.push(rate(sr.map(|s| s.bytes_per_s)));
        }
        head.push("NO_BACKEND");
        row.push(svc.counters.no_backend.to_string());
        if let Some(sr) = sr {
            head.push("NO_BACKEND/S");
            row.push(rate(sr.map(|s| s.no_backend_per_s)));
        }
        table(&mut out, "  ", &head, &[row], 1);

        let mut head = vec![
            "BACKEND", "ID", "STATE", "WEIGHT", "SLOTS", "SHARE", "PACKETS",
        ];
        if rates.is_some() {
            head.push("PKT/S");
        }
        head.push("BYTES");
        if rates.is_some() {
            head.push("BYTES/S");
        }
        head.push("NEW_FLOWS");
        if rates.is_some() {
            head.push("FLOWS/S");
        }
        let rows: Vec<Vec<String>> = svc
            .backends
            .iter()
            .enumerate()
            .map(|(j, b)| {
                let br = rates.map(|r| r.backend(i, j));
                let mut row = vec![
                    b.address.to_string(),
                    b.id.to_string(),
                    state_label(b.state).to_string(),
                    b.weight.to_string(),
                    b.slots.to_string(),
                    format!("{:.1}%", 100.0 * b.share(svc.table_size)),
                    b.counters.packets.to_string(),
                ];
                if let Some(br) = br {
                    row.push(rate(br.map(|r| r.packets_per_s)));
                }
                row.push(b.counters.bytes.to_string());
                if let Some(br) = br {
                    row.push(rate(br.map(|r| r.bytes_per_s)));
                }
                row.push(b.counters.new_flows.to_string());
                if let Some(br) = br {
                    row.push(rate(br.map(|r| r.new_flows_per_s)));
                }
                row
            })
            .collect();
        if rows.is_empty() {
            out.push_str("  (no backends)\n");
        } else {
            table(&mut out, "  ", &head, &rows, 3);
        }
    }

    out.push('\n');
    let mut head = vec!["GLOBAL", "COUNT"];
    if rates.is_some() {
        head.push("PER_S");
    }
    let rows: Vec<Vec<String>> = GlobalCounter::ALL
        .iter()
        .map(|c| {
            let mut row = vec![c.label().to_string(), snap.global(*c).to_string()];
            if let Some(r) = rates {
                row.push(rate(r.global.get(*c as usize).copied()));
            }
            row
        })
        .collect();
    table(&mut out, "", &head, &rows, 1);
    out
}

/// The node's drain state and each VIP's announcement (what its BGP daemon
/// is told), one line each.
fn announcements(out: &mut String, snap: &Snapshot) {
    if snap.draining {
        out.push_str(
            "node DRAINING: every VIP withdrawn (announce.enabled: false or lb drain); forwarding continues\n",
        );
    }
    for v in &snap.vips {
        let _ = if v.announced {
            writeln!(out, "vip {}  announced ({})", v.vip, v.reason)
        } else {
            writeln!(out, "vip {}  NOT announced: {}", v.vip, v.reason)
        };
    }
}

/// "active" / "draining" / "down".
pub(super) fn state_label(state: BackendState) -> &'static str {
    match state {
        BackendState::Active => "active",
        BackendState::Draining => "draining",
        BackendState::Down => "down",
    }
}

/// `addr:port`, with brackets for IPv6 and `*` for port 0 (every port).
pub(super) fn endpoint(addr: IpAddr, port: u16) -> String {
    let port = if port == 0 {
        "*".to_string()
    } else {
        port.to_string()
    };
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// A per-second rate with an SI suffix; `-` when unknown.
pub(super) fn rate(value: Option<f64>) -> String {
    let Some(v) = value else {
        return "-".to_string();
    };
    let (scaled, suffix) = if v >= 1e9 {
        (v / 1e9, "G")
    } else if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    format!("{scaled:.1}{suffix}")
}

/// Writes an aligned table: the first `left` columns left-aligned, the rest
/// right-aligned, every line prefixed by `indent`.
pub(super) fn table(
    out: &mut String,
    indent: &str,
    head: &[&str],
    rows: &[Vec<String>],
    left: usize,
) {
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::from(indent);
        for (k, (cell, w)) in cells.zip(&widths).enumerate() {
            if k > 0 {
                text.push_str("  ");
            }
            if k < left {
                let _ = write!(text, "{cell:<w$}");
            } else {
                let _ = write!(text, "{cell:>w$}");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut head.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` from Unix milliseconds (proleptic Gregorian).
fn utc_time(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_time_matches_known_instants() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        // 2024-02-29 12:34:56 UTC
        assert_eq!(utc_time(1_709_210_096_000), "2024-02-29 12:34:56 UTC");
    }

    #[test]
    fn rates_get_si_suffixes() {
        assert_eq!(rate(None), "-");
        assert_eq!(rate(Some(12.0)), "12.0");
        assert_eq!(rate(Some(1500.0)), "1.5k");
        assert_eq!(rate(Some(2.5e6)), "2.5M");
        assert_eq!(rate(Some(3e9)), "3.0G");
    }

    #[test]
    fn ipv6_endpoints_are_bracketed() {
        assert_eq!(
            endpoint("2001:2::1".parse().unwrap(), 443),
            "[2001:2::1]:443"
        );
        assert_eq!(endpoint("198.18.0.1".parse().unwrap(), 0), "198.18.0.1:*");
    }
}
