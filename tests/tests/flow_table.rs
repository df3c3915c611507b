//! The connection table under attack, through the real `lb_xdp` program
//! (BPF_PROG_TEST_RUN, repeat 1): targeted eviction needs the host's secret,
//! a SYN flood inserts no more flows than the insert budget allows, and
//! packets to ports no service serves never reach the table.
//!
//! Each attack also runs without the defence (the table's secret known to the
//! attacker, or no budget) to show that the attack itself works; the counts of
//! both runs are printed (`--nocapture`).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use aya::maps::Array;
use lb_common::{
    FlowBucket, FlowEntry, FlowHashKey, GlobalCounter as G, bucket_pair, flow::PROTO_TCP,
    flow_place, flow_table::user::conntrack_mask,
};
use lb_tests::frames::{Tcp, V4, tcp_v4};
use lb_tests::harness::{Lb, TEST_RUN_INGRESS, XDP_PASS, XDP_TX, backend_entry, flow_key};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);
const BACKENDS: [u32; 4] = [1, 2, 3, 4];
/// Connection-table size of the eviction test: 64 buckets.
const SMALL_TABLE: u32 = 256;

/// A datapath with one TCP service on VIP:80 and a table of `entries` flows.
fn datapath(entries: u32) -> Lb {
    let mut lb = Lb::with_conntrack(entries);
    for id in BACKENDS {
        let addr = Ipv4Addr::new(198, 18, 2, id as u8);
        lb.set_backend(id, backend_entry(addr.into(), 1, TEST_RUN_INGRESS));
    }
    let table: Vec<u32> = (0..13).map(|i| BACKENDS[i % 4]).collect();
    lb.add_service(VIP.into(), 80, PROTO_TCP, 1, &table);
    lb.add_marker(VIP.into());
    lb
}

fn client(n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 19, 0, 0)) + n)
}

fn syn(src: Ipv4Addr, port: u16) -> Vec<u8> {
    tcp_v4(src, port, VIP, 80, Tcp::Syn, &[], &V4::default())
}

/// Sends a SYN from `src`:`port` through `lb_xdp` (forwarded: XDP_TX).
fn send_syn(lb: &Lb, src: Ipv4Addr, port: u16) {
    let (action, _) = lb.run(&syn(src, port));
    assert_eq!(action, XDP_TX, "SYN from {src}:{port} not forwarded");
}

/// New flows picked for the service's backends.
fn new_flows(lb: &Lb) -> u64 {
    BACKENDS
        .iter()
        .map(|id| lb.backend_stats(*id).new_flows)
        .sum()
}

fn pinned(lb: &Lb, src: Ipv4Addr, port: u16) -> Option<FlowEntry> {
    lb.conntrack(&flow_key(src.into(), port, VIP.into(), 80, PROTO_TCP))
}

/// The first buckets a copy of the hash under `guess` predicts for
/// `src`:`port`, in a table of `mask + 1` buckets.
fn predicted(guess: &FlowHashKey, src: Ipv4Addr, port: u16, mask: u32) -> [u32; 2] {
    let key = flow_key(src.into(), port, VIP.into(), 80, PROTO_TCP);
    bucket_pair(flow_place(&key, guess).hash, mask)
}

/// Runs the targeted eviction against `victims` flows, one at a time on an
/// empty table whose secret is `secret`; the attacker computes buckets with
/// `guess`. Returns how many victims survive.
fn targeted_eviction(secret: FlowHashKey, guess: &FlowHashKey, victims: u32) -> u32 {
    let mask = conntrack_mask(SMALL_TABLE);
    let mut survivors = 0;
    let mut lb = datapath(SMALL_TABLE);
    lb.set_flow_secret(secret);
    for v in 0..victims {
        clear_table(&mut lb);
        let victim = client(v);
        send_syn(&lb, victim, 40000);
        assert!(pinned(&lb, victim, 40000).is_some());
        let target = predicted(guess, victim, 40000, mask);
        // Nine crafted SYNs whose two predicted buckets are the victim's.
        let mut crafted = 0;
        let mut n = 0u32;
        while crafted < 9 {
            n += 1;
            let src = client(0x1_0000 + n);
            let port = 1024 + (n % 60_000) as u16;
            if predicted(guess, src, port, mask) == target {
                send_syn(&lb, src, port);
                crafted += 1;
            }
        }
        if pinned(&lb, victim, 40000).is_some() {
            survivors += 1;
        }
    }
    survivors
}

/// Empties the connection table.
fn clear_table(lb: &mut Lb) {
    let mut m: Array<_, FlowBucket> =
        Array::try_from(lb.ebpf.map_mut(lb_common::MAP_CONNTRACK).unwrap()).unwrap();
    for i in 0..m.len() {
        m.set(i, FlowBucket::default(), 0).unwrap();
    }
}

