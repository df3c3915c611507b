//! Names, sizes and value types of the datapath's BPF maps.
//!
//! Map layout (all ids are host-order `u32`):
//!
//! | map | kind | key -> value |
//! |---|---|---|
//! | [`MAP_VIPS`] | hash | [`VipKey`] -> [`ServiceEntry`] |
//! | [`MAP_MAGLEV_TABLES`] | array of arrays | table index -> inner `Array<u32>` of [`BackendId`]s, `table_size` long |
//! | [`MAP_BACKENDS`] | array | [`BackendId`] -> [`BackendEntry`] |
//! | [`MAP_CONNTRACK`] | array (mmapable) | bucket index -> [`crate::FlowBucket`] ([`crate::flow_table`]) |
//! | [`MAP_SETTINGS`] | array (1) | 0 -> [`Settings`] (the pinned record; the program reads [`LIVE_SETTINGS`]) |
//! | [`MAP_BACKEND_STATS`] | per-CPU array | [`BackendId`] -> [`crate::BackendStats`] |
//! | [`MAP_SERVICE_STATS`] | per-CPU array | service id -> [`crate::ServiceStats`] |
//! | [`MAP_GLOBAL_STATS`] | per-CPU array | [`crate::GlobalCounter`] -> `u64` |
//! | [`MAP_DECAP_ADDRS`] | hash | [`DecapKey`] -> `u32` (unused value) |
//! | [`MAP_DECAP_STATS`] | per-CPU array | [`DecapCounter`] -> `u64` |
//! | [`MAP_VIP_FILTER`] | array (1; global data, not pinned) | 0 -> [`VipFilterBits`]: the `u64` words of [`crate::vip_filter_bit`] and [`crate::service_filter_bit`] |
//! | [`MAP_FLOW_TABLE_CONFIG`] | array (1) | 0 -> [`FlowTableConfig`] (hash secret, insert budget; the pinned record, the program reads [`LIVE_FLOW_TABLE_CONFIG`]) |
//! | [`MAP_FLOW_INSERTS`] | per-CPU array (1) | 0 -> [`FlowInsertWindow`] |
//!
//! Atomic table swap: a service's Maglev table is never written in place. The
//! agent fills a fresh inner array, stores it at the service's *spare* table
//! index (`2 * service_id + (1 - current parity)`), then replaces the service's
//! [`ServiceEntry`] in [`MAP_VIPS`] (a hash-map update is an atomic pointer swap
//! for readers), flipping `table_index` and `table_size` together. For
//! second chance (GUE services) the entry then also names the old table as
//! the previous one, with a deadline; before the next refill of the spare
//! the agent rewrites the entry without it (see [`ServiceEntry`]).

/// A backend's stable id: the index into [`MAP_BACKENDS`] and [`MAP_BACKEND_STATS`].
pub type BackendId = u32;

/// Name of the XDP load-balancer program in the object file.
pub const PROG_LB: &str = "lb_xdp";
/// Name of the backend-side decapsulation XDP program in the object file.
pub const PROG_DECAP: &str = "lb_decap";

/// VIP lookup map name.
pub const MAP_VIPS: &str = "VIPS";
/// Outer array of per-service Maglev tables.
pub const MAP_MAGLEV_TABLES: &str = "MAGLEV_TABLES";
/// Backend array name.
pub const MAP_BACKENDS: &str = "BACKENDS";
/// Connection table (set-associative flow table) name.
pub const MAP_CONNTRACK: &str = "CONNTRACK";
/// Global settings array name.
pub const MAP_SETTINGS: &str = "SETTINGS";
/// Per-backend counters name.
pub const MAP_BACKEND_STATS: &str = "BACKEND_STATS";
/// Per-service counters name.
pub const MAP_SERVICE_STATS: &str = "SERVICE_STATS";
/// Global counters name.
pub const MAP_GLOBAL_STATS: &str = "GLOBAL_STATS";
/// Local (outer destination) addresses the decapsulator accepts.
pub const MAP_DECAP_ADDRS: &str = "DECAP_ADDRS";
/// Decapsulator counters name.
pub const MAP_DECAP_STATS: &str = "DECAP_STATS";
/// VIP address filter bitmap (see [`crate::vip_filter`]): the datapath's
/// global `VIP_FILTER` in an ELF section of its own, which the loader makes a
/// one-entry array whose value is the whole bitmap ([`VipFilterBits`]). The
/// program reads its words at a fixed address, with no map lookup. Not
/// pinned: every load of the program gets a fresh one, which the agent fills
/// before the program is attached.
pub const MAP_VIP_FILTER: &str = ".bss.vip_filter";

