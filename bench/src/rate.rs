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
//! sink). Next to each lb case, its one-line floor (`bench_one_line_forward`):
//! the encapsulating forwarder after one read of a cache line that the flow
//! picks in a table as large as that lb case's connection table, what any
//! connection table that reads one line per packet costs at least here.

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
use crate::one_line::{self, OneLine};
use crate::rate_case::{Case, FLOWS, MANY_FLOWS, Sample, floor_lines, table_slots};
use crate::rate_frame::{FRAME_LEN, GenTemplate, udp_template};
use crate::rate_probe::{NftDnat, attach, forwarding, generated, program_time, sink};
use crate::rate_report;
use crate::rate_topology::{DUT_IN_ADDR, RateNet};
use crate::report::Report;

static BENCH_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/bench-ebpf"));

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);
const PORT: u16 = 7777;
/// Where nftables DNATs the VIP (routed to the sink like everything else).
const DNAT_TO: Ipv4Addr = Ipv4Addr::new(198, 18, 3, 2);
/// Clients: 198.19.x.y (the generator writes x.y per flow).
const CLIENTS: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 0);
const BACKENDS: u32 = 4;
const TABLE_SIZE: u32 = 65_537;
/// The backend `bench_encap_forward` encapsulates to (lb's backend 1).
const ENCAP_BACKEND: Ipv4Addr = Ipv4Addr::new(198, 18, 3, 1);

/// The devices under test that are not `bench_*` programs of the rate
/// object: the two lb datapaths and their one-line floors.
struct Duts {
    lb: Lb,
    lb_many: Lb,
    floor: OneLine,
    /// The 65,536 flows' floor over the least table of 16-byte entries: one
    /// slot per flow, every line full (no table with room to insert is
    /// smaller).
    floor_dense: OneLine,
    floor_many: OneLine,
}

impl Duts {
    /// The program under test of `case` (from `bench` for the baselines).
    fn program<'a>(&'a mut self, case: Case, bench: &'a mut Ebpf) -> Result<&'a mut Xdp> {
        let ebpf = match case {
            Case::Lb => &mut self.lb.ebpf,
            Case::LbManyFlows => &mut self.lb_many.ebpf,
            Case::OneLineFloor => return self.floor.program_mut(),
            Case::OneLineFloorDense => return self.floor_dense.program_mut(),
            Case::OneLineFloorManyFlows => return self.floor_many.program_mut(),
            _ => bench,
        };
        let name = case.program();
        Ok(ebpf.program_mut(name).context(name)?.try_into()?)
    }

    /// The program of `case` whose own run time is measured: lb's and the
    /// floors' (`None` for the baselines).
    fn timed(&self, case: Case) -> Result<Option<&Xdp>> {
        let ebpf = match case {
            Case::Lb => &self.lb.ebpf,
            Case::LbManyFlows => &self.lb_many.ebpf,
            Case::OneLineFloor => &self.floor.ebpf,
            Case::OneLineFloorDense => &self.floor_dense.ebpf,
            Case::OneLineFloorManyFlows => &self.floor_many.ebpf,
            _ => return Ok(None),
        };
        let name = case.program();
        Ok(Some(ebpf.program(name).context(name)?.try_into()?))
    }
}

/// The one-line floor over `lines` lines, encapsulating to the sink.
fn floor(net: &RateNet, lines: u32) -> Result<OneLine> {
    let mut floor = OneLine::load(lines, one_line::FORWARD_PROGRAM)?;
    forwarding(&mut floor.ebpf, net, DUT_IN_ADDR, ENCAP_BACKEND)?;
    Ok(floor)
}

/// How long each case runs, and how often.
#[derive(Clone, Copy)]
pub(crate) struct Sizes {
    /// Traffic before the window.
    pub(crate) warmup: Duration,
    /// Extra warm-up of the first many-flows run (its table fills meanwhile).
    pub(crate) fill: Duration,
    /// The measured window.
    pub(crate) window: Duration,
    /// Rounds over every case.
    pub(crate) runs: usize,
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
    let mut duts = Duts {
        lb: datapath(&net, FLOWS)?,
        lb_many: datapath(&net, MANY_FLOWS)?,
        floor: floor(&net, floor_lines(FLOWS))?,
        floor_dense: floor(&net, FLOWS / lb_common::FLOW_WAYS as u32)?,
        floor_many: floor(&net, floor_lines(MANY_FLOWS))?,
    };

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
            let sample = measure(
                &net,
                &mut bench,
                &mut duts,
                &generator,
                case,
                cpu,
                &case_sizes,
            )
            .with_context(|| format!("rate case {case:?}"))?;
            samples.push((case, sample));
        }
    }
    rate_report::push_rows(report, &samples, cpu, &sizes);
    Ok(())
}

/// The lb datapath (test harness) set up for the rate topology: a UDP service
/// on the VIP, four backends behind the sink.
fn datapath(net: &RateNet, flows: u32) -> Result<Lb> {
    let mut lb = Lb::with_conntrack(table_slots(flows));
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
    duts: &mut Duts,
    generator: &ProgramFd,
    case: Case,
    cpu: usize,
    sizes: &Sizes,
) -> Result<Sample> {
    let _nft = match case {
        Case::NftDnat => Some(NftDnat::add(net.dut().name(), VIP, PORT, DNAT_TO)?),
        _ => None,
    };
    let link = attach(duts.program(case, bench)?, &net.dut_in)?;
    let own = duts.timed(case)?;
    let result = run_traffic(net, bench, generator, case, cpu, sizes, own);
    duts.program(case, bench)?.detach(link)?;
    result
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
