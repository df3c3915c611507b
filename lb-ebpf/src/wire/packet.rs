//! A frame as a `[start, end)` address range with bounds-checked typed access.
//!
//! The same code checks XDP packet pointers (where every access must be proven
//! in bounds for the verifier) and host pointers into a byte slice (unit tests).

use core::mem::size_of;

/// A frame: the addresses of its first byte and one past its last byte.
#[derive(Clone, Copy, Debug)]
pub struct Packet {
    /// Address of the first byte (XDP `data`).
    pub start: usize,
    /// Address one past the last byte (XDP `data_end`).
    pub end: usize,
}

impl Packet {
    /// A frame spanning `[start, end)`.
    #[inline(always)]
    pub const fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    /// A frame over a byte slice (host tests).
    #[inline(always)]
    pub fn from_slice(bytes: &[u8]) -> Self {
        let start = bytes.as_ptr() as usize;
        Self::new(start, start + bytes.len())
    }

    /// A writable frame over a byte slice (host tests of header writers).
    #[inline(always)]
    pub fn from_mut_slice(bytes: &mut [u8]) -> Self {
        let start = bytes.as_mut_ptr() as usize;
        Self::new(start, start + bytes.len())
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
        // SAFETY: reading our own field.
        unsafe { core::ptr::read_volatile(&self.end) }
    }

    /// Whether the frame is empty.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.start >= self.end()
    }

    /// A pointer to a `T` at byte offset `off`, if the whole `T` lies inside the frame.
    #[inline(always)]
    pub fn ptr_at<T>(&self, off: usize) -> Option<*const T> {
        let p = self.start + off;
        if p + size_of::<T>() > self.end() {
            return None;
        }
        Some(p as *const T)
    }

    /// A mutable pointer to a `T` at byte offset `off`, if it lies inside the frame.
    #[inline(always)]
    pub fn ptr_mut_at<T>(&self, off: usize) -> Option<*mut T> {
        self.ptr_at::<T>(off).map(|p| p as *mut T)
    }
}

/// Reads a `T` through a pointer obtained from [`Packet::ptr_at`].
///
/// # Safety
/// `p` must point to `size_of::<T>()` readable bytes.
#[inline(always)]
pub unsafe fn load<T: Copy>(p: *const T) -> T {
    // BPF loads of any width are fine at any packet offset (no strict
    // alignment); the host may run on a stricter target, so read unaligned.
    #[cfg(target_arch = "bpf")]
    unsafe {
        p.read()
    }
    #[cfg(not(target_arch = "bpf"))]
    unsafe {
        p.read_unaligned()
    }
}

/// Writes a `T` through a pointer obtained from [`Packet::ptr_mut_at`].
///
/// # Safety
/// `p` must point to `size_of::<T>()` writable bytes.
#[inline(always)]
pub unsafe fn store<T: Copy>(p: *mut T, v: T) {
    #[cfg(target_arch = "bpf")]
    unsafe {
        p.write(v)
    }
    #[cfg(not(target_arch = "bpf"))]
    unsafe {
        p.write_unaligned(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ptr_at_checks_the_whole_value() {
        let bytes = [1u8, 2, 3, 4];
        let p = Packet::from_slice(&bytes);
        assert_eq!(p.len(), 4);
        assert!(p.ptr_at::<u32>(0).is_some());
        assert!(p.ptr_at::<u32>(1).is_none());
        assert!(p.ptr_at::<u16>(2).is_some());
        assert!(p.ptr_at::<u16>(3).is_none());
        assert_eq!(
            unsafe { load(p.ptr_at::<u16>(2).unwrap()) },
            u16::from_ne_bytes([3, 4])
        );
    }

    #[test]
    fn empty_frame_has_nothing() {
        let bytes: [u8; 0] = [];
        let p = Packet::from_slice(&bytes);
        assert!(p.is_empty());
        assert!(p.ptr_at::<u8>(0).is_none());
    }
}
