//! Control-plane figures: Maglev table build time.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use anyhow::{Result, ensure};
use lb::maglev::{MaglevTable, NO_BACKEND, WeightedBackend};

use crate::report::{Report, Row, Target};

/// Maglev build time for the (M, N) pairs, median of several builds.
pub fn maglev(report: &mut Report, quick: bool) -> Result<()> {
    let runs = if quick { 1 } else { 21 };
    for (m, n, target) in [
        (65537u32, 10u32, None),
        (65537, 100, Some(Target::AtMost(2.0))),
        (65537, 1000, Some(Target::AtMost(5.0))),
        (655373, 1000, None),
    ] {
        let backends: Vec<WeightedBackend> = (0..n)
            .map(|i| WeightedBackend {
                address: IpAddr::V4(Ipv4Addr::new(
                    198,
                    18,
                    3 + (i / 250) as u8,
                    1 + (i % 250) as u8,
                )),
                weight: 1,
            })
            .collect();
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let start = Instant::now();
            let table = MaglevTable::build(m, &backends)?;
            times.push(start.elapsed().as_secs_f64() * 1e3);
            ensure!(
                table.size() == m && !table.slots().contains(&NO_BACKEND),
                "Maglev table M={m} N={n} has empty slots"
            );
        }
        times.sort_by(f64::total_cmp);
        report.push(Row {
            section: "control-plane",
            name: format!("Maglev build M={m} N={n}"),
            value: times[times.len() / 2],
            unit: "ms",
            target,
            versus: "paper: 1.8 ms at M=65537".into(),
        });
    }
    Ok(())
}