/// The program's live copy of [`MAP_SETTINGS`]: a global of its own ELF
/// section, which the loader makes a one-entry array, read at a fixed
/// address (no map lookup: see [`MAP_VIP_FILTER`]). Not pinned: the agent
/// writes the pinned record and this copy together, and copies the record
/// into a new program's before attaching it.
pub const LIVE_SETTINGS: &str = ".bss.settings";

/// The program's live copy of [`MAP_FLOW_TABLE_CONFIG`] (the secret is on
/// the way of every connection-table lookup), kept like [`LIVE_SETTINGS`].
pub const LIVE_FLOW_TABLE_CONFIG: &str = ".bss.flow_cfg";

// The program's globals are found by their kernel names too (tools, tests),
// which the kernel cuts at 15 bytes.
const _: () = assert!(MAP_VIP_FILTER.len() <= 15);
const _: () = assert!(LIVE_SETTINGS.len() <= 15);
const _: () = assert!(LIVE_FLOW_TABLE_CONFIG.len() <= 15);

/// Pin name of the VIP filter in releases that pinned it (an array of
/// words); the agent removes such a leftover pin when it adopts the others.
pub const LEGACY_PIN_VIP_FILTER: &str = "VIP_FILTER";

/// The value of [`MAP_VIP_FILTER`]: the whole bitmap.
pub type VipFilterBits = [u64; crate::VIP_FILTER_WORDS as usize];

/// Connection-table secret and insert budget (see [`FlowTableConfig`]).
pub const MAP_FLOW_TABLE_CONFIG: &str = "FLOW_TABLE_CONFIG";
/// Per-CPU count of connection-table inserts in the current second.
pub const MAP_FLOW_INSERTS: &str = "FLOW_INSERTS";

/// Most services (VIP, port, protocol) the datapath holds: service ids index
/// [`MAP_SERVICE_STATS`] and (two per service) [`MAP_MAGLEV_TABLES`].
pub const MAX_SERVICES: u32 = 1024;
/// Capacity of [`MAP_VIPS`]: one entry per service plus one address marker per
/// distinct VIP address ([`VIP_ADDRESS_MARKER_PROTOCOL`]); see [`vip_entries`].
/// The datapath's map definition and `lb check` both use this.
pub const MAX_VIP_ENTRIES: u32 = 1024;

/// [`MAP_VIPS`] entries a config needs: one per service and one address marker
/// per distinct VIP address. It must not exceed [`MAX_VIP_ENTRIES`].
pub const fn vip_entries(services: u32, distinct_vips: u32) -> u32 {
    services.saturating_add(distinct_vips)
}
/// Size of the outer Maglev array: two table slots (double buffer) per service.
pub const MAX_MAGLEV_TABLES: u32 = 2 * MAX_SERVICES;
/// Most backend ids (live, draining and removed-but-referenced together).
pub const MAX_BACKENDS: u32 = 65536;
/// Largest Maglev table size the datapath accepts.
pub const MAX_TABLE_SIZE: u32 = 16_777_213;
/// Default connection-table capacity (flows): 2^19 buckets of 4, 32 MiB.
pub const DEFAULT_CONNTRACK_ENTRIES: u32 = 2_097_152;
/// Most connection-table capacity (flows): [`crate::flow_table::MAX_FLOW_BUCKETS`]
/// buckets of 4 (268,435,456 slots, 4 GiB).
pub const MAX_CONNTRACK_ENTRIES: u32 =
    crate::flow_table::MAX_FLOW_BUCKETS * crate::FLOW_WAYS as u32;
