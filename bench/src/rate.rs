//! Packet rate, end to end across veths, one DUT core, against baselines in
//! the same run and topology (see `rate_topology.rs`).
//!
//! Everything runs on one CPU: the generator thread (`bench_gen`, live-frame
//! test runs) is pinned to it and sends 64-byte UDP frames of pseudo-random
//! flows (source address and port) to the VIP; each batch it sends into the
//! veth schedules the DUT's NAPI on the same CPU, which runs as softirq as
//! soon as the batch is flushed: the program under test on `i`, its
//! forwarding out of `o`, and the sink's XDP counter on `s`. So the rate is
//! that of one core doing generator + DUT + sink work, and nothing waits in a
//! ring for another CPU (a cross-CPU split measured here lost most frames to
//! wake-up latency: the DUT's thread idled half the time while its 256-frame
//! ring overflowed). Cases, each on the same topology:
//! the forwarding ceiling (`bench_forward`: MAC rewrite + bpf_redirect), the
//! encapsulating forwarder's ceiling (`bench_encap_forward`: IPIP to one fixed
//! backend + bpf_redirect, no lookups), kernel routing, nftables DNAT (both
//! behind an XDP_PASS program on `i`), and lb (`lb_xdp` with the maps filled
//! by the test harness: one UDP service, four backends whose next hop is the
//! sink).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use aya::{
    Ebpf, EbpfLoader,
    maps::Array,
    programs::{ProgramFd, Xdp},
};
use lb_common::{SETTINGS_HAS_SOURCE_V4, Settings, flow::PROTO_UDP};
use lb_tests::harness::{Lb, backend_entry, words};

use crate::generator::Generator;
use crate::rate_frame::{FRAME_LEN, GenTemplate, SinkKind, udp_template};
use crate::rate_probe::{NftDnat, attach, forwarding, generated, program_time, sink};
use crate::rate_topology::{DUT_IN_ADDR, RateNet};
use crate::report::{Report, Row, Target};

static BENCH_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/bench-ebpf"));

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);
const PORT: u16 = 7777;
/// Where nftables DNATs the VIP (routed to the sink like everything else).
const DNAT_TO: Ipv4Addr = Ipv4Addr::new(198, 18, 3, 2);
/// Clients: 198.19.x.y (the generator writes x.y per flow).
const CLIENTS: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 0);
const FLOWS: u32 = 65_536;
/// Flows of the second lb case (a table of twice as many slots, as sized in
/// production).
const MANY_FLOWS: u32 = 1_000_000;
const BACKENDS: u32 = 4;
const TABLE_SIZE: u32 = 65_537;
/// The backend `bench_encap_forward` encapsulates to (lb's backend 1).
const ENCAP_BACKEND: Ipv4Addr = Ipv4Addr::new(198, 18, 3, 1);

/// One configuration under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    Forward,
    EncapForward,
    Routing,
    NftDnat,
    Lb,
    LbManyFlows,
}

impl Case {
    const ALL: [Case; 6] = [
        Case::Forward,
        Case::EncapForward,
        Case::Routing,
        Case::NftDnat,
        Case::Lb,
        Case::LbManyFlows,
    ];

    fn label(self) -> &'static str {
        match self {
            Case::Forward => "baseline: XDP forward (MAC rewrite + redirect)",
            Case::EncapForward => "baseline: XDP IPIP encapsulate + redirect (no lookups)",
            Case::Routing => "baseline: kernel routing (ip_forward)",
            Case::NftDnat => "baseline: nftables DNAT + routing",
            Case::Lb => "lb: lb_xdp, IPIP to 4 backends, 65,536 flows",
            Case::LbManyFlows => "lb: lb_xdp, IPIP to 4 backends, 1,000,000 flows",
        }
    }

    /// Distinct flows the generator sends.
    fn flows(self) -> u32 {
        match self {
            Case::LbManyFlows => MANY_FLOWS,
            _ => FLOWS,
        }
    }

    /// What the sink must see.
    fn expect(self) -> SinkKind {
        match self {
            Case::Forward | Case::Routing => SinkKind::UdpToVip,
            Case::NftDnat => SinkKind::Other,
            Case::EncapForward | Case::Lb | Case::LbManyFlows => SinkKind::Ipip,
        }
    }

    /// The XDP program on the DUT's ingress.
    fn program(self) -> &'static str {
        match self {
            Case::Forward => "bench_forward",
            Case::EncapForward => "bench_encap_forward",
            Case::Routing | Case::NftDnat => "bench_pass",
            Case::Lb | Case::LbManyFlows => lb_common::PROG_LB,
        }
    }
}

