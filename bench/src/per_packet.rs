//! Per-packet cost through BPF_PROG_TEST_RUN, against baselines in the same run.
//!
//! Method: BPF_PROG_TEST_RUN with repeat > 1 reuses one buffer, so programs that
//! rewrite the frame run behind `bench_restore`, which undoes the previous
//! pass's growth, rewrites the 64-byte template (optionally with a per-pass
//! flow) and tail-calls the program under test. The wrapper's own cost is
//! measured (wrapper -> XDP_PASS) and replaced by the bare XDP_PASS cost:
//! `cost(X) = t(wrapper -> X) - t(wrapper -> pass) + t(pass)`. Programs that
//! leave the frame valid for the next pass (XDP_PASS, MAC swap) run bare.
//! Each figure is the median of several runs of many passes on one CPU.

use std::net::Ipv4Addr;

use anyhow::{Context, Result, bail, ensure};
use aya::{
    Ebpf, EbpfLoader, TestRun as _,
    maps::{Array, ProgramArray},
    programs::{ProgramFd, TestRunOptions, Xdp},
};
use lb_common::{FlowEntry, flow::PROTO_TCP};
use lb_tests::{
    frames::{Tcp, V4, tcp_v4},
    harness::{Lb, TEST_RUN_INGRESS, XDP_PASS, XDP_TX, backend_entry, flow_key},
};

use crate::report::{Report, Row, Target};

/// The baselines and wrappers (`bench-ebpf`).
pub(crate) static BENCH_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/bench-ebpf"));

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);
const NOT_A_VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 50, 50);
/// A port of the VIP address that no service serves.
const UNSERVED_PORT: u16 = 81;

/// Targets as ratios to baselines of the same run. Katran measured with this
/// method (README, *lb against Katran*) costs 3.2-3.6x encap-only for a hot
/// established flow, 6.9-8.2x for cold ones (1M flows) and 16.8-18.4x for a
/// new flow with its insert: lb is to cost at most 0.58x, 0.5x and 0.5x of that.
const HOT_MAX_X_ENCAP: f64 = 1.9;
/// See [`HOT_MAX_X_ENCAP`].
const COLD_MAX_X_ENCAP: f64 = 3.5;
/// See [`HOT_MAX_X_ENCAP`].
const NEW_FLOW_MAX_X_ENCAP: f64 = 8.5;
/// A packet lb does not serve (not a VIP, or a VIP's unserved port) is to cost
/// what parsing costs: within noise of the empty program.
const NOT_SERVED_MAX_X_PASS: f64 = 1.5;
/// Template client; the wrapper overwrites its last two octets and the port.
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 16, 0);
const BACKENDS: u32 = 4;
const TABLE_SIZE: u32 = 65537;
/// The wrapper's "new flow every pass" setting.
const EVERY_PASS_NEW: u32 = u32::MAX;

/// Mirrors `bench-ebpf`'s `Template`.
#[repr(C)]
#[derive(Clone, Copy)]
struct Template {
    frame: [u8; 64],
    flows: u32,
    pad: u32,
}
// SAFETY: repr(C), integers and bytes only, no padding (64 + 4 + 4).
unsafe impl aya::Pod for Template {}

/// How many passes and runs each figure takes.
#[derive(Clone, Copy)]
pub(crate) struct Sizes {
    /// Passes per BPF_PROG_TEST_RUN.
    pub(crate) passes: u32,
    /// Runs per figure (the median is kept).
    pub(crate) runs: usize,
    cold_flows: u32,
}

