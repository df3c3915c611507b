//! Privileged test of the datapath layer's GUE and second-chance writes: a
//! GUE service's backends carry `BACKEND_ENCAP_GUE`, the settings carry the
//! GUE port and the per-flow source prefixes, and a table change leaves the
//! VIPS entry naming the previous table until now + the grace period
//! (`CLOCK_MONOTONIC`, the clock of `bpf_ktime_get_ns`).

use std::net::Ipv4Addr;

use aya::maps::{Array, HashMap, Map, MapData};
use lb::config::{Config, EncapConfig, Encapsulation, SourcePrefix};
use lb::kernel::{Datapath, ModeChoice, OpenOptions};
use lb::plan::{AllUp, Plan, Previous, plan};
use lb_common::{
    BACKEND_ENCAP_GUE, BackendEntry, SETTINGS_SOURCE_PREFIX_V4, ServiceEntry, Settings, VipKey,
};
use lb_tests::configs::web_service;
use lb_tests::netns::{NetNsPair, TestBpffs, in_netns};

const M: u32 = 251;
const GRACE_S: u32 = 120;

fn cfg(backends: &[&str]) -> Config {
    web_service(backends, Encapsulation::Gue, GRACE_S)
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) },
        0
    );
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn next(dp: &mut Datapath, before: &Plan, backends: &[&str]) -> Plan {
    let p = plan(
        &Previous {
            maglev_table_size: M,
            services: &before.services,
            retired: &before.retired,
            ..Previous::default()
        },
        &cfg(backends),
        &AllUp,
    )
    .unwrap();
    dp.apply(&p.ops).unwrap();
    p
}

#[test]
fn gue_service_entries_name_the_previous_table_until_the_grace_period_ends() {
    let net = NetNsPair::new("dpgue");
    let fs = TestBpffs::new("dpgue");
    let dir = lb::kernel::pin_dir(&fs.root, net.lb_netns(), &net.lb_if);
    let opts = OpenOptions {
        pin_root: fs.root.clone(),
        ifname: net.lb_if.clone(),
        netns: net.lb_netns(),
        conntrack_entries: 4096,
        conntrack_insert_budget: 0,
        mode: ModeChoice::Auto,
        fresh: false,
    };
    let (p1, p2, before, after) = in_netns(&net.lb, move || {
        let (mut dp, _) = Datapath::open(&opts, None).unwrap();
        let encap = EncapConfig {
            gue_port: Some(7777),
            source_prefix_v4: Some(SourcePrefix {
                base: Ipv4Addr::new(198, 18, 5, 0),
                len: 24,
            }),
            ..Default::default()
        };
        dp.write_settings(&encap).unwrap();
        let p0 = plan(
            &Previous::default(),
            &cfg(&["198.18.3.2", "198.18.3.3"]),
            &AllUp,
        )
        .unwrap();
        dp.apply(&p0.ops).unwrap();
        let before = monotonic_ns();
        let p1 = next(&mut dp, &p0, &["198.18.3.2", "198.18.3.3", "198.18.3.4"]);
        let p2 = next(&mut dp, &p1, &["198.18.3.2", "198.18.3.4"]);
        let after = monotonic_ns();
        (p1, p2, before, after)
    });
    let vips: HashMap<MapData, VipKey, ServiceEntry> =
        HashMap::try_from(Map::HashMap(MapData::from_pin(dir.join("VIPS")).unwrap())).unwrap();
    let s = &p2.services[0];
    let e = vips.get(&VipKey::new(s.vip, 80, 6), 0).unwrap();
    // Second change: live table back in buffer 0, previous = buffer 1.
    assert_eq!((e.table_index, e.table_size), (2 * s.service_id, M));
    assert_eq!(
        (e.previous_table_index, e.previous_table_size),
        (2 * s.service_id + 1, M)
    );
    let grace = u64::from(GRACE_S) * 1_000_000_000;
    assert!(
        e.previous_until_ns >= before + grace && e.previous_until_ns <= after + grace,
        "deadline {} not within [{}, {}]",
        e.previous_until_ns,
        before + grace,
        after + grace
    );
    assert_eq!(p1.services[0].table_parity, 1);
    let backends: Array<MapData, BackendEntry> =
        Array::try_from(Map::Array(MapData::from_pin(dir.join("BACKENDS")).unwrap())).unwrap();
    for b in &s.backends {
        let entry = backends.get(&b.id, 0).unwrap();
        assert_ne!(entry.flags & BACKEND_ENCAP_GUE, 0, "backend {}", b.address);
    }
    let settings: Array<MapData, Settings> =
        Array::try_from(Map::Array(MapData::from_pin(dir.join("SETTINGS")).unwrap())).unwrap();
    let st = settings.get(&0, 0).unwrap();
    assert_eq!(u16::from_be(st.gue_port), 7777);
    assert_ne!(st.flags & SETTINGS_SOURCE_PREFIX_V4, 0);
    assert_eq!(st.source_v4.to_ne_bytes(), [198, 18, 5, 0]);
    assert_eq!(st.source_host_mask_v4, 0xff);
    lb::kernel::detach_and_remove(&dir).unwrap();
    drop(fs);
}
