//! `cargo xtask test`: every test, privileged ones included, nothing skipped.

use std::process::Command;

use anyhow::Result;

use crate::cargo::{cargo, run_checked, target_binary, workspace_root};
use crate::{bootstrap, package, package_verify};

/// Arguments of `cargo xtask test`.
#[derive(clap::Args)]
pub struct Args {
    /// Extra arguments for `cargo test` (a test-name filter, `--nocapture`, ...).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cargo_test_args: Vec<String>,
}

/// `cargo clippy` of the eBPF crates as the BPF target sees them: on the host
/// their programs are compiled out (`#[cfg(target_arch = "bpf")]`), so only
/// this run checks them (`clippy::undocumented_unsafe_blocks` among others).
fn bpf_clippy() -> Command {
    // The rustup proxy, for `+nightly` (build-std needs it, as for the object).
    let mut cmd = Command::new("cargo");
    cmd.current_dir(workspace_root())
        .env_remove("RUSTC")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTUP_TOOLCHAIN")
        .args([
            "+nightly",
            "clippy",
            "--release",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
            "-p",
            "lb-ebpf",
            "-p",
            "bench-ebpf",
            "--",
            "-D",
            "warnings",
        ]);
    cmd
}

/// Bootstraps, builds every target (so a broken eBPF build fails here), on
/// full runs lints (clippy, warnings denied) and builds the API docs (rustdoc
/// warnings denied), runs every test as root, then (full runs only) builds the
/// Debian package and checks it installed in a scratch root, and runs each
/// benchmark once in a tiny configuration so the benchmark code cannot rot.
pub fn run(args: Args) -> Result<()> {
    bootstrap::ensure_all()?;
    bootstrap::require_root("cargo xtask test")?;
    run_checked(cargo().args(["build", "--workspace", "--all-targets"]))?;
    if args.cargo_test_args.is_empty() {
        lint_and_doc()?;
    }
    let lb = target_binary("lb", false);
    run_checked(
        cargo()
            .args(["test", "--workspace", "--no-fail-fast", "--"])
            .args(&args.cargo_test_args)
            .env("LB_BIN", &lb),
    )?;
    if args.cargo_test_args.is_empty() {
        println!("xtask: Debian package: build, install into a scratch root, verify");
        let deb = package::build()?;
        package_verify::verify(&deb)?;
        println!("xtask: benchmark smoke run (tiny configurations)");
        run_checked(cargo().args(["run", "--quiet", "-p", "lb-bench", "--", "--quick"]))?;
    }
    Ok(())
}

/// `cargo clippy` on every target with warnings denied (the eBPF crates a
/// second time for the BPF target, where their programs are compiled), and
/// `cargo doc` of the workspace with rustdoc warnings (broken intra-doc
/// links, ...) denied.
fn lint_and_doc() -> Result<()> {
    println!("xtask: clippy (all targets, warnings denied)");
    run_checked(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    println!("xtask: clippy of lb-ebpf and bench-ebpf for bpfel-unknown-none (warnings denied)");
    run_checked(&mut bpf_clippy())?;
    println!("xtask: cargo doc (rustdoc warnings denied)");
    run_checked(
        cargo()
            .args(["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )
}