/// Default connection-table buckets.
pub const DEFAULT_FLOW_BUCKETS: u32 = crate::flow_buckets(DEFAULT_CONNTRACK_ENTRIES);
/// The datapath's global holding the number of connection-table buckets
/// minus one; every loader sets it to match the table's size.
pub const GLOBAL_FLOW_BUCKET_MASK: &str = "FLOW_BUCKET_MASK";
/// Most local addresses the decapsulator accepts.
pub const MAX_DECAP_ADDRS: u32 = 64;
/// `BPF_F_INNER_MAP`: inner Maglev arrays may differ in size.
pub const BPF_F_INNER_MAP: u32 = 1 << 12;
/// `BPF_F_MMAPABLE`: an array the agent can fill through `mmap` (one memcpy
/// instead of a per-element update).
pub const BPF_F_MMAPABLE: u32 = 1 << 10;
/// Flags of every inner Maglev table (the kernel requires the template in
/// [`MAP_MAGLEV_TABLES`] and each inner array to carry the same flags).
pub const MAGLEV_INNER_FLAGS: u32 = BPF_F_INNER_MAP | BPF_F_MMAPABLE;

/// Lookup key of [`MAP_VIPS`]: a service is a (VIP, port, protocol).
/// `port == 0` is the wildcard service of the address (every port).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VipKey {
    /// VIP address, network order; IPv4 in word 0, other words zero.
    pub addr: [u32; 4],
    /// Port, network order as read from the header; 0 = every port.
    pub port: u16,
    /// IP protocol number.
    pub protocol: u8,
    /// [`crate::flow::FAMILY_V4`] or [`crate::flow::FAMILY_V6`].
    pub family: u8,
}

/// [`VipKey::protocol`] of a VIP's *address marker*: the agent stores one entry
/// (VIP, port 0, protocol 0, family) per VIP address (any [`ServiceEntry`] value;
/// it is never used to forward). It lets the datapath recognise the address for
/// packets that match no service by port: ICMP echo requests (always answered),
/// non-first fragments and malformed packets (dropped and counted rather than
/// passed). Without a marker the datapath falls back to the TCP/UDP port-0
/// wildcard services of the address.
pub const VIP_ADDRESS_MARKER_PROTOCOL: u8 = 0;

/// Value of [`MAP_VIPS`]: which service this is, which Maglev table is live
/// and, for second chance, which table was live before the last change.
///
/// Second chance (GUE services only): after a table change the agent keeps
/// the previous table (the other buffer of the service's pair) named here
/// until `previous_until_ns` (`CLOCK_MONOTONIC`, the clock of
/// `bpf_ktime_get_ns`). A TCP packet that is not a SYN and misses the
/// connection table, whose flow the previous table gives to another (live)
/// backend of the service than the live table, goes to the live table's pick
/// with the previous pick's address as the GUE hint ([`crate::gue`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceEntry {
    /// Index into [`MAP_SERVICE_STATS`] (stable for the life of the service).
    pub service_id: u32,
    /// Index of the live table in [`MAP_MAGLEV_TABLES`].
    pub table_index: u32,
    /// Number of slots of the live table (the Maglev `M`), or 0 when the service
    /// has no backend that takes new flows (new flows are dropped and counted).
    pub table_size: u32,
    /// `SERVICE_*` flags (none defined yet; zero).
    pub flags: u32,
    /// Index of the previous table in [`MAP_MAGLEV_TABLES`] (second chance).
    pub previous_table_index: u32,
    /// Slots of the previous table; 0 = no previous table.
    pub previous_table_size: u32,
    /// Until when (`CLOCK_MONOTONIC` nanoseconds) the previous table is used.
    pub previous_until_ns: u64,
}

