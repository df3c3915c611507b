//! Zeroing and copying by 32-bit words, where LLVM would call `memset` or
//! `memcpy`.
//!
//! LLVM zeroes a struct and copies an array with its memory intrinsics, and
//! the BPF backend leaves them as calls: bpf-linker resolves them to byte
//! loops run as BPF subprograms. Zeroing the 64-byte `bpf_fib_lookup` took a
//! 64-iteration loop on every FIB lookup, and each IPv6 address copy a
//! 16-iteration one. Volatile word accesses cannot be merged back into such a
//! call. The encapsulation (its next-hop fallback, an IPv6 GUE hint) and
//! second chance's forward path use these.

use core::mem::{MaybeUninit, size_of};
use core::ptr::{read_volatile, write_volatile};

use aya_ebpf::bindings::bpf_fib_lookup;

// Whole words: the struct is 64 bytes, 4-byte aligned.
const _: () = assert!(size_of::<bpf_fib_lookup>().is_multiple_of(4));

/// `raw`, zeroed one 32-bit word at a time, as a `bpf_fib_lookup`.
#[inline(always)]
pub fn zeroed_fib_params(raw: &mut MaybeUninit<bpf_fib_lookup>) -> &mut bpf_fib_lookup {
    let words = raw.as_mut_ptr().cast::<u32>();
    for i in 0..size_of::<bpf_fib_lookup>() / 4 {
        // SAFETY: `i` words lie within the struct (its size is a whole number
        // of words, checked above) and it is 4-byte aligned.
        unsafe { write_volatile(words.add(i), 0) };
    }
    // SAFETY: every byte was just written; all zero bytes is a valid
    // `bpf_fib_lookup` (a C struct of integers and unions of integers).
    unsafe { raw.assume_init_mut() }
}

/// Copies the IPv6 address `src` into `dst` one word at a time.
#[inline(always)]
pub fn copy_address(dst: &mut [u32; 4], src: &[u32; 4]) {
    for (d, s) in dst.iter_mut().zip(src) {
        // SAFETY: `d` is a valid, aligned, exclusive reference.
        unsafe { write_volatile(d, *s) };
    }
}

/// A copy of the IPv6 address `src`, read one word at a time.
#[inline(always)]
pub fn read_address(src: &[u32; 4]) -> [u32; 4] {
    // SAFETY: each is a valid, aligned reference.
    unsafe {
        [
            read_volatile(&src[0]),
            read_volatile(&src[1]),
            read_volatile(&src[2]),
            read_volatile(&src[3]),
        ]
    }
}
