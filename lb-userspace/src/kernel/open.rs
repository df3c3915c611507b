//! Opening the datapath of an interface: adopt its pins or start fresh
//! ([`super::adopt`] decides), load the object with its maps pinned, set the
//! connection table's secret, attach (or update the pinned link in place).

use std::path::{Path, PathBuf};

use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::xdp::XdpLink;
use aya::programs::{Xdp, XdpMode};
use aya::{Ebpf, EbpfLoader};

use super::adopt::{self, Incompatible, NotAdopted, PinFacts};
use super::{
    Datapath, Interface, KernelError, LINK_PIN, MAP_NAMES, ModeChoice, OpenOptions, bpffs,
    check_pin_dir, detach_and_remove, layout, pin_dir, retire_legacy_pins, sys,
};
use crate::private_dir;
use crate::state::AppliedState;

/// The bucket count of the connection table pinned in `dir`, when every map
/// pinned there has this build's layout.
fn pinned_buckets(dir: &Path) -> Result<u32, Incompatible> {
    let wanted = layout::object_layouts(crate::object::EBPF_OBJECT)?;
    let pinned = layout::pinned_layouts(dir, &MAP_NAMES)?;
    adopt::compatible(&MAP_NAMES, &wanted, &pinned)?;
    layout::pinned_conntrack_buckets(dir)
}

/// Writes the connection table's config: a new random secret unless
/// `adopted` (then the pinned one stays), and the insert budget.
fn init_flow_table_config(
    ebpf: &mut Ebpf,
    adopted: bool,
    insert_budget: u32,
) -> Result<(), KernelError> {
    let mut config = super::live::flow_table_config(ebpf)?;
    if !adopted {
        config.key = lb_common::flow_table::user::random_flow_key().map_err(|source| {
            KernelError::Syscall {
                call: "getrandom",
                source,
            }
        })?;
    }
    config.insert_budget = insert_budget;
    super::live::put_flow_table_config(ebpf, config)
}

impl Datapath {
    /// Loads and attaches the datapath, adopting pins when `previous` (the
    /// state file) matches them and the interface. Returns the datapath and
    /// the adopted state (`None` when starting empty).
    pub fn open(
        opts: &OpenOptions,
        previous: Option<AppliedState>,
    ) -> Result<(Self, Option<AppliedState>), KernelError> {
        let iface = Interface::read(&opts.ifname)?;
        let root = bpffs::ensure_bpffs(&opts.pin_root)?;
        retire_legacy_pins(&root, &opts.ifname, iface.ifindex)?;
        let dir = pin_dir(&root, opts.netns, &opts.ifname);
        let existed = check_pin_dir(&dir, true)?;
        let link_path = dir.join(LINK_PIN);
        let facts = PinFacts {
            fresh: opts.fresh,
            state_ifindex: previous.as_ref().map(|st| st.ifindex),
            link_ifindex: sys::obj_get(&link_path)
                .ok()
                .map(|fd| sys::xdp_link_ifindex(&fd).unwrap_or(0)),
            ifindex: iface.ifindex,
        };
        let decision = adopt::may_adopt(&facts)
            .and_then(|()| pinned_buckets(&dir).map_err(NotAdopted::Incompatible));
        let (adopt, buckets) = match decision {
            Ok(buckets) => (previous, buckets),
            Err(why) => {
                if existed {
                    tracing::warn!(dir = %dir.display(), %why, "clearing leftover datapath state (not adopted)");
                    detach_and_remove(&dir)?;
                }
                (None, lb_common::flow_buckets(opts.conntrack_entries))
            }
        };
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
        // The program reads its own copies of the settings and the table's
        // config: the records' values before it is attached.
        super::live::copy_records(&mut ebpf)?;
        // The VIP filter is the program's own (not pinned): an adopted
        // datapath's is filled from the adopted state before the program
        // replaces the running one, so no packet meets an empty filter. The
        // plan then only writes the words that change from that state.
        if let Some(st) = &adopt {
            let words = lb_common::vip_filter_words(
                st.services.iter().map(crate::plan::applied_service_key),
            );
            super::vip_filter::write_all(&mut ebpf, &words)?;
            remove_legacy_filter_pin(&dir)?;
        }
        let prog: &mut Xdp = ebpf
            .program_mut(lb_common::PROG_LB)
            .ok_or(KernelError::MissingProgram {
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
        let nr_cpus = aya::util::nr_cpus()
            .map_err(|(what, e)| KernelError::io(what, "reading the possible CPUs", e))?;
        let adopted = adopt.is_some();
        let tables_path = dir.join(lb_common::MAP_MAGLEV_TABLES);
        let tables_fd = sys::obj_get(&tables_path).map_err(|source| KernelError::MapCall {
            map: lb_common::MAP_MAGLEV_TABLES,
            op: "open the pin",
            source,
        })?;
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
}

/// Attaches `prog` to `ifindex` in the requested mode; auto tries native first.
fn attach(
    prog: &mut Xdp,
    ifindex: u32,
    mode: ModeChoice,
) -> Result<(aya::programs::xdp::XdpLinkId, &'static str), KernelError> {
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

/// Removes the VIP filter pin an earlier release left in `dir` (it pinned
/// the filter; this one gives every program its own, see
/// [`lb_common::MAP_VIP_FILTER`]). The old program holds its own reference
/// while it runs, so the pin is only clutter.
fn remove_legacy_filter_pin(dir: &Path) -> Result<(), KernelError> {
    let pin = dir.join(lb_common::LEGACY_PIN_VIP_FILTER);
    match std::fs::remove_file(&pin) {
        Ok(()) => {
            tracing::info!(pin = %pin.display(), "removed the VIP filter pin of an earlier release");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(KernelError::io(
            &pin,
            "removing an earlier release's VIP filter pin",
            e,
        )),
    }
}
