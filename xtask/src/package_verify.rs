//! `cargo xtask package --verify`: installs the `.deb` with `dpkg -i` into a
//! scratch root (its own dpkg database, seeded with the host's records of the
//! packages it depends on, so dependencies are really resolved), then checks
//! what was installed:
//!
//! - the installed `lb check` accepts the installed `/etc/lb/lb.yaml` (a conffile);
//! - `systemd-analyze verify` accepts `lb@IFACE.service` and `lb-decap@IFACE.service`;
//! - the installed `lb run` and `lb decap` work on a veth in a fresh network
//!   namespace with only the capabilities the unit's `CapabilityBoundingSet=`
//!   grants, and each of those capabilities is needed (without it they fail).
//!
//! The host is never changed: everything lives in the scratch root, the
//! namespace and a bpffs mounted inside the scratch root, all removed on exit.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::cargo::run_checked;
use crate::package::stdout;
use crate::package_caps::{self, Capabilities};

/// The scratch root; unmounts its bpffs and removes it on drop.
struct ScratchRoot {
    dir: PathBuf,
}

impl ScratchRoot {
    fn new(near: &Path) -> Result<Self> {
        let dir = near.join(format!("root-{}", std::process::id()));
        let root = ScratchRoot { dir };
        root.remove();
        for sub in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log"] {
            std::fs::create_dir_all(root.dir.join(sub))?;
        }
        Ok(root)
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    fn remove(&self) {
        let bpffs = self.path("run/lb/bpffs");
        if bpffs.exists() {
            let _ = Command::new("umount").arg("-l").arg(&bpffs).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// `dpkg` working on this root, its database and its log.
    fn dpkg(&self) -> Command {
        let mut cmd = Command::new("dpkg");
        cmd.arg(format!("--root={}", self.dir.display()))
            .arg(format!("--log={}", self.path("var/log/dpkg.log").display()));
        cmd
    }
}

impl Drop for ScratchRoot {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Installs `deb` into a scratch root next to it and checks the result.
pub fn verify(deb: &Path) -> Result<()> {
    lintian(deb)?;
    let root = ScratchRoot::new(deb.parent().context("the .deb has a directory")?)?;
    seed_dependencies(&root, deb)?;
    // The maintainer scripts run on the host with DPKG_ROOT set; they touch
    // systemd only when DPKG_ROOT is empty.
    run_checked(
        root.dpkg()
            .arg("--force-script-chrootless")
            .arg("-i")
            .arg(deb),
    )?;
    check_installed_files(&root)?;

    let lb = root.path("usr/bin/lb");
    let config = root.path("etc/lb/lb.yaml");
    let work = root.path("tmp");
    std::fs::create_dir_all(&work)?;
    let out = stdout(Command::new(&lb).arg("check").arg(&config))?;
    ensure!(
        out.starts_with("ok: "),
        "lb check on the installed config: {out}"
    );
    println!("xtask: installed lb check /etc/lb/lb.yaml: {out}");

    verify_units(&root)?;
    let units = root.path("usr/lib/systemd/system");
    let run_caps = Capabilities::of_unit(&std::fs::read_to_string(units.join("lb@.service"))?)?;
    let decap_caps =
        Capabilities::of_unit(&std::fs::read_to_string(units.join("lb-decap@.service"))?)?;
    // The bpffs the units' ExecStartPre= mounts, here inside the scratch root.
    let bpffs = root.path("run/lb/bpffs");
    std::fs::create_dir_all(&bpffs)?;
    run_checked(Command::new("mount").args(["-t", "bpf", "bpf"]).arg(&bpffs))?;
    package_caps::check(&lb, &bpffs, &work, &run_caps, &decap_caps)?;

    // Removal and purge work too and take the conffile with them.
    run_checked(
        root.dpkg()
            .arg("--force-script-chrootless")
            .args(["--purge", "lb"]),
    )?;
    ensure!(!config.exists(), "purge left {}", config.display());
    ensure!(!lb.exists(), "purge left {}", lb.display());
    Ok(())
}

/// Debian's package checker: no error and no warning (the package's own
/// overrides, each with its reason, are honoured).
fn lintian(deb: &Path) -> Result<()> {
    let out = Command::new("lintian")
        .args(["--tag-display-limit", "0", "--fail-on", "error,warning"])
        .arg(deb)
        .output()
        .context("cannot run lintian")?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "lintian {}:\n{text}", deb.display());
    println!("xtask: lintian: no errors or warnings");
    Ok(())
}

/// Copies the host's dpkg records of the packages `deb` depends on into the
/// scratch database (they are what the installed `lb` runs against).
fn seed_dependencies(root: &ScratchRoot, deb: &Path) -> Result<()> {
    let depends = stdout(Command::new("dpkg-deb").arg("-f").arg(deb).arg("Depends"))?;
    let arch = stdout(Command::new("dpkg").arg("--print-architecture"))?;
    let mut status = String::new();
    for package in dependency_names(&depends) {
        let record = stdout(Command::new("dpkg-query").args(["-s", &package]))
            .with_context(|| format!("the host has no {package} (a dependency of lb)"))?;
        status.push_str(&record);
        status.push_str("\n\n");
        // An empty file list: dpkg then knows the package owns no file here.
        for list in [format!("{package}.list"), format!("{package}:{arch}.list")] {
            std::fs::write(root.path("var/lib/dpkg/info").join(list), "")?;
        }
    }
    std::fs::write(root.path("var/lib/dpkg/status"), status)?;
    Ok(())
}

/// `libc6 (>= 2.34), libgcc-s1 (>= 4.2)` -> `[libc6, libgcc-s1]` (first of alternatives).
fn dependency_names(depends: &str) -> Vec<String> {
    depends
        .split(',')
        .filter_map(|d| d.split('|').next())
        .filter_map(|d| d.split_whitespace().next())
        .map(|d| d.split(':').next().unwrap_or(d).to_string())
        .collect()
}

/// The package holds what the issue asks for, and `/etc/lb/lb.yaml` is a conffile.
fn check_installed_files(root: &ScratchRoot) -> Result<()> {
    let listed = stdout(root.dpkg().args(["-L", "lb"]))?;
    for file in [
        "/usr/bin/lb",
        "/usr/lib/systemd/system/lb@.service",
        "/usr/lib/systemd/system/lb-decap@.service",
        "/etc/lb/lb.yaml",
        "/usr/share/lb/lb.schema.json",
        "/usr/share/man/man1/lb.1.gz",
        "/usr/share/man/man1/lb-run.1.gz",
        "/usr/share/man/man1/lb-check.1.gz",
        "/usr/share/bash-completion/completions/lb",
        "/usr/share/zsh/vendor-completions/_lb",
        "/usr/share/fish/vendor_completions.d/lb.fish",
        "/usr/share/doc/lb/copyright",
    ] {
        ensure!(
            listed.lines().any(|l| l == file),
            "the package lacks {file}"
        );
        ensure!(
            root.path(file.trim_start_matches('/')).exists(),
            "{file} is listed but not installed"
        );
    }
    let conffiles = stdout(
        Command::new("dpkg-query")
            .arg(format!(
                "--admindir={}",
                root.path("var/lib/dpkg").display()
            ))
            .args(["-W", "-f=${Conffiles}", "lb"]),
    )?;
    ensure!(
        conffiles.contains("/etc/lb/lb.yaml"),
        "/etc/lb/lb.yaml is not a conffile: {conffiles:?}"
    );
    Ok(())
}

/// `systemd-analyze verify` on instances of both template units, resolved in
/// the scratch root (where `/usr/bin/lb` exists). The root gets what every
/// systemd host has and the units refer to: the host's `/bin/sh` and
/// `/bin/kill` (essential packages) and its targets (`sysinit.target`, ...).
fn verify_units(root: &ScratchRoot) -> Result<()> {
    let mut copied = Vec::new();
    for tool in ["/bin/sh", "/bin/kill"] {
        let target = root.path(tool.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().expect("in /bin"))?;
        std::fs::copy(tool, &target).with_context(|| format!("copy {tool}"))?;
        copied.push(target);
    }
    let host_units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .map(Path::new)
        .find(|d| d.join("sysinit.target").exists())
        .context("the host has no systemd units (sysinit.target)")?;
    for entry in std::fs::read_dir(host_units)? {
        let path = entry?.path();
        let name = path.file_name().expect("a file");
        let target = root.path("usr/lib/systemd/system").join(name);
        if path.extension().is_some_and(|e| e == "target") && !target.exists() {
            std::fs::copy(&path, &target).with_context(|| path.display().to_string())?;
            copied.push(target);
        }
    }
    let result = verify_instances(root);
    // Leave only the package's own files for `dpkg --purge`.
    for file in copied {
        let _ = std::fs::remove_file(file);
    }
    result
}

fn verify_instances(root: &ScratchRoot) -> Result<()> {
    let units = root.path("usr/lib/systemd/system");
    for instance in ["lb@eth1.service", "lb-decap@eth1.service"] {
        let out = Command::new("systemd-analyze")
            .arg(format!("--root={}", root.dir.display()))
            .args(["verify", "--man=no"])
            .arg(units.join(instance))
            .env("SYSTEMD_LOG_COLOR", "0")
            .output()
            .context("cannot run systemd-analyze")?;
        let messages = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !messages.trim().is_empty() {
            bail!("systemd-analyze verify {instance}: {}", messages.trim());
        }
        println!("xtask: systemd-analyze verify {instance}: no findings");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::dependency_names;

    #[test]
    fn dependency_names_drop_versions_and_alternatives() {
        assert_eq!(
            dependency_names("libc6 (>= 2.34), libgcc-s1 (>= 4.2) | libgcc1, foo:any"),
            ["libc6", "libgcc-s1", "foo"]
        );
    }
}
