//! Concurrency caps on probes: one global cap, and one per destination host,
//! so hundreds of backends sharing an address cannot start a probe storm
//! against it (nor can the balancer flood its own sockets).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{Semaphore, SemaphorePermit};

/// The semaphores bounding probes in flight.
#[derive(Debug)]
pub struct ProbeLimits {
    global: Semaphore,
    per_host: usize,
    hosts: Mutex<HashMap<IpAddr, Weak<Semaphore>>>,
}

/// Permission to run one probe; dropping it frees the slots.
#[derive(Debug)]
pub struct ProbePermit<'a> {
    _host: tokio::sync::OwnedSemaphorePermit,
    _global: SemaphorePermit<'a>,
}

impl ProbeLimits {
    /// At most `global` probes in flight overall and `per_host` per destination
    /// address (each at least 1).
    pub fn new(global: usize, per_host: usize) -> Self {
        Self {
            global: Semaphore::new(global.max(1)),
            per_host: per_host.max(1),
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// The semaphore of `host`, shared by every target probing it. The
    /// registry holds it weakly: it lives as long as some target holds it.
    pub fn host(&self, host: IpAddr) -> Arc<Semaphore> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sem) = hosts.get(&host).and_then(Weak::upgrade) {
            return sem;
        }
        hosts.retain(|_, sem| sem.strong_count() > 0);
        let sem = Arc::new(Semaphore::new(self.per_host));
        hosts.insert(host, Arc::downgrade(&sem));
        sem
    }

    /// Waits for a slot on `host` (from [`host`](Self::host)), then a global
    /// slot. Host first, so that a crowded host queues on its own semaphore
    /// instead of holding global slots other hosts could use.
    pub async fn acquire(&self, host: &Arc<Semaphore>) -> ProbePermit<'_> {
        let host = Arc::clone(host)
            .acquire_owned()
            .await
            .expect("probe semaphores are never closed");
        let global = self
            .global
            .acquire()
            .await
            .expect("probe semaphores are never closed");
        ProbePermit {
            _host: host,
            _global: global,
        }
    }

    /// Number of hosts with live semaphores.
    pub fn hosts(&self) -> usize {
        let hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts.values().filter(|s| s.strong_count() > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_host_shares_a_semaphore_and_dead_ones_are_pruned() {
        let limits = ProbeLimits::new(8, 2);
        let a = IpAddr::from([127, 0, 0, 1]);
        let b = IpAddr::from([127, 0, 0, 2]);
        let s1 = limits.host(a);
        let s2 = limits.host(a);
        assert!(Arc::ptr_eq(&s1, &s2));
        assert_eq!(s1.available_permits(), 2);
        let sb = limits.host(b);
        assert!(!Arc::ptr_eq(&s1, &sb));
        assert_eq!(limits.hosts(), 2);
        drop(sb);
        assert_eq!(limits.hosts(), 1);
    }

    #[tokio::test]
    async fn per_host_cap_blocks_third_probe() {
        let limits = ProbeLimits::new(8, 2);
        let host = limits.host(IpAddr::from([127, 0, 0, 1]));
        let _p1 = limits.acquire(&host).await;
        let _p2 = limits.acquire(&host).await;
        let third =
            tokio::time::timeout(std::time::Duration::from_millis(50), limits.acquire(&host)).await;
        assert!(third.is_err(), "third probe on the host must wait");
        let other = limits.host(IpAddr::from([127, 0, 0, 2]));
        let _p3 = limits.acquire(&other).await;
    }

    #[tokio::test]
    async fn global_cap_blocks_across_hosts() {
        let limits = ProbeLimits::new(2, 2);
        let a = limits.host(IpAddr::from([127, 0, 0, 1]));
        let b = limits.host(IpAddr::from([127, 0, 0, 2]));
        let c = limits.host(IpAddr::from([127, 0, 0, 3]));
        let _p1 = limits.acquire(&a).await;
        let p2 = limits.acquire(&b).await;
        let blocked =
            tokio::time::timeout(std::time::Duration::from_millis(50), limits.acquire(&c)).await;
        assert!(blocked.is_err(), "global cap of 2 reached");
        drop(p2);
        let _p3 = limits.acquire(&c).await;
    }
}
