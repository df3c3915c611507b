//! The agent's persisted view of what it applied to an interface: names, ids and
//! settings that the BPF maps alone do not carry.
//!
//! The agent writes it atomically (temporary file + rename) after every
//! successful apply to `<state_dir>/ns<netns inode>/<ifname>.json` (default
//! state dir [`DEFAULT_STATE_DIR`]; keyed by network namespace like the pins,
//! see [`crate::netns`]), mode 0600 in directories private to root: it names
//! VIPs, backends and the config path. `lb stats`, `lb watch` and the metrics
//! endpoint read it together with the pinned maps, so they work with or
//! without an agent.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::netns::NetnsId;
use crate::private_dir::{self, PrivateDirError};

/// Default root of the per-interface bpffs pin directories (outside `/sys`, so
/// pins survive `ip netns exec`, whose private `/sys` vanishes with the process).
pub const DEFAULT_PIN_ROOT: &str = "/run/lb/bpffs";
/// Default directory of the per-interface state files.
pub const DEFAULT_STATE_DIR: &str = "/run/lb/state";

/// The state directory that goes with a pin root: its sibling `state`
/// (`/run/lb/bpffs` -> `/run/lb/state`), so one `--pin-root` selects both.
pub fn default_state_dir(pin_root: &Path) -> PathBuf {
    pin_root
        .parent()
        .map_or_else(|| PathBuf::from(DEFAULT_STATE_DIR), |p| p.join("state"))
}

/// A backend's state as shown to users.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendState {
    /// Takes new flows (has table slots, or would if its weight were > 0).
    Active,
    /// `drain: true` or weight 0: no new flows, pinned flows continue.
    Draining,
    /// Failed its health check: out of the table, pinned flows re-picked.
    Down,
}

/// One backend of a service as applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppliedBackend {
    /// Backend address.
    pub address: IpAddr,
    /// Its id in the BACKENDS / BACKEND_STATS maps.
    pub id: u32,
    /// Its generation (BackendEntry::generation).
    pub generation: u32,
    /// Configured weight.
    pub weight: u32,
    /// Configured drain flag.
    pub drain: bool,
    /// Shown state.
    pub state: BackendState,
    /// Slots it holds in the live Maglev table.
    pub slots: u32,
}

/// One service as applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppliedService {
    /// Service name.
    pub name: String,
    /// VIP.
    pub vip: IpAddr,
    /// Port (0 = every port).
    pub port: u16,
    /// "tcp" or "udp".
    pub protocol: String,
    /// Index into SERVICE_STATS; tables live at `2 * service_id + parity`.
    pub service_id: u32,
    /// Parity (0 or 1) of the live table index.
    pub table_parity: u32,
    /// Size of the live table (0 = no backend takes new flows).
    pub table_size: u32,
    /// True while the service is in panic mode (too few healthy backends).
    pub panic: bool,
    /// Backends in config order.
    pub backends: Vec<AppliedBackend>,
    /// Fingerprint of the live table ([`crate::maglev::fingerprint`]): equal on
    /// every node whose table sends each slot to the same backend address.
    /// `None` in a state written before fingerprints existed.
    #[serde(default)]
    pub fingerprint: Option<u32>,
    /// Encapsulation of the service's backends (`ipip` in a state written
    /// before GUE existed).
    #[serde(default)]
    pub encap: crate::config::Encapsulation,
}

/// A backend id no longer in the config but kept (LIVE cleared) so that its
/// pinned flows are re-picked; reusable with a bumped generation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetiredBackend {
    /// Backend id.
    pub id: u32,
    /// Last generation used with this id.
    pub generation: u32,
}

/// Everything the agent applied to one interface.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppliedState {
    /// Interface name.
    pub ifname: String,
    /// Interface index when applied (a different index = a different interface).
    pub ifindex: u32,
    /// bpffs directory holding this interface's pinned maps and link.
    pub pin_dir: PathBuf,
    /// Config file applied.
    pub config_path: PathBuf,
    /// Wall-clock time of the last apply, Unix milliseconds.
    pub applied_at_unix_ms: u64,
    /// Duration of the last apply in seconds (change seen to maps updated and
    /// state written); 0 in state files written before it was recorded.
    #[serde(default)]
    pub last_apply_seconds: f64,
    /// XDP mode live: "native" or "skb".
    pub xdp_mode: String,
    /// Maglev table size.
    pub maglev_table_size: u32,
    /// Services in config order.
    pub services: Vec<AppliedService>,
    /// Retired backend ids.
    pub retired_backends: Vec<RetiredBackend>,
    /// VIP announcements (routes for the host's BGP daemon) and node drain.
    #[serde(default)]
    pub announce: crate::announce::AnnounceState,
}

