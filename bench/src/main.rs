//! `lb-bench`: the benchmarks behind `cargo xtask bench`.
//!
//! Prints one table (each figure beside its baselines and target) and writes it
//! as JSON. `--quick` runs every benchmark once in a tiny configuration, so that
//! `cargo xtask test` keeps this code from rotting; it still checks every
//! program's verdict and fails on a broken path.

mod control_plane;
mod per_packet;
mod report;

use std::path::PathBuf;

use anyhow::{Context, Result};

use report::Report;

fn main() -> Result<()> {
    let mut quick = false;
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--out" => out = Some(args.next().context("--out needs a path")?.into()),
            other => anyhow::bail!("unknown argument {other:?} (expected --quick, --out FILE)"),
        }
    }
    pin_to_one_cpu();
    let mut report = Report::new(quick);
    per_packet::run(&mut report, quick)?;
    control_plane::maglev(&mut report, quick)?;
    print!("{}", report.table());
    if let Some(path) = out {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, serde_json::to_vec_pretty(&report.json())?)?;
        eprintln!("lb-bench: wrote {}", path.display());
    }
    Ok(())
}

/// Runs on the last CPU: BPF_PROG_TEST_RUN runs the program on the calling CPU,
/// and one fixed CPU keeps caches and per-CPU maps comparable between cases.
fn pin_to_one_cpu() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // SAFETY: cpu_set_t is plain data; sched_setaffinity reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpus - 1, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}
