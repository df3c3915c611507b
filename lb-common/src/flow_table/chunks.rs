//! Where the connection table's buckets live: in chunks of
//! [`FLOW_CHUNK_BUCKETS`] buckets, one chunk per inner array of
//! [`crate::MAP_CONNTRACK`] (an array of maps).
//!
//! Why chunks: the kernel allocates an array map of at most 32 KiB (header
//! included) with `kmalloc`, from the direct map, which it maps with 2 MiB and
//! 1 GiB pages; a larger array comes from `vmalloc`, mapped with 4 KiB pages.
//! A lookup in a table of tens of MiB of 4 KiB pages misses the TLB as well as
//! the cache: a page walk (about 50 ns on the reference VM, `notes` in the
//! README) on top of the line's own miss. One chunk is one inner array of one
//! value, [`FLOW_CHUNK_BYTES`]: its buckets plus one line of slack, so that
//! the buckets can start on a cache-line boundary whatever the size of the
//! kernel's array header ([`chunk_skew`]).
//!
//! A flow's placement hash picks a bucket among all of the table's buckets
//! (multiply-shift: any count, not only powers of two); the bucket's chunk is
//! its index divided by [`FLOW_CHUNK_BUCKETS`], its line the remainder.

use super::FlowBucket;

/// Buckets per chunk (30 KiB of buckets: with the kernel's array header and
/// the alignment slack, each chunk stays within one 32 KiB `kmalloc`).
pub const FLOW_CHUNK_BUCKETS: u32 = 480;

/// Bytes of a chunk's value: its buckets plus one cache line of slack.
pub const FLOW_CHUNK_BYTES: usize = (FLOW_CHUNK_BUCKETS as usize + 1) * size_of::<FlowBucket>();

/// Most chunks a connection table may have (31.5M buckets, 125M flows, 2 GiB).
pub const MAX_FLOW_CHUNKS: u32 = 65_536;

/// The value of one inner array of the connection table: bytes, whose
/// buckets start [`chunk_skew`] bytes in.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FlowChunk {
    /// The chunk's bytes.
    pub bytes: [u8; FLOW_CHUNK_BYTES],
}

impl Default for FlowChunk {
    fn default() -> Self {
        Self {
            bytes: [0; FLOW_CHUNK_BYTES],
        }
    }
}

/// Chunks of a connection table for `entries` flows: enough buckets of
/// [`crate::FLOW_WAYS`] for them (at least one chunk, at most
/// [`MAX_FLOW_CHUNKS`]).
pub const fn flow_chunks(entries: u32) -> u32 {
    let buckets = entries.div_ceil(crate::FLOW_WAYS as u32);
    let chunks = buckets.div_ceil(FLOW_CHUNK_BUCKETS);
    if chunks == 0 {
        1
    } else if chunks > MAX_FLOW_CHUNKS {
        MAX_FLOW_CHUNKS
    } else {
        chunks
    }
}

/// Buckets of a table of `chunks` chunks.
pub const fn chunk_buckets(chunks: u32) -> u32 {
    chunks * FLOW_CHUNK_BUCKETS
}

/// The byte offset, in a chunk's value, of its first bucket: the distance
/// from `value_offset` (where the kernel's array header puts the value, in a
/// page-aligned allocation) to the next 64-byte boundary, rounded down to 8.
pub const fn chunk_skew(value_offset: u32) -> u32 {
    ((64 - value_offset % 64) % 64) & 0x38
}

/// The (chunk, line) of bucket `index`.
#[inline(always)]
pub const fn bucket_position(index: u32) -> (u32, u32) {
    let chunk = index / FLOW_CHUNK_BUCKETS;
    (chunk, index - chunk * FLOW_CHUNK_BUCKETS)
}

/// The byte offset of line `line` in a chunk whose buckets start at `skew`.
#[inline(always)]
pub const fn line_offset(skew: u32, line: u32) -> usize {
    (skew & 0x38) as usize + line as usize * size_of::<FlowBucket>()
}

impl FlowChunk {
    /// A copy of bucket `line` (buckets starting at `skew`).
    pub fn bucket(&self, skew: u32, line: u32) -> FlowBucket {
        let at = line_offset(skew, line);
        let bytes = |i: usize, n: usize| {
            let mut w = [0u8; 8];
            w[..n].copy_from_slice(&self.bytes[i..i + n]);
            w
        };
        let mut b = FlowBucket::default();
        for (way, slot) in b.slots.iter_mut().enumerate() {
            let o = at + way * 16;
            slot.tag = u64::from_ne_bytes(bytes(o, 8));
            let [g0, g1, g2, g3, ..] = bytes(o + 8, 4);
            slot.generation = u32::from_ne_bytes([g0, g1, g2, g3]);
            let [s0, s1, s2, s3, ..] = bytes(o + 12, 4);
            slot.seen = u32::from_ne_bytes([s0, s1, s2, s3]);
        }
        b
    }

    /// Overwrites bucket `line` (buckets starting at `skew`) with `bucket`.
    pub fn set_bucket(&mut self, skew: u32, line: u32, bucket: &FlowBucket) {
        let at = line_offset(skew, line);
        for (way, slot) in bucket.slots.iter().enumerate() {
            let o = at + way * 16;
            self.bytes[o..o + 8].copy_from_slice(&slot.tag.to_ne_bytes());
            self.bytes[o + 8..o + 12].copy_from_slice(&slot.generation.to_ne_bytes());
            self.bytes[o + 12..o + 16].copy_from_slice(&slot.seen.to_ne_bytes());
        }
    }
}
