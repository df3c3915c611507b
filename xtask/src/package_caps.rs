//! The units' capabilities, checked for real: the installed `lb run` and
//! `lb decap` run on a veth pair in a fresh network namespace under
//! `setpriv` with the unit's `CapabilityBoundingSet=` as their bounding set
//! (what systemd does for a root service), and fail when any one of those
//! capabilities is taken away.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::cargo::run_checked;
use crate::package::stdout;

/// The capabilities of a unit's `CapabilityBoundingSet=`, e.g. `["bpf", "net_admin"]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities(Vec<String>);

impl Capabilities {
    /// Reads `CapabilityBoundingSet=` (one line, `CAP_*` names) from a unit file.
    pub fn of_unit(unit: &str) -> Result<Self> {
        let line = unit
            .lines()
            .find_map(|l| l.trim().strip_prefix("CapabilityBoundingSet="))
            .context("the unit has no CapabilityBoundingSet=")?;
        let caps: Vec<String> = line
            .split_whitespace()
            .map(|c| {
                c.strip_prefix("CAP_")
                    .map(str::to_ascii_lowercase)
                    .with_context(|| format!("not a capability: {c}"))
            })
            .collect::<Result<_>>()?;
        ensure!(!caps.is_empty(), "CapabilityBoundingSet= is empty");
        Ok(Capabilities(caps))
    }

    /// `setpriv --bounding-set` argument: only these, less `without`.
    fn bounding_set(&self, without: Option<&str>) -> String {
        let mut spec = String::from("-all");
        for cap in self.0.iter().filter(|c| Some(c.as_str()) != without) {
            spec.push_str(",+");
            spec.push_str(cap);
        }
        spec
    }
}

/// A network namespace holding a veth pair `a`-`b`, deleted on drop.
struct Lab {
    ns: String,
    a: String,
    b: String,
    lb: PathBuf,
    pin_root: PathBuf,
}

impl Lab {
    fn new(lb: &Path, pin_root: &Path) -> Result<Self> {
        let id = std::process::id() % 100_000;
        let lab = Lab {
            ns: format!("lbpkg-{id}"),
            a: format!("lbpk{id}a"),
            b: format!("lbpk{id}b"),
            lb: lb.to_path_buf(),
            pin_root: pin_root.to_path_buf(),
        };
        let _ = Command::new("ip")
            .args(["netns", "del", &lab.ns])
            .stderr(Stdio::null())
            .status();
        run_checked(Command::new("ip").args(["netns", "add", &lab.ns]))?;
        run_checked(Command::new("ip").args([
            "-n", &lab.ns, "link", "add", &lab.a, "type", "veth", "peer", "name", &lab.b,
        ]))?;
        for (iface, addr) in [(&lab.a, "198.18.210.1/24"), (&lab.b, "198.18.210.2/24")] {
            run_checked(
                Command::new("ip").args(["-n", &lab.ns, "addr", "add", addr, "dev", iface]),
            )?;
            run_checked(Command::new("ip").args(["-n", &lab.ns, "link", "set", iface, "up"]))?;
        }
        Ok(lab)
    }

