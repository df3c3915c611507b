//! Counter values and indices of the per-CPU statistics maps.

/// Value of [`crate::MAP_BACKEND_STATS`] (per CPU; the agent sums the CPUs).
///
/// A forwarded packet is counted here only, with one lookup: its backend's
/// record also holds the packet's share of the global counters
/// `conntrack_hit`, `tx` and `redirect` ([`BackendStats::global_share`]),
/// which readers add to [`crate::MAP_GLOBAL_STATS`]'s own values. The
/// datapath never writes those three indices of the global map; the agent
/// moves a backend id's shares there before it zeroes the id for reuse.
///
/// It holds its service's share too: a packet whose flow's entry names the
/// backend (a hit) is counted for the service here, not in
/// [`crate::MAP_SERVICE_STATS`] ([`ServiceStats::plus_share`]). A backend id
/// belongs to one service until it is retired; the agent moves the id's
/// service share into the service's record and its `conntrack_hit` share into
/// the global map when it retires the id ([`BackendStats::without_hits`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendStats {
    /// Packets sent to this backend (`XDP_TX` or `XDP_REDIRECT` done).
    pub packets: u64,
    /// Bytes of those packets before encapsulation.
    pub bytes: u64,
    /// Flows newly pinned to this backend (SYNs, first UDP packets, re-picks).
    pub new_flows: u64,
    /// Packets of known flows that found their connection-table entry
    /// pinned to this backend (`conntrack_hit`).
    pub hits: u64,
    /// Of `packets`, those sent with `XDP_REDIRECT` (the rest went out
    /// with `XDP_TX`).
    pub redirects: u64,
    /// Bytes (before encapsulation) of the `hits` packets: with `hits`, the
    /// service's share.
    pub hit_bytes: u64,
}

/// The global counters a backend's record holds a share of
/// ([`BackendStats::global_share`]).
pub const PER_BACKEND_GLOBALS: [GlobalCounter; 3] = [
    GlobalCounter::ConntrackHit,
    GlobalCounter::Tx,
    GlobalCounter::Redirect,
];

impl BackendStats {
    /// This record's share of global counter `c` (0 for the counters the
    /// datapath counts in [`crate::MAP_GLOBAL_STATS`] itself).
    pub const fn global_share(&self, c: GlobalCounter) -> u64 {
        match c {
            GlobalCounter::ConntrackHit => self.hits,
            GlobalCounter::Tx => self.packets.wrapping_sub(self.redirects),
            GlobalCounter::Redirect => self.redirects,
            _ => 0,
        }
    }

    /// The sum of two records, field by field (CPUs, or backends).
    pub const fn plus(self, o: BackendStats) -> BackendStats {
        BackendStats {
            packets: self.packets.wrapping_add(o.packets),
            bytes: self.bytes.wrapping_add(o.bytes),
            new_flows: self.new_flows.wrapping_add(o.new_flows),
            hits: self.hits.wrapping_add(o.hits),
            redirects: self.redirects.wrapping_add(o.redirects),
            hit_bytes: self.hit_bytes.wrapping_add(o.hit_bytes),
        }
    }

    /// This record with its hit shares (`hits`, `hit_bytes`) taken out: what
    /// the agent leaves in a backend id's record when it retires the id,
    /// after adding them to the global map and to the service's record.
    pub const fn without_hits(self) -> BackendStats {
        BackendStats {
            hits: 0,
            hit_bytes: 0,
            ..self
        }
    }
}

/// Value of [`crate::MAP_SERVICE_STATS`] (per CPU).
///
/// The record holds the packets that missed the connection table; a hit is
/// counted in its backend's record ([`BackendStats::hit_bytes`]). A service's
/// counters are its record plus the shares of the backend ids it holds
/// ([`ServiceStats::plus_share`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceStats {
    /// Packets to this service (ICMP errors about its flows included).
    pub packets: u64,
    /// Bytes of those packets before encapsulation.
    pub bytes: u64,
    /// New flows for this service that found no backend and were dropped.
    pub no_backend: u64,
}

impl ServiceStats {
    /// This record plus backend record `b`'s service share (its hits).
    pub const fn plus_share(self, b: &BackendStats) -> ServiceStats {
        ServiceStats {
            packets: self.packets.wrapping_add(b.hits),
            bytes: self.bytes.wrapping_add(b.hit_bytes),
            no_backend: self.no_backend,
        }
    }

    /// The sum of two records, field by field (CPUs).
    pub const fn plus(self, o: ServiceStats) -> ServiceStats {
        ServiceStats {
            packets: self.packets.wrapping_add(o.packets),
            bytes: self.bytes.wrapping_add(o.bytes),
            no_backend: self.no_backend.wrapping_add(o.no_backend),
        }
    }
}