/// Runs every per-packet case and adds its rows to `report`.
pub fn run(report: &mut Report, quick: bool) -> Result<()> {
    let sizes = if quick {
        Sizes {
            passes: std::env::var("XP")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000),
            runs: if std::env::var("XP").is_ok() { 5 } else { 1 },
            cold_flows: 1000,
        }
    } else {
        Sizes {
            passes: 2_000_000,
            runs: 7,
            cold_flows: 1_000_000,
        }
    };
    // Two slots per cold flow (the table half full, as sized in production).
    let mut lb = Lb::with_conntrack(sizes.cold_flows * 2);
    for id in 1..=BACKENDS {
        let addr = Ipv4Addr::new(198, 18, 3, id as u8);
        lb.set_backend(id, backend_entry(addr.into(), 1, TEST_RUN_INGRESS));
    }
    let table: Vec<u32> = (0..TABLE_SIZE).map(|i| 1 + i % BACKENDS).collect();
    lb.add_service(VIP.into(), 80, PROTO_TCP, 0, &table);
    lb.add_marker(VIP.into());

    let mut bench = EbpfLoader::new()
        .load(BENCH_OBJECT)
        .context("load the baseline programs")?;
    for name in [
        "bench_pass",
        "bench_macswap",
        "bench_encap",
        "bench_restore",
    ] {
        let prog: &mut Xdp = bench.program_mut(name).context(name)?.try_into()?;
        prog.load()
            .with_context(|| format!("verifier rejected {name}"))?;
    }
    let mut addrs: Array<_, [u32; 2]> =
        Array::try_from(bench.map_mut("ENCAP_ADDRS").context("ENCAP_ADDRS")?)?;
    addrs.set(
        0,
        [
            u32::from_ne_bytes([198, 18, 2, 2]),
            u32::from_ne_bytes([198, 18, 3, 1]),
        ],
        0,
    )?;

    let ack = frame(CLIENT, VIP, Tcp::Ack)?;
    let syn = frame(CLIENT, VIP, Tcp::Syn)?;
    let other = frame(CLIENT, NOT_A_VIP, Tcp::Ack)?;
    let unserved = frame_to(CLIENT, VIP, UNSERVED_PORT, Tcp::Ack)?;

    let pass = bare(&bench, "bench_pass", &ack, &sizes, XDP_PASS)?;
    let macswap = bare(&bench, "bench_macswap", &ack, &sizes, XDP_TX)?;
    let pass_fd = prog_fd(&bench, "bench_pass")?;
    let wrapper = wrapped(&mut bench, pass_fd, &ack, 0, &sizes, XDP_PASS)?;
    let net = |t: f64| (t - wrapper + pass).max(0.0);
    let encap_fd = prog_fd(&bench, "bench_encap")?;
    let encap = net(wrapped(&mut bench, encap_fd, &ack, 0, &sizes, XDP_TX)?);

    let lb_fd = {
        let p: &Xdp = lb
            .ebpf
            .program(lb_common::PROG_LB)
            .context("lb_xdp")?
            .try_into()?;
        p.fd()?.try_clone()?
    };
    // Hot: one established flow (the first pass pins it).
    let hot = net(wrapped(
        &mut bench,
        lb_fd.try_clone()?,
        &ack,
        0,
        &sizes,
        XDP_TX,
    )?);
    // Cold: the wrapper cycles over `cold_flows` flows, all already pinned.
    lb.set_conntrack_many((0..sizes.cold_flows).map(|flow| {
        let client = Ipv4Addr::new(198, 18, 16 + (flow >> 24) as u8, (flow >> 16) as u8);
        let key = flow_key(client.into(), flow as u16, VIP.into(), 80, PROTO_TCP);
        let entry = FlowEntry {
            backend_id: 1 + flow % BACKENDS,
            generation: 1,
        };
        (key, entry)
    }));
    let hits_before = lb.global(lb_common::GlobalCounter::ConntrackHit);
    let cold = net(wrapped(
        &mut bench,
        lb_fd.try_clone()?,
        &ack,
        sizes.cold_flows,
        &sizes,
        XDP_TX,
    )?);
    let hits = lb.global(lb_common::GlobalCounter::ConntrackHit) - hits_before;
    let passes = u64::from(sizes.passes) * sizes.runs as u64;
    ensure!(
        hits * 100 >= passes * 99,
        "cold case: only {hits} connection-table hits in {passes} passes; the pre-populated flows were not found"
    );
    // New flow: a SYN from a new client every pass (Maglev pick + insert);
    // the table fills up, so from then on every insert replaces a flow.
    let new_flow = net(wrapped(
        &mut bench,
        lb_fd.try_clone()?,
        &syn,
        EVERY_PASS_NEW,
        &sizes,
        XDP_TX,
    )?);
    // The same SYN every pass: a fresh Maglev pick that overwrites the flow's
    // own, cached slot (what a fixture repeated N times measures).
    let syn_warm = net(wrapped(
        &mut bench,
        lb_fd.try_clone()?,
        &syn,
        0,
        &sizes,
        XDP_TX,
    )?);
    let not_vip = net(wrapped(
        &mut bench,
        lb_fd.try_clone()?,
        &other,
        0,
        &sizes,
        XDP_PASS,
    )?);
    let unserved_port = net(wrapped(
        &mut bench,
        lb_fd.try_clone()?,
        &unserved,
        0,
        &sizes,
        XDP_PASS,
    )?);
    // lb leaves these two frames as they are, so they also run bare, exactly
    // like the empty program: no wrapper cost to subtract, no added noise.
    let not_vip_bare = bare(&lb.ebpf, lb_common::PROG_LB, &other, &sizes, XDP_PASS)?;
    let unserved_bare = bare(&lb.ebpf, lb_common::PROG_LB, &unserved, &sizes, XDP_PASS)?;
    // The hot established flow again, its service now encapsulating in GUE
    // (outer IPv4 + UDP from a per-flow port + GUE header: 32 bytes, one
    // flow hash more) instead of IPIP.
    for id in 1..=BACKENDS {
        let mut entry = lb.backend(id);
        entry.flags |= lb_common::BACKEND_ENCAP_GUE;
        lb.set_backend(id, entry);
    }
    let hot_gue = net(wrapped(&mut bench, lb_fd, &ack, 0, &sizes, XDP_TX)?);

    let row = |name: &str, value: f64, target: Option<Target>, versus: String| Row {
        section: "per-packet",
        name: name.into(),
        value,
        unit: "ns",
        target,
        versus,
    };
    let x_encap = |bound: f64| Target::RatioAtMost {
        bound,
        of: "encap-only",
        base: encap,
    };
    let x_pass = |bound: f64| Target::RatioAtMost {
        bound,
        of: "pass",
        base: pass,
    };
    let vs = |v: f64| {
        format!(
            "{:.2}x pass, {:.2}x mac-swap, {:.2}x encap-only",
            v / pass,
            v / macswap,
            v / encap
        )
    };
    report.push(row("baseline: empty XDP_PASS", pass, None, String::new()));
    report.push(row(
        "baseline: MAC-swap XDP_TX",
        macswap,
        None,
        format!("{:.2}x pass", macswap / pass),
    ));
    report.push(row(
        "baseline: encapsulate-only (IPIP, XDP_TX)",
        encap,
        None,
        format!("{:.2}x pass", encap / pass),
    ));
    report.push(row(
        "lb: established flow, hot (1 flow)",
        hot,
        Some(x_encap(HOT_MAX_X_ENCAP)),
        vs(hot),
    ));
    report.push(row(
        &format!("lb: established flows, cold ({} flows)", sizes.cold_flows),
        cold,
        Some(x_encap(COLD_MAX_X_ENCAP)),
        vs(cold),
    ));
    report.push(row(
        "lb: new flow (SYN, Maglev + insert, table full)",
        new_flow,
        Some(x_encap(NEW_FLOW_MAX_X_ENCAP)),
        vs(new_flow),
    ));
    report.push(row(
        "lb: SYN re-pick, warm (same flow every pass)",
        syn_warm,
        None,
        vs(syn_warm),
    ));
    report.push(row(
        "lb: non-VIP packet passed",
        not_vip,
        Some(x_pass(NOT_SERVED_MAX_X_PASS)),
        vs(not_vip),
    ));
    report.push(row(
        "lb: VIP address, port no service serves, passed",
        unserved_port,
        Some(x_pass(NOT_SERVED_MAX_X_PASS)),
        vs(unserved_port),
    ));
    report.push(row(
        "lb: non-VIP packet passed, bare",
        not_vip_bare,
        Some(x_pass(NOT_SERVED_MAX_X_PASS)),
        vs(not_vip_bare),
    ));
    report.push(row(
        "lb: VIP address, unserved port, passed, bare",
        unserved_bare,
        Some(x_pass(NOT_SERVED_MAX_X_PASS)),
        vs(unserved_bare),
    ));
    report.push(row(
        "lb: established flow, hot, GUE instead of IPIP (1 flow)",
        hot_gue,
        None,
        format!("{}, {:.2}x lb hot IPIP", vs(hot_gue), hot_gue / hot),
    ));
    crate::per_packet_decap::run(report, &sizes, pass)?;
    report.note(format!(
        "per-packet cold: each lookup reads the flow's first bucket, one 64-byte cache line of the \
         {} KiB table ({} chunks of 32 KiB of direct-mapped memory: no TLB miss), and the second \
         (another line) only for the few flows placed there (about 3 % at half load, by simulation; \
         the same for IPv6: slots hold fingerprints, not addresses)",
        lb.flow_geometry.chunks * 32,
        lb.flow_geometry.chunks
    ));
    report.note(format!(
        "per-packet: BPF_PROG_TEST_RUN, 64-byte TCP/IPv4 frames, median of {} runs x {} passes on one CPU; \
         rewriting programs run behind a frame-restoring wrapper whose own cost ({:.1} ns) is replaced by the \
         bare XDP_PASS cost",
        sizes.runs,
        sizes.passes,
        wrapper - pass
    ));
    Ok(())
}

