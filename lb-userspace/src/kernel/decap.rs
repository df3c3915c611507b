//! The backend-side decapsulator (`lb_decap`): load it with its maps pinned,
//! fill its local addresses, attach it and pin the link. `lb decap` decides
//! what to ask for; this is the only place it touches the kernel.

use std::net::IpAddr;
use std::path::Path;

use aya::EbpfLoader;
use aya::maps::HashMap as BpfHashMap;
use aya::programs::links::FdLink;
use aya::programs::{Xdp, XdpMode};
use lb_common::DecapKey;

use super::{KernelError, LINK_PIN};

/// What to attach: where the pins go and what the decapsulator accepts.
#[derive(Clone, Copy, Debug)]
pub struct DecapAttach<'a> {
    /// The pin directory (made and checked by the caller).
    pub dir: &'a Path,
    /// The interface the encapsulated packets arrive on.
    pub ifindex: u32,
    /// Every local address accepted as outer destination.
    pub addresses: &'a [IpAddr],
    /// The UDP ports GUE is accepted on (at most `MAX_DECAP_GUE_PORTS`).
    pub gue_ports: &'a [u16],
    /// Generic (skb) mode instead of native.
    pub skb: bool,
}

/// Loads `lb_decap` from `object` with its address and counter maps pinned in
/// `req.dir`, fills the addresses, attaches it to `req.ifindex` and pins the
/// link as [`LINK_PIN`] there.
pub fn attach_decap(object: &[u8], req: &DecapAttach<'_>) -> Result<(), KernelError> {
    let addrs_pin = req.dir.join(lb_common::MAP_DECAP_ADDRS);
    let stats_pin = req.dir.join(lb_common::MAP_DECAP_STATS);
    // The decapsulator never touches the connection table: one bucket.
    let mask = 0;
    let gue_ports = lb_common::decap_gue_ports(req.gue_ports);
    let mut loader = EbpfLoader::new();
    lb_common::flow_table::user::size_conntrack(&mut loader, &mask);
    loader.override_global(lb_common::GLOBAL_DECAP_GUE_PORTS, &gue_ports, true);
    let mut ebpf = loader
        .map_pin_path(lb_common::MAP_DECAP_ADDRS, addrs_pin.as_path())
        .map_pin_path(lb_common::MAP_DECAP_STATS, stats_pin.as_path())
        .load(object)?;
    let mut addrs: BpfHashMap<_, DecapKey, u32> = BpfHashMap::try_from(
        ebpf.map_mut(lb_common::MAP_DECAP_ADDRS)
            .ok_or(KernelError::MissingMap {
                map: lb_common::MAP_DECAP_ADDRS,
            })?,
    )?;
    for a in req.addresses {
        addrs.insert(DecapKey::from(*a), 0, 0)?;
    }
    let prog: &mut Xdp = ebpf
        .program_mut(lb_common::PROG_DECAP)
        .ok_or(KernelError::MissingProgram {
            program: lb_common::PROG_DECAP,
        })?
        .try_into()?;
    prog.load()?;
    let mode = if req.skb {
        XdpMode::Skb
    } else {
        XdpMode::Driver
    };
    let id = prog.attach_to_if_index(req.ifindex, mode)?;
    let link = FdLink::try_from(prog.take_link(id)?)?;
    link.pin(req.dir.join(LINK_PIN))?;
    Ok(())
}