/// One measurement window.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// Packets per second counted at the sink.
    pps: f64,
    /// Frames per second the generator handed to the kernel.
    offered: f64,
    /// ns per packet inside the program under test (lb cases; bpf_stats).
    program_ns: Option<f64>,
}

#[derive(Clone, Copy)]
struct Sizes {
    warmup: Duration,
    /// Extra warm-up of the first many-flows run (its table fills meanwhile).
    fill: Duration,
    window: Duration,
    runs: usize,
}

/// Runs every case and adds the rate rows to `report`.
pub fn run(report: &mut Report, quick: bool) -> Result<()> {
    let sizes = if quick {
        Sizes {
            warmup: Duration::from_millis(50),
            fill: Duration::ZERO,
            window: Duration::from_millis(200),
            runs: 1,
        }
    } else {
        Sizes {
            warmup: Duration::from_millis(500),
            fill: Duration::from_secs(4),
            // 2.0 s (was 2.5 s before the encapsulate + redirect case):
            // six cases take the time five did.
            window: Duration::from_millis(2000),
            runs: 3,
        }
    };
    // The last CPU, as the per-packet section.
    let cpu = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;

    let net = RateNet::new()?;
    let mut bench = EbpfLoader::new()
        .load(BENCH_OBJECT)
        .context("load the rate programs")?;
    for name in [
        "bench_gen",
        "bench_forward",
        "bench_encap_forward",
        "bench_sink",
        "bench_pass",
    ] {
        let p: &mut Xdp = bench.program_mut(name).context(name)?.try_into()?;
        p.load()
            .with_context(|| format!("verifier rejected {name}"))?;
    }
    let template = udp_template(net.dut_in.mac, net.gen_if.mac, CLIENTS, VIP, PORT);
    debug_assert_eq!(template.len(), FRAME_LEN);
    Array::<_, GenTemplate>::try_from(bench.map_mut("GEN_TEMPLATE").context("GEN_TEMPLATE")?)?
        .set(
            0,
            GenTemplate {
                frame: template,
                flows: FLOWS,
                pad: 0,
            },
            0,
        )?;
    forwarding(&mut bench, &net, DUT_IN_ADDR, ENCAP_BACKEND)?;
    Array::<_, u32>::try_from(bench.map_mut("SINK_VIP").context("SINK_VIP")?)?.set(
        0,
        u32::from_ne_bytes(VIP.octets()),
        0,
    )?;
    let sink_prog: &mut Xdp = bench
        .program_mut("bench_sink")
        .context("bench_sink")?
        .try_into()?;
    attach(sink_prog, &net.sink_if)?;
    let generator = {
        let p: &Xdp = bench
            .program("bench_gen")
            .context("bench_gen")?
            .try_into()?;
        p.fd()?.try_clone()?
    };
    let mut lb = datapath(&net, FLOWS)?;
    let mut lb_many = datapath(&net, MANY_FLOWS)?;

    let mut samples: Vec<(Case, Sample)> = Vec::new();
    for round in 0..sizes.runs {
        for case in Case::ALL {
            let case_sizes = Sizes {
                warmup: if case == Case::LbManyFlows && round == 0 {
                    sizes.warmup + sizes.fill
                } else {
                    sizes.warmup
                },
                ..sizes
            };
            let dut = if case == Case::LbManyFlows {
                &mut lb_many
            } else {
                &mut lb
            };
            let sample = measure(&net, &mut bench, dut, &generator, case, cpu, &case_sizes)
                .with_context(|| format!("rate case {case:?}"))?;
            samples.push((case, sample));
        }
    }
    let median = |case: Case| -> Sample {
        let mut v: Vec<Sample> = samples
            .iter()
            .filter(|(c, _)| *c == case)
            .map(|(_, s)| *s)
            .collect();
        v.sort_by(|a, b| a.pps.total_cmp(&b.pps));
        v[v.len() / 2]
    };
    let forward = median(Case::Forward);
    let encap_forward = median(Case::EncapForward);
    let routing = median(Case::Routing);
    let nft = median(Case::NftDnat);
    let lbs = median(Case::Lb);
    let lb_many_s = median(Case::LbManyFlows);
    // Everything shares one core, so the difference of the per-packet times
    // (1 / rate) to the forward case is what the path costs beyond forwarding.
    let over_forward = |s: Sample| 1e9 / s.pps - 1e9 / forward.pps;
    let detail = |s: Sample| {
        format!(
            "{:.0} ns/packet on the core, {:+.0} ns over forward{}; {:.1}% of generated frames reached the sink",
            1e9 / s.pps,
            over_forward(s),
            s.program_ns
                .map_or(String::new(), |ns| format!(" (lb_xdp itself {ns:.0} ns)")),
            100.0 * s.pps / s.offered
        )
    };
    let row = |name: String, value: f64, unit: &'static str, target, versus| Row {
        section: "rate",
        name,
        value,
        unit,
        target,
        versus,
    };
    for (case, s) in [
        (Case::Forward, forward),
        (Case::EncapForward, encap_forward),
        (Case::Routing, routing),
        (Case::NftDnat, nft),
    ] {
        report.push(row(
            case.label().into(),
            s.pps / 1e6,
            "Mpps",
            None,
            detail(s),
        ));
    }
    report.push(row(
        Case::Lb.label().into(),
        lbs.pps / 1e6,
        "Mpps",
        None,
        format!("{:.2}x routing; {}", lbs.pps / routing.pps, detail(lbs)),
    ));
    report.push(row(
        Case::LbManyFlows.label().into(),
        lb_many_s.pps / 1e6,
        "Mpps",
        None,
        format!(
            "{:.2}x routing; {}",
            lb_many_s.pps / routing.pps,
            detail(lb_many_s)
        ),
    ));
    report.push(row(
        "lb rate / XDP forward, 65,536 flows".into(),
        lbs.pps / forward.pps,
        "x",
        Some(Target::AtLeast(0.9)),
        String::new(),
    ));
    report.push(row(
        "lb rate / XDP forward, 1,000,000 flows".into(),
        lb_many_s.pps / forward.pps,
        "x",
        Some(Target::AtLeast(0.9)),
        String::new(),
    ));
    // Information, no target: how far lb is from the cheapest IPIP load
    // balancer (the same rewrite and redirect, no lookups at all).
    report.push(row(
        "lb rate / XDP encapsulate-forward, 65,536 flows".into(),
        lbs.pps / encap_forward.pps,
        "x",
        None,
        format!(
            "{:+.0} ns per packet over encapsulate-forward; encapsulate-forward {:.2}x XDP forward",
            1e9 / lbs.pps - 1e9 / encap_forward.pps,
            encap_forward.pps / forward.pps
        ),
    ));
    report.push(row(
        "lb rate / XDP encapsulate-forward, 1,000,000 flows".into(),
        lb_many_s.pps / encap_forward.pps,
        "x",
        None,
        format!(
            "{:+.0} ns per packet over encapsulate-forward",
            1e9 / lb_many_s.pps - 1e9 / encap_forward.pps
        ),
    ));
    report.push(row(
        "lb rate / nftables DNAT".into(),
        lbs.pps / nft.pps,
        "x",
        Some(Target::AtLeast(5.0)),
        String::new(),
    ));
    report.note(format!(
        "rate: one core (CPU {cpu}) runs live-frame generator -> veth -> DUT -> veth -> XDP counter at the sink \
         (the DUT and sink as softirq after each generator batch); 64-byte UDP frames, {FLOWS} (or {MANY_FLOWS}) \
         pseudo-random flows; packets counted at the sink; median of {} runs x {:.1} s after {:.1} s warm-up \
         (the first {MANY_FLOWS}-flow run warms up {:.1} s longer so that its flows are in the table)",
        sizes.runs,
        sizes.window.as_secs_f64(),
        sizes.warmup.as_secs_f64(),
        sizes.fill.as_secs_f64()
    ));
    Ok(())
}