/// [`BackendEntry::flags`]: the id is in use; flows pinned to it keep going to it.
pub const BACKEND_LIVE: u32 = 1;
/// [`BackendEntry::flags`]: `next_hop_*` fields are filled (resolved by the agent).
pub const BACKEND_HAS_NEXT_HOP: u32 = 2;
/// [`BackendEntry::flags`]: the backend's service encapsulates in GUE
/// ([`crate::gue`]) instead of IPv4-in-IPv4 / IPv6-in-IPv6. On the backend
/// entry (not only the service entry) because connection-table hits never
/// read the service entry.
pub const BACKEND_ENCAP_GUE: u32 = 4;

/// Value of [`MAP_BACKENDS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendEntry {
    /// Backend address, network order; IPv4 in word 0.
    pub addr: [u32; 4],
    /// Bumped by the agent every time this id is given to a new backend; a
    /// connection-table entry with another generation is stale and re-picked.
    pub generation: u32,
    /// `BACKEND_*` flags. An entry without [`BACKEND_LIVE`] is removed: flows
    /// pinned to it are re-picked by Maglev.
    pub flags: u32,
    /// Egress interface toward the backend (valid with [`BACKEND_HAS_NEXT_HOP`]).
    pub next_hop_ifindex: u32,
    /// MTU of that egress (0 = use [`Settings::mtu`]).
    pub next_hop_mtu: u32,
    /// Destination MAC of the next hop toward the backend.
    pub next_hop_mac: [u8; 6],
    /// Source MAC (the egress interface's own).
    pub source_mac: [u8; 6],
    /// [`crate::flow::FAMILY_V4`] or [`crate::flow::FAMILY_V6`].
    pub family: u8,
    /// Zero.
    pub pad: [u8; 3],
    /// The service this backend id belongs to (ids are per service): where a
    /// connection-table hit counts its packets without a [`MAP_VIPS`] lookup.
    pub service_id: u32,
}

/// A connection-table pin: the backend a flow is pinned to (held in a
/// [`crate::FlowSlot`] of [`MAP_CONNTRACK`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowEntry {
    /// The backend the flow is pinned to.
    pub backend_id: BackendId,
    /// [`BackendEntry::generation`] when the flow was pinned.
    pub generation: u32,
}

/// Default [`FlowTableConfig::insert_budget`]: new flows recorded per second
/// per CPU (Katran's default cap).
pub const DEFAULT_INSERT_BUDGET: u32 = 125_000;

/// Value of [`MAP_FLOW_TABLE_CONFIG`] (one entry, index 0), written by the
/// agent: the connection table's hash secret and its insert budget. Pinned
/// with the table, so that a restarted agent keeps the secret its flows were
/// placed with.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowTableConfig {
    /// The secret of the table's bucket placement and fingerprints.
    pub key: crate::FlowHashKey,
    /// Most connection-table inserts per second per CPU (0 = no limit). New
    /// flows beyond it are forwarded by Maglev but not recorded, and counted
    /// as [`crate::GlobalCounter::ConntrackInsertSkipped`].
    pub insert_budget: u32,
    /// Zero.
    pub pad: u32,
}

/// Value of [`MAP_FLOW_INSERTS`] (per CPU): inserts in the current window.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowInsertWindow {
    /// The window: the monotonic clock in whole seconds.
    pub window: u64,
    /// Inserts this CPU made in that window.
    pub inserts: u64,
}

/// [`Settings::flags`]: `source_v4` is set (IPv4 VIPs can be encapsulated).
pub const SETTINGS_HAS_SOURCE_V4: u32 = 1;
/// [`Settings::flags`]: `source_v6` is set (IPv6 VIPs can be encapsulated).
pub const SETTINGS_HAS_SOURCE_V6: u32 = 2;
/// [`Settings::flags`]: `gateway_mac` is a usable fallback next hop.
pub const SETTINGS_HAS_GATEWAY: u32 = 4;
/// [`Settings::flags`]: IPv4 outer sources are per flow:
/// `source_v4 | (flow hash & source_host_mask_v4)`.
pub const SETTINGS_SOURCE_PREFIX_V4: u32 = 8;
/// [`Settings::flags`]: IPv6 outer sources are per flow: the last word of
/// `source_v6` ORed with `flow hash & source_host_mask_v6`.
pub const SETTINGS_SOURCE_PREFIX_V6: u32 = 16;

