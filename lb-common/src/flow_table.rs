//! The connection table's layout: a set-associative flow table of one-cache-
//! line buckets.
//!
//! [`crate::MAP_CONNTRACK`] is an array of [`FlowBucket`]s, a power of two of
//! them. A bucket is 64 bytes (one cache line; the array is mmapable, so
//! buckets are line-aligned) holding [`FLOW_WAYS`] compact 16-byte
//! [`FlowSlot`]s. A slot does not hold the 5-tuple: it holds a 48-bit keyed
//! fingerprint of it, the backend id, the generation and when the flow was
//! last seen. A flow lives in one of the two buckets [`bucket_pair`] of its
//! keyed [`FlowPlace`]; a lookup reads the first bucket (one cache line) and
//! the second only when the first does not hold the flow. An insert
//! overwrites the flow's own slot, else an empty one, else the least recently
//! seen of the eight: LRU replacement within each pair of buckets, as a CPU
//! cache does within a set. `seen` is in jiffies, refreshed by a hit only once
//! it is [`SEEN_REFRESH_JIFFIES`] old ([`seen_is_stale`]): flows seen within
//! that window are equally recent, and a busy flow's line is written about
//! once a second instead of on every tick (a written line is dirty, and
//! writing it back costs the packet rate).
//!
//! Nothing is locked: a slot's tag word is the fingerprint mixed with its
//! backend id and generation ([`slot_tag`]), so a slot torn by two CPUs writing
//! it at once fails the check and reads as empty (the flow re-picks, as after
//! an eviction). The placement and the fingerprint are keyed by a per-host
//! secret ([`FlowHashKey`], see [`hash`]): without it nobody can aim flows at
//! another flow's buckets. Maglev's pick does not use the secret.

pub mod hash;

pub use hash::{FlowHashKey, FlowPlace, flow_place};

use crate::{BackendId, FlowEntry};

/// Slots per bucket.
pub const FLOW_WAYS: usize = 4;

/// Bits of a slot's fingerprint (and of its check).
pub const FINGERPRINT_BITS: u32 = 48;
/// Mask of [`FINGERPRINT_BITS`].
pub const FINGERPRINT_MASK: u64 = (1 << FINGERPRINT_BITS) - 1;

// A slot stores the backend id in the 16 bits above the fingerprint.
const _: () = assert!(crate::MAX_BACKENDS <= 1 << (64 - FINGERPRINT_BITS));

/// Bits of a slot's `pin` word that hold the backend generation; the bits
/// above hold the second-chance hint (0 = none, else the hinted backend id
/// + 1). Generations are compared modulo 2^15.
pub const PIN_GENERATION_BITS: u32 = 15;
/// Mask of [`PIN_GENERATION_BITS`].
pub const PIN_GENERATION_MASK: u32 = (1 << PIN_GENERATION_BITS) - 1;

// The hint field (17 bits) holds every backend id + 1.
const _: () = assert!((crate::MAX_BACKENDS as u64) < 1 << (32 - PIN_GENERATION_BITS));

/// The `pin` word of a slot: the generation (low [`PIN_GENERATION_BITS`]) and
/// the second-chance hint (`hint` id + 1 above, 0 for none).
#[inline(always)]
pub const fn pin_word(generation: u32, hint: Option<BackendId>) -> u32 {
    let hint = match hint {
        Some(id) => id + 1,
        None => 0,
    };
    (generation & PIN_GENERATION_MASK) | (hint << PIN_GENERATION_BITS)
}

/// The hinted backend of a slot's `pin` word.
#[inline(always)]
pub const fn pin_hint(word: u32) -> Option<BackendId> {
    match word >> PIN_GENERATION_BITS {
        0 => None,
        h => Some(h - 1),
    }
}

