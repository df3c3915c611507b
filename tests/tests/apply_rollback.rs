//! Privileged test: an apply that fails halfway is rolled back. The failure is
//! real: a plan that needs more VIPS entries than the map holds (a config
//! `lb check` refuses, built here without it) fails with E2BIG after the first
//! service has already flipped to its new table. Packets, run through
//! BPF_PROG_TEST_RUN by a second copy of the program on the same pinned maps,
//! must still reach the last good backend; the maps must hold exactly what
//! they held before; and the next good config must apply from the unchanged
//! applied view.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use aya::maps::{Array, ArrayOfMaps, HashMap, Map, MapData, PerCpuArray};
use aya::programs::{TestRun, TestRunOptions, Xdp};
use aya::{Ebpf, EbpfLoader};
use lb::config::{BackendConfig, Config, EncapConfig, Protocol, ServiceConfig};
use lb::kernel::{Datapath, KernelError, MAP_NAMES, ModeChoice, NextHop, OpenOptions};
use lb::plan::{AllUp, MapOp, Previous, plan};
use lb_common::{
    BackendEntry, BackendStats, GlobalCounter, MAX_VIP_ENTRIES, ServiceEntry, ServiceStats, VipKey,
};
use lb_tests::frames::{EGRESS_MAC, NEXT_HOP_MAC, Tcp, V4, tcp_v4};
use lb_tests::harness::{XDP_PASS, XDP_REDIRECT, XDP_TX};
use lb_tests::netns::{NetNsPair, TestBpffs, in_netns};

const M: u32 = 13;
const CONNTRACK: u32 = 4096;
const WEB_VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);
const OLD: Ipv4Addr = Ipv4Addr::new(198, 18, 3, 2);
const NEW: Ipv4Addr = Ipv4Addr::new(198, 18, 3, 3);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);

fn service(name: &str, vip: Ipv4Addr, backend: Ipv4Addr) -> ServiceConfig {
    ServiceConfig {
        name: name.into(),
        vip: vip.into(),
        port: 80,
        protocol: Protocol::Tcp,
        backends: vec![BackendConfig {
            address: backend.into(),
            weight: 1,
            drain: false,
        }],
        health_check: None,
        panic_threshold: 0.5,
        encap: lb::config::Encapsulation::Ipip,
        second_chance_s: lb::config::DEFAULT_SECOND_CHANCE_S,
    }
}

fn config(services: Vec<ServiceConfig>) -> Config {
    Config {
        maglev_table_size: M,
        conntrack_entries: CONNTRACK,
        conntrack_insert_budget: 0,
        encapsulation: EncapConfig::default(),
        services,
        announce: Default::default(),
    }
}

/// How the tests open the datapath on `net`'s load-balancer side (pins
/// under `fs`), and its pin directory.
fn options(net: &NetNsPair, fs: &TestBpffs) -> (OpenOptions, std::path::PathBuf) {
    let dir = lb::kernel::pin_dir(&fs.root, net.lb_netns(), &net.lb_if);
    let opts = OpenOptions {
        pin_root: fs.root.clone(),
        netns: net.lb_netns(),
        conntrack_insert_budget: 0,
        ifname: net.lb_if.clone(),
        conntrack_entries: CONNTRACK,
        mode: ModeChoice::Auto,
        fresh: false,
    };
    (opts, dir)
}

/// Opens the datapath (inside its namespace) with the default settings, and
/// a next hop through its interface for each of `backends`.
fn open_with_next_hops(
    opts: &OpenOptions,
    backends: &[Ipv4Addr],
) -> (Datapath, lb::plan::NextHops) {
    let (mut dp, _) = Datapath::open(opts, None).unwrap();
    dp.write_settings(&EncapConfig::default()).unwrap();
    let next_hop = NextHop {
        ifindex: dp.interface().ifindex,
        mtu: 1500,
        mac: NEXT_HOP_MAC,
        source_mac: EGRESS_MAC,
    };
    let next_hops = backends.iter().map(|&b| (b.into(), next_hop)).collect();
    (dp, next_hops)
}

