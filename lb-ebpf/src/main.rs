//! The XDP programs: `lb_xdp` (load balancer) and `lb_decap` (backend side).
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_arch = "bpf")]
mod maps;
#[cfg(target_arch = "bpf")]
mod prog;

#[cfg(target_arch = "bpf")]
mod xdp {
    use aya_ebpf::{macros::xdp, programs::XdpContext};

    /// The load balancer. Spelled out rather than `#[xdp]` (which wraps the
    /// body in a function of its own that LLVM keeps as a BPF subprogram):
    /// the whole pipeline is inlined into the entry, one call less per
    /// packet.
    #[unsafe(no_mangle)]
    #[unsafe(link_section = "xdp")]
    pub extern "C" fn lb_xdp(ctx: *mut aya_ebpf::bindings::xdp_md) -> u32 {
        crate::prog::pipeline::run(&XdpContext::new(ctx))
    }

    /// Backend-side decapsulation.
    #[xdp]
    pub fn lb_decap(ctx: XdpContext) -> u32 {
        crate::prog::decap::run(&ctx)
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
