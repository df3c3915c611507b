//! Times `MaglevTable::build` (the Maglev paper reports 1.8 ms at M=65537).
//!
//! `cargo run --release -p lb-userspace --example maglev_bench -- [--quick]`
//!
//! Prints a JSON array `[{"m":..,"n":..,"median_us":..,"runs":..}]` on stdout
//! and one human-readable line per case on stderr. Every built table is
//! checked (every backend owns floor(M/N) or ceil(M/N) slots); a wrong table
//! exits non-zero. `--quick` builds each table once.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use lb::maglev::{MaglevTable, WeightedBackend};

/// (M, N) cases.
const CASES: [(u32, u32); 4] = [(65537, 10), (65537, 100), (65537, 1000), (655373, 1000)];
/// Timed runs per case (the median is reported).
const RUNS: usize = 21;
/// Untimed warm-up runs per case.
const WARMUP: usize = 3;

fn backends(n: u32) -> Vec<WeightedBackend> {
    (0..n)
        .map(|i| WeightedBackend {
            address: IpAddr::V4(Ipv4Addr::new(198, 18, (i >> 8) as u8, i as u8)),
            weight: 1,
        })
        .collect()
}

/// Checks that every backend owns floor(M/N) or ceil(M/N) slots.
fn check(table: &MaglevTable, m: u32, n: u32) -> Result<(), String> {
    if table.size() != m {
        return Err(format!("size {} != {m}", table.size()));
    }
    let counts = table.slot_counts(n as usize);
    let (floor, ceil) = (m / n, m.div_ceil(n));
    match counts.iter().position(|&c| c != floor && c != ceil) {
        Some(i) => Err(format!(
            "backend {i} owns {} slots, want {floor}..={ceil}",
            counts[i]
        )),
        None => Ok(()),
    }
}

fn main() -> ExitCode {
    let quick = std::env::args().skip(1).any(|a| a == "--quick");
    let (warmup, runs) = if quick { (0, 1) } else { (WARMUP, RUNS) };
    let mut results = Vec::new();
    for (m, n) in CASES {
        let input = backends(n);
        for _ in 0..warmup {
            std::hint::black_box(MaglevTable::build(m, &input).expect("prime size"));
        }
        let mut times: Vec<Duration> = Vec::with_capacity(runs);
        for _ in 0..runs {
            let start = Instant::now();
            let table = MaglevTable::build(m, std::hint::black_box(&input)).expect("prime size");
            times.push(start.elapsed());
            if let Err(problem) = check(&table, m, n) {
                eprintln!("maglev_bench: wrong table for M={m} N={n}: {problem}");
                return ExitCode::FAILURE;
            }
        }
        times.sort_unstable();
        let median_us = times[times.len() / 2].as_secs_f64() * 1e6;
        eprintln!(
            "M={m:>7} N={n:>5}: median {:>9.1} us over {runs} runs (min {:.1} us, max {:.1} us)",
            median_us,
            times[0].as_secs_f64() * 1e6,
            times[times.len() - 1].as_secs_f64() * 1e6,
        );
        results.push(serde_json::json!({
            "m": m,
            "n": n,
            "median_us": (median_us * 10.0).round() / 10.0,
            "runs": runs,
        }));
    }
    println!("{}", serde_json::Value::Array(results));
    ExitCode::SUCCESS
}