/// Runs `test` in a fresh namespace pair named after `tag`, with a bpffs of
/// its own: on the load-balancer side, the datapath opened with a next hop for
/// each of `backends`, the first apply's `Previous` (nothing applied yet) and
/// the pin directory. Detaches and removes the pins afterwards.
fn in_lab(
    tag: &str,
    backends: &'static [Ipv4Addr],
    test: impl FnOnce(&mut Datapath, Previous<'_>, &Path) + Send + 'static,
) {
    let net = NetNsPair::new(tag);
    let fs = TestBpffs::new(tag);
    let (opts, dir) = options(&net, &fs);
    let pins = dir.clone();
    in_netns(&net.lb, move || {
        let (mut dp, next_hops) = open_with_next_hops(&opts, backends);
        let first = Previous {
            next_hops: &next_hops,
            ..Previous::default()
        };
        test(&mut dp, first, &pins);
    });
    lb::kernel::detach_and_remove(&dir).unwrap();
    drop(fs);
}

/// The program loaded a second time over the agent's pinned maps: what a
/// packet arriving now would get. Its globals (each program's own: the VIP
/// filter, the live settings and table config) are copied from the attached
/// program's before every packet.
struct Probe {
    ebpf: Ebpf,
    dir: std::path::PathBuf,
}

impl Probe {
    fn load(dir: &Path) -> Self {
        let mask = lb_common::flow_buckets(CONNTRACK) - 1;
        let mut loader = EbpfLoader::new();
        let paths: Vec<(&str, std::path::PathBuf)> =
            MAP_NAMES.iter().map(|n| (*n, dir.join(n))).collect();
        for (name, path) in &paths {
            loader.map_pin_path(name, path.as_path());
        }
        lb_common::flow_table::user::size_conntrack(&mut loader, &mask);
        let mut ebpf = loader
            .load(lb::object::EBPF_OBJECT)
            .expect("load the probe");
        let prog: &mut Xdp = ebpf
            .program_mut(lb_common::PROG_LB)
            .unwrap()
            .try_into()
            .unwrap();
        prog.load().expect("load lb_xdp");
        Probe {
            ebpf,
            dir: dir.to_path_buf(),
        }
    }

    /// A new TCP flow (SYN from `client_port`) to `vip`:80: the action and,
    /// when encapsulated, the backend (outer IPv4 destination).
    fn send(&mut self, vip: Ipv4Addr, client_port: u16) -> (u32, Option<Ipv4Addr>) {
        let (action, out) = self.packet(vip, client_port, Tcp::Syn);
        let ipip = out.len() > 34 && out[14] >> 4 == 4 && out[14 + 9] == 4;
        let backend = ipip.then(|| Ipv4Addr::new(out[30], out[31], out[32], out[33]));
        (action, backend)
    }

    /// One packet of `client_port`'s flow to `vip`:80: the action and the
    /// frame out.
    fn packet(&mut self, vip: Ipv4Addr, client_port: u16, tcp: Tcp) -> (u32, Vec<u8>) {
        self.copy_global::<lb_common::VipFilterBits>(lb_common::MAP_VIP_FILTER);
        self.copy_global::<lb_common::Settings>(lb_common::LIVE_SETTINGS);
        self.copy_global::<lb_common::FlowTableConfig>(lb_common::LIVE_FLOW_TABLE_CONFIG);
        let frame = tcp_v4(CLIENT, client_port, vip, 80, tcp, b"", &V4::default());
        let prog: &Xdp = self
            .ebpf
            .program(lb_common::PROG_LB)
            .unwrap()
            .try_into()
            .unwrap();
        let mut out = vec![0u8; frame.len() + 512];
        let r = prog
            .test_run(TestRunOptions {
                data_in: Some(&frame),
                data_out: Some(&mut out),
                repeat: 1,
                ..Default::default()
            })
            .expect("BPF_PROG_TEST_RUN");
        out.truncate(r.data_size_out as usize);
        (r.return_value, out)
    }

    /// Copies global `name` of the attached program into the probe's.
    fn copy_global<V: aya::Pod>(&mut self, name: &str) {
        let attached: V = lb_tests::harness::attached_global(&self.dir, name);
        let mut mine: Array<_, V> = Array::try_from(self.ebpf.map_mut(name).unwrap()).unwrap();
        mine.set(0, attached, 0).unwrap();
    }

    /// The backend a new flow to `vip` reaches (it must be forwarded).
    fn backend(&mut self, vip: Ipv4Addr, client_port: u16) -> Ipv4Addr {
        let (action, backend) = self.send(vip, client_port);
        assert!(
            action == XDP_TX || action == XDP_REDIRECT,
            "new flow to {vip}: action {action}"
        );
        backend.expect("an IPv4-in-IPv4 frame")
    }
}

/// Everything the apply could have written, read back through the pins.
#[derive(Debug, PartialEq)]
struct Maps {
    vips: BTreeMap<Vec<u8>, ServiceEntry>,
    filter: Vec<u64>,
    backends: Vec<BackendEntry>,
    web_table: Vec<u32>,
}

fn key_bytes(k: &VipKey) -> Vec<u8> {
    let mut v: Vec<u8> = k.addr.iter().flat_map(|w| w.to_ne_bytes()).collect();
    v.extend_from_slice(&k.port.to_ne_bytes());
    v.extend_from_slice(&[k.protocol, k.family]);
    v
}

fn read_maps(dir: &Path, web_key: &VipKey, backend_ids: u32) -> Maps {
    let open = |name: &str| MapData::from_pin(dir.join(name)).unwrap();
    let vips: HashMap<MapData, VipKey, ServiceEntry> =
        HashMap::try_from(Map::HashMap(open(lb_common::MAP_VIPS))).unwrap();
    let vips: BTreeMap<Vec<u8>, ServiceEntry> = vips
        .iter()
        .map(|r| r.unwrap())
        .map(|(k, v)| (key_bytes(&k), v))
        .collect();
    let web = vips[&key_bytes(web_key)];
    let filter = lb_tests::harness::attached_vip_filter(dir);
    let backends: Array<MapData, BackendEntry> =
        Array::try_from(Map::Array(open(lb_common::MAP_BACKENDS))).unwrap();
    let outer: ArrayOfMaps<MapData, Array<MapData, u32>> =
        ArrayOfMaps::try_from(Map::ArrayOfMaps(open(lb_common::MAP_MAGLEV_TABLES))).unwrap();
    let table = outer.get(&web.table_index, 0).unwrap();
    Maps {
        vips,
        filter: filter.to_vec(),
        backends: (0..backend_ids)
            .map(|id| backends.get(&id, 0).unwrap())
            .collect(),
        web_table: (0..web.table_size)
            .map(|i| table.get(&i, 0).unwrap())
            .collect(),
    }
}

#[test]
fn a_failed_apply_is_rolled_back_and_the_next_good_config_applies() {
    in_lab("rb", &[OLD, NEW], |dp, first, pins| {
        let web_key = VipKey::new(WEB_VIP.into(), 80, lb_common::net::PROTO_TCP);

        // The last good config: web -> OLD.
        let good = config(vec![service("web", WEB_VIP, OLD)]);
        let applied = plan(&first, &good, &AllUp).unwrap();
        dp.apply(&applied.ops).unwrap();
        let mut probe = Probe::load(pins);
        assert_eq!(probe.backend(WEB_VIP, 1000), OLD);

        // web -> NEW first (its table flips early), then more services on
        // their own VIPs than VIPS holds: one service and one marker each.
        let extra = MAX_VIP_ENTRIES / 2 + 50;
        let mut services = vec![service("web", WEB_VIP, NEW)];
        services.extend((0..extra).map(|i| {
            let vip = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 200, 0)) + i);
            service(&format!("s{i}"), vip, NEW)
        }));
        let too_big = config(services);
        let previous = Previous {
            maglev_table_size: M,
            services: &applied.services,
            retired: &applied.retired,
            next_hops: first.next_hops,
        };
        let failing = plan(&previous, &too_big, &AllUp).unwrap();
        let backend_ids = extra + 8;
        let before = read_maps(pins, &web_key, backend_ids);
        let e = dp.apply(&failing.ops).unwrap_err();
        assert!(
            matches!(e, KernelError::RolledBack { .. }),
            "expected a rolled-back apply, got {e}"
        );
        assert!(e.to_string().contains("VIPS"), "{e}");

        // Exactly the maps of before, and packets see the last good state.
        assert_eq!(read_maps(pins, &web_key, backend_ids), before);
        assert_eq!(probe.backend(WEB_VIP, 1001), OLD);
        let first_extra = Ipv4Addr::new(198, 18, 200, 0);
        assert_eq!(probe.send(first_extra, 1002).0, XDP_PASS);

        // The next good config applies, diffed against the unchanged view.
        let next = config(vec![service("web", WEB_VIP, NEW)]);
        let p = plan(&previous, &next, &AllUp).unwrap();
        assert!(!p.ops.is_empty());
        dp.apply(&p.ops).unwrap();
        assert_eq!(probe.backend(WEB_VIP, 1003), NEW);
        let _unused: IpAddr = WEB_VIP.into();
    });
}

