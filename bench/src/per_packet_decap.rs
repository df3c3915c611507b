//! Per-packet cost of the backend side (`lb_decap`), same method as
//! `per_packet`: BPF_PROG_TEST_RUN behind a frame-restoring wrapper
//! (`bench_restore_decap`, which undoes the previous pass's stripping) whose
//! own cost is replaced by the bare XDP_PASS cost of the same run. Rows: IPIP
//! strip (the reference), GUE strip without hint, GUE with a hint whose flow
//! has a local connection (socket lookup, then strip), and GUE with a hint
//! and no connection (socket lookup, FIB lookup, re-encapsulation, XDP_TX).
//! Socket and FIB lookups see the namespace of the calling thread, so the
//! whole section runs on a thread in a fresh namespace
//! (`lb_tests::decap_netns`) holding a real listener, a real connection and
//! the previous owner as a neighbour.

use std::net::SocketAddr;

use anyhow::{Context, Result, ensure};
use aya::{
    EbpfLoader, TestRun as _,
    maps::{Array, ProgramArray},
    programs::{ProgramFd, TestRunOptions, Xdp},
};
use lb_tests::{
    decap_frames::{Outer, gue_from_lb},
    decap_netns::{
        CLIENT4, HOST4, OWNER4, VIP4, connection, in_fresh_netns, listeners, owner_reachable,
    },
    frames::{LB_MAC, NEXT_HOP_MAC, Tcp, V4, ipip, tcp_v4},
    harness::{LB_SOURCE_V4, Lb, XDP_PASS, XDP_TX},
};

use crate::per_packet::{BENCH_OBJECT, Sizes, median, ns_per_pass};
use crate::report::{Report, Row};

/// Length of every template frame (`bench-ebpf`'s `DECAP_FRAME_LEN`).
const FRAME_LEN: usize = 112;
/// Client port of the flow with a local connection.
const CONNECTED_PORT: u16 = 42000;
/// Client port of the flow without one.
const ORPHAN_PORT: u16 = 42001;

/// The inner TCP/IPv4 ACK client -> VIP with `payload` bytes of data.
fn inner(cport: u16, payload: usize) -> Vec<u8> {
    tcp_v4(
        CLIENT4,
        cport,
        VIP4,
        80,
        Tcp::Ack,
        &vec![0u8; payload],
        &V4::default(),
    )
}

/// GUE from the load balancer to this host, padded to [`FRAME_LEN`].
fn gue(cport: u16, hint: bool) -> Result<Vec<u8>> {
    let outer = Outer {
        macs: (LB_MAC, NEXT_HOP_MAC),
        addrs: (LB_SOURCE_V4.into(), HOST4.into()),
        ports: (50001, lb_common::gue::DEFAULT_GUE_PORT),
        ttl: 63,
        id: 0,
    };
    let header = if hint { 12 } else { 4 };
    let payload = FRAME_LEN - (14 + 20 + 8 + header + 40);
    let f = gue_from_lb(outer, hint.then_some(OWNER4.into()), &inner(cport, payload));
    ensure!(f.len() == FRAME_LEN, "GUE frame is {} bytes", f.len());
    Ok(f)
}

/// Adds the decapsulator's rows (run on their own thread and namespace).
pub fn run(report: &mut Report, sizes: &Sizes, pass: f64) -> Result<()> {
    let sizes = *sizes;
    let figures = in_fresh_netns(move || measure(&sizes))?;
    let [wrapper, ipip_strip, gue_strip, hinted_local, hinted_forward] = figures;
    let net = |t: f64| (t - wrapper + pass).max(0.0);
    let ipip_strip = net(ipip_strip);
    let vs = |v: f64| format!("{:.2}x pass, {:.2}x IPIP strip", v / pass, v / ipip_strip);
    let row = |name: &str, value: f64, versus: String| Row {
        section: "per-packet",
        name: name.into(),
        value,
        unit: "ns",
        target: None,
        versus,
    };
    report.push(row(
        "lb_decap: IPIP strip, passed up",
        ipip_strip,
        format!("{:.2}x pass", ipip_strip / pass),
    ));
    for (name, t) in [
        ("lb_decap: GUE strip, no hint, passed up", gue_strip),
        (
            "lb_decap: GUE + hint, connection found, passed up",
            hinted_local,
        ),
        (
            "lb_decap: GUE + hint, no connection, forwarded",
            hinted_forward,
        ),
    ] {
        let v = net(t);
        report.push(row(name, v, vs(v)));
    }
    report.note(format!(
        "per-packet lb_decap: {FRAME_LEN}-byte frames (GUE/IPv4 or IPIP around TCP/IPv4) behind \
         bench_restore_decap, its own cost ({:.1} ns) replaced by the bare XDP_PASS cost; the \
         lookups run in a fresh namespace with one listener and one connection",
        wrapper - pass
    ));
    Ok(())
}

