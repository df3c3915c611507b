//! Per-CPU counter updates.

use lb_common::{DecapCounter, GlobalCounter};

use crate::maps::{DECAP_STATS, GLOBAL_STATS};

/// Adds one to a global counter.
#[inline(always)]
pub fn count(c: GlobalCounter) {
    if let Some(p) = GLOBAL_STATS.get_ptr_mut(c as u32) {
        // SAFETY: per-CPU slot of this CPU; XDP runs without preemption.
        unsafe { *p += 1 };
    }
}

/// Adds one to a decapsulator counter.
#[inline(always)]
pub fn count_decap(c: DecapCounter) {
    if let Some(p) = DECAP_STATS.get_ptr_mut(c as u32) {
        // SAFETY: as above.
        unsafe { *p += 1 };
    }
}
