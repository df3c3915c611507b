//! A frame and checked views of the headers in it.
//!
//! [`Packet`] is a frame as a `[start, end)` address range whose only
//! constructors establish that the range is a frame the caller may read and
//! write ([`Packet::from_slice`] from a borrowed byte slice, the `unsafe`
//! [`Packet::new`] from XDP's `data` / `data_end`). [`Packet::view`] checks
//! once that a whole header lies inside the frame and returns a [`View`]: from
//! then on every field is read and written through safe accessors. The same
//! code checks XDP packet pointers (where every access must be proven in
//! bounds for the verifier) and host pointers into a byte slice (unit tests).
//!
//! All the `unsafe` of packet access is in this module.

use core::{
    marker::PhantomData,
    mem::size_of,
    ptr::{addr_of, addr_of_mut},
};

use super::{
    ethernet::EthHdr,
    icmp::IcmpHdr,
    ipv4::Ipv4Hdr,
    ipv6::{Ipv6FragHdr, Ipv6Hdr},
    tcp::TcpHdr,
    udp::UdpHdr,
};

/// A frame: the addresses of its first byte and one past its last byte, which
/// the holder may read and write for `'a`.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// Address of the first byte (XDP `data`).
    start: usize,
    /// Address one past the last byte (XDP `data_end`).
    end: usize,
    /// The frame is borrowed mutably for `'a`.
    frame: PhantomData<&'a mut [u8]>,
}

impl<'a> Packet<'a> {
    /// A frame spanning `[start, end)`.
    ///
    /// # Safety
    /// Every byte of `[start, end)` must be readable and writable for `'a`
    /// and accessed, meanwhile, only through this `Packet` (and its copies and
    /// views). For XDP: `ctx.data()` and `ctx.data_end()`, valid until the
    /// frame is resized (`bpf_xdp_adjust_head` / `_tail`), after which a new
    /// `Packet` must be made from the new bounds.
    #[inline(always)]
    pub const unsafe fn new(start: usize, end: usize) -> Self {
        Self {
            start,
            end,
            frame: PhantomData,
        }
    }

    /// A frame over a byte slice (host tests).
    #[inline(always)]
    pub fn from_slice(bytes: &'a mut [u8]) -> Self {
        let start = bytes.as_mut_ptr() as usize;
        // SAFETY: the slice is borrowed mutably for 'a: its bytes are
        // readable, writable and reachable only through this frame.
        unsafe { Self::new(start, start + bytes.len()) }
    }

    /// Length of the frame in bytes.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.end() - self.start
    }

    /// The end address, read so that the compiler cannot prove a bounds check
    /// redundant from an earlier length-field check: the verifier needs every
    /// access preceded by its own comparison with `data_end`.
    #[inline(always)]
    fn end(&self) -> usize {
        // SAFETY: a reference to our own field is valid for reads.
        unsafe { core::ptr::read_volatile(&self.end) }
    }

    /// Whether the frame is empty.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.start >= self.end()
    }

    /// A view of the `T` at byte offset `off`, if the whole `T` lies inside
    /// the frame.
    #[inline(always)]
    pub fn view<T: Header>(&self, off: usize) -> Option<View<'a, T>> {
        let p = self.start + off;
        if p + size_of::<T>() > self.end() {
            return None;
        }
        Some(View {
            ptr: p as *mut T,
            frame: PhantomData,
        })
    }
}

/// A wire header: plain bytes, no padding, valid for every bit pattern, so
/// that any `size_of::<Self>()` bytes of a frame may be read as one.
///
/// # Safety
/// The type must have no padding and no invalid bit patterns.
pub unsafe trait Header: Copy {}

// SAFETY: each is `#[repr(C)]` of integers laid out without padding (the
// wire-size tests of each header check `size_of`), valid for any bits.
unsafe impl Header for EthHdr {}
// SAFETY: as above.
unsafe impl Header for Ipv4Hdr {}
// SAFETY: as above.
unsafe impl Header for Ipv6Hdr {}
// SAFETY: as above.
unsafe impl Header for Ipv6FragHdr {}
// SAFETY: as above.
unsafe impl Header for TcpHdr {}
// SAFETY: as above.
unsafe impl Header for UdpHdr {}
// SAFETY: as above.
unsafe impl Header for IcmpHdr {}
// SAFETY: `#[repr(C)]` u8, u8, u16 (4 bytes, no padding; lb-common's GUE
// tests check the wire size), valid for any bits.
unsafe impl Header for lb_common::gue::GueHeader {}
// SAFETY: `#[repr(C)]` u16, u8, u8 (4 bytes, no padding), valid for any bits.
unsafe impl Header for lb_common::gue::HintHeader {}
// SAFETY: as above: a 4-byte `HintHeader` then 4 or 16 address bytes.
unsafe impl Header for super::emit_gue::HintV4 {}
// SAFETY: as above.
unsafe impl Header for super::emit_gue::HintV6 {}
// SAFETY: arrays of integers have no padding and no invalid bit patterns.
unsafe impl<const N: usize> Header for [u8; N] {}
// SAFETY: as above.
unsafe impl<const N: usize> Header for [u16; N] {}
// SAFETY: as above.
unsafe impl<const N: usize> Header for [u32; N] {}