/// Global counter `c` as `lb stats` reads it (the global map's value plus
/// the shares of backend ids `0..ids`), and the global map's own value.
fn global(dir: &Path, c: GlobalCounter, ids: u32) -> (u64, u64) {
    let open = |name: &str| MapData::from_pin(dir.join(name)).unwrap();
    let own: PerCpuArray<MapData, u64> =
        PerCpuArray::try_from(Map::PerCpuArray(open(lb_common::MAP_GLOBAL_STATS))).unwrap();
    let own: u64 = own.get(&(c as u32), 0).unwrap().iter().sum();
    let stats: PerCpuArray<MapData, BackendStats> =
        PerCpuArray::try_from(Map::PerCpuArray(open(lb_common::MAP_BACKEND_STATS))).unwrap();
    let shares: u64 = (0..ids)
        .flat_map(|id| {
            stats
                .get(&id, 0)
                .unwrap()
                .iter()
                .copied()
                .collect::<Vec<_>>()
        })
        .map(|s| s.global_share(c))
        .sum();
    (own + shares, own)
}

/// A backend id given out again is zeroed first: its shares of the global
/// counters (`conntrack_hit`, `tx`, `redirect`, which the datapath counts in
/// the backend's record) move into the global map, so that what `lb stats`
/// shows never goes back.
#[test]
fn zeroing_a_backend_id_for_reuse_keeps_the_global_totals() {
    in_lab("rz", &[OLD], |dp, first, pins| {
        let applied = plan(&first, &config(vec![service("web", WEB_VIP, OLD)]), &AllUp).unwrap();
        dp.apply(&applied.ops).unwrap();
        let id = applied.services[0].backends[0].id;
        let mut probe = Probe::load(pins);
        // Three flows: a SYN each (new), then two more packets each (hits).
        for port in 2000..2003 {
            for tcp in [Tcp::Syn, Tcp::Ack, Tcp::Ack] {
                let (action, _) = probe.packet(WEB_VIP, port, tcp);
                assert!(action == XDP_TX || action == XDP_REDIRECT, "{action}");
            }
        }
        let counters = [
            GlobalCounter::ConntrackHit,
            GlobalCounter::Tx,
            GlobalCounter::Redirect,
        ];
        let before: Vec<(u64, u64)> = counters.iter().map(|&c| global(pins, c, 8)).collect();
        assert_eq!(before[0], (6, 0), "six hits, all in the backend's record");
        assert_eq!(before[1].0 + before[2].0, 9, "nine packets sent");
        assert_eq!((before[1].1, before[2].1), (0, 0));

        dp.apply(&[MapOp::ZeroBackendStats { id }]).unwrap();
        for (c, (total, _)) in counters.iter().zip(&before) {
            assert_eq!(global(pins, *c, 8), (*total, *total), "{c:?}");
        }
        // Zeroing again moves nothing more.
        dp.apply(&[MapOp::ZeroBackendStats { id }]).unwrap();
        for (c, (total, _)) in counters.iter().zip(&before) {
            assert_eq!(global(pins, *c, 8), (*total, *total), "{c:?}");
        }
    });
}

