//! Next-hop resolution off the agent's loop: a thread that runs the
//! (`ip`-spawning) lookups of [`neighbours::resolve_all`] and hands results back, so
//! that an apply never waits for them. Until a backend's next hop is known the
//! datapath resolves it itself (`bpf_fib_lookup`), so nothing waits on this.
//!
//! Both queues are bounded: requests merge into one set of pending addresses
//! (each address once, at most [`MAX_PENDING`]), and results go through a
//! channel of [`RESULT_QUEUE`] entries that the thread waits on when the agent
//! is busy. Asking again for an address already pending costs nothing.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use lb_common::MAX_BACKENDS;
use tokio::sync::mpsc;

use super::neighbours;
use crate::kernel::NextHop;

/// Most addresses waiting for a lookup: every backend id of the datapath plus
/// every backend of a new config. Addresses asked beyond it are dropped (the
/// periodic refresh asks again).
pub const MAX_PENDING: usize = 2 * MAX_BACKENDS as usize;

/// Most results waiting for the agent; the resolver thread waits when full.
pub const RESULT_QUEUE: usize = 4096;

/// A resolved (or still unknown) next hop toward a backend address.
#[derive(Clone, Copy, Debug)]
pub struct Resolved {
    /// The backend address.
    pub address: IpAddr,
    /// Its next hop, `None` when not known yet.
    pub next_hop: Option<NextHop>,
}

/// Addresses waiting for the thread.
#[derive(Debug, Default)]
struct Pending {
    addresses: BTreeSet<IpAddr>,
    /// Set when the [`Resolver`] is dropped: the thread ends.
    closed: bool,
}

/// The pending set and the condition the thread waits on.
type Shared = Arc<(Mutex<Pending>, Condvar)>;

/// Handle for asking the resolver thread to look addresses up.
#[derive(Debug)]
pub struct Resolver {
    pending: Shared,
}

impl Resolver {
    /// Starts the thread; results arrive on the returned receiver. The thread
    /// ends when the `Resolver` or the receiver is dropped.
    pub fn start() -> std::io::Result<(Resolver, mpsc::Receiver<Resolved>)> {
        let pending: Shared = Arc::default();
        let (results, received) = mpsc::channel(RESULT_QUEUE);
        let shared = Arc::clone(&pending);
        std::thread::Builder::new()
            .name("lb-next-hops".into())
            .spawn(move || {
                while let Some(batch) = next_batch(&shared) {
                    for r in neighbours::resolve_all(&batch) {
                        let resolved = Resolved {
                            address: r.backend,
                            next_hop: r.next_hop,
                        };
                        if results.blocking_send(resolved).is_err() {
                            return;
                        }
                    }
                }
            })?;
        Ok((Resolver { pending }, received))
    }

    /// Queues a lookup of `addresses` (returns at once).
    pub fn request(&self, addresses: Vec<IpAddr>) {
        if addresses.is_empty() {
            return;
        }
        let (lock, wake) = &*self.pending;
        let mut pending = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut dropped = 0usize;
        for a in addresses {
            if pending.addresses.len() < MAX_PENDING || pending.addresses.contains(&a) {
                pending.addresses.insert(a);
            } else {
                dropped += 1;
            }
        }
        drop(pending);
        if dropped > 0 {
            tracing::warn!(
                "next-hop lookups: {dropped} addresses not queued ({MAX_PENDING} already waiting)"
            );
        }
        wake.notify_one();
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        let (lock, wake) = &*self.pending;
        lock.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
        wake.notify_one();
    }
}

/// Waits for pending addresses and takes them all; `None` once closed.
fn next_batch(shared: &Shared) -> Option<Vec<IpAddr>> {
    let (lock, wake) = &**shared;
    let mut pending = lock.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if pending.closed {
            return None;
        }
        if !pending.addresses.is_empty() {
            return Some(std::mem::take(&mut pending.addresses).into_iter().collect());
        }
        pending = wake.wait(pending).unwrap_or_else(PoisonError::into_inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10,000 backends asked for twice while the agent reads nothing yet: every
    /// address gets exactly one answer per lookup round, nothing deadlocks, and
    /// the queues stay bounded.
    #[test]
    fn ten_thousand_backends_all_get_an_answer() {
        let addresses: Vec<IpAddr> = (0..10_000u32)
            .map(|i| IpAddr::V4(std::net::Ipv4Addr::from(0x7f01_0000 | (i + 1))))
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (resolver, mut resolved) = Resolver::start().unwrap();
            resolver.request(addresses.clone());
            resolver.request(addresses.clone());
            let mut seen = BTreeSet::new();
            // A deadlock guard, not a speed target.
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
            while seen.len() < addresses.len() {
                let r = tokio::time::timeout_at(deadline, resolved.recv())
                    .await
                    .expect("next-hop answers stopped coming")
                    .expect("resolver thread ended");
                seen.insert(r.address);
            }
            assert_eq!(seen, addresses.iter().copied().collect());
            let (lock, _) = &*resolver.pending;
            assert!(lock.lock().unwrap().addresses.len() <= MAX_PENDING);
        });
    }

    #[test]
    fn requests_beyond_the_bound_are_dropped() {
        let pending: Shared = Arc::default();
        let resolver = Resolver {
            pending: Arc::clone(&pending),
        };
        let many: Vec<IpAddr> = (0..(MAX_PENDING as u32 + 10))
            .map(|i| IpAddr::V4(std::net::Ipv4Addr::from(0x7f00_0000 | i)))
            .collect();
        resolver.request(many.clone());
        resolver.request(many);
        assert_eq!(pending.0.lock().unwrap().addresses.len(), MAX_PENDING);
        drop(resolver);
        assert!(
            next_batch(&pending).is_none(),
            "a dropped resolver stops the thread"
        );
    }
}
