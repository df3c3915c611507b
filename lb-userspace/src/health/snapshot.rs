//! Health as a value: every probed target's state at one instant. The agent's
//! core plans with a snapshot (never with the live, locked monitor), so one
//! plan sees one consistent view: a backend's state, its service's panic mode
//! and its table slots all come from the same answer.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::state::HealthState;
use super::target::TargetKey;

/// The targets that are down at one instant; every other backend (probed and
/// up, or not probed) counts as up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthSnapshot {
    down: BTreeSet<TargetKey>,
}

impl HealthSnapshot {
    /// Every backend up (nothing probed yet).
    pub fn all_up() -> Self {
        Self::default()
    }

    /// A snapshot of `(target, state)` pairs.
    pub fn from_states(states: impl IntoIterator<Item = (TargetKey, HealthState)>) -> Self {
        let mut snapshot = Self::default();
        for (key, state) in states {
            snapshot.set(key, state);
        }
        snapshot
    }

    /// Records the state of one target.
    pub fn set(&mut self, key: TargetKey, state: HealthState) {
        match state {
            HealthState::Down => self.down.insert(key),
            HealthState::Up => self.down.remove(&key),
        };
    }

    /// True unless the backend `address` of `service` is probed and down.
    pub fn is_up(&self, service: &str, address: IpAddr) -> bool {
        // Few targets are down at once: a scan beats building a key.
        !self
            .down
            .iter()
            .any(|k| k.address == address && k.service == service)
    }

    /// The targets that are down, sorted by service then address.
    pub fn down(&self) -> impl Iterator<Item = &TargetKey> {
        self.down.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(service: &str, last: u8) -> TargetKey {
        TargetKey {
            service: service.into(),
            address: IpAddr::from([198, 18, 3, last]),
        }
    }

    #[test]
    fn only_targets_recorded_down_are_down() {
        let mut s = HealthSnapshot::from_states([
            (key("web", 1), HealthState::Down),
            (key("web", 2), HealthState::Up),
        ]);
        assert!(!s.is_up("web", key("web", 1).address));
        assert!(s.is_up("web", key("web", 2).address));
        assert!(s.is_up("dns", key("web", 1).address), "per service");
        assert!(s.is_up("web", key("web", 9).address), "not probed is up");
        s.set(key("web", 1), HealthState::Up);
        assert_eq!(s, HealthSnapshot::all_up());
    }
}
