//! Types shared by the lb XDP datapath (`lb-ebpf`) and the agent (`lb-userspace`).
//!
//! Everything here is `no_std`, `#[repr(C)]` and free of padding surprises: these
//! structs are the byte layout of the BPF maps, so both sides must agree on them
//! exactly. Multi-byte address and port fields hold **network byte order** bytes
//! as they appear on the wire; counters and ids are host order.
#![no_std]

#[cfg(feature = "user")]
extern crate std;

pub mod counters;
pub mod flow;
pub mod flow_table;
pub mod gue;
pub mod keys;
mod layout;
pub mod maps;
pub mod net;
pub mod vip_filter;

pub use counters::{BackendStats, GlobalCounter, PER_BACKEND_GLOBALS, ServiceStats};
pub use flow::{FlowKey, flow_hash, flow_hash64, maglev_hash};
pub use flow_table::{
    FLOW_WAYS, FlowBucket, FlowHashKey, FlowPlace, FlowSlot, bucket_pair, find_pin, flow_buckets,
    flow_place, seen_is_stale, slot_for_pin, slot_tag,
};
#[cfg(feature = "user")]
pub use keys::vip_filter_words;
pub use keys::{address_words, words_address};
pub use maps::*;
pub use net::MacAddr;
pub use vip_filter::{
    VIP_FILTER_BITS, VIP_FILTER_WORDS, service_filter_bit, vip_filter_bit, vip_filter_slot,
};