/// Flows crafted with a copy of the hash evict their victim when the
/// attacker knows the table's key (what an unkeyed hash amounts to), and do
/// not with the host's secret.
#[test]
fn targeted_eviction_needs_the_secret() {
    const VICTIMS: u32 = 20;
    let copy = FlowHashKey::default();
    let known = targeted_eviction(copy, &copy, VICTIMS);
    let secret = lb_common::flow_table::user::random_flow_key().unwrap();
    let unknown = targeted_eviction(secret, &copy, VICTIMS);
    eprintln!(
        "targeted eviction, 9 crafted SYNs per victim: {known}/{VICTIMS} victims survive when \
         the attacker knows the key, {unknown}/{VICTIMS} with the host's secret"
    );
    assert_eq!(known, 0, "the attack itself does not work");
    assert_eq!(unknown, VICTIMS);
}

/// Pins this thread to CPU 0 (the insert budget is per CPU).
fn pin_to_cpu0() {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
            0
        );
    }
}

/// Outcome of one flood.
struct Flood {
    established: u32,
    survivors: u32,
    inserted: u64,
    skipped: u64,
    seconds: f64,
}

/// Pins `victims` idle flows, then floods `flood` random spoofed SYNs with an
/// insert budget of `budget` per second per CPU.
fn flood(entries: u32, victims: u32, flood: u32, budget: u32) -> Flood {
    let mut lb = datapath(entries);
    for v in 0..victims {
        send_syn(&lb, client(v), 40000);
    }
    let established: Vec<u32> = (0..victims)
        .filter(|v| pinned(&lb, client(*v), 40000).is_some())
        .collect();
    assert!(established.len() as u32 >= victims * 99 / 100);
    lb.set_insert_budget(budget);
    let new_before = new_flows(&lb);
    let skipped_before = lb.global(G::ConntrackInsertSkipped);
    let started = Instant::now();
    let mut x = 0x2545_f491_u32;
    for _ in 0..flood {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let src = Ipv4Addr::from(0xc612_0000 | (x & 0xffff) | 0x0001_0000);
        send_syn(&lb, src, (x >> 16) as u16 | 1024);
    }
    let seconds = started.elapsed().as_secs_f64();
    let forwarded = new_flows(&lb) - new_before;
    let skipped = lb.global(G::ConntrackInsertSkipped) - skipped_before;
    assert_eq!(forwarded, u64::from(flood), "every flood SYN is forwarded");
    let survivors = established
        .iter()
        .filter(|v| pinned(&lb, client(**v), 40000).is_some())
        .count() as u32;
    Flood {
        established: established.len() as u32,
        survivors,
        inserted: forwarded - skipped,
        skipped,
        seconds,
    }
}

/// A flood of 1.5x the table's size in spoofed SYNs flushes the idle flows
/// without a budget; with one, it inserts (and so evicts) at most the budget
/// per second, every flood SYN is still forwarded, and the skipped inserts
/// are counted.
#[test]
fn a_syn_flood_inserts_no_more_than_the_budget() {
    pin_to_cpu0();
    const ENTRIES: u32 = 4096;
    const VICTIMS: u32 = 1024;
    const FLOOD: u32 = ENTRIES * 3 / 2;
    const BUDGET: u32 = 200;
    let open = flood(ENTRIES, VICTIMS, FLOOD, 0);
    let capped = flood(ENTRIES, VICTIMS, FLOOD, BUDGET);
    eprintln!(
        "SYN flood of {FLOOD} into a {ENTRIES}-flow table holding {VICTIMS} idle flows: \
         {}/{VICTIMS} survive without a budget ({} inserts), {}/{VICTIMS} with a budget of \
         {BUDGET}/s per CPU ({} inserts, {} skipped, {:.2} s)",
        open.survivors,
        open.inserted,
        capped.survivors,
        capped.inserted,
        capped.skipped,
        capped.seconds
    );
    assert_eq!(open.skipped, 0);
    assert!(
        open.survivors < open.established / 2,
        "the flood itself evicts little: {}",
        open.survivors
    );
    // The budget resets each second: a flood spanning k second boundaries
    // may insert (k + 1) budgets.
    let windows = capped.seconds.ceil() as u64 + 1;
    assert!(
        capped.inserted <= u64::from(BUDGET) * windows,
        "{} inserts in {:.2} s",
        capped.inserted,
        capped.seconds
    );
    assert_eq!(capped.inserted + capped.skipped, u64::from(FLOOD));
    assert!(u64::from(capped.established - capped.survivors) <= capped.inserted);
}

/// A packet to the VIP's address on a port no service serves passes without
/// reaching the connection table, even when the table holds a pin for its
/// 5-tuple (which a lookup would have found and forwarded).
#[test]
fn unserved_ports_never_reach_the_connection_table() {
    let mut lb = datapath(1024);
    let src: IpAddr = client(1).into();
    lb.set_conntrack(
        flow_key(src, 40000, VIP.into(), 81, PROTO_TCP),
        FlowEntry {
            backend_id: 1,
            generation: 1,
        },
    );
    let ack = tcp_v4(client(1), 40000, VIP, 81, Tcp::Ack, b"x", &V4::default());
    let (action, out) = lb.run(&ack);
    assert_eq!(action, XDP_PASS);
    assert_eq!(out, ack, "passed unchanged");
    assert_eq!(
        lb.nonzero_globals(),
        vec![(G::PassNotVip, 1)],
        "no connection-table hit or miss"
    );
}
