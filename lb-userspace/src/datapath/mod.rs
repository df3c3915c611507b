//! The one thin aya layer: load (or adopt) the pinned datapath on an interface,
//! attach it, and apply the planner's [`MapOp`]s to its maps. It keeps no
//! view of its own: every entry it writes (settings and next hops included)
//! is spelled out by an op.
//!
//! Pins live under `<pin_root>/ns<netns inode>/<ifname>/` (see [`crate::netns`]:
//! same-named interfaces of two network namespaces never share pins): one file
//! per map (named like the map) and `link`, the XDP link, so that the datapath
//! keeps forwarding with no agent. Every directory there is private to root
//! ([`crate::private_dir`]).
//! A restart adopts them (aya reuses a pinned map of the same name) when the
//! state file, the pins and the interface all agree; otherwise the leftovers are
//! detached and removed and the datapath starts empty.

pub mod bpffs;
mod error;
pub mod iface;
mod inner_table;
pub mod layout;
pub mod pins;
pub mod sys;
mod undo;

use std::path::{Path, PathBuf};

use aya::maps::{Array, ArrayOfMaps, HashMap as BpfHashMap, MapData, PerCpuArray, PerCpuValues};
use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::xdp::XdpLink;
use aya::programs::{Xdp, XdpMode};
use aya::{Ebpf, EbpfLoader};
use lb_common::{
    BACKEND_HAS_NEXT_HOP, BACKEND_LIVE, BackendEntry, BackendStats, ServiceEntry, ServiceStats,
    Settings, VipKey,
};

pub use error::DatapathError;
pub use iface::Interface;
pub use pins::{
    LINK_PIN, check_pin_dir, decap_pin_dir, detach_and_remove, netns_dir, pin_dir,
    retire_legacy_pins,
};

use crate::config::EncapConfig;
use crate::netns::NetnsId;
pub use crate::plan::NextHop;
use crate::plan::{MapOp, address_words, marker_key};
use crate::private_dir;
use crate::state::AppliedState;

/// Every map of the object (all are pinned).
pub const MAP_NAMES: [&str; 13] = [
    lb_common::MAP_VIPS,
    lb_common::MAP_MAGLEV_TABLES,
    lb_common::MAP_BACKENDS,
    lb_common::MAP_CONNTRACK,
    lb_common::MAP_SETTINGS,
    lb_common::MAP_BACKEND_STATS,
    lb_common::MAP_SERVICE_STATS,
    lb_common::MAP_GLOBAL_STATS,
    lb_common::MAP_DECAP_ADDRS,
    lb_common::MAP_DECAP_STATS,
    lb_common::MAP_VIP_FILTER,
    lb_common::MAP_FLOW_TABLE_CONFIG,
    lb_common::MAP_FLOW_INSERTS,
];

/// The kernel's internal `ENOTSUPP` (524), which some BPF commands return.
const KERNEL_ENOTSUPP: i32 = 524;

/// Requested XDP attach mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeChoice {
    /// Native, falling back to generic (skb) with a log line.
    Auto,
    /// Native (driver) only.
    Native,
    /// Generic (skb) only.
    Skb,
}

/// How to open the datapath on an interface.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// bpffs pin root (per-interface directories below it).
    pub pin_root: PathBuf,
    /// Interface name.
    pub ifname: String,
    /// The network namespace the interface lives in (keys the pin directory).
    pub netns: NetnsId,
    /// Connection-table capacity (used when the table is created).
    pub conntrack_entries: u32,
    /// Connection-table inserts per second per CPU (0 = no limit).
    pub conntrack_insert_budget: u32,
    /// Attach mode.
    pub mode: ModeChoice,
    /// Start from scratch even when pins could be adopted.
    pub fresh: bool,
}

/// The bucket count of a pinned connection table (of this build's layout).
fn pinned_conntrack_buckets(pin: &Path) -> Result<u32, String> {
    let info = aya::maps::MapInfo::from_pin(pin).map_err(|e| format!("{}: {e}", pin.display()))?;
    check_bucket_count(info.max_entries())
}

