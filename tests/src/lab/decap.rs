//! `lb decap` in the lab: on every backend's `s0`, and on the router's `r-lb`
//! (a native XDP_TX into a veth is only received when the peer runs an XDP
//! program; decap passes everything not addressed to it).
//!
//! `lb decap` attaches, pins the program under its `--pin-root` and exits; each
//! namespace gets its own directory inside the lab's bpffs (every backend's
//! interface is called `s0`, so a shared directory would collide).

use std::path::Path;
use std::process::Command;

use super::cmd;
use super::error::{LabError, Result};
use super::topology::{BACKEND_IFACE, Lab, ROUTER_LB_IFACE};

impl Lab {
    /// Runs `lb decap` on every backend's `s0` and on the router's `r-lb`.
    /// Backends added later get theirs too.
    pub fn start_decap(&mut self, lb: &Path) -> Result<()> {
        self.lb_bin = Some(lb.to_owned());
        let router = self.router_ns.name().to_owned();
        self.run_decap(&router, ROUTER_LB_IFACE, "router")?;
        for i in 0..self.backends.len() {
            self.start_backend_decap(i)?;
        }
        self.decap_on = true;
        Ok(())
    }

    pub(super) fn start_backend_decap(&mut self, i: usize) -> Result<()> {
        let (ns, name) = (
            self.backends[i].ns.name().to_owned(),
            self.backends[i].name.clone(),
        );
        self.run_decap(&ns, BACKEND_IFACE, &name)
    }

    /// Runs `lb decap --iface IF --pin-root <lab bpffs>/<dir>` in `ns` and checks
    /// that an XDP program is attached to `IF` afterwards.
    pub(super) fn run_decap(&mut self, ns: &str, iface: &str, dir: &str) -> Result<()> {
        let lb = self.lb_bin.clone().expect("lb binary set before decap");
        let root = self.pin_root()?.join(dir);
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", ns])
            .arg(&lb)
            .args(["decap", "--iface", iface, "--pin-root"])
            .arg(&root)
            .env("NO_COLOR", "1");
        let out = cmd::run(&mut command)?;
        if !xdp_attached(ns, iface)? {
            return Err(LabError::Output {
                command: cmd::describe(&command),
                message: format!(
                    "no XDP program on {iface} afterwards: {}",
                    String::from_utf8_lossy(&out.stderr)
                ),
            });
        }
        Ok(())
    }
}

/// Whether an XDP program is attached to `iface` in `ns`.
pub fn xdp_attached(ns: &str, iface: &str) -> Result<bool> {
    let out = cmd::run_args("ip", &["-n", ns, "-d", "link", "show", "dev", iface])?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.contains("prog/xdp") || text.contains(" xdp"))
}
