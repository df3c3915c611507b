//! `lb decap`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use aya::EbpfLoader;
use aya::maps::HashMap as BpfHashMap;
use aya::programs::links::FdLink;
use aya::programs::{Xdp, XdpMode};
use lb::kernel::{Interface, LINK_PIN, check_pin_dir, decap_pin_dir, detach_and_remove};
use lb::netns::NetnsId;
use lb::state::DEFAULT_PIN_ROOT;
use lb_common::DecapKey;

/// Arguments of `lb decap`.
#[derive(clap::Args)]
pub struct Args {
    /// Interface the encapsulated packets arrive on.
    #[arg(long)]
    iface: String,
    /// Extra local address accepted as outer destination (repeatable).
    #[arg(long = "address")]
    addresses: Vec<IpAddr>,
    /// Detach and remove the pins instead.
    #[arg(long)]
    detach: bool,
    /// Use generic (skb) mode instead of native.
    #[arg(long)]
    skb: bool,
    /// bpffs root of the pin directories.
    #[arg(long, default_value = DEFAULT_PIN_ROOT)]
    pin_root: PathBuf,
}

/// Runs `lb decap`: attaches `lb_decap` and pins it under
/// `<root>/ns<netns inode>/decap-<iface>` (keyed by network namespace: the
/// same interface name in another namespace is another interface).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let netns = NetnsId::current().context("which network namespace this is")?;
    let root = if args.detach {
        lb::kernel::bpffs::secure_root(&args.pin_root)?
    } else {
        lb::kernel::bpffs::ensure_bpffs(&args.pin_root)?
    };
    let dir = decap_pin_dir(&root, netns, &args.iface);
    if args.detach {
        let detached = detach_and_remove(&dir)?;
        eprintln!(
            "{}: decap {}",
            args.iface,
            if detached {
                "detached"
            } else {
                "was not attached"
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let iface = Interface::read(&args.iface)?;
    detach_and_remove(&dir)?;
    check_pin_dir(&dir, true)?;
    lb::private_dir::ensure(&dir)?;
    let addrs_pin = dir.join(lb_common::MAP_DECAP_ADDRS);
    let stats_pin = dir.join(lb_common::MAP_DECAP_STATS);
    // The decapsulator never touches the connection table: one bucket.
    let mask = 0;
    let mut loader = EbpfLoader::new();
    lb_common::flow_table::user::size_conntrack(&mut loader, &mask);
    let mut ebpf = loader
        .map_pin_path(lb_common::MAP_DECAP_ADDRS, addrs_pin.as_path())
        .map_pin_path(lb_common::MAP_DECAP_STATS, stats_pin.as_path())
        .load(lb::object::EBPF_OBJECT)?;
    {
        let mut m: BpfHashMap<_, DecapKey, u32> = BpfHashMap::try_from(
            ebpf.map_mut(lb_common::MAP_DECAP_ADDRS)
                .context("no DECAP_ADDRS")?,
        )?;
        let mut all = iface.addresses.clone();
        all.extend(&args.addresses);
        for a in &all {
            m.insert(DecapKey::from(*a), 0, 0)?;
        }
        eprintln!(
            "{}: accepting {} local address(es): {all:?}",
            args.iface,
            all.len()
        );
    }
    let prog: &mut Xdp = ebpf
        .program_mut(lb_common::PROG_DECAP)
        .context("no lb_decap program")?
        .try_into()?;
    prog.load()?;
    let mode = if args.skb {
        XdpMode::Skb
    } else {
        XdpMode::Driver
    };
    let id = prog.attach_to_if_index(iface.ifindex, mode)?;
    let link = FdLink::try_from(prog.take_link(id)?)?;
    link.pin(dir.join(LINK_PIN))?;
    eprintln!(
        "{}: lb_decap attached ({}), pinned under {}; `lb decap --iface {} --detach` removes it",
        args.iface,
        if args.skb { "skb" } else { "native" },
        dir.display(),
        args.iface
    );
    Ok(ExitCode::SUCCESS)
}
