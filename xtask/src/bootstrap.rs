//! Makes sure everything the build and the tests need is installed, idempotently
//! and quickly when it already is. Each missing piece gets one line saying what
//! is being installed, or the exact command the user must run.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cargo::run_checked;

/// Installs whatever is missing: nightly `rust-src`, the LLVM development
/// package matching nightly's LLVM, `bpf-linker` built against it, host tools
/// the lab and tests use, and a mounted bpffs.
pub fn ensure_all() -> Result<()> {
    ensure_nightly_rust_src()?;
    let llvm = nightly_llvm_major()?;
    ensure_llvm_dev(llvm)?;
    ensure_bpf_linker(llvm)?;
    ensure_host_tools()?;
    ensure_bpffs()?;
    Ok(())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ensure_nightly_rust_src() -> Result<()> {
    let installed = output(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]));
    match installed {
        Some(list) if list.lines().any(|l| l.starts_with("rust-src")) => Ok(()),
        Some(_) => {
            println!("bootstrap: installing rust-src for the nightly toolchain");
            run_checked(Command::new("rustup").args([
                "component",
                "add",
                "rust-src",
                "--toolchain",
                "nightly",
            ]))
        }
        None => {
            println!("bootstrap: installing the nightly toolchain with rust-src");
            run_checked(Command::new("rustup").args([
                "toolchain",
                "install",
                "nightly",
                "--profile",
                "minimal",
                "--component",
                "rust-src",
            ]))
        }
    }
}

/// The LLVM major version of the nightly toolchain (`rustc +nightly -vV`).
fn nightly_llvm_major() -> Result<u32> {
    let text = output(Command::new("rustc").args(["+nightly", "-vV"]))
        .context("`rustc +nightly -vV` failed")?;
    parse_llvm_major(&text).context("no `LLVM version:` line in `rustc +nightly -vV`")
}

fn parse_llvm_major(text: &str) -> Option<u32> {
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version:"))?
        .trim();
    version.split('.').next()?.parse().ok()
}

fn llvm_prefix(major: u32) -> String {
    format!("/usr/lib/llvm-{major}")
}

fn ensure_llvm_dev(major: u32) -> Result<()> {
    let prefix = llvm_prefix(major);
    if Path::new(&prefix).join("lib/cmake/llvm").is_dir() {
        return Ok(());
    }
    let package = format!("llvm-{major}-dev");
    if !is_root() || Command::new("apt-get").arg("--version").output().is_err() {
        bail!(
            "LLVM {major} development files are missing (nightly's LLVM is {major}); run: \
             sudo apt-get update && sudo apt-get install -y {package}"
        );
    }
    println!("bootstrap: installing {package} (LLVM {major}, the LLVM of the nightly toolchain)");
    apt_install(&[&package])
}

fn apt_install(packages: &[&str]) -> Result<()> {
    // `apt-get update` once per bootstrap, however many installs follow.
    static UPDATED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !UPDATED.load(std::sync::atomic::Ordering::Relaxed) {
        run_checked(
            Command::new("apt-get")
                .args(["update", "-qq"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
        UPDATED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    run_checked(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn ensure_bpf_linker(major: u32) -> Result<()> {
    let wanted = format!("libLLVM.so.{major}");
    let linked = Command::new("which")
        .arg("bpf-linker")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .and_then(|path| output(Command::new("ldd").arg(path)));
    match linked {
        Some(libs) if libs.contains(&wanted) => return Ok(()),
        Some(_) => println!(
            "bootstrap: bpf-linker is built against another LLVM; rebuilding it against LLVM {major}"
        ),
        None => println!(
            "bootstrap: installing bpf-linker (built against LLVM {major}, about a minute)"
        ),
    }
    run_checked(
        Command::new("cargo")
            .args([
                "install",
                "--force",
                "bpf-linker",
                "--no-default-features",
                "--features",
                &format!("llvm-{major}"),
            ])
            .env("LLVM_PREFIX", llvm_prefix(major)),
    )
}

/// iproute2 (namespaces), ethtool (veth offloads in the lab), nftables (bench
/// baseline, the tier's silent node failure), util-linux's prlimit
/// (descriptor-limit test), prometheus (promtool and the server the
/// observability tests run), chromium (the status page test's headless
/// browser), dpkg-dev (dpkg-shlibdeps for the package's Depends), systemd
/// (systemd-analyze verifies the package's units), binutils (strip), lintian
/// (checks the package), BIRD 2 (the tier's lb nodes) and FRR (the tier's
/// router: zebra, bfdd, bgpd, vtysh).
fn ensure_host_tools() -> Result<()> {
    let wanted = [
        ("ip", "iproute2"),
        ("ethtool", "ethtool"),
        ("nft", "nftables"),
        ("prlimit", "util-linux"),
        ("promtool", "prometheus"),
        ("prometheus", "prometheus"),
        ("chromium", "chromium"),
        ("dpkg-shlibdeps", "dpkg-dev"),
        ("systemd-analyze", "systemd"),
        ("strip", "binutils"),
        ("lintian", "lintian"),
        ("bird", "bird2"),
        ("vtysh", "frr"),
    ];
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(bin, _)| {
            !["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                .iter()
                .any(|dir| Path::new(dir).join(bin).exists())
        })
        .map(|(_, package)| *package)
        .collect();
    let mut missing = missing;
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "missing host tools; run: sudo apt-get install -y {}",
            missing.join(" ")
        );
    }
    println!("bootstrap: installing {}", missing.join(", "));
    without_service_starts(|| apt_install(&missing))
}

/// Runs `install` with a `policy-rc.d` that forbids package scripts to start
/// services (the prometheus package would start its own server otherwise, and
/// bird2/frr their routing daemons in the host's namespace: the tier lab runs
/// its own per namespace), unless the machine already has one.
fn without_service_starts(install: impl FnOnce() -> Result<()>) -> Result<()> {
    let policy = Path::new("/usr/sbin/policy-rc.d");
    if policy.exists() {
        return install();
    }
    std::fs::write(
        policy,
        "#!/bin/sh\n# written by lb's bootstrap during apt-get install\nexit 101\n",
    )
    .with_context(|| format!("write {}", policy.display()))?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod {}", policy.display()))?;
    }
    let result = install();
    let _ignored = std::fs::remove_file(policy);
    result
}

fn ensure_bpffs() -> Result<()> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    if mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("/sys/fs/bpf") && l.contains(" bpf "))
    {
        return Ok(());
    }
    if !is_root() {
        bail!("bpffs is not mounted; run: sudo mount -t bpf bpf /sys/fs/bpf");
    }
    println!("bootstrap: mounting bpffs at /sys/fs/bpf");
    run_checked(Command::new("mount").args(["-t", "bpf", "bpf", "/sys/fs/bpf"]))
}

/// Fails unless running as root (BPF and network namespaces need it).
pub fn require_root(what: &str) -> Result<()> {
    if !is_root() {
        bail!("{what} needs root (BPF programs and network namespaces): run it as root");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_llvm_major;

    #[test]
    fn reads_llvm_major_from_rustc_vv() {
        let text = "rustc 1.97.0-nightly\nhost: x86_64-unknown-linux-gnu\nLLVM version: 22.1.4\n";
        assert_eq!(parse_llvm_major(text), Some(22));
        assert_eq!(parse_llvm_major("rustc 1.0\n"), None);
    }
}