/// A 64-byte TCP/IPv4 frame to port 80.
fn frame(src: Ipv4Addr, dst: Ipv4Addr, flags: Tcp) -> Result<Vec<u8>> {
    frame_to(src, dst, 80, flags)
}

/// A 64-byte TCP/IPv4 frame to `port`.
fn frame_to(src: Ipv4Addr, dst: Ipv4Addr, port: u16, flags: Tcp) -> Result<Vec<u8>> {
    let f = tcp_v4(src, 40000, dst, port, flags, &[0u8; 10], &V4::default());
    if f.len() != 64 {
        bail!("template frame is {} bytes, expected 64", f.len());
    }
    Ok(f)
}

fn prog_fd(ebpf: &Ebpf, name: &str) -> Result<ProgramFd> {
    let p: &Xdp = ebpf.program(name).context(name.to_owned())?.try_into()?;
    Ok(p.fd()?.try_clone()?)
}

/// Median ns per pass of program `name` run bare.
fn bare(ebpf: &Ebpf, name: &str, frame: &[u8], sizes: &Sizes, expect: u32) -> Result<f64> {
    let p: &Xdp = ebpf.program(name).context(name.to_owned())?.try_into()?;
    median(sizes, || time(p, frame, sizes.passes, expect))
}

/// Median ns per pass of the wrapper tail-calling `target` with `flows`.
fn wrapped(
    ebpf: &mut Ebpf,
    target: ProgramFd,
    frame: &[u8],
    flows: u32,
    sizes: &Sizes,
    expect: u32,
) -> Result<f64> {
    let mut t = Template {
        frame: [0; 64],
        flows,
        pad: 0,
    };
    t.frame.copy_from_slice(frame);
    let mut template: Array<_, Template> =
        Array::try_from(ebpf.map_mut("TEMPLATE").context("TEMPLATE")?)?;
    template.set(0, t, 0)?;
    let mut targets = ProgramArray::try_from(ebpf.map_mut("TARGET").context("TARGET")?)?;
    targets.set(0, &target, 0)?;
    let p: &Xdp = ebpf
        .program("bench_restore")
        .context("bench_restore")?
        .try_into()?;
    let result = median(sizes, || time(p, frame, sizes.passes, expect));
    // The array holds its own reference; keep ours until the runs are done.
    drop(target);
    result
}

/// The median of `sizes.runs` results of `one`.
pub(crate) fn median(sizes: &Sizes, mut one: impl FnMut() -> Result<f64>) -> Result<f64> {
    let mut v = (0..sizes.runs).map(|_| one()).collect::<Result<Vec<_>>>()?;
    v.sort_by(f64::total_cmp);
    Ok(v[v.len() / 2])
}

/// One BPF_PROG_TEST_RUN of `passes` passes: ns per pass, checking the verdict.
fn time(p: &Xdp, frame: &[u8], passes: u32, expect: u32) -> Result<f64> {
    let mut out = vec![0u8; 256];
    let r = p.test_run(TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        repeat: passes,
        ..Default::default()
    })?;
    ensure!(
        r.return_value == expect,
        "program returned {} instead of {expect}",
        r.return_value
    );
    Ok(r.duration.as_nanos() as f64)
}
