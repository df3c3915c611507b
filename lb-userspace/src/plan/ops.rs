//! The planner's output: one operation on the datapath's maps. The aya layer
//! applies them in order and journals each for rollback; new kinds of entry
//! are new variants (each names its map in [`MapOp::describe`]).

use std::net::IpAddr;

use lb_common::{ServiceEntry, Settings, VipKey};

use super::next_hops::NextHop;

/// One operation on the datapath's maps, in the order the plan lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapOp {
    /// Write SETTINGS (index 0): encapsulation sources, interface, gateway.
    PutSettings {
        /// The whole value.
        settings: Settings,
    },
    /// Set the connection table's insert budget (per second per CPU, 0 = no
    /// limit) in FLOW_TABLE_CONFIG, keeping its secret.
    SetInsertBudget {
        /// New budget.
        budget: u32,
    },
    /// Zero a backend id's per-CPU counters (before the id is given out).
    ZeroBackendStats {
        /// Backend id.
        id: u32,
    },
    /// Write a backend entry.
    PutBackend {
        /// Backend id.
        id: u32,
        /// Backend address.
        address: IpAddr,
        /// Generation written to the entry.
        generation: u32,
        /// Whether `BACKEND_LIVE` is set (false: health down, flows re-picked).
        live: bool,
        /// The service the id belongs to (where hits count their packets).
        service_id: u32,
        /// The next hop toward the address, when known (else the datapath
        /// asks its FIB).
        next_hop: Option<NextHop>,
        /// Whether `BACKEND_ENCAP_GUE` is set (the service uses GUE).
        gue: bool,
    },
    /// Zero a service id's per-CPU counters (before the id is given out).
    ZeroServiceStats {
        /// Service id.
        id: u32,
    },
    /// Install a fresh inner Maglev array at `index` of MAGLEV_TABLES.
    PutTable {
        /// Outer index (`2 * service_id + parity`).
        index: u32,
        /// One backend id per slot.
        slots: Vec<u32>,
    },
    /// Insert or replace a VIPS entry (the atomic flip).
    PutService {
        /// VIPS key.
        key: VipKey,
        /// New value.
        entry: ServiceEntry,
    },
    /// Insert or replace a VIPS entry that names the previous table (second
    /// chance); the kernel layer sets `previous_until_ns` to now + `grace_s`
    /// (`CLOCK_MONOTONIC`) as it writes.
    PutServiceWithPrevious {
        /// VIPS key.
        key: VipKey,
        /// New value (its `previous_until_ns` is replaced).
        entry: ServiceEntry,
        /// Seconds the previous table stays in use.
        grace_s: u32,
    },
    /// Insert the address marker of a VIP (`VIP_ADDRESS_MARKER_PROTOCOL`).
    PutVipMarker {
        /// The VIP.
        vip: IpAddr,
    },
    /// Delete a VIPS entry.
    DeleteService {
        /// VIPS key.
        key: VipKey,
    },
    /// Delete the address marker of a VIP no service uses any more.
    DeleteVipMarker {
        /// The VIP.
        vip: IpAddr,
    },
    /// Delete an inner table no VIPS entry refers to any more.
    DeleteTable {
        /// Outer index.
        index: u32,
    },
    /// Write one word of the VIP address filter bitmap.
    SetVipFilterWord {
        /// Word index.
        word: u32,
        /// The word's bits.
        bits: u64,
    },
    /// Clear `BACKEND_LIVE` of a removed backend: its pinned flows are re-picked.
    RetireBackend {
        /// Backend id.
        id: u32,
        /// Backend address (kept in the entry).
        address: IpAddr,
        /// Its last generation.
        generation: u32,
        /// The next hop known toward the address (kept in the entry).
        next_hop: Option<NextHop>,
    },
}

impl MapOp {
    /// A short description for error messages: `PutService 198.18.100.1:80/6`.
    pub fn describe(&self) -> String {
        let endpoint = |key: &VipKey| {
            format!(
                "{} port {} protocol {}",
                key.address(),
                u16::from_be(key.port),
                key.protocol
            )
        };
        match self {
            MapOp::PutSettings { .. } => "write SETTINGS".to_string(),
            MapOp::SetInsertBudget { budget } => {
                format!("set the connection table's insert budget to {budget}")
            }
            MapOp::ZeroBackendStats { id } => format!("zero counters of backend id {id}"),
            MapOp::PutBackend { id, address, .. } => format!("write backend id {id} ({address})"),
            MapOp::ZeroServiceStats { id } => format!("zero counters of service id {id}"),
            MapOp::PutTable { index, slots } => {
                format!("store Maglev table {index} ({} slots)", slots.len())
            }
            MapOp::PutService { key, .. } => format!("write VIPS entry {}", endpoint(key)),
            MapOp::PutServiceWithPrevious { key, .. } => {
                format!("write VIPS entry {} with its previous table", endpoint(key))
            }
            MapOp::PutVipMarker { vip } => format!("write VIPS address marker of {vip}"),
            MapOp::DeleteService { key } => format!("delete VIPS entry {}", endpoint(key)),
            MapOp::DeleteVipMarker { vip } => format!("delete VIPS address marker of {vip}"),
            MapOp::DeleteTable { index } => format!("delete Maglev table {index}"),
            MapOp::SetVipFilterWord { word, .. } => format!("write VIP filter word {word}"),
            MapOp::RetireBackend { id, address, .. } => {
                format!("retire backend id {id} ({address})")
            }
        }
    }
}
