//! The map values the benchmark programs share with `lb-bench`, one
//! definition for both sides (like `lb-common` for the product's maps). The
//! programs themselves are the `bench-ebpf` binary (built for bpfel by
//! `lb-bench`'s build script); with the `user` feature these types are
//! `aya::Pod` for `lb-bench` to read and write.
#![no_std]
#![deny(clippy::undocumented_unsafe_blocks)]

/// Length of the per-packet template frame (64-byte frames).
pub const FRAME_LEN: usize = 64;

/// The frame `bench_restore` restores before every pass.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Template {
    /// Bytes of the frame.
    pub frame: [u8; FRAME_LEN],
    /// 0: the same flow every pass; N > 0: cycle the client over N flows;
    /// `u32::MAX`: a new flow every pass.
    pub flows: u32,
    /// Zero.
    pub pad: u32,
}

/// Length of a frame the rate generator writes.
pub const GEN_LEN: usize = 64;

/// The rate generator's template: a 64-byte UDP/IPv4 frame (checksum field
/// zero; the generator rewrites bytes 28..30 (source address), 34..36 (source
/// port) and 24..26 (IPv4 checksum) on every run).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct GenTemplate {
    /// Bytes of the frame.
    pub frame: [u8; GEN_LEN],
    /// Number of distinct flows (source address and port pairs; 0 or 1: one).
    pub flows: u32,
    /// Zero.
    pub pad: u32,
}

/// Where `bench_forward` sends frames.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Forward {
    /// Egress ifindex.
    pub ifindex: u32,
    /// Destination MAC to write.
    pub dst: [u8; 6],
    /// Source MAC to write.
    pub src: [u8; 6],
}

/// Where `bench_encap_forward` sends frames and the outer IPv4 addresses it
/// writes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EncapForward {
    /// Egress ifindex.
    pub ifindex: u32,
    /// Destination MAC to write.
    pub dst: [u8; 6],
    /// Source MAC to write.
    pub src: [u8; 6],
    /// Outer IPv4 source, network order.
    pub outer_src: [u8; 4],
    /// Outer IPv4 destination (the backend), network order.
    pub outer_dst: [u8; 4],
}

// No padding anywhere: every byte of these values is data.
const _: () = assert!(core::mem::size_of::<Template>() == FRAME_LEN + 8);
const _: () = assert!(core::mem::size_of::<GenTemplate>() == GEN_LEN + 8);
const _: () = assert!(core::mem::size_of::<Forward>() == 4 + 6 + 6);
const _: () = assert!(core::mem::size_of::<EncapForward>() == 4 + 6 + 6 + 4 + 4);

// Each of the four below: repr(C), integers and byte arrays only, no padding
// (asserted above), so any bit pattern is a valid value.
#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for Template {}
#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for GenTemplate {}
#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for Forward {}
#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for EncapForward {}
