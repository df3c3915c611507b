//! `lb-fuzz`: the datapath fuzzer behind `cargo xtask fuzz` (needs root).

use std::process::ExitCode;

use clap::Parser;

/// Generated and mutated frames through BPF_PROG_TEST_RUN against the real
/// `lb_xdp`, every outcome checked.
#[derive(Parser)]
#[command(name = "lb-fuzz")]
struct Args {
    /// Frames to run.
    #[arg(long, default_value_t = 1_000_000)]
    frames: u64,
    /// Seed of the frame generator (a failure is replayed with the same one).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let report = lb_tests::fuzz::run(args.frames, args.seed);
    print!("{report}");
    if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