    /// `lb ARGS` in the namespace, bounded to `caps` less `without`.
    fn lb(&self, caps: &Capabilities, without: Option<&str>, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns, "setpriv", "--no-new-privs"])
            .args(["--inh-caps", "-all", "--bounding-set"])
            .arg(caps.bounding_set(without))
            .arg("--")
            .arg(&self.lb)
            .args(args)
            .arg("--pin-root")
            .arg(&self.pin_root)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd
    }

    /// Whether an XDP program is attached to `iface`.
    fn xdp_attached(&self, iface: &str) -> Result<bool> {
        let link = stdout(Command::new("ip").args(["-n", &self.ns, "link", "show", iface]))?;
        Ok(link.contains("prog/xdp"))
    }

    /// Detaches whatever lb attached (full root), ignoring failures.
    fn detach_all(&self) {
        for (sub, iface) in [("stop", &self.a), ("decap", &self.b)] {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", &self.ns])
                .arg(&self.lb)
                .args([sub, "--iface", iface])
                .args(if sub == "decap" {
                    &["--detach"][..]
                } else {
                    &[]
                })
                .arg("--pin-root")
                .arg(&self.pin_root)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = cmd.status();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.detach_all();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// Kills the child on drop (a failed check must not leave `lb run` behind).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the checks: `lb run` (attach, SIGHUP reload, SIGTERM) and `lb decap`
/// work with `run_caps` / `decap_caps` and fail without any one of them.
pub fn check(
    lb: &Path,
    pin_root: &Path,
    work: &Path,
    run_caps: &Capabilities,
    decap_caps: &Capabilities,
) -> Result<()> {
    let lab = Lab::new(lb, pin_root)?;
    let config = work.join("caps-test.yaml");
    std::fs::write(
        &config,
        "services:\n  - name: web\n    vip: 198.18.211.1\n    port: 80\n    protocol: tcp\n    \
         backends:\n      - address: 198.18.210.2\n",
    )?;
    let config = config.to_str().context("config path")?.to_string();
    let log = work.join("lb-run.log");

    run_serves(&lab, run_caps, &config, &log)?;
    println!(
        "xtask: lb run attaches and reloads with only {:?}",
        run_caps.0
    );
    lab.detach_all();
    for cap in &run_caps.0 {
        let out = run_until_exit(&lab, run_caps, cap, &config, &log)?;
        println!(
            "xtask: lb run without CAP_{}: fails ({out})",
            cap.to_uppercase()
        );
        lab.detach_all();
    }

    let decap = ["decap", "--iface", &lab.b];
    crate::package::output(&mut lab.lb(decap_caps, None, &decap))?;
    ensure!(lab.xdp_attached(&lab.b)?, "lb decap did not attach");
    lab.detach_all();
    println!("xtask: lb decap attaches with only {:?}", decap_caps.0);
    for cap in &decap_caps.0 {
        let out = lab.lb(decap_caps, Some(cap), &decap).output()?;
        ensure!(
            !out.status.success() && !lab.xdp_attached(&lab.b)?,
            "lb decap works without CAP_{}: the unit grants more than needed",
            cap.to_uppercase()
        );
        lab.detach_all();
    }
    Ok(())
}

/// `lb run` with `caps`: the initial apply, a SIGHUP reload (the unit's
/// `ExecReload=`) and a clean exit on SIGTERM.
fn run_serves(lab: &Lab, caps: &Capabilities, config: &str, log: &Path) -> Result<()> {
    let args = ["run", "--iface", &lab.a, "--config", config];
    let mut child = Running(spawn_logged(lab.lb(caps, None, &args), log)?);
    wait_for(&mut child, log, "initial apply", Duration::from_secs(60))?;
    ensure!(
        lab.xdp_attached(&lab.a)?,
        "lb run logged its apply but nothing is attached"
    );
    signal(&child, libc::SIGHUP)?;
    wait_for(&mut child, log, "SIGHUP", Duration::from_secs(20))?;
    signal(&child, libc::SIGTERM)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.0.try_wait()? {
            ensure!(
                status.success(),
                "lb run exited with {status} on SIGTERM: {}",
                tail(log)
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("lb run did not exit on SIGTERM: {}", tail(log));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `lb run` without `cap` must fail on its own; returns its last log line.
fn run_until_exit(
    lab: &Lab,
    caps: &Capabilities,
    cap: &str,
    config: &str,
    log: &Path,
) -> Result<String> {
    let args = ["run", "--iface", &lab.a, "--config", config];
    let mut child = Running(spawn_logged(lab.lb(caps, Some(cap), &args), log)?);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.0.try_wait()? {
            ensure!(!status.success(), "lb run without CAP_{cap} exited 0");
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let error = text.lines().find(|l| l.contains("error")).unwrap_or("");
            return Ok(error.chars().take(160).collect());
        }
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("initial apply") || Instant::now() > deadline {
            bail!(
                "lb run works without CAP_{}: the unit grants more than needed: {}",
                cap.to_uppercase(),
                tail(log)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn spawn_logged(mut cmd: Command, log: &Path) -> Result<Child> {
    let file = std::fs::File::create(log).with_context(|| log.display().to_string())?;
    cmd.stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .context("cannot start lb under setpriv")
}

/// Waits until the log contains `text`; fails if `lb` exits first or time runs out.
fn wait_for(child: &mut Running, log: &Path, text: &str, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains(text)
        {
            return Ok(());
        }
        if let Some(status) = child.0.try_wait()? {
            bail!(
                "lb exited ({status}) before logging {text:?}: {}",
                tail(log)
            );
        }
        if Instant::now() > deadline {
            bail!("no {text:?} from lb within {limit:?}: {}", tail(log));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Signals `lb` itself: `ip netns exec` and `setpriv` exec it in place, so the
/// child's pid is lb's.
fn signal(child: &Running, signal: libc::c_int) -> Result<()> {
    let pid = libc::pid_t::try_from(child.0.id()).context("pid")?;
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid, signal) } != 0 {
        bail!("kill {pid}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// The end of the log, for error messages.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::Capabilities;

    #[test]
    fn reads_the_bounding_set_of_a_unit() {
        let unit =
            "[Service]\nExecStart=/usr/bin/lb\nCapabilityBoundingSet=CAP_BPF CAP_NET_ADMIN\n";
        let caps = Capabilities::of_unit(unit).unwrap();
        assert_eq!(caps.bounding_set(None), "-all,+bpf,+net_admin");
        assert_eq!(caps.bounding_set(Some("bpf")), "-all,+net_admin");
        assert!(Capabilities::of_unit("[Service]\n").is_err());
        assert!(Capabilities::of_unit("CapabilityBoundingSet=BPF\n").is_err());
    }
}