/// A connection table's bucket count must be a power of two (the datapath
/// masks the hash).
fn check_bucket_count(entries: u32) -> Result<u32, String> {
    if entries.is_power_of_two() {
        Ok(entries)
    } else {
        Err(format!(
            "{}: {entries} buckets, not a power of two",
            lb_common::MAP_CONNTRACK
        ))
    }
}

/// Writes the connection table's config: a new random secret unless
/// `adopted` (then the pinned one stays), and the insert budget.
fn init_flow_table_config(
    ebpf: &mut Ebpf,
    adopted: bool,
    insert_budget: u32,
) -> Result<(), DatapathError> {
    use lb_common::flow_table::user::{flow_table_config, random_flow_key, set_flow_table_config};
    let name = lb_common::MAP_FLOW_TABLE_CONFIG;
    let mut m: Array<_, lb_common::FlowTableConfig> = Array::try_from(
        ebpf.map_mut(name)
            .ok_or(DatapathError::MissingMap { map: name })?,
    )?;
    let mut config = flow_table_config(&m)?;
    if !adopted {
        config.key = random_flow_key().map_err(|source| DatapathError::Syscall {
            call: "getrandom",
            source,
        })?;
    }
    config.insert_budget = insert_budget;
    set_flow_table_config(&mut m, config)?;
    Ok(())
}

/// The loaded, attached datapath of one interface.
pub struct Datapath {
    ebpf: Ebpf,
    iface: Interface,
    pin_dir: PathBuf,
    mode: &'static str,
    adopted: bool,
    _link: Option<PinnedLink>,
    nr_cpus: usize,
    tables_fd: std::os::fd::OwnedFd,
}