/// Service `service_id`'s counters as `lb stats` reads them: its record
/// (its misses) plus the hits in the records of backend ids `ids`.
fn service_total(dir: &Path, service_id: u32, ids: &[u32]) -> ServiceStats {
    let open = |name: &str| MapData::from_pin(dir.join(name)).unwrap();
    let services: PerCpuArray<MapData, ServiceStats> =
        PerCpuArray::try_from(Map::PerCpuArray(open(lb_common::MAP_SERVICE_STATS))).unwrap();
    let record = services
        .get(&service_id, 0)
        .unwrap()
        .iter()
        .fold(ServiceStats::default(), |a, s| a.plus(*s));
    ids.iter()
        .map(|&id| backend_record(dir, id))
        .fold(record, |a, b| a.plus_share(&b))
}

/// Backend id `id`'s record, summed over CPUs.
fn backend_record(dir: &Path, id: u32) -> BackendStats {
    let stats: PerCpuArray<MapData, BackendStats> = PerCpuArray::try_from(Map::PerCpuArray(
        MapData::from_pin(dir.join(lb_common::MAP_BACKEND_STATS)).unwrap(),
    ))
    .unwrap();
    stats
        .get(&id, 0)
        .unwrap()
        .iter()
        .fold(BackendStats::default(), |a, s| a.plus(*s))
}