/// Value of [`MAP_SETTINGS`] (one entry, index 0): per-interface settings.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Outer IPv4 source address, network order.
    pub source_v4: u32,
    /// Outer IPv6 source address, network order.
    pub source_v6: [u32; 4],
    /// `SETTINGS_*` flags.
    pub flags: u32,
    /// ifindex of the interface the program is attached to.
    pub ifindex: u32,
    /// MTU of that interface (the limit for XDP_TX'd encapsulated packets).
    pub mtu: u32,
    /// Fallback next-hop MAC when neither the backend entry nor the FIB knows one.
    pub gateway_mac: [u8; 6],
    /// MAC of the interface the program is attached to.
    pub interface_mac: [u8; 6],
    /// UDP destination port of GUE packets, network order (0 = the default,
    /// [`crate::gue::DEFAULT_GUE_PORT`]).
    pub gue_port: u16,
    /// Zero.
    pub pad: u16,
    /// Host bits of the per-flow IPv4 source ([`SETTINGS_SOURCE_PREFIX_V4`]),
    /// host order: `!0 >> prefix length`.
    pub source_host_mask_v4: u32,
    /// Host bits of the last word of the per-flow IPv6 source
    /// ([`SETTINGS_SOURCE_PREFIX_V6`]), host order; at most 32 bits vary.
    pub source_host_mask_v6: u32,
}

/// The outer IPv4 source (network order) of a flow of hash `flow_hash` under
/// prefix `prefix` (network order, host bits zero) with host bits
/// `host_mask` (host order): `prefix | (flow_hash & host_mask)`.
#[inline(always)]
pub const fn per_flow_source_v4(prefix: u32, host_mask: u32, flow_hash: u32) -> u32 {
    prefix | (flow_hash & host_mask).to_be()
}

/// The outer IPv6 source (network-order words) of a flow of hash `flow_hash`
/// under prefix `prefix` with host bits `host_mask` (host order) of the
/// last word.
#[inline(always)]
pub const fn per_flow_source_v6(prefix: &[u32; 4], host_mask: u32, flow_hash: u32) -> [u32; 4] {
    [
        prefix[0],
        prefix[1],
        prefix[2],
        prefix[3] | (flow_hash & host_mask).to_be(),
    ]
}

/// Key of [`MAP_DECAP_ADDRS`]: an address of this backend host.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DecapKey {
    /// Address, network order; IPv4 in word 0.
    pub addr: [u32; 4],
    /// [`crate::flow::FAMILY_V4`] or [`crate::flow::FAMILY_V6`].
    pub family: u8,
    /// Zero.
    pub pad: [u8; 3],
}

/// Indices of [`MAP_DECAP_STATS`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecapCounter {
    /// IPv4-in-IPv4 packets decapsulated.
    DecapV4 = 0,
    /// IPv6-in-IPv6 packets decapsulated.
    DecapV6 = 1,
    /// Encapsulated packets (IPIP, IPv6-in-IPv6, UDP to a GUE port) not
    /// addressed to this host, or too short to strip: passed unchanged.
    Passed = 2,
    /// GUE packets over IPv4 decapsulated and passed up (hinted ones included).
    GueV4 = 3,
    /// GUE packets over IPv6 decapsulated and passed up (hinted ones included).
    GueV6 = 4,
    /// GUE packets to this host that cannot be decapsulated (outer fragment,
    /// version other than 0, control message, flags, Hlen or UDP length beyond
    /// the packet, inner protocol other than IPv4/IPv6 or not matching the
    /// inner header): dropped.
    GueMalformed = 5,
    /// Second chance: hinted TCP non-SYN packets without a local connection,
    /// re-encapsulated (GUE without hint) to the previous owner.
    SecondChanceForwarded = 6,
    /// Hinted packets passed up: a local connection exists (established,
    /// request or TIME_WAIT socket), the packet is a SYN or not TCP, or the
    /// hint names this host.
    HintPassedLocal = 7,
    /// Hinted packets that should have been forwarded but could not be (no
    /// route or neighbour to the previous owner, route MTU too small, hint
    /// family other than the outer family): passed up.
    HintForwardFailed = 8,
}

