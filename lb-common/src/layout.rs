//! Compile-time checks of every map key and value layout: the datapath (BPF
//! target) and the agent (host) compile the same `#[repr(C)]` structs, and
//! the kernel copies them byte for byte. A field moved or resized, or
//! implicit padding (which the kernel would hash and compare as garbage),
//! fails the build on both sides instead of corrupting a lookup.

use core::mem::{align_of, offset_of, size_of};

use crate::counters::{BackendStats, ServiceStats};
use crate::flow::FlowKey;
use crate::flow_table::{FlowBucket, FlowHashKey, FlowSlot};
use crate::maps::{
    BackendEntry, DecapKey, FlowEntry, FlowInsertWindow, FlowTableConfig, ServiceEntry, Settings,
    VipKey,
};

/// Asserts `$ty` is `$size` bytes and each `$field` sits at its offset.
macro_rules! layout {
    ($ty:ty, $size:expr, { $($field:ident: $offset:expr),* $(,)? }) => {
        const _: () = assert!(size_of::<$ty>() == $size);
        $(const _: () = assert!(offset_of!($ty, $field) == $offset);)*
    };
}

layout!(VipKey, 20, { addr: 0, port: 16, protocol: 18, family: 19 });
layout!(ServiceEntry, 32, {
    service_id: 0,
    table_index: 4,
    table_size: 8,
    flags: 12,
    previous_table_index: 16,
    previous_table_size: 20,
    previous_until_ns: 24,
});
layout!(BackendEntry, 52, {
    addr: 0,
    generation: 16,
    flags: 20,
    next_hop_ifindex: 24,
    next_hop_mtu: 28,
    next_hop_mac: 32,
    source_mac: 38,
    family: 44,
    pad: 45,
    service_id: 48,
});
layout!(FlowEntry, 8, { backend_id: 0, generation: 4 });
layout!(FlowHashKey, 56, { words: 0, finish: 40 });
layout!(FlowTableConfig, 64, { key: 0, insert_budget: 56, pad: 60 });
layout!(FlowInsertWindow, 16, { window: 0, inserts: 8 });
layout!(Settings, 56, {
    source_v4: 0,
    source_v6: 4,
    flags: 20,
    ifindex: 24,
    mtu: 28,
    gateway_mac: 32,
    interface_mac: 38,
    gue_port: 44,
    pad: 46,
    source_host_mask_v4: 48,
    source_host_mask_v6: 52,
});
layout!(DecapKey, 20, { addr: 0, family: 16, pad: 17 });
layout!(FlowKey, 40, {
    src: 0,
    dst: 16,
    src_port: 32,
    dst_port: 34,
    protocol: 36,
    family: 37,
    pad: 38,
});
layout!(FlowSlot, 16, { tag: 0, generation: 8, seen: 12 });
layout!(FlowBucket, 64, { slots: 0 });
layout!(BackendStats, 48, { packets: 0, bytes: 8, new_flows: 16, hits: 24, redirects: 32, hit_bytes: 40 });
layout!(ServiceStats, 24, { packets: 0, bytes: 8, no_backend: 16 });

// The flow key is read as five u64 words (`FlowKey::words`).
const _: () = assert!(align_of::<FlowKey>() == 8);
// A bucket is one cache line of FLOW_WAYS slots.
const _: () = assert!(size_of::<FlowBucket>() == crate::FLOW_WAYS * size_of::<FlowSlot>());