impl Datapath {
    /// Loads and attaches the datapath, adopting pins when `previous` (the
    /// state file) matches them and the interface. Returns the datapath and
    /// the adopted state (`None` when starting empty).
    pub fn open(
        opts: &OpenOptions,
        previous: Option<AppliedState>,
    ) -> Result<(Self, Option<AppliedState>), DatapathError> {
        let iface = Interface::read(&opts.ifname)?;
        let root = bpffs::ensure_bpffs(&opts.pin_root)?;
        retire_legacy_pins(&root, &opts.ifname, iface.ifindex)?;
        let dir = pin_dir(&root, opts.netns, &opts.ifname);
        let existed = check_pin_dir(&dir, true)?;
        let link_path = dir.join(LINK_PIN);
        let link_ifindex = sys::obj_get(&link_path)
            .ok()
            .map(|fd| sys::xdp_link_ifindex(&fd).unwrap_or(0));
        let mut adopt = match (&previous, link_ifindex) {
            _ if opts.fresh => None,
            (Some(st), Some(li)) if st.ifindex == iface.ifindex && li == iface.ifindex => {
                previous.clone()
            }
            _ => None,
        };
        let conntrack_pin = dir.join(lb_common::MAP_CONNTRACK);
        let mut buckets = lb_common::flow_buckets(opts.conntrack_entries);
        let mut incompatible = None;
        if adopt.is_some() {
            let checked = layout::check_pins(&dir, &MAP_NAMES, crate::object::EBPF_OBJECT)
                .and_then(|()| pinned_conntrack_buckets(&conntrack_pin));
            match checked {
                Ok(n) => buckets = n,
                Err(why) => {
                    incompatible = Some(format!("pinned maps of another layout ({why})"));
                    adopt = None;
                }
            }
        }
        if adopt.is_none() && existed {
            let why = if opts.fresh {
                "--fresh".to_string()
            } else if let Some(why) = incompatible {
                why
            } else {
                match (&previous, link_ifindex) {
                    (None, _) => "no state file".to_string(),
                    (_, None) => "no pinned link".to_string(),
                    (Some(st), Some(li)) => format!(
                        "state for ifindex {}, link on ifindex {li}, interface now ifindex {}",
                        st.ifindex, iface.ifindex
                    ),
                }
            };
            tracing::warn!(dir = %dir.display(), %why, "clearing leftover datapath state (not adopted)");
            detach_and_remove(&dir)?;
        }
        private_dir::ensure(&dir)?;

        let mut loader = EbpfLoader::new();
        let paths: Vec<(&str, PathBuf)> = MAP_NAMES.iter().map(|n| (*n, dir.join(n))).collect();
        for (name, path) in &paths {
            loader.map_pin_path(name, path.as_path());
        }
        let mask = buckets - 1;
        lb_common::flow_table::user::size_conntrack(&mut loader, &mask);
        let mut ebpf = loader.load(crate::object::EBPF_OBJECT)?;
        // The table's secret before the program can run: an adopted table
        // keeps the one its flows were placed with, a new one gets a fresh one.
        init_flow_table_config(&mut ebpf, adopt.is_some(), opts.conntrack_insert_budget)?;
        let prog: &mut Xdp = ebpf
            .program_mut(lb_common::PROG_LB)
            .ok_or(DatapathError::MissingProgram {
                program: lb_common::PROG_LB,
            })?
            .try_into()?;
        prog.load()?;

        let (link, mode) = match &adopt {
            Some(st) => {
                let pinned = PinnedLink::from_pin(&link_path)?;
                let fd: FdLink = pinned.into();
                let xdp_link = XdpLink::try_from(fd)?;
                prog.attach_to_link(xdp_link)?;
                tracing::info!(
                    iface = %iface.name, mode = %st.xdp_mode,
                    "adopted the pinned datapath (maps and link); program updated in place"
                );
                let mode = if st.xdp_mode == "native" {
                    "native"
                } else {
                    "skb"
                };
                (None, mode)
            }
            None => {
                let (id, mode) = attach(prog, iface.ifindex, opts.mode)?;
                let link = prog.take_link(id)?;
                let fd = FdLink::try_from(link)?;
                let pinned = fd.pin(&link_path)?;
                tracing::info!(iface = %iface.name, mode, pin = %link_path.display(), "attached lb_xdp");
                (Some(pinned), mode)
            }
        };
        let nr_cpus = aya::util::nr_cpus().map_err(|(what, e)| DatapathError::io(what, e))?;
        if let Some(st) = &adopt {
            // Rewrite the whole VIP filter from the adopted state: the plan
            // only sends the words that change from it.
            let words = crate::plan::vip_filter_words(
                st.services.iter().map(crate::plan::applied_filter_entry),
            );
            let mut filter: Array<_, u64> = Array::try_from(
                ebpf.map_mut(lb_common::MAP_VIP_FILTER)
                    .ok_or(DatapathError::MissingMap {
                        map: lb_common::MAP_VIP_FILTER,
                    })?,
            )?;
            for word in 0..lb_common::VIP_FILTER_WORDS {
                filter.set(word, words.get(&word).copied().unwrap_or(0), 0)?;
            }
        }
        let adopted = adopt.is_some();
        let tables_path = dir.join(lb_common::MAP_MAGLEV_TABLES);
        let tables_fd =
            sys::obj_get(&tables_path).map_err(|e| DatapathError::io(&tables_path, e))?;
        Ok((
            Self {
                ebpf,
                iface,
                pin_dir: dir,
                mode,
                adopted,
                _link: link,
                nr_cpus,
                tables_fd,
            },
            adopt,
        ))
    }

    /// The interface.
    pub fn interface(&self) -> &Interface {
        &self.iface
    }