/// One connection-table slot: a flow's fingerprint and the backend it is
/// pinned to. 16 bytes; an all-zero slot is empty.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowSlot {
    /// [`slot_tag`]: the checked fingerprint (low 48 bits, never 0 in a used
    /// slot) and the backend id (high 16 bits).
    pub tag: u64,
    /// [`pin_word`]: the backend's generation when the flow was pinned
    /// (modulo 2^15) and the second-chance hint, if any.
    pub generation: u32,
    /// When the flow was last seen, in jiffies (low 32 bits).
    pub seen: u32,
}

/// How old (in jiffies) a slot's `seen` must be before a hit writes it again:
/// 256 jiffies, one second at the usual HZ of 250 (0.256 s at HZ 1000, 2.56 s
/// at HZ 100). Replacement compares `seen` between a flow's eight candidates,
/// so this is its resolution: flows seen within the window are equally
/// recent. Between refreshes a hit only reads the bucket's line.
pub const SEEN_REFRESH_JIFFIES: u32 = 256;

/// Whether a hit at `now` (jiffies, low 32 bits) writes the slot's `seen`:
/// when it is at least [`SEEN_REFRESH_JIFFIES`] old (wrapping arithmetic, so a
/// `seen` from the other side of a wrap or a racing CPU's slightly later `now`
/// reads as old and is rewritten, which is harmless).
#[inline(always)]
pub const fn seen_is_stale(seen: u32, now: u32) -> bool {
    now.wrapping_sub(seen) >= SEEN_REFRESH_JIFFIES
}

/// One bucket of [`FLOW_WAYS`] slots: 64 bytes, one cache line.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowBucket {
    /// The slots.
    pub slots: [FlowSlot; FLOW_WAYS],
}

/// Most buckets a connection table may have (2^26: 268M flows, 4 GiB).
pub const MAX_FLOW_BUCKETS: u32 = 1 << 26;

/// Buckets of a connection table for `entries` flows: `entries / FLOW_WAYS`
/// rounded up to a power of two (at least 1, at most [`MAX_FLOW_BUCKETS`]).
pub const fn flow_buckets(entries: u32) -> u32 {
    let b = entries.div_ceil(FLOW_WAYS as u32);
    if b <= 1 {
        1
    } else if b >= MAX_FLOW_BUCKETS {
        MAX_FLOW_BUCKETS
    } else {
        b.next_power_of_two()
    }
}

/// The two buckets a flow of placement hash `hash` may live in, in a table of
/// `mask + 1` buckets (from the low and the high half of the hash; they may
/// coincide). Two choices keep buckets evenly filled: with one, buckets that
/// draw more than four active flows thrash long before the table is full.
#[inline(always)]
pub fn bucket_pair(hash: u64, mask: u32) -> [u32; 2] {
    [(hash as u32) & mask, ((hash >> 32) as u32) & mask]
}

/// The tag word of a slot pinning a flow of fingerprint `fingerprint` to
/// (`backend_id`, `generation`): the fingerprint mixed with the pin (so that a
/// torn slot fails the check), never 0 in its low 48 bits, and the backend id
/// in its high 16 bits.
#[inline(always)]
pub fn slot_tag(fingerprint: u64, backend_id: BackendId, generation: u32) -> u64 {
    const K: u64 = 0xc4ce_b9fe_1a85_ec53;
    let pin = (u64::from(backend_id) << 32) | u64::from(generation);
    let mix = pin.wrapping_mul(K) >> (64 - FINGERPRINT_BITS);
    (((fingerprint ^ mix) & FINGERPRINT_MASK) | 1) | (u64::from(backend_id) << FINGERPRINT_BITS)
}

impl FlowSlot {
    /// A slot pinning the flow of fingerprint `fingerprint` to `entry`, seen at `now`.
    #[inline(always)]
    pub fn new(fingerprint: u64, entry: FlowEntry, now: u32) -> Self {
        Self::hinted(fingerprint, entry, None, now)
    }

