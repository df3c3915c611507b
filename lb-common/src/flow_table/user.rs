//! Userspace access to the connection table: sizing a datapath being loaded,
//! its secret, and reading or writing one flow's pin (tests, benchmarks,
//! tools).

use core::borrow::{Borrow, BorrowMut};
use std::boxed::Box;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use aya::maps::{Array, ArrayOfMaps, MapData, MapError};

use super::{
    FlowBucket, FlowChunk, FlowHashKey, FlowSlot, bucket_pair, bucket_position, chunk_buckets,
    chunk_skew, find_pin, flow_chunks, flow_place, kernel_btf, slot_for_pin,
};
use crate::{
    FlowEntry, FlowKey, FlowTableConfig, GLOBAL_FLOW_BUCKETS, GLOBAL_FLOW_CHUNK_SKEW, MAP_CONNTRACK,
};

/// The connection table as its outer array of maps (inner arrays of one
/// [`FlowChunk`]).
pub type ChunkTable<T> = ArrayOfMaps<T, Array<MapData, FlowChunk>>;

/// The shape of a connection table: what a datapath is loaded with
/// ([`size_conntrack`]) and what reading or writing its buckets needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTableGeometry {
    /// Inner arrays (chunks) of the table.
    pub chunks: u32,
    /// Buckets of the table (`chunks` x [`super::FLOW_CHUNK_BUCKETS`]).
    pub buckets: u32,
    /// Where the buckets start in a chunk's value ([`chunk_skew`] of the
    /// running kernel's array header).
    pub skew: u32,
}

impl FlowTableGeometry {
    /// The geometry of a table for `entries` flows on the running kernel.
    pub fn for_entries(entries: u32) -> Self {
        Self::of_chunks(flow_chunks(entries))
    }

    /// The geometry of a table of `chunks` chunks on the running kernel.
    pub fn of_chunks(chunks: u32) -> Self {
        Self {
            chunks,
            buckets: chunk_buckets(chunks),
            skew: kernel_chunk_skew(),
        }
    }
}

/// The running kernel's [`chunk_skew`] (0 when its BTF cannot say: the
/// buckets then may straddle two lines, which costs time, never correctness).
pub fn kernel_chunk_skew() -> u32 {
    static SKEW: OnceLock<u32> = OnceLock::new();
    *SKEW.get_or_init(|| kernel_btf::array_value_offset().map_or(0, chunk_skew))
}

/// Sizes the connection table of a datapath about to be loaded (the loader
/// borrows `geometry` until it loads). A fresh table has no chunks yet: the
/// agent's kernel layer (`lb::kernel::flow_chunks`) creates them once the maps
/// exist.
pub fn size_conntrack<'a>(loader: &mut aya::EbpfLoader<'a>, geometry: &'a FlowTableGeometry) {
    loader.map_max_entries(MAP_CONNTRACK, geometry.chunks);
    loader.override_global(GLOBAL_FLOW_BUCKETS, &geometry.buckets, true);
    loader.override_global(GLOBAL_FLOW_CHUNK_SKEW, &geometry.skew, true);
}

/// A fresh secret from the kernel's random source (`getrandom(2)`).
pub fn random_flow_key() -> std::io::Result<FlowHashKey> {
    let mut bytes = [0u8; 64];
    let mut filled = 0;
    while filled < bytes.len() {
        let rest = &mut bytes[filled..];
        // SAFETY: writes at most rest.len() bytes into rest.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        } else {
            filled += n as usize;
        }
    }
    Ok(FlowHashKey::from_random(&bytes))
}

/// The table configuration (secret, insert budget) in `config`.
pub fn flow_table_config<T: Borrow<MapData>>(
    config: &Array<T, FlowTableConfig>,
) -> Result<FlowTableConfig, MapError> {
    config.get(&0, 0)
}

/// Writes the table configuration.
pub fn set_flow_table_config<T: BorrowMut<MapData>>(
    config: &mut Array<T, FlowTableConfig>,
    value: FlowTableConfig,
) -> Result<(), MapError> {
    config.set(0, value, 0)
}

/// Copies of a connection table's chunks, read on demand and written back
/// together ([`Self::write_back`]): how tools and tests read and write pins
/// in bulk. Not for a table that live traffic is updating (writing a chunk
/// back would undo what the datapath wrote to it meanwhile).
pub struct ChunkCopies<'t, T> {
    table: &'t ChunkTable<T>,
    geometry: FlowTableGeometry,
    chunks: BTreeMap<u32, ChunkCopy>,
}

