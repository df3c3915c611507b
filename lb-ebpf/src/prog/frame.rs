//! The XDP frame as a [`Packet`], and growing or shrinking its head: the only
//! places the programs make a `Packet` from the context's bounds.

use aya_ebpf::{helpers::generated::bpf_xdp_adjust_head, programs::XdpContext};
use lb_ebpf::{
    Packet,
    wire::{
        ethernet::{ETH_LEN, EthHdr},
        packet::{Header, View},
    },
};

/// The frame of `ctx`.
#[inline(always)]
pub fn frame(ctx: &XdpContext) -> Packet<'static> {
    // SAFETY: XDP's `data`..`data_end` is this program's frame, readable and
    // writable for the whole run; it is only resized through `grow_head` /
    // `shrink_head`, which hand out a new `Packet` (and, at the very end with
    // no view used afterwards, `too_big`'s trim and `decap::strip`).
    unsafe { Packet::new(ctx.data(), ctx.data_end()) }
}

/// The frame after its head moved, with the views of its new Ethernet header
/// and of the `I` header right after it.
pub struct Grown<I> {
    /// The grown frame.
    pub pkt: Packet<'static>,
    /// The new Ethernet header (its bytes are stale: the caller writes it).
    pub eth: View<'static, EthHdr>,
    /// The header after it (stale bytes too).
    pub ip: View<'static, I>,
}

/// Grows the frame's head by `by` bytes (room for an outer header) and
/// re-derives the Ethernet and `I` headers at its new start; `None` when the
/// helper fails or the new frame is too short. Views of the frame before the
/// call must not be used afterwards.
#[inline(always)]
pub fn grow_head<I: Header>(ctx: &XdpContext, by: usize) -> Option<Grown<I>> {
    move_head(ctx, -(by as i32))
}

/// Drops the frame's first `by` bytes (an outer header's worth) and
/// re-derives the Ethernet and `I` headers at its new start; `None` when the
/// helper fails or the new frame is too short. Views of the frame before the
/// call must not be used afterwards.
#[inline(always)]
pub fn shrink_head<I: Header>(ctx: &XdpContext, by: usize) -> Option<Grown<I>> {
    move_head(ctx, by as i32)
}

/// Moves the frame's start by `delta` bytes (negative: grows the head).
#[inline(always)]
fn move_head<I: Header>(ctx: &XdpContext, delta: i32) -> Option<Grown<I>> {
    // SAFETY: a plain helper call on our context; packet views are re-derived
    // below, from the new bounds.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, delta) } != 0 {
        return None;
    }
    let pkt = frame(ctx);
    Some(Grown {
        pkt,
        eth: pkt.view(0)?,
        ip: pkt.view(ETH_LEN)?,
    })
}