    /// A slot pinning the flow of fingerprint `fingerprint` to `entry` with
    /// the second-chance hint `hint` (the backend that owned the flow under
    /// the previous Maglev table), seen at `now`. The hint is covered by the
    /// tag check like the pin.
    #[inline(always)]
    pub fn hinted(fingerprint: u64, entry: FlowEntry, hint: Option<BackendId>, now: u32) -> Self {
        let word = pin_word(entry.generation, hint);
        Self {
            tag: slot_tag(fingerprint, entry.backend_id, word),
            generation: word,
            seen: now,
        }
    }

    /// The slot's pin (generation modulo 2^15) when it holds the flow of
    /// fingerprint `fingerprint` and is intact.
    #[inline(always)]
    pub fn pin_of(&self, fingerprint: u64) -> Option<FlowEntry> {
        self.hinted_pin_of(fingerprint).map(|(pin, _)| pin)
    }

    /// The slot's pin and second-chance hint when it holds the flow of
    /// fingerprint `fingerprint` and is intact.
    #[inline(always)]
    pub fn hinted_pin_of(&self, fingerprint: u64) -> Option<(FlowEntry, Option<BackendId>)> {
        let (tag, word) = (self.tag, self.generation);
        let backend_id = (tag >> FINGERPRINT_BITS) as BackendId;
        if tag != slot_tag(fingerprint, backend_id, word) {
            return None;
        }
        let pin = FlowEntry {
            backend_id,
            generation: word & PIN_GENERATION_MASK,
        };
        Some((pin, pin_hint(word)))
    }
}

impl FlowBucket {
    /// The way holding the flow of fingerprint `fingerprint` and its pin.
    #[inline(always)]
    pub fn find(&self, fingerprint: u64) -> Option<(usize, FlowEntry)> {
        self.find_hinted(fingerprint)
            .map(|(way, pin, _)| (way, pin))
    }

    /// The way holding the flow of fingerprint `fingerprint`, its pin and its
    /// second-chance hint.
    #[inline(always)]
    pub fn find_hinted(&self, fingerprint: u64) -> Option<(usize, FlowEntry, Option<BackendId>)> {
        for way in 0..FLOW_WAYS {
            if let Some((pin, hint)) = self.slots[way].hinted_pin_of(fingerprint) {
                return Some((way, pin, hint));
            }
        }
        None
    }
}

/// Where the flow of fingerprint `fingerprint` is pinned among its two
/// buckets ([`bucket_pair`]): (bucket 0 or 1, way, pin).
#[inline(always)]
pub fn find_pin(pair: [&FlowBucket; 2], fingerprint: u64) -> Option<(usize, usize, FlowEntry)> {
    if let Some((way, pin)) = pair[0].find(fingerprint) {
        return Some((0, way, pin));
    }
    pair[1].find(fingerprint).map(|(way, pin)| (1, way, pin))
}

/// The slot (bucket 0 or 1 of the pair, way) a new pin of the flow of
/// fingerprint `fingerprint` goes to at time `now`: the flow's own slot in
/// either bucket, else the first empty one (bucket 0 first), else the least
/// recently seen of the eight.
#[inline(always)]
pub fn slot_for_pin(pair: [&FlowBucket; 2], fingerprint: u64, now: u32) -> (usize, usize) {
    let mut victim = (0, 0);
    let mut oldest = 0;
    for (i, bucket) in pair.iter().enumerate() {
        for way in 0..FLOW_WAYS {
            let s = &bucket.slots[way];
            if s.pin_of(fingerprint).is_some() {
                return (i, way);
            }
            let age = if s.tag == 0 {
                u32::MAX
            } else {
                now.wrapping_sub(s.seen)
            };
            if (i == 0 && way == 0) || age > oldest {
                oldest = age;
                victim = (i, way);
            }
        }
    }
    victim
}

#[cfg(test)]
mod tests;
#[cfg(feature = "user")]
pub mod user;
