//! Maglev tables of a service's members: the slots as backend ids, the slots
//! as addresses (to count moved slots) and the fingerprint.

use std::net::IpAddr;

use super::PlanError;
use crate::health::Candidate;
use crate::maglev::{MaglevTable, NO_BACKEND, WeightedBackend, fingerprint};
use crate::state::AppliedBackend;

/// A table member: (address, weight, backend id).
pub(super) type Member = (IpAddr, u32, u32);

/// A built table and its slots as backend ids; `None` when no member.
pub(super) type Built = Option<(MaglevTable, Vec<u32>)>;

/// The table members of a service: the backends that take new flows
/// ([`Candidate::takes_new_flows`]).
pub(super) fn members(backends: &[AppliedBackend], panic: bool) -> Vec<Member> {
    backends
        .iter()
        .filter(|b| Candidate::of_applied(b).takes_new_flows(panic))
        .map(|b| (b.address, b.weight, b.id))
        .collect()
}

/// Builds a table over `members`; slots hold the members' ids.
pub(super) fn build_table(
    size: u32,
    members: &[Member],
    service: &str,
) -> Result<Built, PlanError> {
    if members.is_empty() {
        return Ok(None);
    }
    let weighted: Vec<WeightedBackend> = members
        .iter()
        .map(|&(address, weight, _)| WeightedBackend { address, weight })
        .collect();
    let table = MaglevTable::build(size, &weighted).map_err(|source| PlanError::Maglev {
        service: service.to_string(),
        source,
    })?;
    let ids = table
        .slots()
        .iter()
        .map(|&i| {
            if i == NO_BACKEND {
                NO_BACKEND
            } else {
                members[i as usize].2
            }
        })
        .collect();
    Ok(Some((table, ids)))
}

/// Slot addresses of a table over `members` (empty when there is no table).
pub(super) fn slot_addresses(table: &Built, members: &[Member]) -> Vec<Option<IpAddr>> {
    match table {
        None => Vec::new(),
        Some((t, _)) => t
            .slots()
            .iter()
            .map(|&i| (i != NO_BACKEND).then(|| members[i as usize].0))
            .collect(),
    }
}

/// The fingerprint (slot -> address) of a table over `members`; an empty one
/// when there is no table.
pub(super) fn table_fingerprint(table: &Built, members: &[Member]) -> u32 {
    let addresses: Vec<IpAddr> = members.iter().map(|m| m.0).collect();
    match table {
        Some((t, _)) => fingerprint(t.slots(), &addresses),
        None => fingerprint(&[], &[]),
    }
}

/// Slots whose backend differs between two tables (by address); every slot
/// of the larger when the sizes differ.
pub(super) fn moved_slots(old: &[Option<IpAddr>], new: &[Option<IpAddr>]) -> u32 {
    if old.len() == new.len() {
        old.iter().zip(new).filter(|(a, b)| a != b).count() as u32
    } else {
        old.len().max(new.len()) as u32
    }
}
