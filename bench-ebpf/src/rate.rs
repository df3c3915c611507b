//! Programs of the packet-rate benchmark (end to end across veths).
//!
//! - `bench_gen`: the traffic generator, run by BPF_PROG_TEST_RUN with live
//!   frames. Pages are recycled with their old content, so it rewrites the whole
//!   64-byte frame from `GEN_TEMPLATE` on every run, then gives it a
//!   pseudo-random flow (source address and port), fixes the IPv4 header
//!   checksum and returns XDP_TX (sent out of the test run's ingress veth).
//! - `bench_forward`: the forwarding ceiling: rewrites both MAC addresses and
//!   redirects to the interface in `FORWARD` (what a forwarder does at least).
//! - `bench_encap_forward`: the encapsulating forwarder's ceiling: what the
//!   cheapest IPIP load balancer does per packet with no lookup at all: grows
//!   the head by 20 bytes, writes Ethernet and an outer IPv4 header (with its
//!   checksum) to the fixed backend in `ENCAP_FORWARD`, redirects.
//! - `bench_one_line_forward` (`one_line.rs`): the same after one read of a
//!   cache line chosen by the flow: the rate floor of a one-line table.
//! - `bench_sink`: counts what arrives (by kind) in `SINK_COUNTS` and drops it.

use aya_ebpf::{
    bindings::xdp_action,
    btf_maps::{Array, PerCpuArray},
    helpers::{
        bpf_xdp_adjust_head,
        generated::{bpf_get_prandom_u32, bpf_redirect},
    },
    macros::{btf_map, xdp},
    programs::XdpContext,
};

use bench_ebpf::{EncapForward, Forward, GEN_LEN, GenTemplate};

#[btf_map]
static ENCAP_FORWARD: Array<EncapForward, 1> = Array::new();

#[btf_map]
static GEN_TEMPLATE: Array<GenTemplate, 1> = Array::new();

#[btf_map]
static FORWARD: Array<Forward, 1> = Array::new();

/// Frames the generator has written (per CPU).
#[btf_map]
static GEN_COUNT: PerCpuArray<u64, 1> = PerCpuArray::new();

/// Sink counters: 0 every frame, 1 IPv4-in-IPv4, 2 UDP to `SINK_VIP`, 3 other.
#[btf_map]
static SINK_COUNTS: PerCpuArray<u64, 4> = PerCpuArray::new();

/// The VIP (network order) the sink tells apart from other UDP destinations.
#[btf_map]
static SINK_VIP: Array<u32, 1> = Array::new();

#[xdp]
pub fn bench_gen(ctx: XdpContext) -> u32 {
    let start = ctx.data();
    if start + GEN_LEN > ctx.data_end() {
        return xdp_action::XDP_ABORTED;
    }
    let Some(t) = GEN_TEMPLATE.get(0) else {
        return xdp_action::XDP_ABORTED;
    };
    if let Some(n) = GEN_COUNT.get_ptr_mut(0) {
        // SAFETY: this CPU's slot.
        unsafe { *n += 1 };
    }
    // SAFETY: bpf_get_prandom_u32 has no preconditions.
    let r = unsafe { bpf_get_prandom_u32() };
    let flow = if t.flows > 1 { r % t.flows } else { 0 };
    // A port per flow, spread over 1024..33791.
    let port = 1024 + (flow.wrapping_mul(2_654_435_761) >> 17);
    // SAFETY: GEN_LEN bytes are in bounds (checked above).
    unsafe {
        let p = start as *mut u8;
        // Word by word: a plain array copy becomes a byte-wise memmove call.
        let src = t.frame.as_ptr() as *const u64;
        let dst = p as *mut u64;
        let mut w = 0;
        while w < GEN_LEN / 8 {
            dst.add(w).write_unaligned(src.add(w).read_unaligned());
            w += 1;
        }
        // Source address 26..30: the template's first two octets, then the flow.
        *p.add(28) = (flow >> 8) as u8;
        *p.add(29) = flow as u8;
        *p.add(34) = (port >> 8) as u8;
        *p.add(35) = port as u8;
        let mut sum = 0u32;
        let mut i = 14;
        while i < 34 {
            sum += u32::from(u16::from_be_bytes([*p.add(i), *p.add(i + 1)]));
            i += 2;
        }
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        let check = (!(sum as u16)).to_be_bytes();
        *p.add(24) = check[0];
        *p.add(25) = check[1];
    }
    xdp_action::XDP_TX
}

