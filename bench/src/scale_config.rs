//! Configs of the control-plane benchmarks and the scale events between them
//! (pure): `services` TCP services of `backends` backends each, and a cycle of
//! events that each change one service's backend set, so that every save
//! rebuilds and swaps exactly one Maglev table.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// Connection-table size of the benchmark configs: small (the kernel
/// preallocates it, and it is not what these benchmarks measure).
pub const CONNTRACK_ENTRIES: u32 = 262_144;

/// The VIP of service `i` (0-based): 198.19.(i / 200).(1 + i % 200).
pub fn vip(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(198, 19, (i / 200) as u8, (1 + i % 200) as u8)
}

/// Backend `j` (0-based, up to 249) of service `i` (up to 199): 198.18.(1 + i).(1 + j).
pub fn backend(i: u32, j: u32) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, (1 + i) as u8, (1 + j) as u8)
}

/// The state of the one extra backend the events add, reweight and remove.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extra {
    /// Not in the config.
    Absent,
    /// Present with this weight.
    Weight(u32),
}

/// One scale event: which service changes and what its extra backend becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The service (0-based).
    pub service: u32,
    /// Its extra backend afterwards.
    pub extra: Extra,
}

impl Event {
    /// Event `k` over `services` services: each service in turn gets its extra
    /// backend added (weight 1), reweighted (3), then removed.
    pub fn nth(k: u32, services: u32) -> Event {
        let service = (k / 3) % services;
        let extra = match k % 3 {
            0 => Extra::Weight(1),
            1 => Extra::Weight(3),
            _ => Extra::Absent,
        };
        Event { service, extra }
    }

    /// Backends that take new flows in the changed service afterwards.
    pub fn backends_after(self, backends: u32) -> u32 {
        match self.extra {
            Extra::Absent => backends,
            Extra::Weight(_) => backends + 1,
        }
    }
}

/// The YAML of `services` x `backends`, where `extras[i]` is service i's extra
/// backend (index `backends`).
pub fn yaml(services: u32, backends: u32, extras: &[Extra]) -> String {
    let mut out = format!("conntrack_entries: {CONNTRACK_ENTRIES}\nservices:\n");
    for i in 0..services {
        let _ = writeln!(
            out,
            "  - name: s{i}\n    vip: {}\n    port: 80\n    protocol: tcp\n    backends:",
            vip(i)
        );
        for j in 0..backends {
            let _ = writeln!(out, "      - {{ address: {} }}", backend(i, j));
        }
        if let Some(Extra::Weight(w)) = extras.get(i as usize) {
            let _ = writeln!(
                out,
                "      - {{ address: {}, weight: {w} }}",
                backend(i, backends)
            );
        }
    }
    out
}

/// The `p`-th percentile (0..=100) of `values` by nearest rank; `None` when empty.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// The agent's own "file change to applied" times: the `N` of its
/// `applied in N ms` log lines, in order.
pub fn applied_ms(log: &str) -> Vec<f64> {
    log.lines()
        .filter_map(|l| {
            let rest = l.split(" applied in ").nth(1)?;
            rest.split(" ms").next()?.trim().parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_cycle_add_reweight_remove_per_service() {
        let e: Vec<Event> = (0..7).map(|k| Event::nth(k, 2)).collect();
        assert_eq!(e[0].extra, Extra::Weight(1));
        assert_eq!(e[1].extra, Extra::Weight(3));
        assert_eq!(e[2].extra, Extra::Absent);
        assert_eq!((e[0].service, e[3].service, e[6].service), (0, 1, 0));
        assert_eq!(e[0].backends_after(10), 11);
        assert_eq!(e[2].backends_after(10), 10);
    }

    #[test]
    fn configs_pass_lb_validation() {
        let mut extras = vec![Extra::Absent; 100];
        extras[7] = Extra::Weight(3);
        let c = lb::config::parse(&yaml(100, 100, &extras)).expect("valid");
        assert_eq!(c.services.len(), 100);
        assert_eq!(c.services[7].backends.len(), 101);
        assert_eq!(c.services[99].backends.len(), 100);
        assert_eq!(c.conntrack_entries, CONNTRACK_ENTRIES);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 99.0), Some(3.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn agent_log_times() {
        let log = "x initial apply: 3 services — 9 map ops, applied in 12.5 ms\nother\n\
                   y config file changed: s0 +1 — 3 map ops, applied in 24.0 ms\n";
        assert_eq!(applied_ms(log), vec![12.5, 24.0]);
    }
}