/// Errors reading or writing a state file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// I/O on the state file.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The state file is not valid JSON of this shape.
    #[error("state file {path} is corrupt: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
}

/// Mode of state files: read and written by root only.
pub const STATE_FILE_MODE: u32 = 0o600;

/// The directory of network namespace `netns`'s state files: `<state_dir>/ns<inode>`.
pub fn netns_state_dir(state_dir: &Path, netns: NetnsId) -> PathBuf {
    state_dir.join(netns.dir_name())
}

/// Path of the state file of `ifname` in `netns` under `state_dir`.
pub fn state_path(state_dir: &Path, netns: NetnsId, ifname: &str) -> PathBuf {
    netns_state_dir(state_dir, netns).join(format!("{ifname}.json"))
}

/// Path of the agent lock of `ifname` in `netns` under `state_dir` (next to
/// its state file).
pub fn lock_path(state_dir: &Path, netns: NetnsId, ifname: &str) -> PathBuf {
    netns_state_dir(state_dir, netns).join(format!("{ifname}.lock"))
}

/// Creates the state directory and the namespace's directory below it
/// (each private to root when created; an existing one must be a real
/// directory owned by root and not writable by others).
pub fn ensure_state_dirs(state_dir: &Path, netns: NetnsId) -> Result<PathBuf, PrivateDirError> {
    private_dir::ensure_all(state_dir)?;
    let dir = netns_state_dir(state_dir, netns);
    private_dir::ensure(&dir)?;
    Ok(dir)
}

impl AppliedState {
    /// Reads a state file; `Ok(None)` when it does not exist.
    pub fn read(path: &Path) -> Result<Option<Self>, StateError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Io {
                    path: path.into(),
                    source,
                });
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| StateError::Corrupt {
                path: path.into(),
                source,
            })
    }

    /// Writes the state file atomically (temporary file, fsync, rename), mode
    /// [`STATE_FILE_MODE`]. Its directory must exist (see [`ensure_state_dirs`]).
    pub fn write(&self, path: &Path) -> Result<(), StateError> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let io = |source| StateError::Io {
            path: path.into(),
            source,
        };
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(self).expect("state serializes");
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(STATE_FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(io)?;
        file.write_all(&text).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_a_file() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = std::env::temp_dir().join(format!("lb-state-test-{}", std::process::id()));
        let netns = NetnsId(4026531840);
        let path = state_path(&dir, netns, "veth0");
        assert_eq!(path, dir.join("ns4026531840/veth0.json"));
        ensure_state_dirs(&dir, netns).unwrap();
        let state = AppliedState {
            ifname: "veth0".into(),
            ifindex: 7,
            pin_dir: "/run/lb/bpffs/veth0".into(),
            config_path: "/etc/lb.yaml".into(),
            applied_at_unix_ms: 1,
            last_apply_seconds: 0.002,
            xdp_mode: "native".into(),
            maglev_table_size: 65537,
            services: vec![AppliedService {
                name: "web".into(),
                vip: "198.18.100.1".parse().unwrap(),
                port: 80,
                protocol: "tcp".into(),
                service_id: 0,
                table_parity: 1,
                table_size: 65537,
                panic: false,
                backends: vec![AppliedBackend {
                    address: "198.18.3.2".parse().unwrap(),
                    id: 0,
                    generation: 1,
                    weight: 1,
                    drain: false,
                    state: BackendState::Active,
                    slots: 65537,
                }],
                fingerprint: Some(0x1234_abcd),
                encap: Default::default(),
            }],
            retired_backends: vec![RetiredBackend {
                id: 4,
                generation: 2,
            }],
            announce: crate::announce::AnnounceState {
                draining: true,
                protocol: 251,
                netns: Some(4026531840),
                vips: vec![crate::announce::VipAnnouncement {
                    vip: "198.18.100.1".parse().unwrap(),
                    announced: false,
                    reason: "node draining".into(),
                }],
                drain_token: Some("1-2".into()),
            },
        };
        assert_eq!(AppliedState::read(&path).unwrap(), None);
        state.write(&path).unwrap();
        assert_eq!(AppliedState::read(&path).unwrap(), Some(state.clone()));
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        // Rewriting over a leftover temporary file still gives mode 0600.
        std::fs::write(path.with_extension("json.tmp"), b"{}").unwrap();
        state.write(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
