//! `lb decap` in the lab: on every backend's `s0`, on the router's side of
//! every backend link (`r-bN`) and on the router's `r-lb` (a native XDP_TX
//! into a veth is only received when the peer runs an XDP program; decap
//! passes everything not addressed to it).
//!
//! The router's `r-bN` needs it for second chance: a backend's decap that
//! hands a packet on to the flow's previous owner re-encapsulates it and sends
//! it back out of `s0` with XDP_TX; the router then forwards it to the other
//! backend like any packet (no reverse-path filter, forwarding on, MTU 1600 on
//! every backend link, room for the largest GUE header).
//!
//! `lb decap` attaches, pins the program under its `--pin-root` and exits; each
//! namespace gets its own directory inside the lab's bpffs (every backend's
//! interface is called `s0`, so a shared directory would collide).

use std::path::{Path, PathBuf};
use std::process::Command;

use aya::maps::{Map, MapData, PerCpuArray};
use lb::netns::NetnsId;

use super::cmd;
use super::error::{LabError, Result};
use super::topology::{BACKEND_IFACE, Lab, ROUTER_LB_IFACE};

/// The router's interface toward backend `index` (`r-b1`...).
pub fn router_backend_iface(index: u8) -> String {
    format!("r-b{index}")
}

impl Lab {
    /// Sets the GUE port of every decapsulator started from now on
    /// (`lb decap --gue-port`; `None`: lb's default, 6080). Use the port of
    /// the config's GUE services ([`crate::lab::LabEncap::gue_port`]).
    pub fn set_decap_gue_port(&mut self, port: Option<u16>) {
        self.decap_gue_port = port;
    }

    /// Runs `lb decap` on every backend's `s0`, on the router's `r-bN` and on
    /// the router's `r-lb`. Backends added later get theirs too.
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

    /// Runs `lb decap` on backend `i`'s (0-based) `s0` and on the router's
    /// interface toward it.
    pub(super) fn start_backend_decap(&mut self, i: usize) -> Result<()> {
        let (ns, name, index) = (
            self.backends[i].ns.name().to_owned(),
            self.backends[i].name.clone(),
            self.backends[i].index,
        );
        self.run_decap(&ns, BACKEND_IFACE, &name)?;
        let router = self.router_ns.name().to_owned();
        let r_if = router_backend_iface(index);
        self.run_decap(&router, &r_if, &format!("router-{r_if}"))
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
        if let Some(port) = self.decap_gue_port {
            command.args(["--gue-port", &port.to_string()]);
        }
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

    /// The pin directory of backend `index`'s decap on `s0`.
    fn backend_decap_dir(&mut self, index: u8) -> Result<PathBuf> {
        let backend = self.backend(index);
        let (ns, name) = (backend.ns.name().to_owned(), backend.name.clone());
        let nsfs = Path::new("/run/netns").join(&ns);
        let netns = NetnsId::of(&nsfs).map_err(LabError::io(format!("inode of {ns}")))?;
        Ok(lb::kernel::decap_pin_dir(
            &self.pin_root()?.join(name),
            netns,
            BACKEND_IFACE,
        ))
    }

    /// Backend `index`'s decap counters (`lb_common::DecapCounter` order),
    /// each summed over CPUs, read from its pinned stats map.
    pub fn decap_counters(&mut self, index: u8) -> Result<Vec<u64>> {
        let path = self
            .backend_decap_dir(index)?
            .join(lb_common::MAP_DECAP_STATS);
        let what = format!("decap stats map {}", path.display());
        let map = MapData::from_pin(&path)
            .and_then(Map::from_map_data)
            .map_err(|e| LabError::Output {
                command: what.clone(),
                message: e.to_string(),
            })?;
        let array: PerCpuArray<MapData, u64> =
            PerCpuArray::try_from(map).map_err(|e| LabError::Output {
                command: what.clone(),
                message: e.to_string(),
            })?;
        (0..lb_common::DECAP_COUNTER_COUNT)
            .map(|i| {
                array
                    .get(&i, 0)
                    .map(|per_cpu| per_cpu.iter().sum())
                    .map_err(|e| LabError::Output {
                        command: what.clone(),
                        message: format!("entry {i}: {e}"),
                    })
            })
            .collect()
    }
}

/// Whether an XDP program is attached to `iface` in `ns`.
pub fn xdp_attached(ns: &str, iface: &str) -> Result<bool> {
    let out = cmd::run_args("ip", &["-n", ns, "-d", "link", "show", "dev", iface])?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.contains("prog/xdp") || text.contains(" xdp"))
}