/// The lb datapath (test harness) set up for the rate topology: a UDP service
/// on the VIP, four backends behind the sink.
fn datapath(net: &RateNet, flows: u32) -> Result<Lb> {
    let mut lb = Lb::with_conntrack(if flows == FLOWS { 4 * flows } else { 2 * flows });
    let (src, _) = words(IpAddr::V4(DUT_IN_ADDR));
    lb.set_settings(Settings {
        source_v4: src[0],
        source_v6: [0; 4],
        flags: SETTINGS_HAS_SOURCE_V4,
        ifindex: net.dut_in.ifindex,
        mtu: 1500,
        gateway_mac: [0; 6],
        interface_mac: net.dut_in.mac,
        ..Default::default()
    });
    for id in 1..=BACKENDS {
        let mut b = backend_entry(
            Ipv4Addr::new(198, 18, 3, id as u8).into(),
            1,
            net.dut_out.ifindex,
        );
        b.next_hop_mac = net.sink_if.mac;
        b.source_mac = net.dut_out.mac;
        lb.set_backend(id, b);
    }
    let table: Vec<u32> = (0..TABLE_SIZE).map(|i| 1 + i % BACKENDS).collect();
    lb.add_service(VIP.into(), PORT, PROTO_UDP, 0, &table);
    lb.add_marker(VIP.into());
    Ok(lb)
}