#[xdp]
pub fn bench_forward(ctx: XdpContext) -> u32 {
    let start = ctx.data();
    if start + 12 > ctx.data_end() {
        return xdp_action::XDP_ABORTED;
    }
    let Some(f) = FORWARD.get(0) else {
        return xdp_action::XDP_ABORTED;
    };
    // SAFETY: 12 bytes are in bounds (checked above).
    unsafe {
        let eth = start as *mut [u8; 6];
        *eth = f.dst;
        *eth.add(1) = f.src;
        bpf_redirect(f.ifindex, 0) as u32
    }
}

#[xdp]
pub fn bench_encap_forward(ctx: XdpContext) -> u32 {
    encap_forward(&ctx, None)
}

/// What `bench_encap_forward` does: grows the head by 20 bytes, writes
/// Ethernet and an outer IPv4 header from `ENCAP_FORWARD`, redirects. The
/// outer destination is `outer_dst` (network-order bytes) when given, else
/// `ENCAP_FORWARD`'s (`bench_one_line_forward` gives the one its line names).
#[inline(always)]
pub(crate) fn encap_forward(ctx: &XdpContext, outer_dst: Option<[u8; 4]>) -> u32 {
    // SAFETY: the helper checks the headroom itself.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -20) } != 0 {
        return xdp_action::XDP_ABORTED;
    }
    let start = ctx.data();
    // Ethernet + outer IPv4 + the inner header's total length field.
    if start + 38 > ctx.data_end() {
        return xdp_action::XDP_ABORTED;
    }
    let Some(f) = ENCAP_FORWARD.get(0) else {
        return xdp_action::XDP_ABORTED;
    };
    // SAFETY: 38 bytes are in bounds (checked above).
    unsafe {
        let p = start as *mut u8;
        // The inner IPv4 header now starts at 34; its total length at 36..38.
        let inner_len = u16::from_be_bytes([*p.add(36), *p.add(37)]);
        let dst = outer_dst.unwrap_or(f.outer_dst);
        let h = crate::outer_ipv4::outer_ipv4(inner_len, f.outer_src, dst);
        *(p.add(14) as *mut [u16; 10]) = h;
        *(p as *mut [u8; 6]) = f.dst;
        *(p.add(6) as *mut [u8; 6]) = f.src;
        *(p.add(12) as *mut [u8; 2]) = 0x0800u16.to_be_bytes();
        bpf_redirect(f.ifindex, 0) as u32
    }
}

#[inline(always)]
fn count(index: u32) {
    if let Some(c) = SINK_COUNTS.get_ptr_mut(index) {
        // SAFETY: this CPU's slot.
        unsafe { *c += 1 };
    }
}

#[xdp]
pub fn bench_sink(ctx: XdpContext) -> u32 {
    count(0);
    let start = ctx.data();
    if start + 34 > ctx.data_end() {
        return xdp_action::XDP_DROP;
    }
    // SAFETY: 34 bytes are in bounds (checked above).
    let (ethertype, proto, dst) = unsafe {
        let p = start as *const u8;
        (
            u16::from_be_bytes([*p.add(12), *p.add(13)]),
            *p.add(23),
            *(p.add(30) as *const [u8; 4]),
        )
    };
    if ethertype == 0x0800 {
        let vip = SINK_VIP.get(0).copied().unwrap_or(0);
        if proto == 4 {
            count(1);
        } else if proto == 17 && u32::from_ne_bytes(dst) == vip {
            count(2);
        } else {
            count(3);
        }
    }
    xdp_action::XDP_DROP
}
