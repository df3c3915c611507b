//! Service and backend id allocation within one plan: ids in use before the
//! plan are never handed out again by it, fresh ids come first, and a retired
//! backend id is reused (with generation + 1) only when fresh ones run out.

use std::collections::{BTreeMap, BTreeSet};

use lb_common::{MAX_BACKENDS, MAX_SERVICES};

use super::{PlanError, Previous};
use crate::state::RetiredBackend;

/// The ids of one plan.
pub(super) struct Ids {
    taken_services: BTreeSet<u32>,
    next_fresh_service: u32,
    used_backends: BTreeSet<u32>,
    next_fresh_backend: u32,
    /// Retired ids and their last generation (after the plan: with the ids
    /// this plan retires, without the ones it reuses).
    retired: BTreeMap<u32, u32>,
    /// Retired before this plan, available for reuse, highest first.
    reusable: Vec<(u32, u32)>,
    /// Retired by this plan (not reusable within it).
    newly_retired: Vec<(u32, u32)>,
}

impl Ids {
    /// The ids in use (or retired) in `prev`.
    pub(super) fn new(prev: &Previous<'_>) -> Self {
        let retired: BTreeMap<u32, u32> =
            prev.retired.iter().map(|r| (r.id, r.generation)).collect();
        let mut used_backends: BTreeSet<u32> = prev
            .services
            .iter()
            .flat_map(|s| s.backends.iter().map(|b| b.id))
            .collect();
        used_backends.extend(retired.keys().copied());
        let mut reusable: Vec<(u32, u32)> = retired.iter().map(|(&id, &g)| (id, g)).collect();
        reusable.reverse(); // pop() gives the lowest id
        Ids {
            taken_services: prev.services.iter().map(|s| s.service_id).collect(),
            next_fresh_service: 0,
            used_backends,
            next_fresh_backend: 0,
            retired,
            reusable,
            newly_retired: Vec::new(),
        }
    }

    /// A service id no service used before this plan.
    pub(super) fn service(&mut self) -> Result<u32, PlanError> {
        while self.taken_services.contains(&self.next_fresh_service) {
            self.next_fresh_service += 1;
        }
        if self.next_fresh_service >= MAX_SERVICES {
            return Err(PlanError::TooManyServices);
        }
        self.taken_services.insert(self.next_fresh_service);
        Ok(self.next_fresh_service)
    }

    /// A backend id and its generation: a fresh id (generation 1), else the
    /// lowest id retired before this plan (its generation + 1).
    pub(super) fn backend(&mut self) -> Result<(u32, u32), PlanError> {
        while self.used_backends.contains(&self.next_fresh_backend) {
            self.next_fresh_backend += 1;
        }
        if self.next_fresh_backend < MAX_BACKENDS {
            self.used_backends.insert(self.next_fresh_backend);
            return Ok((self.next_fresh_backend, 1));
        }
        let (id, g) = self.reusable.pop().ok_or(PlanError::TooManyBackends)?;
        self.retired.remove(&id);
        Ok((id, g.wrapping_add(1).max(1)))
    }

    /// Records that this plan retires `id` (last used with `generation`).
    pub(super) fn retire(&mut self, id: u32, generation: u32) {
        self.newly_retired.push((id, generation));
    }

    /// The retired ids after the plan, by id.
    pub(super) fn into_retired(mut self) -> Vec<RetiredBackend> {
        for (id, g) in self.newly_retired {
            self.retired.insert(id, g);
        }
        self.retired
            .into_iter()
            .map(|(id, generation)| RetiredBackend { id, generation })
            .collect()
    }
}
