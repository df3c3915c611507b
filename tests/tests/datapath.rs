//! Privileged test of the datapath layer alone (no YAML): open on a veth in a
//! namespace, apply planner output, check the pinned maps, re-open to adopt.

use std::net::IpAddr;

use aya::maps::{Array, ArrayOfMaps, HashMap, Map, MapData};
use lb::config::{Config, EncapConfig};
use lb::kernel::{Datapath, ModeChoice, OpenOptions};
use lb::plan::{AllUp, Previous, plan};
use lb::state::AppliedState;
use lb_common::{BACKEND_LIVE, BackendEntry, FlowTableConfig, ServiceEntry, Settings, VipKey};
use lb_tests::configs::web_service;
use lb_tests::netns::{NetNsPair, TestBpffs, in_netns};

fn cfg(backends: &[&str]) -> Config {
    web_service(
        backends,
        lb::config::Encapsulation::Ipip,
        lb::config::DEFAULT_SECOND_CHANCE_S,
    )
}

#[test]
fn apply_plans_then_adopt_pins() {
    let net = NetNsPair::new("dp");
    let fs = TestBpffs::new("dp");
    let root = fs.root.clone();
    let ifname = net.lb_if.clone();
    let dir = lb::kernel::pin_dir(&root, net.lb_netns(), &ifname);
    let opts = OpenOptions {
        pin_root: root.clone(),
        ifname: ifname.clone(),
        netns: net.lb_netns(),
        conntrack_entries: 4096,
        conntrack_insert_budget: 0,
        mode: ModeChoice::Auto,
        fresh: false,
    };
    let o = opts.clone();
    let state = in_netns(&net.lb, move || {
        let (mut dp, adopted) = Datapath::open(&o, None).unwrap();
        assert!(adopted.is_none());
        let settings = dp.write_settings(&EncapConfig::default()).unwrap();
        assert_eq!(settings.ifindex, dp.interface().ifindex);
        assert_ne!(settings.flags & lb_common::SETTINGS_HAS_SOURCE_V4, 0);
        // The peer answers ARP: resolve the next hop (nudge, then retry).
        let mut nh = None;
        for _ in 0..20 {
            nh = lb::agent::neighbours::resolve_all(&["198.18.3.2".parse().unwrap()])[0].next_hop;
            if nh.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let nh = nh.unwrap_or_else(|| {
            let out = std::process::Command::new("ip")
                .args(["-d", "neigh"])
                .output()
                .unwrap();
            let l = std::process::Command::new("ip")
                .args(["-d", "link"])
                .output()
                .unwrap();
            panic!(
                "next hop not resolved: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&l.stdout)
            )
        });
        let next_hops: lb::plan::NextHops = ["198.18.3.2", "198.18.3.3"]
            .iter()
            .map(|a| (a.parse().unwrap(), nh))
            .collect();
        let c = cfg(&["198.18.3.2", "198.18.3.3"]);
        let first = Previous {
            next_hops: &next_hops,
            ..Previous::default()
        };
        let p = plan(&first, &c, &AllUp).unwrap();
        dp.apply(&p.ops).unwrap();
        let p2 = plan(
            &Previous {
                maglev_table_size: 251,
                services: &p.services,
                retired: &p.retired,
                next_hops: &next_hops,
            },
            &cfg(&["198.18.3.2"]),
            &AllUp,
        )
        .unwrap();
        dp.apply(&p2.ops).unwrap();
        AppliedState {
            ifname: dp.interface().name.clone(),
            ifindex: dp.interface().ifindex,
            pin_dir: dp.pin_dir().into(),
            config_path: "/nowhere".into(),
            applied_at_unix_ms: 1,
            last_apply_seconds: 0.0,
            xdp_mode: dp.mode().into(),
            maglev_table_size: 251,
            services: p2.services,
            retired_backends: p2.retired,
            announce: Default::default(),
        }
    });
    // Maps through the pins.
    let vips: HashMap<MapData, VipKey, ServiceEntry> =
        HashMap::try_from(Map::HashMap(MapData::from_pin(dir.join("VIPS")).unwrap())).unwrap();
    let s = &state.services[0];
    let e = vips.get(&VipKey::new(s.vip, 80, 6), 0).unwrap();
    assert_eq!((e.table_index, e.table_size), (1, 251));
    let outer: ArrayOfMaps<MapData, Array<MapData, u32>> = ArrayOfMaps::try_from(Map::ArrayOfMaps(
        MapData::from_pin(dir.join("MAGLEV_TABLES")).unwrap(),
    ))
    .unwrap();
    let inner = outer.get(&1, 0).unwrap();
    let id2 = s.backends[0].id;
    assert!((0..251).all(|i| inner.get(&i, 0).unwrap() == id2));
    let backends: Array<MapData, BackendEntry> =
        Array::try_from(Map::Array(MapData::from_pin(dir.join("BACKENDS")).unwrap())).unwrap();
    let b = backends.get(&id2, 0).unwrap();
    assert_ne!(b.flags & BACKEND_LIVE, 0);
    assert_ne!(
        b.flags & lb_common::BACKEND_HAS_NEXT_HOP,
        0,
        "next hop not filled"
    );
    let retired = state.retired_backends[0].id;
    assert_eq!(backends.get(&retired, 0).unwrap().flags & BACKEND_LIVE, 0);
    let settings: Array<MapData, Settings> =
        Array::try_from(Map::Array(MapData::from_pin(dir.join("SETTINGS")).unwrap())).unwrap();
    assert_eq!(settings.get(&0, 0).unwrap().ifindex, state.ifindex);
    assert!(dir.join("link").exists());
    // The VIP filter is the program's own, not pinned: it holds the bits
    // of the applied services.
    let words =
        lb_common::vip_filter_words(state.services.iter().map(lb::plan::applied_service_key));
    let expected_filter = |words: &std::collections::BTreeMap<u32, u64>| {
        let mut all = [0u64; lb_common::VIP_FILTER_WORDS as usize];
        for (&w, &bits) in words {
            all[w as usize] = bits;
        }
        all
    };
    assert!(!words.is_empty());
    assert_eq!(
        lb_tests::harness::attached_vip_filter(&dir),
        expected_filter(&words)
    );
    assert!(!dir.join(lb_common::MAP_VIP_FILTER).exists());
    // The program reads its own copies of the pinned settings and secret.
    let pinned_config = || -> FlowTableConfig {
        let m: Array<MapData, FlowTableConfig> = Array::try_from(Map::Array(
            MapData::from_pin(dir.join(lb_common::MAP_FLOW_TABLE_CONFIG)).unwrap(),
        ))
        .unwrap();
        m.get(&0, 0).unwrap()
    };
    let live_settings =
        || -> Settings { lb_tests::harness::attached_global(&dir, lb_common::LIVE_SETTINGS) };
    let live_config = || -> FlowTableConfig {
        lb_tests::harness::attached_global(&dir, lb_common::LIVE_FLOW_TABLE_CONFIG)
    };
    let config = pinned_config();
    assert_ne!(config.key, Default::default(), "no secret");
    assert_eq!(live_config(), config);
    assert_eq!(live_settings(), settings.get(&0, 0).unwrap());
    // What an earlier release pinned as its filter (any pinned map will do).
    let legacy = dir.join(lb_common::LEGACY_PIN_VIP_FILTER);
    MapData::from_pin(dir.join("SETTINGS"))
        .unwrap()
        .pin(&legacy)
        .unwrap();

    // Re-open with the state: adopted, maps untouched; the new program's
    // filter filled from the state, the earlier release's pin removed.
    let o = opts.clone();
    let st = state.clone();
    let adopted = in_netns(&net.lb, move || {
        let (dp, adopted) = Datapath::open(&o, Some(st)).unwrap();
        assert!(dp.adopted());
        adopted
    });
    assert_eq!(adopted.unwrap(), state);
    assert_eq!(
        lb_tests::harness::attached_vip_filter(&dir),
        expected_filter(&words)
    );
    assert!(!legacy.exists(), "the earlier release's filter pin is left");
    assert_eq!(live_config(), config, "the adopted secret");
    assert_eq!(live_settings(), settings.get(&0, 0).unwrap());
    assert_eq!(vips.get(&VipKey::new(s.vip, 80, 6), 0).unwrap(), e);
    assert_eq!(backends.get(&id2, 0).unwrap(), b);

    // A state for another ifindex is not adopted: everything is cleared.
    let o = opts.clone();
    let mut other = state.clone();
    other.ifindex += 1000;
    in_netns(&net.lb, move || {
        let (dp, adopted) = Datapath::open(&o, Some(other)).unwrap();
        assert!(adopted.is_none() && !dp.adopted());
    });
    let fresh: HashMap<MapData, VipKey, ServiceEntry> =
        HashMap::try_from(Map::HashMap(MapData::from_pin(dir.join("VIPS")).unwrap())).unwrap();
    assert_eq!(fresh.keys().count(), 0, "stale state was adopted");
    let _unused: IpAddr = s.vip;
    // Clean up the attachment.
    lb::kernel::detach_and_remove(&dir).unwrap();
    drop(fs);
}
