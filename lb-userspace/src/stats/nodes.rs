//! The plain-text view of several nodes of a tier at once (`lb watch
//! --netns A,B,C`): one line per node (attached, draining, announced VIPs,
//! new flows), then per service one row per backend with a new-flows column
//! per node and the tier's total and share (pure).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use super::text::{endpoint, rate, state_label, table};
use super::{Rates, Snapshot};

/// One node as the view shows it.
#[derive(Clone, Copy, Debug)]
pub struct NodeView<'a> {
    /// The node's name (its network namespace).
    pub name: &'a str,
    /// Its snapshot, or why it could not be read.
    pub snapshot: Result<&'a Snapshot, &'a str>,
    /// Rates since its previous snapshot.
    pub rates: Option<&'a Rates>,
}

/// A service as the view lists it: name, title line, (backend, state) rows.
type ServiceRows = (String, String, Vec<(IpAddr, &'static str)>);

/// New flows of one backend of one service on a node: the per-second rate
/// when rates are known, else the counter.
fn backend_new(view: &NodeView<'_>, service: &str, address: IpAddr) -> Option<f64> {
    let snap = view.snapshot.ok()?;
    let (i, svc) = snap
        .services
        .iter()
        .enumerate()
        .find(|(_, s)| s.name == service)?;
    let (j, b) = svc
        .backends
        .iter()
        .enumerate()
        .find(|(_, b)| b.address == address)?;
    match view.rates {
        Some(r) => r.backend(i, j).map(|br| br.new_flows_per_s),
        None => Some(b.counters.new_flows as f64),
    }
}

/// Renders the nodes side by side. With rates, the numbers are new flows per
/// second; without, new-flow counters.
pub fn render_nodes_text(nodes: &[NodeView<'_>]) -> String {
    let mut out = String::new();
    let with_rates = nodes.iter().any(|n| n.rates.is_some());
    let unit = if with_rates { "NEW/S" } else { "NEW" };
    let _ = writeln!(
        out,
        "{} nodes; new flows {}",
        nodes.len(),
        if with_rates { "per second" } else { "so far" }
    );
    let head = ["NODE", "XDP", "DRAINING", "ANNOUNCED", unit];
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| match n.snapshot {
            Err(e) => vec![n.name.into(), format!("unreadable: {e}")],
            Ok(s) => {
                let announced: Vec<String> = s
                    .vips
                    .iter()
                    .filter(|v| v.announced)
                    .map(|v| v.vip.to_string())
                    .collect();
                let total: f64 = s
                    .services
                    .iter()
                    .flat_map(|svc| svc.backends.iter().map(move |b| (svc, b)))
                    .filter_map(|(svc, b)| backend_new(n, &svc.name, b.address))
                    .sum();
                vec![
                    n.name.into(),
                    if s.attached {
                        s.xdp_mode.clone().unwrap_or_else(|| "attached".into())
                    } else {
                        "NOT attached".into()
                    },
                    if s.draining { "yes" } else { "no" }.into(),
                    if announced.is_empty() {
                        "none".into()
                    } else {
                        announced.join(" ")
                    },
                    rate(Some(total)),
                ]
            }
        })
        .collect();
    table(&mut out, "", &head, &rows, 4);
    // Services and their backends, in the order the first readable node has them.
    let mut services: Vec<ServiceRows> = Vec::new();
    for snap in nodes.iter().filter_map(|n| n.snapshot.ok()) {
        for svc in &snap.services {
            if services.iter().any(|(name, _, _)| *name == svc.name) {
                continue;
            }
            let title = format!(
                "service {}  {}/{}",
                svc.name,
                endpoint(svc.vip, svc.port),
                svc.protocol
            );
            let backends = svc
                .backends
                .iter()
                .map(|b| (b.address, state_label(b.state)))
                .collect();
            services.push((svc.name.clone(), title, backends));
        }
    }
    for (name, title, backends) in services {
        let _ = writeln!(out, "\n{title}  {}", fingerprints(nodes, &name));
        let mut head: Vec<String> = vec!["BACKEND".into(), "STATE".into()];
        head.extend(nodes.iter().map(|n| format!("{} {unit}", n.name)));
        head.extend(["ALL".into(), "SHARE".into()]);
        let per_backend: Vec<(IpAddr, &str, Vec<Option<f64>>)> = backends
            .iter()
            .map(|(addr, state)| {
                let cells = nodes.iter().map(|n| backend_new(n, &name, *addr)).collect();
                (*addr, *state, cells)
            })
            .collect();
        let grand: f64 = per_backend
            .iter()
            .flat_map(|(_, _, c)| c.iter().flatten())
            .sum();
        let rows: Vec<Vec<String>> = per_backend
            .iter()
            .map(|(addr, state, cells)| {
                let all: f64 = cells.iter().flatten().sum();
                let mut row = vec![addr.to_string(), (*state).to_string()];
                row.extend(cells.iter().map(|c| rate(*c)));
                row.push(rate(Some(all)));
                row.push(if grand > 0.0 {
                    format!("{:.1} %", all * 100.0 / grand)
                } else {
                    "-".into()
                });
                row
            })
            .collect();
        let head: Vec<&str> = head.iter().map(String::as_str).collect();
        table(&mut out, "  ", &head, &rows, 2);
    }
    out
}

/// "tables agree (fingerprint X)" or the fingerprint of each node when they differ.
fn fingerprints(nodes: &[NodeView<'_>], service: &str) -> String {
    let prints: BTreeMap<&str, Option<u32>> = nodes
        .iter()
        .filter_map(|n| {
            let svc = n
                .snapshot
                .ok()?
                .services
                .iter()
                .find(|s| s.name == service)?;
            Some((n.name, svc.fingerprint))
        })
        .collect();
    let mut distinct: Vec<Option<u32>> = prints.values().copied().collect();
    distinct.sort_unstable();
    distinct.dedup();
    match distinct.as_slice() {
        [Some(f)] => format!("tables agree ({})", crate::maglev::fingerprint_hex(*f)),
        [] | [None] => String::new(),
        _ => {
            let each: Vec<String> = prints
                .iter()
                .map(|(node, f)| {
                    format!(
                        "{node} {}",
                        f.map_or("-".into(), crate::maglev::fingerprint_hex)
                    )
                })
                .collect();
            format!("TABLES DIFFER: {}", each.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::stats::tests::sample;

    #[test]
    fn one_column_per_node_with_totals_and_shares() {
        let (a0, a1, b1) = (sample(1), sample(2), sample(3));
        let rates = Rates::between(&a0, &a1, Duration::from_secs(1));
        let text = render_nodes_text(&[
            NodeView {
                name: "n1",
                snapshot: Ok(&a1),
                rates: Some(&rates),
            },
            NodeView {
                name: "n2",
                snapshot: Ok(&b1),
                rates: None,
            },
            NodeView {
                name: "n3",
                snapshot: Err("not attached"),
                rates: None,
            },
        ]);
        assert!(
            text.starts_with("3 nodes; new flows per second\n"),
            "{text}"
        );
        assert!(text.contains("n3    unreadable: not attached"), "{text}");
        assert!(text.contains("n1 NEW/S  n2 NEW/S  n3 NEW/S"), "{text}");
        assert!(
            text.contains("service dns6  [2001:2::100:1]:53/udp"),
            "{text}"
        );
        assert!(text.contains("  2001:2::3:2  down"), "{text}");
        assert!(text.contains("198.18.100.1"), "{text}");
    }
}