/// A `T` at a place of a frame checked to hold all of it.
#[derive(Clone, Copy, Debug)]
pub struct View<'a, T> {
    /// Points to `size_of::<T>()` bytes inside a [`Packet`]'s frame.
    ptr: *mut T,
    /// The frame is borrowed for `'a`.
    frame: PhantomData<&'a mut [u8]>,
}

impl<'a, T: Header> View<'a, T> {
    /// The whole header.
    #[inline(always)]
    pub fn get(&self) -> T {
        // SAFETY: `ptr` points to a whole `T` inside the frame (checked by
        // `Packet::view`), readable for 'a; any bits are a valid `T`.
        unsafe { load(self.ptr) }
    }

    /// Overwrites the whole header.
    #[inline(always)]
    pub fn set(&self, value: T) {
        // SAFETY: `ptr` points to a whole `T` inside the frame, writable for
        // 'a; no reference to the frame exists (views hold raw pointers).
        unsafe { store(self.ptr, value) }
    }

    /// A view of the first `size_of::<U>()` bytes, when they fit in a `T`.
    #[inline(always)]
    pub fn prefix<U: Header>(&self) -> Option<View<'a, U>> {
        if size_of::<U>() > size_of::<T>() {
            return None;
        }
        Some(View {
            ptr: self.ptr.cast(),
            frame: PhantomData,
        })
    }
}

impl<const N: usize> View<'_, [u8; N]> {
    /// The one's-complement partial sum of the first `len` bytes (a multiple
    /// of 4, at most `N`), to be folded with [`crate::checksum::fold`]; `None`
    /// when `len` is not such a length.
    #[inline(always)]
    pub fn sum_prefix(&self, len: usize) -> Option<u64> {
        if len > N || !len.is_multiple_of(4) {
            return None;
        }
        #[cfg(target_arch = "bpf")]
        {
            // SAFETY: `len` bytes at `ptr` lie inside the frame (`len <= N`
            // and the view holds N bytes); the helper only reads them.
            let s = unsafe {
                aya_ebpf::helpers::generated::bpf_csum_diff(
                    core::ptr::null_mut(),
                    0,
                    self.ptr.cast::<u32>(),
                    len as u32,
                    0,
                )
            };
            Some(u64::from(s as u32))
        }
        #[cfg(not(target_arch = "bpf"))]
        {
            let bytes = self.get();
            Some(crate::checksum::sum_bytes(&bytes[..len]))
        }
    }
}

/// Field accessors of a header view: `getter / setter: type` per field, the
/// values raw (multi-byte fields in network order, as on the wire).
macro_rules! fields {
    ($(#[$attr:meta])* $hdr:ty { $($field:ident / $set:ident : $ty:ty),* $(,)? }) => {
        $(#[$attr])*
        impl View<'_, $hdr> {
            $(
                #[doc = concat!("The `", stringify!($field), "` field, raw.")]
                #[inline(always)]
                pub fn $field(&self) -> $ty {
                    // SAFETY: the view holds a whole header inside the frame
                    // (checked by `Packet::view`) and the field lies inside it.
                    unsafe { load(addr_of!((*self.ptr).$field)) }
                }

                #[doc = concat!("Writes the `", stringify!($field), "` field, raw.")]
                #[inline(always)]
                pub fn $set(&self, value: $ty) {
                    // SAFETY: as above; the frame is writable for the view's
                    // lifetime and no reference into it exists.
                    unsafe { store(addr_of_mut!((*self.ptr).$field), value) }
                }
            )*
        }
    };
}

fields!(EthHdr {
    dst / set_dst: [u8; 6],
    src / set_src: [u8; 6],
    ether_type / set_ether_type: u16,
});

fields!(Ipv4Hdr {
    version_ihl / set_version_ihl: u8,
    tos / set_tos: u8,
    tot_len / set_tot_len: u16,
    frag_off / set_frag_off: u16,
    ttl / set_ttl: u8,
    protocol / set_protocol: u8,
    check / set_check: u16,
    src / set_src: u32,
    dst / set_dst: u32,
});

fields!(Ipv6Hdr {
    version_tc_flow / set_version_tc_flow: u32,
    payload_len / set_payload_len: u16,
    next_hdr / set_next_hdr: u8,
    hop_limit / set_hop_limit: u8,
    src / set_src: [u32; 4],
    dst / set_dst: [u32; 4],
});

fields!(Ipv6FragHdr {
    next_hdr / set_next_hdr: u8,
    frag_off / set_frag_off: u16,
});

fields!(TcpHdr {
    src_port / set_src_port: u16,
    dst_port / set_dst_port: u16,
    data_off / set_data_off: u8,
    flags / set_flags: u8,
});

fields!(
    #[expect(clippy::len_without_is_empty, reason = "`len` is the UDP length field")]
    UdpHdr {
    src_port / set_src_port: u16,
    dst_port / set_dst_port: u16,
    len / set_len: u16,
});

fields!(IcmpHdr {
    type_ / set_type: u8,
    code / set_code: u8,
    check / set_check: u16,
    rest / set_rest: u32,
});

impl View<'_, EthHdr> {
    /// Writes the destination then the source MAC as three 32-bit words (the
    /// first 12 bytes of the header; three stores instead of twelve).
    #[inline(always)]
    pub fn set_macs(&self, dst_then_src: [u32; 3]) {
        // SAFETY: the view holds the whole 14-byte header; its first 12 bytes
        // are the two MACs, and the frame is writable.
        unsafe { store(self.ptr.cast::<[u32; 3]>(), dst_then_src) }
    }
}

