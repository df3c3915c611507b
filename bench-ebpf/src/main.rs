//! Baselines and the measuring wrapper for `cargo xtask bench`.
//!
//! - `bench_pass`: XDP_PASS, nothing else (the floor).
//! - `bench_macswap`: swap the Ethernet addresses, XDP_TX (the forwarding ceiling).
//! - `bench_encap`: IPv4-in-IPv4 encapsulation only, fixed outer header, XDP_TX
//!   (the ceiling for our rewrite).
//! - `bench_restore`: BPF_PROG_TEST_RUN with repeat > 1 runs every pass on the
//!   same buffer, so a program that encapsulates would see its own output from
//!   the second pass on. This wrapper undoes any growth of the frame, rewrites
//!   the template frame (optionally with a per-pass flow), then tail-calls the
//!   program under test in `TARGET[0]`.
//! - `bench_one_line` (`one_line.rs`): encapsulation after one read of a
//!   cache line chosen by the flow from a table as large as lb's: the floor of
//!   a one-line connection-table lookup; `bench_one_line_forward`, the same
//!   in front of the rate benchmark's encapsulating forwarder.
//! - `bench_restore_decap` (`decap.rs`): the same for `lb_decap`, which
//!   shrinks frames.
//! - `bench_gen`, `bench_forward`, `bench_encap_forward`, `bench_sink`: the
//!   packet-rate benchmark's generator, forwarding ceiling, encapsulating
//!   forwarder's ceiling and counting sink (see `rate.rs`).
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_arch = "bpf")]
mod decap;
#[cfg(target_arch = "bpf")]
mod one_line;
#[cfg(target_arch = "bpf")]
mod outer_ipv4;
#[cfg(target_arch = "bpf")]
mod rate;

#[cfg(target_arch = "bpf")]
mod progs {
    use aya_ebpf::{
        bindings::xdp_action,
        btf_maps::{Array, PerCpuArray, ProgramArray},
        helpers::bpf_xdp_adjust_head,
        macros::{btf_map, xdp},
        programs::XdpContext,
    };
    use bench_ebpf::{FRAME_LEN, Template};

    #[btf_map]
    static TEMPLATE: Array<Template, 1> = Array::new();

    #[btf_map]
    static PASSES: PerCpuArray<u64, 1> = PerCpuArray::new();

    #[btf_map]
    static TARGET: ProgramArray<1> = ProgramArray::new();

    /// Outer addresses for `bench_encap`: [source, destination], network order.
    #[btf_map]
    static ENCAP_ADDRS: Array<[u32; 2], 1> = Array::new();

    /// Swaps the destination and source MAC addresses.
    #[inline(always)]
    fn swap_macs(eth: &mut [u8; 12]) {
        let mut swapped = [0u8; 12];
        swapped[..6].copy_from_slice(&eth[6..]);
        swapped[6..].copy_from_slice(&eth[..6]);
        *eth = swapped;
    }

    #[xdp]
    pub fn bench_pass(_ctx: XdpContext) -> u32 {
        xdp_action::XDP_PASS
    }

    #[xdp]
    pub fn bench_macswap(ctx: XdpContext) -> u32 {
        let start = ctx.data();
        if start + 12 > ctx.data_end() {
            return xdp_action::XDP_ABORTED;
        }
        let eth = start as *mut [u8; 12];
        // SAFETY: bounds checked above.
        unsafe {
            swap_macs(&mut *eth);
        }
        xdp_action::XDP_TX
    }

    #[xdp]
    pub fn bench_encap(ctx: XdpContext) -> u32 {
        let Some(addrs) = ENCAP_ADDRS.get(0) else {
            return xdp_action::XDP_ABORTED;
        };
        ipip_back(&ctx, addrs[0], addrs[1])
    }

