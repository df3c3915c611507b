//! Control-plane figures: Maglev table build time, and the real agent's
//! scale-event latency and memory (`scale_latency.rs`).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use anyhow::{Result, ensure};
use lb::maglev::{MaglevTable, NO_BACKEND, WeightedBackend};

use crate::report::{Report, Row, Target};
use crate::scale_latency;

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

/// Scale-event latency at 10 x 10 (100 events; quick: 3) and, in a full run,
/// 100 x 100 (20 events); agent memory from the largest agent (100 x 100;
/// quick: 10 x 10).
pub fn agent(report: &mut Report, quick: bool) -> Result<()> {
    let p99 = Some(Target::AtMost(50.0));
    if quick {
        scale_latency::run(report, 10, 10, 3, p99, true)?;
    } else {
        scale_latency::run(report, 10, 10, 100, p99, false)?;
        scale_latency::run(report, 100, 100, 20, None, true)?;
    }
    report.note(
        "scale events: the real agent (lb run) on a veth in a namespace, default Maglev M=65537; each save \
         (temporary file renamed over the config) adds, reweights or removes one backend of one service; \
         latency = save -> that service's VIPS entry points at its new table, polled through the pins every 1 ms; \
         the next save waits for the agent's log line. Memory: VmRSS/VmHWM of that agent after its first apply",
    );
    Ok(())
}
