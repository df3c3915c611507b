//! Next-hop resolution off the agent's loop: a thread that runs the
//! (`ip`-spawning) lookups of [`neighbours::resolve_all`] and hands results back, so
//! that an apply never waits for them. Until a backend's next hop is known the
//! datapath resolves it itself (`bpf_fib_lookup`), so nothing waits on this.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::mpsc as std_mpsc;

use tokio::sync::mpsc;

use super::neighbours;
use crate::datapath::NextHop;

/// A resolved (or still unknown) next hop toward a backend address.
#[derive(Clone, Copy, Debug)]
pub struct Resolved {
    /// The backend address.
    pub address: IpAddr,
    /// Its next hop, `None` when not known yet.
    pub next_hop: Option<NextHop>,
}

/// Handle for asking the resolver thread to look addresses up.
#[derive(Debug)]
pub struct Resolver {
    requests: std_mpsc::Sender<Vec<IpAddr>>,
}

impl Resolver {
    /// Starts the thread; results arrive on the returned receiver. The thread
    /// ends when the `Resolver` or the receiver is dropped.
    pub fn start() -> std::io::Result<(Resolver, mpsc::UnboundedReceiver<Resolved>)> {
        let (requests, incoming) = std_mpsc::channel::<Vec<IpAddr>>();
        let (results, received) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("lb-next-hops".into())
            .spawn(move || {
                while let Ok(first) = incoming.recv() {
                    // Merge every request queued meanwhile: each address once.
                    let mut batch: BTreeSet<IpAddr> = first.into_iter().collect();
                    while let Ok(more) = incoming.try_recv() {
                        batch.extend(more);
                    }
                    let batch: Vec<IpAddr> = batch.into_iter().collect();
                    for r in neighbours::resolve_all(&batch) {
                        let resolved = Resolved {
                            address: r.backend,
                            next_hop: r.next_hop,
                        };
                        if results.send(resolved).is_err() {
                            return;
                        }
                    }
                }
            })?;
        Ok((Resolver { requests }, received))
    }

    /// Queues a lookup of `addresses` (returns at once).
    pub fn request(&self, addresses: Vec<IpAddr>) {
        if !addresses.is_empty() {
            // The thread only stops when the agent does.
            let _ignored = self.requests.send(addresses);
        }
    }
}