    /// Puts an outer IPv4 header from `src` to `dst` (network order) in front
    /// of the frame's IPv4 packet (IPIP), the Ethernet header moved to the
    /// front with its MACs swapped, and returns XDP_TX: the tail of
    /// `bench_encap` and `bench_one_line`. XDP_ABORTED when the head cannot
    /// grow.
    #[inline(always)]
    pub(crate) fn ipip_back(ctx: &XdpContext, src: u32, dst: u32) -> u32 {
        // SAFETY: the helper checks the headroom itself.
        if unsafe { bpf_xdp_adjust_head(ctx.ctx, -20) } != 0 {
            return xdp_action::XDP_ABORTED;
        }
        let start = ctx.data();
        if start + 54 > ctx.data_end() {
            return xdp_action::XDP_ABORTED;
        }
        // SAFETY: 54 bytes are in bounds (checked above).
        unsafe {
            let p = start as *mut u8;
            // The old Ethernet header now sits at 20..34; move it to the front.
            core::ptr::copy(p.add(20), p, 14);
            let inner_len = u16::from_be_bytes([*p.add(36), *p.add(37)]);
            let ip = p.add(14) as *mut [u16; 10];
            *ip = crate::outer_ipv4::outer_ipv4(inner_len, src.to_ne_bytes(), dst.to_ne_bytes());
            // Ethernet type stays IPv4; swap MACs so the frame goes back.
            swap_macs(&mut *(p as *mut [u8; 12]));
        }
        xdp_action::XDP_TX
    }

    #[xdp]
    pub fn bench_restore(ctx: XdpContext) -> u32 {
        let grown = (ctx.data_end() - ctx.data()) as i32 - FRAME_LEN as i32;
        if grown > 0 && grown <= 64 {
            // SAFETY: shrinking by what the previous pass added.
            if unsafe { bpf_xdp_adjust_head(ctx.ctx, grown) } != 0 {
                return xdp_action::XDP_ABORTED;
            }
        }
        let start = ctx.data();
        if start + FRAME_LEN > ctx.data_end() {
            return xdp_action::XDP_ABORTED;
        }
        let Some(template) = TEMPLATE.get(0) else {
            return xdp_action::XDP_ABORTED;
        };
        // SAFETY: FRAME_LEN bytes are in bounds (checked above).
        // Eight word copies: a byte-wise memmove call would cost more than
        // some of the programs measured behind this wrapper.
        unsafe {
            let src = template.frame.as_ptr() as *const u64;
            let dst = start as *mut u64;
            for i in 0..FRAME_LEN / 8 {
                core::ptr::write_volatile(dst.add(i), core::ptr::read_volatile(src.add(i)));
            }
        }
        if template.flows != 0 {
            let Some(passes) = PASSES.get_ptr_mut(0) else {
                return xdp_action::XDP_ABORTED;
            };
            // SAFETY: this CPU's counter.
            let n = unsafe {
                *passes += 1;
                *passes
            };
            let flow = if template.flows == u32::MAX {
                n as u32
            } else {
                (n % u64::from(template.flows)) as u32
            };
            // Client = 198.18.(16 + flow >> 24).(flow >> 16) port (flow & 0xffff):
            // bytes 28..30 of the IPv4 source and 34..36 (TCP/UDP source port).
            // SAFETY: in bounds (FRAME_LEN = 64).
            unsafe {
                let p = start as *mut u8;
                *p.add(28) = 16 + (flow >> 24) as u8;
                *p.add(29) = (flow >> 16) as u8;
                *p.add(34) = (flow >> 8) as u8;
                *p.add(35) = flow as u8;
            }
        }
        // SAFETY: TARGET holds an XDP program; on failure we fall through.
        unsafe { TARGET.tail_call(&ctx, 0) };
        xdp_action::XDP_ABORTED
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        loop {}
    }

    #[unsafe(link_section = "license")]
    #[unsafe(no_mangle)]
    static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
}

#[cfg(not(target_arch = "bpf"))]
fn main() {}
