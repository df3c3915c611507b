//! The XDP programs' logic: map lookups and packet rewrites around the
//! `lb_ebpf` packet library.
//!
//! `lb_xdp` is a pipeline of stages that never call back into an earlier one
//! ([`pipeline`]): parse (the library) -> [`classify`] (with [`icmp`] as a
//! leaf that answers echo requests and returns what to do with errors) ->
//! select a backend ([`balance`], over [`flows`], [`vip`] and
//! [`previous_owner`]) -> encapsulate
//! ([`encap`], or answer "too big": [`too_big`]) -> verdict ([`verdict`]).
//! Every stage returns a `Step`, whose `Err` is the frame's verdict. The
//! frame is made from the context, and its head grown, only in [`frame`].
//!
//! Decisions worth knowing (the fixture suite in `tests/tests/fixtures.rs`
//! checks each of them):
//!
//! - **Not a VIP** (non-IP, VLAN-tagged, ARP, IP too short to hold a
//!   destination, no service for (dst, port, proto) nor its port-0 wildcard):
//!   `XDP_PASS`, unchanged, `PassNotVip`.
//! - **VIP address** questions that no port can answer (ICMP echo, non-first
//!   fragments, malformed or unsupported packets) use the agent's address
//!   marker entry (`VIP_ADDRESS_MARKER_PROTOCOL`), else the TCP/UDP wildcard
//!   services of the address. Malformed to a VIP: `DropMalformed`; fragment to
//!   a VIP: `DropFragment` (the load balancer does not reassemble, and a
//!   non-first fragment has no ports to pick a backend with); other protocols
//!   to a VIP: `PassUnsupported`.
//! - **VIP filter**: a clear bit in `VIP_FILTER` for the destination means "not
//!   a VIP" without any hash lookup (set bits only mean "maybe"). For TCP/UDP
//!   the bits of the service (address, port, protocol) and of the address's
//!   port-0 wildcard must be set too: a packet to a port no service serves
//!   passes (`PassNotVip`) without touching the connection table; a plain
//!   frame (`lb_ebpf::plain_service_port`) before the parse, so even when its
//!   length fields lie (a served port's malformed packet is `DropMalformed`).
//! - **Established flows first**: TCP/UDP non-SYN packets look their 5-tuple up
//!   in the connection table before the service; a valid entry is forwarded at
//!   once and counted on the backend entry's `service_id`.
//! - **Connection table**: a TCP SYN (without ACK) always takes a fresh Maglev
//!   pick and overwrites; other packets use a valid entry (backend LIVE and same
//!   generation: `ConntrackHit`), else re-pick (`ConntrackMiss`, plus
//!   `NonSynMiss` for TCP) and insert. ICMP errors look up but never insert.
//!   Inserts beyond the CPU's budget for the second are skipped
//!   (`ConntrackInsertSkipped`; the packet is still forwarded).
//! - **Encapsulation**: outer TTL/hop limit 64, IPv4 id 0, DF and DSCP/ECN
//!   copied from the inner header; the IPv6 outer version/class/flow-label word
//!   is the inner one. Egress: the backend's configured next hop, else
//!   `bpf_fib_lookup` (output lookup), else the settings' gateway MAC, else
//!   `DropNoRoute`. `XDP_TX` (`Tx`) when the egress is the ingress (or 0), else
//!   `bpf_redirect` (`Redirect`).
//! - **GUE** (backends flagged `BACKEND_ENCAP_GUE`, services with `encap: gue`):
//!   outer IP (protocol / next header 17) + UDP from `gue_source_port(flow
//!   hash)` to the settings' GUE port, checksum 0 + GUE header (`lb_common::gue`),
//!   written by `lb_ebpf::wire::emit_gue`; `GueEncapsulated`. With a per-flow
//!   source prefix in the settings the outer source is `prefix | (flow hash &
//!   host bits)`, for IPIP and GUE alike.
//! - **Second chance** ([`previous_owner`]): a TCP non-SYN that misses the
//!   connection table, of a GUE service whose previous table is within its
//!   deadline and gives the flow to another LIVE backend of the service, goes
//!   to the live pick with the previous pick as GUE hint (`SecondChanceFlows`);
//!   the hint is pinned with the flow and sent with every later packet while
//!   that backend is LIVE (`SecondChancePackets`).
//! - **Too big** (IP length + the encapsulation's overhead: 20/40 for IPIP,
//!   32/52 for GUE, 40/72 with a hint; > egress MTU, 0 = unchecked): `DropTooBig`;
//!   IPv4 with DF and IPv6 get an ICMP "fragmentation needed" / "packet too
//!   big" from the VIP to the client with MTU - overhead, quoting the
//!   IPv4 header (options included) + 8 bytes, or the IPv6 header + 8 bytes
//!   (`IcmpTooBigSent`, out `XDP_TX`). IPv4 without DF is only dropped.
//! - **Counters**: service packets/bytes for every packet matched to a service;
//!   backend `new_flows` on every fresh pick. A packet forwarded to a backend
//!   is counted in that backend's record alone, one lookup: its connection-
//!   table hit, then once sent its packets/bytes (frame length before
//!   encapsulation) and whether it was redirected. The global `conntrack_hit`,
//!   `tx` and `redirect` are those records summed by the readers
//!   (`lb_common::BackendStats::global_share`); the datapath never counts them
//!   in `GLOBAL_STATS`.

pub mod balance;
pub mod classify;
pub mod counters;
pub mod decap;
pub mod decap_gue;
pub mod encap;
pub mod flows;
pub mod frame;
pub mod icmp;
pub mod pipeline;
pub mod previous_owner;
pub mod second_chance;
pub mod too_big;
pub mod verdict;
pub mod vip;
pub mod words;
