//! `bench_restore_decap`: the frame-restoring wrapper for `lb_decap`, which
//! shrinks frames (strips outer headers, or drops the hint's words when it
//! forwards) where `bench_restore` handles growth. Before every pass it moves
//! the frame start back to where the template began, rewrites the template
//! frame and tail-calls the program in `DECAP_TARGET[0]`.

use aya_ebpf::{
    bindings::xdp_action,
    btf_maps::{Array, ProgramArray},
    helpers::bpf_xdp_adjust_head,
    macros::{btf_map, xdp},
    programs::XdpContext,
};

/// Length of the decapsulator's template frames (GUE with or without hint,
/// IPIP: each padded to this length by its inner payload).
const DECAP_FRAME_LEN: usize = 112;

/// The frame `bench_restore_decap` restores before every pass.
#[btf_map]
static DECAP_TEMPLATE: Array<[u8; DECAP_FRAME_LEN], 1> = Array::new();

/// The program under test.
#[btf_map]
static DECAP_TARGET: ProgramArray<1> = ProgramArray::new();

#[xdp]
pub fn bench_restore_decap(ctx: XdpContext) -> u32 {
    let shrunk = DECAP_FRAME_LEN as i32 - (ctx.data_end() - ctx.data()) as i32;
    if shrunk > 0 && shrunk <= 128 {
        // SAFETY: growing back by what the previous pass removed.
        if unsafe { bpf_xdp_adjust_head(ctx.ctx, -shrunk) } != 0 {
            return xdp_action::XDP_ABORTED;
        }
    }
    let start = ctx.data();
    if start + DECAP_FRAME_LEN > ctx.data_end() {
        return xdp_action::XDP_ABORTED;
    }
    let Some(template) = DECAP_TEMPLATE.get(0) else {
        return xdp_action::XDP_ABORTED;
    };
    // SAFETY: DECAP_FRAME_LEN bytes are in bounds (checked above); word copies
    // as in `bench_restore`.
    unsafe {
        let src = template.as_ptr() as *const u64;
        let dst = start as *mut u64;
        for i in 0..DECAP_FRAME_LEN / 8 {
            core::ptr::write_volatile(dst.add(i), core::ptr::read_volatile(src.add(i)));
        }
    }
    // SAFETY: DECAP_TARGET holds an XDP program; on failure we fall through.
    unsafe { DECAP_TARGET.tail_call(&ctx, 0) };
    xdp_action::XDP_ABORTED
}
