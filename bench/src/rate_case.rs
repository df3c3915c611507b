//! The rate benchmark's cases (what runs on the DUT, how many flows, what the
//! sink must see) and what one measurement window of a case yields.

use crate::one_line;
use crate::rate_frame::SinkKind;

/// Flows of the first lb case and its floors.
pub(crate) const FLOWS: u32 = 65_536;
/// Flows of the second lb case (a table of twice as many slots, as sized in
/// production).
pub(crate) const MANY_FLOWS: u32 = 1_000_000;

/// Slots of the lb case's connection table for `flows` flows: four per flow
/// for 65,536 flows, two per flow (as sized in production) for more.
pub(crate) fn table_slots(flows: u32) -> u32 {
    if flows == FLOWS { 4 * flows } else { 2 * flows }
}

/// Lines of the one-line floor for `flows` flows: as many 64-byte lines as
/// the lb case's table has buckets.
pub(crate) fn floor_lines(flows: u32) -> u32 {
    lb_common::flow_buckets(table_slots(flows))
}

/// One configuration under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Case {
    /// `bench_forward`: MAC rewrite + redirect (the baseline of the targets).
    Forward,
    /// `bench_encap_forward`: IPIP to one backend + redirect, no lookup.
    EncapForward,
    /// Kernel routing behind `bench_pass`.
    Routing,
    /// nftables DNAT + routing behind `bench_pass`.
    NftDnat,
    /// lb with [`FLOWS`] flows.
    Lb,
    /// The one-line floor over lb's table for [`FLOWS`] flows (4 MiB).
    OneLineFloor,
    /// The one-line floor over one 16-byte slot per flow (1 MiB, full).
    OneLineFloorDense,
    /// lb with [`MANY_FLOWS`] flows.
    LbManyFlows,
    /// The one-line floor over lb's table for [`MANY_FLOWS`] flows (32 MiB).
    OneLineFloorManyFlows,
}

impl Case {
    pub(crate) const ALL: [Case; 9] = [
        Case::Forward,
        Case::EncapForward,
        Case::Routing,
        Case::NftDnat,
        Case::Lb,
        Case::OneLineFloor,
        Case::OneLineFloorDense,
        Case::LbManyFlows,
        Case::OneLineFloorManyFlows,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Case::Forward => "baseline: XDP forward (MAC rewrite + redirect)",
            Case::EncapForward => "baseline: XDP IPIP encapsulate + redirect (no lookups)",
            Case::Routing => "baseline: kernel routing (ip_forward)",
            Case::NftDnat => "baseline: nftables DNAT + routing",
            Case::Lb => "lb: lb_xdp, IPIP to 4 backends, 65,536 flows",
            Case::LbManyFlows => "lb: lb_xdp, IPIP to 4 backends, 1,000,000 flows",
            Case::OneLineFloor => "floor: one line of 4 MiB + IPIP + redirect, 65,536 flows",
            Case::OneLineFloorDense => {
                "floor: one line of 1 MiB (16 B per flow) + IPIP + redirect, 65,536 flows"
            }
            Case::OneLineFloorManyFlows => {
                "floor: one line of 32 MiB + IPIP + redirect, 1,000,000 flows"
            }
        }
    }

    /// Distinct flows the generator sends.
    pub(crate) fn flows(self) -> u32 {
        match self {
            Case::LbManyFlows | Case::OneLineFloorManyFlows => MANY_FLOWS,
            _ => FLOWS,
        }
    }

    /// What the sink must see.
    pub(crate) fn expect(self) -> SinkKind {
        match self {
            Case::Forward | Case::Routing => SinkKind::UdpToVip,
            Case::NftDnat => SinkKind::Other,
            Case::EncapForward
            | Case::Lb
            | Case::LbManyFlows
            | Case::OneLineFloor
            | Case::OneLineFloorDense
            | Case::OneLineFloorManyFlows => SinkKind::Ipip,
        }
    }

    /// The XDP program on the DUT's ingress.
    pub(crate) fn program(self) -> &'static str {
        match self {
            Case::Forward => "bench_forward",
            Case::EncapForward => "bench_encap_forward",
            Case::Routing | Case::NftDnat => "bench_pass",
            Case::Lb | Case::LbManyFlows => lb_common::PROG_LB,
            Case::OneLineFloor | Case::OneLineFloorDense | Case::OneLineFloorManyFlows => {
                one_line::FORWARD_PROGRAM
            }
        }
    }
}

/// One measurement window.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sample {
    /// Packets per second counted at the sink.
    pub(crate) pps: f64,
    /// Frames per second the generator handed to the kernel.
    pub(crate) offered: f64,
    /// ns per packet inside the program under test (lb cases; bpf_stats).
    pub(crate) program_ns: Option<f64>,
}