/// A hit is counted for its service in the backend's record only, so a
/// backend id that leaves its service takes the service's hits with it
/// unless they move: the agent moves them into the service's record (and
/// `conntrack_hit` into the global map) when it retires the id, so that the
/// service's counters, which `lb stats` sums over the ids the service holds,
/// never go back.
#[test]
fn retiring_a_backend_moves_its_hits_into_its_service() {
    in_lab("rh", &[OLD, NEW], |dp, first, pins| {
        let applied = plan(&first, &config(vec![service("web", WEB_VIP, OLD)]), &AllUp).unwrap();
        dp.apply(&applied.ops).unwrap();
        let service_id = applied.services[0].service_id;
        let old_id = applied.services[0].backends[0].id;
        let mut probe = Probe::load(pins);
        // Three flows: a SYN each (a miss: the service's record), then two
        // more packets each (hits: the backend's record).
        let mut bytes = 0;
        for port in 3000..3003 {
            for tcp in [Tcp::Syn, Tcp::Ack, Tcp::Ack] {
                let (action, _) = probe.packet(WEB_VIP, port, tcp);
                assert!(action == XDP_TX || action == XDP_REDIRECT, "{action}");
                let sent = tcp_v4(CLIENT, port, WEB_VIP, 80, tcp, b"", &V4::default());
                bytes += sent.len() as u64;
            }
        }
        let hits = backend_record(pins, old_id);
        assert_eq!(hits.hits, 6);
        let total = service_total(pins, service_id, &[old_id]);
        assert_eq!((total.packets, total.bytes), (9, bytes));
        assert_eq!(global(pins, GlobalCounter::ConntrackHit, 8), (6, 0));

        // web -> NEW: OLD's id is retired, its hits move.
        let previous = Previous {
            maglev_table_size: M,
            services: &applied.services,
            retired: &applied.retired,
            next_hops: first.next_hops,
        };
        let next = plan(
            &previous,
            &config(vec![service("web", WEB_VIP, NEW)]),
            &AllUp,
        )
        .unwrap();
        dp.apply(&next.ops).unwrap();
        assert!(next.retired.iter().any(|r| r.id == old_id), "OLD retired");
        assert_eq!(next.services[0].service_id, service_id);
        let new_ids: Vec<u32> = next.services[0].backends.iter().map(|b| b.id).collect();
        assert!(!new_ids.contains(&old_id));
        let left = backend_record(pins, old_id);
        assert_eq!((left.hits, left.hit_bytes), (0, 0), "hits moved out");
        assert_eq!(left.packets, hits.packets, "its own counters stay");
        assert_eq!(service_total(pins, service_id, &new_ids), total);
        assert_eq!(global(pins, GlobalCounter::ConntrackHit, 8), (6, 6));

        // Retiring nothing more moves nothing more.
        let again = plan(
            &Previous {
                maglev_table_size: M,
                services: &next.services,
                retired: &next.retired,
                next_hops: first.next_hops,
            },
            &config(vec![service("web", WEB_VIP, NEW)]),
            &AllUp,
        )
        .unwrap();
        dp.apply(&again.ops).unwrap();
        assert_eq!(service_total(pins, service_id, &new_ids), total);
        assert_eq!(global(pins, GlobalCounter::ConntrackHit, 8), (6, 6));
    });
}