    /// The pin directory.
    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    /// Live XDP mode: "native" or "skb".
    pub fn mode(&self) -> &'static str {
        self.mode
    }

    /// True when pins were adopted rather than created.
    pub fn adopted(&self) -> bool {
        self.adopted
    }

    /// Sets the connection table's insert budget (per second per CPU, 0 = no
    /// limit), keeping its secret: applies [`MapOp::SetInsertBudget`].
    pub fn set_insert_budget(&mut self, budget: u32) -> Result<(), DatapathError> {
        self.apply(&[MapOp::SetInsertBudget { budget }])
    }

    /// Writes SETTINGS for this interface and `encap` (see
    /// [`crate::plan::settings()`]): applies [`MapOp::PutSettings`]. The agent
    /// writes them through its plans; tools and tests call this.
    pub fn write_settings(&mut self, encap: &EncapConfig) -> Result<Settings, DatapathError> {
        let settings = crate::plan::settings(&self.iface.link(), encap);
        self.apply(&[MapOp::PutSettings { settings }])?;
        Ok(settings)
    }

    fn map_mut(&mut self, name: &'static str) -> Result<&mut aya::maps::Map, DatapathError> {
        self.ebpf
            .map_mut(name)
            .ok_or(DatapathError::MissingMap { map: name })
    }

    fn write_backend(&mut self, id: u32, entry: BackendEntry) -> Result<(), DatapathError> {
        let mut m: Array<_, BackendEntry> =
            Array::try_from(self.map_mut(lb_common::MAP_BACKENDS)?)?;
        m.set(id, entry, 0)?;
        Ok(())
    }

    /// Applies map operations in order, all or nothing: when one fails, every
    /// entry already written is put back as it was (see `undo`) before the
    /// error is returned, so packets never see part of a plan.
    /// A run of consecutive `PutTable`s is stored with one batch write.
    pub fn apply(&mut self, ops: &[MapOp]) -> Result<(), DatapathError> {
        let mut journal = Vec::new();
        let Err((index, cause)) = self.apply_journalled(ops, &mut journal) else {
            return Ok(());
        };
        let restored = journal.len();
        let failed = self.undo(journal);
        let op = ops.get(index).map_or_else(String::new, MapOp::describe);
        if failed.is_empty() {
            Err(DatapathError::RolledBack {
                index: index + 1,
                total: ops.len(),
                op,
                cause: Box::new(cause),
                restored,
            })
        } else {
            Err(DatapathError::RollbackFailed {
                index: index + 1,
                total: ops.len(),
                op,
                cause: Box::new(cause),
                failed: failed.iter().map(ToString::to_string).collect(),
            })
        }
    }

    /// Applies `ops`, recording in `journal` what each write replaces; on
    /// failure, the index of the failing op and its error.
    fn apply_journalled(
        &mut self,
        ops: &[MapOp],
        journal: &mut Vec<undo::Undo>,
    ) -> Result<(), (usize, DatapathError)> {
        let mut at = 0;
        while at < ops.len() {
            let tables = ops[at..]
                .iter()
                .take_while(|op| matches!(op, MapOp::PutTable { .. }))
                .count()
                .max(1);
            let run = &ops[at..at + tables];
            for (i, op) in run.iter().enumerate() {
                self.record(op, journal).map_err(|e| (at + i, e))?;
            }
            let done = if matches!(run[0], MapOp::PutTable { .. }) {
                self.put_tables(run)
            } else {
                self.apply_one(&run[0])
            };
            done.map_err(|e| (at, e))?;
            at += tables;
        }
        Ok(())
    }

    /// Creates and fills the inner tables of `ops` (all `PutTable`), then
    /// stores them into MAGLEV_TABLES in one batch.
    fn put_tables(&mut self, ops: &[MapOp]) -> Result<(), DatapathError> {
        let mut tables = Vec::with_capacity(ops.len());
        for op in ops {
            if let MapOp::PutTable { index, slots } = op {
                let inner =
                    inner_table::create_filled(slots).map_err(|source| DatapathError::MapCall {
                        map: lb_common::MAP_MAGLEV_TABLES,
                        op: "create an inner table",
                        source,
                    })?;
                tables.push((*index, inner));
            }
        }
        self.store_tables(&tables)
    }

    /// Stores `(index, table)`s into MAGLEV_TABLES (one batch write when the
    /// kernel has it).
    fn store_tables(&mut self, tables: &[(u32, MapData)]) -> Result<(), DatapathError> {
        use std::os::fd::AsFd as _;
        match inner_table::put_all(self.tables_fd.as_fd(), tables) {
            Ok(()) => Ok(()),
            // A kernel without batch writes on array-of-maps: one write each.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINVAL | KERNEL_ENOTSUPP | libc::EOPNOTSUPP)
                ) =>
            {
                tracing::debug!("batch store of Maglev tables refused ({e}); storing one by one");
                let mut outer: ArrayOfMaps<_, MapData> =
                    ArrayOfMaps::try_from(self.map_mut(lb_common::MAP_MAGLEV_TABLES)?)?;
                for (index, inner) in tables {
                    outer.set(*index, inner, 0)?;
                }
                Ok(())
            }
            Err(source) => Err(DatapathError::MapCall {
                map: lb_common::MAP_MAGLEV_TABLES,
                op: "batch update",
                source,
            }),
        }
    }

    fn apply_one(&mut self, op: &MapOp) -> Result<(), DatapathError> {
        match op {
            MapOp::ZeroBackendStats { id } => {
                let zero = PerCpuValues::try_from(vec![BackendStats::default(); self.nr_cpus])
                    .map_err(|source| DatapathError::PerCpuValues {
                        map: lb_common::MAP_BACKEND_STATS,
                        source,
                    })?;
                let mut m: PerCpuArray<_, BackendStats> =
                    PerCpuArray::try_from(self.map_mut(lb_common::MAP_BACKEND_STATS)?)?;
                m.set(*id, zero, 0)?;
            }
            MapOp::ZeroServiceStats { id } => {
                let zero = PerCpuValues::try_from(vec![ServiceStats::default(); self.nr_cpus])
                    .map_err(|source| DatapathError::PerCpuValues {
                        map: lb_common::MAP_SERVICE_STATS,
                        source,
                    })?;
                let mut m: PerCpuArray<_, ServiceStats> =
                    PerCpuArray::try_from(self.map_mut(lb_common::MAP_SERVICE_STATS)?)?;
                m.set(*id, zero, 0)?;
            }
            MapOp::PutSettings { settings } => {
                let mut m: Array<_, Settings> =
                    Array::try_from(self.map_mut(lb_common::MAP_SETTINGS)?)?;
                m.set(0, *settings, 0)?;
            }
            MapOp::SetInsertBudget { budget } => {
                use lb_common::flow_table::user::{flow_table_config, set_flow_table_config};
                let mut m: Array<_, lb_common::FlowTableConfig> =
                    Array::try_from(self.map_mut(lb_common::MAP_FLOW_TABLE_CONFIG)?)?;
                let mut config = flow_table_config(&m)?;
                config.insert_budget = *budget;
                set_flow_table_config(&mut m, config)?;
            }
            MapOp::PutBackend {
                id,
                address,
                generation,
                live,
                service_id,
                next_hop,
            } => self.write_backend(
                *id,
                backend_entry(*address, *generation, *live, *service_id, *next_hop),
            )?,
            MapOp::RetireBackend {
                id,
                address,
                generation,
                next_hop,
            } => self.write_backend(
                *id,
                backend_entry(*address, *generation, false, 0, *next_hop),
            )?,
            MapOp::SetVipFilterWord { word, bits } => {
                let mut m: Array<_, u64> =
                    Array::try_from(self.map_mut(lb_common::MAP_VIP_FILTER)?)?;
                m.set(*word, *bits, 0)?;
            }
            MapOp::PutTable { .. } => self.put_tables(std::slice::from_ref(op))?,
            MapOp::DeleteTable { index } => {
                let fd = std::os::fd::AsRawFd::as_raw_fd(&self.tables_fd);
                delete_elem(fd, index)?;
            }
            MapOp::PutService { key, entry } => {
                let mut m: BpfHashMap<_, VipKey, ServiceEntry> =
                    BpfHashMap::try_from(self.map_mut(lb_common::MAP_VIPS)?)?;
                m.insert(key, entry, 0)?;
            }
            MapOp::PutVipMarker { vip } => {
                let mut m: BpfHashMap<_, VipKey, ServiceEntry> =
                    BpfHashMap::try_from(self.map_mut(lb_common::MAP_VIPS)?)?;
                m.insert(marker_key(*vip), ServiceEntry::default(), 0)?;
            }
            MapOp::DeleteService { key } => {
                let mut m: BpfHashMap<_, VipKey, ServiceEntry> =
                    BpfHashMap::try_from(self.map_mut(lb_common::MAP_VIPS)?)?;
                ignore_missing(m.remove(key))?;
            }
            MapOp::DeleteVipMarker { vip } => {
                let mut m: BpfHashMap<_, VipKey, ServiceEntry> =
                    BpfHashMap::try_from(self.map_mut(lb_common::MAP_VIPS)?)?;
                ignore_missing(m.remove(&marker_key(*vip)))?;
            }
        }
        Ok(())
    }
}

