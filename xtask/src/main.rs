//! `cargo xtask`: the project's two commands (and the benchmarks).
//!
//! - `cargo xtask run`: build everything and start the lab (or `lb run` on a real
//!   interface with `-- --iface IF --config FILE`).
//! - `cargo xtask test`: every test, privileged ones included.
//! - `cargo xtask bench`: the benchmarks (never part of `test`).
//! - `cargo xtask fuzz --frames N`: the long datapath fuzz run.
//! - `cargo xtask package`: the Debian package (`--verify` installs and checks it).
//!
//! Each first makes sure the toolchain pieces are installed (see `bootstrap`).

mod bench;
mod bootstrap;
mod cargo;
mod fuzz;
mod package;
mod package_caps;
mod package_verify;
mod run;
mod test;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "Build, run, test and benchmark lb")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build everything and run the product (the lab, or a real interface).
    Run(run::Args),
    /// Run every test: unit, BPF_PROG_TEST_RUN fixtures, namespace end-to-end.
    Test(test::Args),
    /// Run the benchmarks (never part of `test`) and write target/bench/latest.json.
    Bench(bench::Args),
    /// The long datapath fuzz run (`--frames N`; a short one is part of `test`).
    Fuzz(fuzz::Args),
    /// Build the Debian package target/package/lb_VERSION_ARCH.deb (`--verify`: install and check it).
    Package(package::Args),
    /// Only install what is missing (rust-src, LLVM dev package, bpf-linker, bpffs).
    Bootstrap,
}

fn main() -> Result<()> {
    // `cargo xtask run -- --iface IF` passes a literal `--` after the subcommand;
    // the options behind it are ours, so drop it.
    let args = std::env::args()
        .enumerate()
        .filter(|(i, a)| !(*i == 2 && a == "--"));
    match Cli::parse_from(args.map(|(_, a)| a)).command {
        Command::Run(args) => run::run(args),
        Command::Test(args) => test::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Fuzz(args) => fuzz::run(args),
        Command::Package(args) => package::run(args),
        Command::Bootstrap => bootstrap::ensure_all(),
    }
}
