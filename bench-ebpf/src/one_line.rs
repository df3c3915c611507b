//! `bench_one_line`: the floor of any connection table that reads one cache
//! line per established packet. It reads one 64-byte line of `LINES` (sized by
//! the loader like lb's table, page-aligned because mmapable), chosen by a
//! hash of the frame's flow (IPv4 source and source port, which the wrapper
//! cycles), takes the outer destination from that line (so the rest of the
//! program waits for the read, as lb's pick waits for its bucket), and
//! encapsulates like `bench_encap` (the same `ipip_back`). No fingerprint
//! check, no backend lookup, no counters: what is left of a lookup when
//! everything but the one line is free.
//!
//! `bench_one_line_forward` is the same lookup in front of the rate
//! benchmark's encapsulating forwarder (`bench_encap_forward`): the line's
//! outer destination, the rest from `ENCAP_FORWARD`, redirected to the sink.
//! The rate floor of a one-line table.

use aya_ebpf::{
    bindings::xdp_action,
    btf_maps::Array,
    macros::{btf_map, xdp},
    programs::XdpContext,
};

/// `BPF_F_MMAPABLE`: values page-aligned, so every line is one cache line.
const MMAPABLE: usize = 1 << 10;

/// The lines: word 0 of each is an outer destination (network order). The
/// loader sets the real size, a power of two, with [`LINE_MASK`] to match.
#[btf_map]
static LINES: Array<[u32; 16], 1, MMAPABLE> = Array::new();

/// Number of [`LINES`] minus one, set by the loader.
#[unsafe(no_mangle)]
static LINE_MASK: u32 = 0;

/// The outer source address (network order), set by the loader.
#[unsafe(no_mangle)]
static LINE_OUTER_SRC: u32 = 0;

/// The line index of a flow: a 64-bit multiply-xorshift mix of its source
/// address and port, so that consecutive flows land on unrelated lines (no
/// prefetcher helps, as for lb's keyed placement).
#[inline(always)]
fn line_of(src: u32, port: u16) -> u32 {
    let mut h = (u64::from(src) << 16) | u64::from(port);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    // SAFETY: a plain read of a loader-set constant.
    (h as u32) & unsafe { core::ptr::read_volatile(&LINE_MASK) }
}

/// The outer destination (network order) of the frame's flow: word 0 of its
/// line, read once; `None` when the frame is too short.
#[inline(always)]
fn line_destination(ctx: &XdpContext) -> Option<u32> {
    let start = ctx.data();
    if start + 36 > ctx.data_end() {
        return None;
    }
    // SAFETY: 36 bytes are in bounds (checked above): the IPv4 source at
    // 26..30 and the source port at 34..36 of an IPv4 frame without options.
    let (src, port) = unsafe {
        let p = start as *const u8;
        (
            core::ptr::read_unaligned(p.add(26) as *const u32),
            core::ptr::read_unaligned(p.add(34) as *const u16),
        )
    };
    let line = LINES.get_ptr(line_of(src, port))?;
    // SAFETY: a map value pointer; volatile so that the read stays one read.
    Some(unsafe { core::ptr::read_volatile(line as *const u32) })
}

#[xdp]
pub fn bench_one_line(ctx: XdpContext) -> u32 {
    let Some(dst) = line_destination(&ctx) else {
        return xdp_action::XDP_ABORTED;
    };
    // SAFETY: a plain read of a loader-set constant.
    let src = unsafe { core::ptr::read_volatile(&LINE_OUTER_SRC) };
    crate::progs::ipip_back(&ctx, src, dst)
}

#[xdp]
pub fn bench_one_line_forward(ctx: XdpContext) -> u32 {
    let Some(dst) = line_destination(&ctx) else {
        return xdp_action::XDP_ABORTED;
    };
    crate::rate::encap_forward(&ctx, Some(dst.to_ne_bytes()))
}