impl DecapCounter {
    /// Every counter, in index order.
    pub const ALL: &'static [DecapCounter] = &[
        DecapCounter::DecapV4,
        DecapCounter::DecapV6,
        DecapCounter::Passed,
        DecapCounter::GueV4,
        DecapCounter::GueV6,
        DecapCounter::GueMalformed,
        DecapCounter::SecondChanceForwarded,
        DecapCounter::HintPassedLocal,
        DecapCounter::HintForwardFailed,
    ];

    /// The counter's name in `lb decap --stats` (snake case).
    pub const fn name(self) -> &'static str {
        match self {
            DecapCounter::DecapV4 => "decap_v4",
            DecapCounter::DecapV6 => "decap_v6",
            DecapCounter::Passed => "passed",
            DecapCounter::GueV4 => "gue_v4",
            DecapCounter::GueV6 => "gue_v6",
            DecapCounter::GueMalformed => "gue_malformed",
            DecapCounter::SecondChanceForwarded => "second_chance_forwarded",
            DecapCounter::HintPassedLocal => "hint_passed_local",
            DecapCounter::HintForwardFailed => "hint_forward_failed",
        }
    }
}

/// Number of [`DecapCounter`] entries.
pub const DECAP_COUNTER_COUNT: u32 = 9;

/// The decapsulator's global holding the UDP destination ports (network
/// order, 0 = unused slot) it accepts GUE on; `lb decap --gue-port` sets it.
pub const GLOBAL_DECAP_GUE_PORTS: &str = "DECAP_GUE_PORTS";
/// Most GUE ports one `lb_decap` accepts.
pub const MAX_DECAP_GUE_PORTS: usize = 4;
/// [`GLOBAL_DECAP_GUE_PORTS`] of a decapsulator that accepts `ports` (host
/// order; at most [`MAX_DECAP_GUE_PORTS`], extra ones ignored).
pub fn decap_gue_ports(ports: &[u16]) -> [u16; MAX_DECAP_GUE_PORTS] {
    let mut out = [0u16; MAX_DECAP_GUE_PORTS];
    for (slot, port) in out.iter_mut().zip(ports) {
        *slot = port.to_be();
    }
    out
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are #[repr(C)], contain only integers and byte arrays,
    // and have no implicit padding (sizes and offsets checked at compile time in
    // `crate::layout`).
    unsafe impl aya::Pod for super::VipKey {}
    unsafe impl aya::Pod for super::ServiceEntry {}
    unsafe impl aya::Pod for super::BackendEntry {}
    unsafe impl aya::Pod for super::FlowEntry {}
    unsafe impl aya::Pod for crate::FlowSlot {}
    unsafe impl aya::Pod for crate::FlowBucket {}
    unsafe impl aya::Pod for super::FlowTableConfig {}
    unsafe impl aya::Pod for super::FlowInsertWindow {}
    unsafe impl aya::Pod for super::Settings {}
    unsafe impl aya::Pod for super::DecapKey {}
    unsafe impl aya::Pod for crate::FlowKey {}
    unsafe impl aya::Pod for crate::BackendStats {}
    unsafe impl aya::Pod for crate::ServiceStats {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decap_counters_are_listed_in_index_order() {
        assert_eq!(DecapCounter::ALL.len() as u32, DECAP_COUNTER_COUNT);
        for (i, c) in DecapCounter::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
        assert_eq!(
            decap_gue_ports(&[6080, 7000]),
            [6080u16.to_be(), 7000u16.to_be(), 0, 0]
        );
    }
}
