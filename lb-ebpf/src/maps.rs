//! The datapath's BPF maps. Names, key and value types come from `lb-common`
//! (the agent's side of the same contract).

use aya_ebpf::{
    btf_maps::{Array, ArrayOfMaps, HashMap, LruHashMap, PerCpuArray},
    macros::btf_map,
};
use lb_common::{
    BackendEntry, BackendStats, DECAP_COUNTER_COUNT, DEFAULT_CONNTRACK_ENTRIES, DecapKey,
    FlowEntry, FlowKey, MAGLEV_INNER_FLAGS, MAX_BACKENDS, MAX_DECAP_ADDRS, MAX_MAGLEV_TABLES,
    MAX_SERVICES, ServiceEntry, ServiceStats, Settings, VIP_FILTER_WORDS, VipKey,
    counters::GLOBAL_COUNTER_COUNT,
};

/// VIP address filter bitmap (`lb_common::vip_filter`): checked before any
/// hash lookup, so traffic that is not for a VIP costs one array read.
#[btf_map]
pub static VIP_FILTER: Array<u64, { VIP_FILTER_WORDS as usize }> = Array::new();

/// (VIP, port, protocol) -> service.
#[btf_map]
pub static VIPS: HashMap<VipKey, ServiceEntry, { MAX_SERVICES as usize }> = HashMap::new();

/// Per-service Maglev tables (double-buffered: two indices per service).
/// Inner arrays carry `BPF_F_INNER_MAP` (so their sizes may differ) and
/// `BPF_F_MMAPABLE` (the agent fills them through mmap).
#[btf_map]
pub static MAGLEV_TABLES: ArrayOfMaps<
    Array<u32, 1, { MAGLEV_INNER_FLAGS as usize }>,
    { MAX_MAGLEV_TABLES as usize },
> = ArrayOfMaps::new();

/// Backend id -> backend.
#[btf_map]
pub static BACKENDS: Array<BackendEntry, { MAX_BACKENDS as usize }> = Array::new();

/// Connection table: flow -> backend. The agent sets the real size at load time.
#[btf_map]
pub static CONNTRACK: LruHashMap<FlowKey, FlowEntry, { DEFAULT_CONNTRACK_ENTRIES as usize }> =
    LruHashMap::new();

/// Interface settings (one entry).
#[btf_map]
pub static SETTINGS: Array<Settings, 1> = Array::new();

/// Per-backend counters.
#[btf_map]
pub static BACKEND_STATS: PerCpuArray<BackendStats, { MAX_BACKENDS as usize }> = PerCpuArray::new();

/// Per-service counters.
#[btf_map]
pub static SERVICE_STATS: PerCpuArray<ServiceStats, { MAX_SERVICES as usize }> = PerCpuArray::new();

/// Global counters, indexed by `GlobalCounter`.
#[btf_map]
pub static GLOBAL_STATS: PerCpuArray<u64, { GLOBAL_COUNTER_COUNT as usize }> = PerCpuArray::new();

/// Addresses of this backend host that the decapsulator accepts as outer destination.
#[btf_map]
pub static DECAP_ADDRS: HashMap<DecapKey, u32, { MAX_DECAP_ADDRS as usize }> = HashMap::new();

/// Decapsulator counters, indexed by `DecapCounter`.
#[btf_map]
pub static DECAP_STATS: PerCpuArray<u64, { DECAP_COUNTER_COUNT as usize }> = PerCpuArray::new();