macro_rules! global_counters {
    ($($(#[doc = $doc:literal])* $name:ident = $idx:literal => $label:literal,)*) => {
        /// Indices of [`crate::MAP_GLOBAL_STATS`]: global datapath counters.
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum GlobalCounter {
            $($(#[doc = $doc])* $name = $idx,)*
        }

        impl GlobalCounter {
            /// Every counter, in index order.
            pub const ALL: &'static [GlobalCounter] = &[$(GlobalCounter::$name,)*];

            /// Stable snake_case name (CLI, JSON and Prometheus label).
            pub const fn label(self) -> &'static str {
                match self { $(GlobalCounter::$name => $label,)* }
            }
        }
    };
}

global_counters! {
    /// A packet of a known flow found its connection-table entry (counted in
    /// the backend's record: [`BackendStats::hits`]).
    ConntrackHit = 0 => "conntrack_hit",
    /// A packet to a VIP found no (valid) connection-table entry.
    ConntrackMiss = 1 => "conntrack_miss",
    /// A TCP packet without SYN found no entry: its connection may have moved.
    NonSynMiss = 2 => "non_syn_miss",
    /// Passed: not addressed to a VIP (or not IP at all).
    PassNotVip = 3 => "pass_not_vip",
    /// Dropped: a packet to a VIP with truncated or inconsistent headers.
    DropMalformed = 4 => "drop_malformed",
    /// Dropped: an IPv4 fragment or IPv6 fragment header to a VIP.
    DropFragment = 5 => "drop_fragment",
    /// Dropped: too big once encapsulated (an ICMP error was sent when allowed).
    DropTooBig = 6 => "drop_too_big",
    /// Dropped: the service has no backend taking new flows.
    DropNoBackend = 7 => "drop_no_backend",
    /// Dropped: no encapsulation source address for the VIP's family.
    DropNoSource = 8 => "drop_no_source",
    /// Dropped: no next hop toward the backend (no FIB entry, no gateway MAC).
    DropNoRoute = 9 => "drop_no_route",
    /// Dropped: a helper failed (adjust_head, redirect).
    DropInternal = 10 => "drop_internal",
    /// Passed: to a VIP but a protocol the load balancer does not handle.
    PassUnsupported = 11 => "pass_unsupported",
    /// Forwarded to a backend back out the ingress interface (XDP_TX;
    /// counted in the backend's record: [`BackendStats::packets`] less
    /// [`BackendStats::redirects`]).
    Tx = 12 => "tx",
    /// Forwarded to a backend through another interface (XDP_REDIRECT;
    /// counted in the backend's record: [`BackendStats::redirects`]).
    Redirect = 13 => "redirect",
    /// ICMP/ICMPv6 echo requests to a VIP answered by the load balancer.
    IcmpEchoReply = 14 => "icmp_echo_reply",
    /// ICMP errors about a VIP flow forwarded to that flow's backend.
    IcmpErrorForwarded = 15 => "icmp_error_forwarded",
    /// ICMP "fragmentation needed" / ICMPv6 "packet too big" sent to clients.
    IcmpTooBigSent = 16 => "icmp_too_big_sent",
    /// A new flow was forwarded but not recorded: this CPU had used its
    /// connection-table insert budget for the current second.
    ConntrackInsertSkipped = 17 => "conntrack_insert_skipped",
    /// Second chance: a TCP flow that missed the connection table was sent to
    /// the live table's pick with the previous table's pick as GUE hint (once
    /// per flow: when the hint is first chosen and pinned).
    SecondChanceFlows = 18 => "second_chance_flows",
    /// Packets sent with a second-chance hint (the first one of a flow and
    /// every later one of that flow on this node).
    SecondChancePackets = 19 => "second_chance_packets",
    /// Packets encapsulated in GUE (hint or not).
    GueEncapsulated = 20 => "gue_encapsulated",
}

/// Number of [`GlobalCounter`] entries (the size of the global stats map).
pub const GLOBAL_COUNTER_COUNT: u32 = 21;

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of 10 packets (1000 bytes), 2 new flows, 7 hits (700
    /// bytes), 3 redirects.
    const RECORD: BackendStats = BackendStats {
        packets: 10,
        bytes: 1000,
        new_flows: 2,
        hits: 7,
        redirects: 3,
        hit_bytes: 700,
    };

    #[test]
    fn a_backend_record_holds_hits_tx_and_redirects() {
        let s = RECORD;
        assert_eq!(s.global_share(GlobalCounter::ConntrackHit), 7);
        assert_eq!(s.global_share(GlobalCounter::Tx), 7);
        assert_eq!(s.global_share(GlobalCounter::Redirect), 3);
        assert_eq!(s.global_share(GlobalCounter::PassNotVip), 0);
        let shared: u64 = PER_BACKEND_GLOBALS.iter().map(|&c| s.global_share(c)).sum();
        assert_eq!(shared, 17);
        assert_eq!(s.plus(s).hits, 14);
        let one_each = BackendStats {
            packets: 2,
            hits: 1,
            redirects: 1,
            ..BackendStats::default()
        };
        for c in GlobalCounter::ALL {
            assert_eq!(
                PER_BACKEND_GLOBALS.contains(c),
                one_each.global_share(*c) == 1,
                "{c:?}"
            );
        }
    }

    #[test]
    fn a_services_counters_are_its_record_plus_its_backends_hits() {
        let b = RECORD;
        let record = ServiceStats {
            packets: 3,
            bytes: 300,
            no_backend: 1,
        };
        let total = record.plus_share(&b);
        assert_eq!(
            total,
            ServiceStats {
                packets: 10,
                bytes: 1000,
                no_backend: 1
            }
        );
        // Moving the share into the record keeps the total.
        let retired = b.without_hits();
        assert_eq!(retired.hits + retired.hit_bytes, 0);
        assert_eq!(retired.global_share(GlobalCounter::Tx), 7);
        assert_eq!(total.plus_share(&retired), total);
        assert_eq!(record.plus(record).packets, 6);
    }

    #[test]
    fn counter_indices_are_dense() {
        assert_eq!(GlobalCounter::ALL.len() as u32, GLOBAL_COUNTER_COUNT);
        for (i, c) in GlobalCounter::ALL.iter().enumerate() {
            assert_eq!(*c as u32, i as u32);
        }
    }
}
