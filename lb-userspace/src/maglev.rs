//! Weighted Maglev consistent hashing (Eisenbud et al., NSDI 2016), pure Rust.

use std::net::IpAddr;

/// Slot value of a table with no backend taking new flows.
pub const NO_BACKEND: u32 = u32::MAX;

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
    pub fn build(size: u32, backends: &[WeightedBackend]) -> Result<Self, MaglevError> {
        let _ = (size, backends);
        todo!("MaglevTable::build")
    }

    /// The slots: indices into the slice given to [`MaglevTable::build`].
    pub fn slots(&self) -> &[u32] {
        &self.slots
    }

    /// Table size `M`.
    pub fn size(&self) -> u32 {
        self.slots.len() as u32
    }
}

/// True when `n` is prime.
pub fn is_prime(n: u32) -> bool {
    let _ = n;
    todo!("is_prime")
}