/// Reads a `T` at `p`, which points to `size_of::<T>()` readable bytes.
///
/// # Safety
/// `p` must point to `size_of::<T>()` readable bytes holding a valid `T`.
#[inline(always)]
unsafe fn load<T: Copy>(p: *const T) -> T {
    // BPF loads of any width are fine at any packet offset (no strict
    // alignment); the host may run on a stricter target, so read unaligned.
    #[cfg(target_arch = "bpf")]
    // SAFETY: the caller's contract.
    unsafe {
        p.read()
    }
    #[cfg(not(target_arch = "bpf"))]
    // SAFETY: the caller's contract.
    unsafe {
        p.read_unaligned()
    }
}

/// Writes a `T` at `p`, which points to `size_of::<T>()` writable bytes.
///
/// # Safety
/// `p` must point to `size_of::<T>()` writable bytes.
#[inline(always)]
unsafe fn store<T: Copy>(p: *mut T, v: T) {
    #[cfg(target_arch = "bpf")]
    // SAFETY: the caller's contract.
    unsafe {
        p.write(v)
    }
    #[cfg(not(target_arch = "bpf"))]
    // SAFETY: the caller's contract.
    unsafe {
        p.write_unaligned(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_checks_the_whole_value() {
        let mut bytes = [1u8, 2, 3, 4];
        let p = Packet::from_slice(&mut bytes);
        assert_eq!(p.len(), 4);
        assert!(p.view::<[u8; 4]>(0).is_some());
        assert!(p.view::<[u8; 4]>(1).is_none());
        assert!(p.view::<[u16; 1]>(2).is_some());
        assert!(p.view::<[u16; 1]>(3).is_none());
        assert_eq!(
            p.view::<[u16; 1]>(2).unwrap().get(),
            [u16::from_ne_bytes([3, 4])]
        );
    }

    #[test]
    fn empty_frame_has_nothing() {
        let mut bytes: [u8; 0] = [];
        let p = Packet::from_slice(&mut bytes);
        assert!(p.is_empty());
        assert!(p.view::<[u8; 1]>(0).is_none());
    }

    #[test]
    fn accessors_read_and_write_their_fields() {
        let mut bytes = [0u8; 20];
        let p = Packet::from_slice(&mut bytes);
        let ip = p.view::<Ipv4Hdr>(0).unwrap();
        ip.set_version_ihl(0x45);
        ip.set_ttl(64);
        ip.set_dst(u32::from_ne_bytes([198, 18, 0, 1]));
        assert_eq!((ip.version_ihl(), ip.ttl()), (0x45, 64));
        assert!(ip.prefix::<[u8; 21]>().is_none());
        assert_eq!(ip.prefix::<[u8; 1]>().unwrap().get(), [0x45]);
        assert_eq!(bytes[0], 0x45);
        assert_eq!(bytes[8], 64);
        assert_eq!(bytes[16..20], [198, 18, 0, 1]);
    }

    #[test]
    fn sum_prefix_takes_whole_words_within_the_view() {
        let mut bytes = [0u8, 1, 0, 2, 0, 4, 0, 8];
        let p = Packet::from_slice(&mut bytes);
        let v = p.view::<[u8; 8]>(0).unwrap();
        assert_eq!(v.sum_prefix(4), Some(u64::from(u16::from_ne_bytes([0, 3]))));
        assert_eq!(v.sum_prefix(6), None);
        assert_eq!(v.sum_prefix(12), None);
    }
}
