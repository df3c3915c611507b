//! The embedded XDP object.

/// The compiled `lb-ebpf` object (both XDP programs and all maps).
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lb-ebpf"));