/// Ns per pass of: wrapper -> pass, IPIP strip, GUE strip, hinted with a
/// local connection, hinted forwarded (all behind the wrapper).
fn measure(sizes: &Sizes) -> Result<[f64; 5]> {
    let ifindex = owner_reachable();
    let (l4, _l6) = listeners();
    let _conn = connection(&l4, SocketAddr::from((CLIENT4, CONNECTED_PORT)));
    let mut lb = Lb::new();
    lb.add_decap_addr(HOST4.into());
    let mut bench = EbpfLoader::new()
        .load(BENCH_OBJECT)
        .context("load the baseline programs")?;
    for name in ["bench_pass", "bench_restore_decap"] {
        let prog: &mut Xdp = bench.program_mut(name).context(name)?.try_into()?;
        prog.load()
            .with_context(|| format!("verifier rejected {name}"))?;
    }
    let fd = |ebpf: &aya::Ebpf, name: &str| -> Result<ProgramFd> {
        let p: &Xdp = ebpf.program(name).context(name.to_owned())?.try_into()?;
        Ok(p.fd()?.try_clone()?)
    };
    let pass_fd = fd(&bench, "bench_pass")?;
    let decap_fd = fd(&lb.ebpf, lb_common::PROG_DECAP)?;
    let ipip_frame = {
        let f = ipip(
            NEXT_HOP_MAC,
            LB_MAC,
            LB_SOURCE_V4,
            HOST4,
            &inner(CONNECTED_PORT, FRAME_LEN - (14 + 20 + 40)),
        );
        ensure!(f.len() == FRAME_LEN, "IPIP frame is {} bytes", f.len());
        f
    };
    let mut one = |target: &ProgramFd, frame: &[u8], expect: u32| -> Result<f64> {
        wrapped(&mut bench, target, frame, ifindex, sizes, expect)
    };
    let wrapper = one(&pass_fd, &gue(CONNECTED_PORT, false)?, XDP_PASS)?;
    let ipip_strip = one(&decap_fd, &ipip_frame, XDP_PASS)?;
    let gue_strip = one(&decap_fd, &gue(CONNECTED_PORT, false)?, XDP_PASS)?;
    let local = one(&decap_fd, &gue(CONNECTED_PORT, true)?, XDP_PASS)?;
    let forward = one(&decap_fd, &gue(ORPHAN_PORT, true)?, XDP_TX)?;
    Ok([wrapper, ipip_strip, gue_strip, local, forward])
}

/// Median ns per pass of `bench_restore_decap` tail-calling `target` on
/// `frame`, received on `ifindex`.
fn wrapped(
    bench: &mut aya::Ebpf,
    target: &ProgramFd,
    frame: &[u8],
    ifindex: u32,
    sizes: &Sizes,
    expect: u32,
) -> Result<f64> {
    let mut template = [0u8; FRAME_LEN];
    template.copy_from_slice(frame);
    let mut t: Array<_, [u8; FRAME_LEN]> =
        Array::try_from(bench.map_mut("DECAP_TEMPLATE").context("DECAP_TEMPLATE")?)?;
    t.set(0, template, 0)?;
    let mut targets =
        ProgramArray::try_from(bench.map_mut("DECAP_TARGET").context("DECAP_TARGET")?)?;
    targets.set(0, target, 0)?;
    let p: &Xdp = bench
        .program("bench_restore_decap")
        .context("bench_restore_decap")?
        .try_into()?;
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx queue, egress.
    let ctx: Vec<u8> = [0, FRAME_LEN as u32, 0, ifindex, 0, 0]
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .collect();
    let mut out = vec![0u8; 256];
    median(sizes, || {
        ns_per_pass(sizes.passes, |repeat| {
            let r = p.test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: Some(&ctx),
                repeat,
                ..Default::default()
            })?;
            ensure!(
                r.return_value == expect,
                "lb_decap bench: returned {} instead of {expect}",
                r.return_value
            );
            Ok(r.duration)
        })
    })
}