/// One chunk's inner array, a copy of its value, and whether the copy changed.
struct ChunkCopy {
    inner: Array<MapData, FlowChunk>,
    copy: Box<FlowChunk>,
    changed: bool,
}

impl<'t, T: Borrow<MapData>> ChunkCopies<'t, T> {
    /// No copies yet of `table`, whose geometry is `geometry`.
    pub fn new(table: &'t ChunkTable<T>, geometry: FlowTableGeometry) -> Self {
        Self {
            table,
            geometry,
            chunks: BTreeMap::new(),
        }
    }

    /// The copy of chunk `index`, read from the kernel the first time.
    fn chunk(&mut self, index: u32) -> Result<&mut ChunkCopy, MapError> {
        if !self.chunks.contains_key(&index) {
            let inner = self.table.get(&index, 0)?;
            let copy = Box::new(inner.get(&0, 0)?);
            let chunk = ChunkCopy {
                inner,
                copy,
                changed: false,
            };
            self.chunks.insert(index, chunk);
        }
        Ok(self.chunks.get_mut(&index).expect("just inserted"))
    }

    /// A copy of bucket `index`.
    pub fn bucket(&mut self, index: u32) -> Result<FlowBucket, MapError> {
        let (chunk, line) = bucket_position(index);
        let skew = self.geometry.skew;
        Ok(self.chunk(chunk)?.copy.bucket(skew, line))
    }

    /// Overwrites bucket `index` in the copy (written by [`Self::write_back`]).
    pub fn set_bucket(&mut self, index: u32, bucket: &FlowBucket) -> Result<(), MapError> {
        let (chunk, line) = bucket_position(index);
        let skew = self.geometry.skew;
        let c = self.chunk(chunk)?;
        c.copy.set_bucket(skew, line, bucket);
        c.changed = true;
        Ok(())
    }

    /// Flow `key`'s two bucket indices (secret `secret`) and their contents.
    fn pair(
        &mut self,
        secret: &FlowHashKey,
        key: &FlowKey,
    ) -> Result<([u32; 2], [FlowBucket; 2]), MapError> {
        let idx = bucket_pair(flow_place(key, secret).hash, self.geometry.buckets);
        Ok((idx, [self.bucket(idx[0])?, self.bucket(idx[1])?]))
    }

    /// The pin of flow `key` placed with `secret`, if any.
    pub fn get(
        &mut self,
        secret: &FlowHashKey,
        key: &FlowKey,
    ) -> Result<Option<FlowEntry>, MapError> {
        let (_, [a, b]) = self.pair(secret, key)?;
        let fingerprint = flow_place(key, secret).fingerprint;
        Ok(find_pin([&a, &b], fingerprint).map(|(_, _, pin)| pin))
    }

    /// Pins flow `key` to `entry` (placed with `secret`), choosing the slot as
    /// the datapath does, seen at time 0 (the oldest there is).
    pub fn put(
        &mut self,
        secret: &FlowHashKey,
        key: &FlowKey,
        entry: FlowEntry,
    ) -> Result<(), MapError> {
        let (idx, mut pair) = self.pair(secret, key)?;
        let fingerprint = flow_place(key, secret).fingerprint;
        let (i, way) = slot_for_pin([&pair[0], &pair[1]], fingerprint, 0);
        pair[i].slots[way] = FlowSlot::new(fingerprint, entry, 0);
        self.set_bucket(idx[i], &pair[i])
    }

    /// Writes every changed chunk back to the kernel.
    pub fn write_back(self) -> Result<(), MapError> {
        for (_, mut c) in self.chunks {
            if c.changed {
                c.inner.set(0, *c.copy, 0)?;
            }
        }
        Ok(())
    }
}

/// The pin of flow `key` in the connection table `table` (of `geometry`)
/// placed with `secret`, if any.
pub fn conntrack_get<T: Borrow<MapData>>(
    table: &ChunkTable<T>,
    geometry: FlowTableGeometry,
    secret: &FlowHashKey,
    key: &FlowKey,
) -> Result<Option<FlowEntry>, MapError> {
    ChunkCopies::new(table, geometry).get(secret, key)
}

/// Pins flow `key` to `entry` in the connection table `table` (of
/// `geometry`) placed with `secret` (see [`ChunkCopies`]: not while traffic
/// updates the table).
pub fn conntrack_put<T: Borrow<MapData>>(
    table: &ChunkTable<T>,
    geometry: FlowTableGeometry,
    secret: &FlowHashKey,
    key: &FlowKey,
    entry: FlowEntry,
) -> Result<(), MapError> {
    let mut copies = ChunkCopies::new(table, geometry);
    copies.put(secret, key, entry)?;
    copies.write_back()
}