/// The BACKENDS entry of a backend: its address, generation, liveness,
/// service and (when known) next hop.
fn backend_entry(
    address: std::net::IpAddr,
    generation: u32,
    live: bool,
    service_id: u32,
    next_hop: Option<NextHop>,
) -> BackendEntry {
    let (addr, family) = address_words(address);
    let mut e = BackendEntry {
        addr,
        generation,
        flags: if live { BACKEND_LIVE } else { 0 },
        family,
        service_id,
        ..Default::default()
    };
    if let Some(nh) = next_hop {
        e.flags |= BACKEND_HAS_NEXT_HOP;
        e.next_hop_ifindex = nh.ifindex;
        e.next_hop_mtu = nh.mtu;
        e.next_hop_mac = nh.mac;
        e.source_mac = nh.source_mac;
    }
    e
}

fn ignore_missing(r: Result<(), aya::maps::MapError>) -> Result<(), DatapathError> {
    match r {
        Err(aya::maps::MapError::KeyNotFound) => Ok(()),
        Err(aya::maps::MapError::SyscallError(e))
            if e.io_error.raw_os_error() == Some(libc::ENOENT) =>
        {
            Ok(())
        }
        other => Ok(other?),
    }
}

/// BPF_MAP_DELETE_ELEM on an array-of-maps slot (aya 0.14 has no delete for it).
fn delete_elem(map_fd: std::os::fd::RawFd, index: &u32) -> Result<(), DatapathError> {
    #[repr(C)]
    struct Attr {
        map_fd: u32,
        _pad: u32,
        key: u64,
        value: u64,
        flags: u64,
    }
    let attr = Attr {
        map_fd: map_fd as u32,
        _pad: 0,
        key: index as *const u32 as u64,
        value: 0,
        flags: 0,
    };
    const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
    // SAFETY: attr is a valid bpf_attr prefix; key points to a live u32.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_DELETE_ELEM,
            &attr as *const Attr,
            size_of::<Attr>() as u32,
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENOENT) {
            return Err(DatapathError::MapCall {
                map: lb_common::MAP_MAGLEV_TABLES,
                op: "delete",
                source: e,
            });
        }
    }
    Ok(())
}

/// Attaches `prog` to `ifindex` in the requested mode; auto tries native first.
fn attach(
    prog: &mut Xdp,
    ifindex: u32,
    mode: ModeChoice,
) -> Result<(aya::programs::xdp::XdpLinkId, &'static str), DatapathError> {
    match mode {
        ModeChoice::Native => Ok((prog.attach_to_if_index(ifindex, XdpMode::Driver)?, "native")),
        ModeChoice::Skb => Ok((prog.attach_to_if_index(ifindex, XdpMode::Skb)?, "skb")),
        ModeChoice::Auto => match prog.attach_to_if_index(ifindex, XdpMode::Driver) {
            Ok(id) => Ok((id, "native")),
            Err(e) => {
                tracing::warn!(error = %e, "native XDP attach failed; falling back to generic (skb) mode");
                Ok((prog.attach_to_if_index(ifindex, XdpMode::Skb)?, "skb"))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::check_bucket_count;

    #[test]
    fn only_a_power_of_two_of_buckets_is_adopted() {
        assert_eq!(check_bucket_count(1024), Ok(1024));
        let e = check_bucket_count(1000).unwrap_err();
        assert!(e.contains("1000 buckets, not a power of two"), "{e}");
    }
}
