//! What the rate benchmark reads and sets up around the device under test:
//! the sink's and the generator's counters, a program's own run time, where
//! the baseline forwarders send, the nftables DNAT case's rule, and
//! native-mode attachment inside a namespace.

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{Context, Result};
use aya::{
    Ebpf,
    maps::{Array, PerCpuArray},
    programs::{Xdp, XdpMode, xdp::XdpLinkId},
};
use lb_tests::lab::cmd;

use crate::rate_frame::{EncapForward, Forward};
use crate::rate_topology::{Iface, RateNet};

/// Mean ns per run of `prog` over `window`, with the kernel's run-time
/// statistics enabled only for that window.
pub(crate) fn program_time(prog: &Xdp, window: Duration) -> Result<f64> {
    let _stats = aya::sys::enable_stats(aya::sys::Stats::RunTime).context("BPF_ENABLE_STATS")?;
    let a = prog.info()?;
    std::thread::sleep(window);
    let b = prog.info()?;
    let runs = b.run_count().saturating_sub(a.run_count()).max(1);
    Ok((b.run_time() - a.run_time()).as_nanos() as f64 / runs as f64)
}

/// Points the baseline forwarders at the sink: `bench_forward` (MAC rewrite)
/// and `bench_encap_forward` (IPIP from `outer_src` to `backend`), both out of
/// the DUT's sink-facing veth.
pub(crate) fn forwarding(
    bench: &mut Ebpf,
    net: &RateNet,
    outer_src: Ipv4Addr,
    backend: Ipv4Addr,
) -> Result<()> {
    Array::<_, Forward>::try_from(bench.map_mut("FORWARD").context("FORWARD")?)?.set(
        0,
        Forward {
            ifindex: net.dut_out.ifindex,
            dst: net.sink_if.mac,
            src: net.dut_out.mac,
        },
        0,
    )?;
    Array::<_, EncapForward>::try_from(bench.map_mut("ENCAP_FORWARD").context("ENCAP_FORWARD")?)?
        .set(
        0,
        EncapForward {
            ifindex: net.dut_out.ifindex,
            dst: net.sink_if.mac,
            src: net.dut_out.mac,
            outer_src: outer_src.octets(),
            outer_dst: backend.octets(),
        },
        0,
    )?;
    Ok(())
}

/// The sink's counters, summed over CPUs (indices as `SinkKind`, 0 = all).
pub(crate) fn sink(bench: &Ebpf) -> Result<[u64; 4]> {
    let m = PerCpuArray::<_, u64>::try_from(bench.map("SINK_COUNTS").context("SINK_COUNTS")?)?;
    let mut out = [0u64; 4];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = m.get(&(i as u32), 0)?.iter().sum();
    }
    Ok(out)
}

/// Frames `bench_gen` has written, summed over CPUs.
pub(crate) fn generated(bench: &Ebpf) -> Result<u64> {
    let m = PerCpuArray::<_, u64>::try_from(bench.map("GEN_COUNT").context("GEN_COUNT")?)?;
    Ok(m.get(&0, 0)?.iter().sum())
}

/// An nftables DNAT of `vip`:`port` (UDP) to `to` in a namespace; removed on drop.
pub(crate) struct NftDnat {
    ns: String,
}

impl NftDnat {
    const TABLE: &'static str = "lbbench";

    /// Adds the DNAT rule in `ns`.
    pub(crate) fn add(ns: &str, vip: Ipv4Addr, port: u16, to: Ipv4Addr) -> Result<NftDnat> {
        let _ = cmd::exec_in(ns, "nft", &[&format!("delete table ip {}", Self::TABLE)]);
        let script = format!(
            "add table ip {t}; \
             add chain ip {t} pre {{ type nat hook prerouting priority -100; }}; \
             add rule ip {t} pre ip daddr {vip} udp dport {port} dnat to {to}",
            t = Self::TABLE
        );
        cmd::exec_in(ns, "nft", &[&script]).context("nft (is nftables installed?)")?;
        Ok(NftDnat { ns: ns.to_owned() })
    }
}

impl Drop for NftDnat {
    fn drop(&mut self) {
        let _ = cmd::exec_in(
            &self.ns,
            "nft",
            &[&format!("delete table ip {}", Self::TABLE)],
        );
    }
}

/// Attaches `prog` in native mode to `iface` (from inside its namespace: the
/// ifindex is resolved there).
pub(crate) fn attach(prog: &mut Xdp, iface: &Iface) -> Result<XdpLinkId> {
    let ifindex = iface.ifindex;
    iface
        .ns
        .run(|| prog.attach_to_if_index(ifindex, XdpMode::Driver))?
        .with_context(|| format!("attach (native) to {}", iface.name))
}
