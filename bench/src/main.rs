//! `lb-bench`: the benchmarks behind `cargo xtask bench`.
//!
//! Prints one table (each figure beside its baselines and target) and writes it
//! as JSON. `--quick` runs every benchmark once in a tiny configuration, so that
//! `cargo xtask test` keeps this code from rotting; it still checks every
//! program's verdict and fails on a broken path. `--only SECTION` runs one
//! section (`per-packet`, `rate`, `control-plane`). `--katran DIR` (or
//! `LB_BENCH_KATRAN=DIR`) adds Katran's XDP balancer, built by
//! `bench/katran/build.sh` into DIR, to the per-packet section: lb against
//! Katran, interleaved in the same run.

mod agent_host;
mod args;
mod control_plane;
mod generator;
mod katran;
mod memory;
mod one_line;
mod per_packet;
mod per_packet_decap;
mod rate;
mod rate_case;
mod rate_frame;
mod rate_probe;
mod rate_report;
mod rate_topology;
mod report;
mod scale_config;
mod scale_latency;
mod sections;
mod versus_katran;

use anyhow::Result;

use args::Args;

use report::Report;
use sections::Section;

fn main() -> Result<()> {
    let Args {
        quick,
        out,
        only,
        katran,
    } = Args::parse(
        std::env::args().skip(1),
        std::env::var(args::KATRAN_ENV).ok(),
    )?;
    if let Some(dir) = &katran {
        katran::check_objects(dir)?;
    }
    let wanted = |s: Section| only.is_none_or(|o| o == s);
    let established_only = only == Some(Section::Established);
    let mut report = Report::new(quick);
    if wanted(Section::PerPacket) || established_only {
        // BPF_PROG_TEST_RUN runs the program on the calling CPU: one fixed CPU
        // keeps caches and per-CPU maps comparable between cases. The rate
        // section places its own threads, so the pin is undone after this.
        let saved = current_affinity();
        pin_to_last_cpu();
        if !established_only {
            per_packet::run(&mut report, quick)?;
        }
        versus_katran::run(&mut report, quick, katran.as_deref(), established_only)?;
        restore_affinity(&saved);
    }
    if wanted(Section::Rate) {
        rate::run(&mut report, quick)?;
    }
    if wanted(Section::ControlPlane) {
        control_plane::maglev(&mut report, quick)?;
        control_plane::agent(&mut report, quick)?;
    }
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

fn current_affinity() -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
        set
    }
}

fn restore_affinity(set: &libc::cpu_set_t) {
    // SAFETY: sched_setaffinity reads the set.
    unsafe {
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set);
    }
}

/// Runs on the last CPU.
fn pin_to_last_cpu() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // SAFETY: cpu_set_t is plain data; sched_setaffinity reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpus - 1, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}
