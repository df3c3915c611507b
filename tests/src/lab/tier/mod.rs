//! The tier lab: several lb nodes behind a router that spreads the VIPs over
//! them with BGP ECMP, on top of the one-armed lab's client, router and
//! backends.
//!
//! ```text
//! client c0 (8 source addresses per family) ── r-cl  router (FRR: zebra, bfdd, bgpd;
//!                                                    ECMP, L4 hash, BFD to each node)
//!            r-n1 ══ l0 node n1 (lb run with announce, BIRD: eBGP + BFD)
//!            r-n2 ══ l0 node n2 ...
//!            r-bN ══ s0 backend bN (lb decap)
//! ```
//! Each node's agent installs `VIP/32 dev lo proto 250` (and `/128`) while it
//! announces; BIRD exports exactly those routes to the router, which installs
//! one multipath route per VIP with a nexthop per announcing node. Every node
//! runs the same config, so any node picks the same backend for a flow (the
//! Maglev tables agree) and flows survive moving between nodes.

pub mod bird;
pub mod client;
pub mod fault;
pub mod frr;
pub mod measure;
pub mod node;
pub mod plan;
pub mod routes;
pub mod second_chance;
pub mod sockets;
pub mod topology;

pub use node::Node;
pub use topology::Tier;