/// Measures one case: sets the DUT up, runs the generator, counts at the
/// sink, tears the DUT down.
fn measure(
    net: &RateNet,
    bench: &mut Ebpf,
    lb: &mut Lb,
    generator: &ProgramFd,
    case: Case,
    cpu: usize,
    sizes: &Sizes,
) -> Result<Sample> {
    let _nft = match case {
        Case::NftDnat => Some(NftDnat::add(net.dut().name(), VIP, PORT, DNAT_TO)?),
        _ => None,
    };
    let link = attach(dut_prog(case, bench, lb)?, &net.dut_in)?;
    let own = match case {
        Case::Lb | Case::LbManyFlows => {
            let p: &Xdp = lb
                .ebpf
                .program(lb_common::PROG_LB)
                .context("lb_xdp")?
                .try_into()?;
            Some(p)
        }
        _ => None,
    };
    let result = run_traffic(net, bench, generator, case, cpu, sizes, own);
    dut_prog(case, bench, lb)?.detach(link)?;
    result
}

/// The program under test of `case`.
fn dut_prog<'a>(case: Case, bench: &'a mut Ebpf, lb: &'a mut Lb) -> Result<&'a mut Xdp> {
    let ebpf = if matches!(case, Case::Lb | Case::LbManyFlows) {
        &mut lb.ebpf
    } else {
        bench
    };
    let name = case.program();
    Ok(ebpf.program_mut(name).context(name)?.try_into()?)
}

/// Runs the generator on `cpu` and reads the sink around the window.
fn run_traffic(
    net: &RateNet,
    bench: &mut Ebpf,
    generator: &ProgramFd,
    case: Case,
    cpu: usize,
    sizes: &Sizes,
    own: Option<&Xdp>,
) -> Result<Sample> {
    let warmup = sizes.warmup;
    let template = udp_template(net.dut_in.mac, net.gen_if.mac, CLIENTS, VIP, PORT);
    Array::<_, GenTemplate>::try_from(bench.map_mut("GEN_TEMPLATE").context("GEN_TEMPLATE")?)?
        .set(
            0,
            GenTemplate {
                frame: template,
                flows: case.flows(),
                pad: 0,
            },
            0,
        )?;
    let generator = Generator::start(
        &net.gen_if.ns,
        generator.try_clone()?,
        template.to_vec(),
        net.gen_if.ifindex,
        cpu,
        warmup + sizes.window + Duration::from_secs(2),
    )?;
    std::thread::sleep(warmup);
    let (c0, g0, i0) = (sink(bench)?, generated(bench)?, Instant::now());
    std::thread::sleep(sizes.window);
    let (c1, g1, i1) = (sink(bench)?, generated(bench)?, Instant::now());
    // The program's own time per packet, from the kernel's run-time
    // statistics, over a short extra window (they cost every program run two
    // clock reads, so they stay off while the rate is measured).
    let program_ns = match own {
        Some(p) => Some(program_time(p, sizes.window / 8)?),
        None => None,
    };
    generator.stop()?;
    let secs = (i1 - i0).as_secs_f64();
    let total = c1[0] - c0[0];
    let expected = c1[case.expect() as usize] - c0[case.expect() as usize];
    ensure!(
        total > 0,
        "{case:?}: no packet reached the sink (counts {c1:?})"
    );
    ensure!(
        expected * 10 >= total * 9,
        "{case:?}: the sink saw {total} packets but only {expected} of the expected kind {:?} (counts {c1:?})",
        case.expect()
    );
    let sample = Sample {
        pps: total as f64 / secs,
        offered: (g1 - g0) as f64 / secs,
        program_ns,
    };
    eprintln!(
        "lb-bench: rate {case:?}: {:.3} Mpps at the sink, {:.2} Mpps generated",
        sample.pps / 1e6,
        sample.offered / 1e6
    );
    Ok(sample)
}
