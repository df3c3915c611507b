//! The XDP programs: `lb_xdp` (load balancer) and `lb_decap` (backend side).
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod maps;

#[cfg(target_arch = "bpf")]
mod xdp {
    use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

    /// The load balancer.
    #[xdp]
    pub fn lb_xdp(_ctx: XdpContext) -> u32 {
        let _ = crate::maps::VIPS.get_ptr(lb_common::VipKey::default());
        let _ = crate::maps::MAGLEV_TABLES.get_value(0, &0);
        let _ = crate::maps::BACKENDS.get(0);
        let _ = crate::maps::CONNTRACK.get_ptr(lb_common::FlowKey::default());
        let _ = crate::maps::SETTINGS.get(0);
        let _ = crate::maps::BACKEND_STATS.get(0);
        let _ = crate::maps::SERVICE_STATS.get(0);
        let _ = crate::maps::GLOBAL_STATS.get(0);
        xdp_action::XDP_PASS
    }

    /// Backend-side decapsulation.
    #[xdp]
    pub fn lb_decap(_ctx: XdpContext) -> u32 {
        let _ = crate::maps::DECAP_ADDRS.get_ptr(lb_common::DecapKey::default());
        let _ = crate::maps::DECAP_STATS.get(0);
        xdp_action::XDP_PASS
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
