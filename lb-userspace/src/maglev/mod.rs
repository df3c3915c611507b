//! Weighted Maglev consistent hashing (Eisenbud et al., NSDI 2016), pure Rust.
//!
//! Every backend gets a permutation of the table's slots from two fixed-seed
//! hashes of its address (`offset = h1 % M`, `skip = h2 % (M - 1) + 1`);
//! backends then take turns, in address order, claiming their next free
//! preferred slot. Weights are proportional: each round a backend earns
//! `weight` credit and claims one slot per `max weight` of credit, so weight 2
//! claims twice as often as weight 1 and weight 0 never does.

mod fingerprint;
mod hash;
mod populate;
mod prime;
#[cfg(test)]
mod tests;

use std::net::IpAddr;

pub use fingerprint::{fingerprint, fingerprint_hex};
pub use prime::{is_prime, needs_larger_table};

/// Slot value of a table with no backend taking new flows.
pub const NO_BACKEND: u32 = u32::MAX;

/// The default table size (prime; good for up to ~650 backends at 1% share
/// accuracy).
pub const DEFAULT_TABLE_SIZE: u32 = 65537;

/// A backend as Maglev sees it: a stable identity and a weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightedBackend {
    /// Stable identity (hashed with fixed seeds, so every node agrees).
    pub address: IpAddr,
    /// Relative weight; 0 = no slots.
    pub weight: u32,
}

/// Why a table could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MaglevError {
    /// `M` must be prime.
    #[error("maglev table size {0} is not prime")]
    NotPrime(u32),
    /// The same identity appears twice.
    #[error("backend {0} appears twice")]
    DuplicateBackend(IpAddr),
}

/// A populated Maglev lookup table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaglevTable {
    /// `slots[i]` is an index into the input backend slice, or [`NO_BACKEND`]
    /// when no backend has a non-zero weight.
    slots: Vec<u32>,
}

impl MaglevTable {
    /// Builds the table of size `size` (prime) for `backends` (any order: the
    /// result maps each slot to the same *address* for any permutation).
    ///
    /// # Panics
    /// When `backends` has `u32::MAX` or more entries (indices would collide
    /// with [`NO_BACKEND`]).
    pub fn build(size: u32, backends: &[WeightedBackend]) -> Result<Self, MaglevError> {
        if !is_prime(size) {
            return Err(MaglevError::NotPrime(size));
        }
        assert!(
            backends.len() < NO_BACKEND as usize,
            "too many maglev backends: {}",
            backends.len()
        );
        // Input indices in address order: population never depends on the
        // caller's order, only on the set of (address, weight).
        let mut order: Vec<u32> = (0..backends.len() as u32).collect();
        order.sort_unstable_by_key(|&i| backends[i as usize].address);
        if let Some(pair) = order
            .windows(2)
            .find(|pair| backends[pair[0] as usize].address == backends[pair[1] as usize].address)
        {
            return Err(MaglevError::DuplicateBackend(
                backends[pair[0] as usize].address,
            ));
        }
        let slots = populate::populate(size, backends, &order);
        Ok(Self { slots })
    }

    /// The slots: indices into the slice given to [`MaglevTable::build`].
    pub fn slots(&self) -> &[u32] {
        &self.slots
    }

    /// Table size `M`.
    pub fn size(&self) -> u32 {
        self.slots.len() as u32
    }

    /// The table's [`fingerprint`] (slot -> address) for the backends it was
    /// built from.
    pub fn fingerprint(&self, backends: &[WeightedBackend]) -> u32 {
        let addresses: Vec<IpAddr> = backends.iter().map(|b| b.address).collect();
        fingerprint(&self.slots, &addresses)
    }

    /// How many slots each of the `n_backends` input backends owns
    /// (`counts[i]` for input index `i`; [`NO_BACKEND`] slots are not counted).
    pub fn slot_counts(&self, n_backends: usize) -> Vec<u32> {
        let mut counts = vec![0u32; n_backends];
        for &slot in &self.slots {
            if let Some(count) = counts.get_mut(slot as usize) {
                *count += 1;
            }
        }
        counts
    }
}
