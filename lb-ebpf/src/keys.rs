//! Map keys built as whole 32-bit words.
//!
//! A key assembled field by field (a 2-byte port, two 1-byte tags) and then
//! read as 32-bit words by the kernel's hash defeats store-to-load forwarding
//! and stalls the CPU for each such word. Building the key as words, with the
//! small fields packed in a register first, makes every store a full word.

use lb_common::{DecapKey, FlowKey, VipKey};

#[cfg(target_endian = "big")]
compile_error!("lb-ebpf packs map keys for a little-endian target (bpfel)");

/// The [`VipKey`] of (addr, port, protocol, family); port in network order.
#[inline(always)]
pub fn vip_key(addr: &[u32; 4], port: u16, protocol: u8, family: u8) -> VipKey {
    // VipKey layout: addr[4], then port (offset 16), protocol (18), family (19).
    let tail = u32::from(port) | (u32::from(protocol) << 16) | (u32::from(family) << 24);
    let words: [u32; 5] = [addr[0], addr[1], addr[2], addr[3], tail];
    // SAFETY: VipKey is #[repr(C)], 20 bytes, 4-byte aligned, and valid for
    // any bit pattern; on little-endian targets the packing above matches it.
    unsafe { core::mem::transmute::<[u32; 5], VipKey>(words) }
}

/// The [`DecapKey`] of address `addr` of `family`. Built field by field, its
/// 3-byte zero pad became a call to a byte-loop `memset` (the BPF backend does
/// not inline it) on every packet `lb_decap` strips.
#[inline(always)]
pub fn decap_key(addr: &[u32; 4], family: u8) -> DecapKey {
    // DecapKey layout: addr[4], then family (offset 16), pad (17..20).
    let words: [u32; 5] = [addr[0], addr[1], addr[2], addr[3], u32::from(family)];
    // SAFETY: as for `vip_key`: 20 bytes, 4-byte aligned, any bit pattern valid.
    unsafe { core::mem::transmute::<[u32; 5], DecapKey>(words) }
}

/// The [`FlowKey`] of client `src`:`src_port` -> VIP `dst`:`dst_port` (ports in network order).
#[inline(always)]
pub fn flow_key(
    src: &[u32; 4],
    dst: &[u32; 4],
    src_port: u16,
    dst_port: u16,
    protocol: u8,
    family: u8,
) -> FlowKey {
    // FlowKey layout: src[4], dst[4], src_port (32), dst_port (34), protocol (36),
    // family (37), pad (38..40).
    let ports = u32::from(src_port) | (u32::from(dst_port) << 16);
    let tags = u32::from(protocol) | (u32::from(family) << 8);
    let words: [u32; 10] = [
        src[0], src[1], src[2], src[3], dst[0], dst[1], dst[2], dst[3], ports, tags,
    ];
    // SAFETY: as for `vip_key`: 40 bytes, 4-byte aligned, any bit pattern valid.
    unsafe { core::mem::transmute::<[u32; 10], FlowKey>(words) }
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    #[test]
    fn word_built_keys_equal_field_built_keys() {
        let a = [0x0102_c6c6, 5, 6, 7];
        let b = [0x0164_12c6, 8, 9, 10];
        assert_eq!(
            vip_key(&a, 0x5000, 6, 4),
            VipKey {
                addr: a,
                port: 0x5000,
                protocol: 6,
                family: 4
            }
        );
        assert_eq!(
            flow_key(&a, &b, 0x3930, 0x5000, 17, 6),
            FlowKey {
                src: a,
                dst: b,
                src_port: 0x3930,
                dst_port: 0x5000,
                protocol: 17,
                family: 6,
                pad: [0; 2],
            }
        );
        assert_eq!(
            decap_key(&b, 10),
            DecapKey {
                addr: b,
                family: 10,
                pad: [0; 3],
            }
        );
    }
}
