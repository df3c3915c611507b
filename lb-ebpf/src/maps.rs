//! The datapath's BPF maps. Names, key and value types come from `lb-common`
//! (the agent's side of the same contract).

use aya_ebpf::{
    btf_maps::{Array, ArrayOfMaps, HashMap, PerCpuArray},
    macros::btf_map,
};
use lb_common::{
    BPF_F_MMAPABLE, BackendEntry, BackendStats, DECAP_COUNTER_COUNT, DEFAULT_FLOW_BUCKETS,
    DecapKey, FlowBucket, FlowHashKey, FlowInsertWindow, FlowTableConfig, MAGLEV_INNER_FLAGS,
    MAX_BACKENDS, MAX_DECAP_ADDRS, MAX_DECAP_GUE_PORTS, MAX_MAGLEV_TABLES, MAX_SERVICES,
    MAX_VIP_ENTRIES, ServiceEntry, ServiceStats, Settings, VIP_FILTER_WORDS, VipFilterBits, VipKey,
    counters::GLOBAL_COUNTER_COUNT,
};

/// VIP address filter bitmap (`lb_common::vip_filter`): checked before any
/// hash lookup, so traffic that is not for a VIP costs one read.
///
/// A global in a section of its own (`lb_common::MAP_VIP_FILTER`), not a map
/// definition: the loader makes it a one-entry array, and the program reads
/// a word at a fixed address plus the word's offset. A map lookup would
/// store the index on the stack for the verifier's inlined lookup to load it
/// back, a store-to-load round trip and a bounds check on the way of every
/// packet. The agent writes the words (the whole value at once, see
/// `lb-userspace`'s `kernel::vip_filter`); reads are volatile.
#[unsafe(link_section = ".bss.vip_filter")]
#[unsafe(no_mangle)]
pub static mut VIP_FILTER: VipFilterBits = [0; VIP_FILTER_WORDS as usize];

/// (VIP, port, protocol) -> service, and one address marker per VIP address.
#[btf_map]
pub static VIPS: HashMap<VipKey, ServiceEntry, { MAX_VIP_ENTRIES as usize }> = HashMap::new();

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

/// Connection table: a set-associative flow table (`lb_common::flow_table`),
/// bucket index -> [`FlowBucket`]. The agent sets the real size at load time,
/// with [`FLOW_BUCKET_MASK`] to match. Mmapable so that buckets are
/// page-aligned: every bucket is one cache line.
#[btf_map]
pub static CONNTRACK: Array<
    FlowBucket,
    { DEFAULT_FLOW_BUCKETS as usize },
    { BPF_F_MMAPABLE as usize },
> = Array::new();

/// Number of [`CONNTRACK`] buckets minus one (a power of two minus one), set
/// by the loader.
#[unsafe(no_mangle)]
pub static FLOW_BUCKET_MASK: u32 = DEFAULT_FLOW_BUCKETS - 1;

/// The connection table's hash secret and insert budget (one entry, written
/// by the agent; pinned with [`CONNTRACK`]): the record a restarted agent
/// adopts. The program reads [`LIVE_FLOW_TABLE_CONFIG`].
#[btf_map]
pub static FLOW_TABLE_CONFIG: Array<FlowTableConfig, 1> = Array::new();

/// The program's copy of [`FLOW_TABLE_CONFIG`], a global of its own section
/// (`lb_common::LIVE_FLOW_TABLE_CONFIG`), read at a fixed address: the
/// secret is needed before every bucket read, and a map lookup would put a
/// stack round trip of its index first (see [`VIP_FILTER`]). The agent
/// writes it with the record, and before the program is attached.
#[unsafe(link_section = ".bss.flow_cfg")]
#[unsafe(no_mangle)]
pub static mut LIVE_FLOW_TABLE_CONFIG: FlowTableConfig = FlowTableConfig {
    key: FlowHashKey {
        words: [0; 10],
        finish: [0; 2],
    },
    insert_budget: 0,
    pad: 0,
};

/// Per-CPU connection-table inserts in the current second (the insert budget).
#[btf_map]
pub static FLOW_INSERTS: PerCpuArray<FlowInsertWindow, 1> = PerCpuArray::new();

/// Interface settings (one entry): the record a restarted agent adopts. The
/// program reads [`LIVE_SETTINGS`].
#[btf_map]
pub static SETTINGS: Array<Settings, 1> = Array::new();

/// The program's copy of [`SETTINGS`], a global of its own section
/// (`lb_common::LIVE_SETTINGS`), read at a fixed address by every forwarded
/// packet; kept like [`LIVE_FLOW_TABLE_CONFIG`].
#[unsafe(link_section = ".bss.settings")]
#[unsafe(no_mangle)]
pub static mut LIVE_SETTINGS: Settings = Settings {
    source_v4: 0,
    source_v6: [0; 4],
    flags: 0,
    ifindex: 0,
    mtu: 0,
    gateway_mac: [0; 6],
    interface_mac: [0; 6],
    gue_port: 0,
    pad: 0,
    source_host_mask_v4: 0,
    source_host_mask_v6: 0,
};

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

/// UDP destination ports (network order, 0 = unused) on which `lb_decap`
/// accepts GUE; set by the loader (`lb decap --gue-port`), default
/// [`lb_common::gue::DEFAULT_GUE_PORT`].
#[unsafe(no_mangle)]
pub static DECAP_GUE_PORTS: [u16; MAX_DECAP_GUE_PORTS] =
    [lb_common::gue::DEFAULT_GUE_PORT.to_be(), 0, 0, 0];
