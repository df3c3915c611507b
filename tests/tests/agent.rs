//! Privileged end-to-end tests of `lb run` in a network namespace: live scale
//! events from the YAML, checked through the pinned maps and the state file,
//! an invalid file that changes nothing, and kill -9 + restart that adopts
//! the pins (maps and a hand-inserted connection-table entry untouched, link
//! still attached). Needs root; build `lb` first (`cargo build -p lb-userspace`)
//! or set `LB_BIN`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use aya::maps::{Array, ArrayOfMaps, HashMap, Map, MapData};
use lb::state::{AppliedState, BackendState};
use lb_common::{
    BACKEND_LIVE, BackendEntry, FlowBucket, FlowEntry, FlowHashKey, FlowKey, FlowTableConfig,
    ServiceEntry, VipKey,
    flow_table::user::{conntrack_get, conntrack_put, flow_table_config},
};
use lb_tests::agent_process::{Agent, lb_bin};
use lb_tests::netns::{NetNsPair, TestBpffs};

struct Setup {
    net: NetNsPair,
    fs: TestBpffs,
    config: PathBuf,
    state_dir: PathBuf,
    log: PathBuf,
}

impl Setup {
    fn pin_dir(&self) -> PathBuf {
        lb::kernel::pin_dir(&self.fs.root, self.net.lb_netns(), &self.net.lb_if)
    }

    fn state_file(&self) -> PathBuf {
        lb::state::state_path(&self.state_dir, self.net.lb_netns(), &self.net.lb_if)
    }

    fn start(&self, extra: &[&str]) -> Agent {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = self
            .net
            .exec_in_lb(lb_bin().to_str().unwrap())
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .args(["--iface", &self.net.lb_if, "--xdp-mode", "skb"])
            .arg("--pin-root")
            .arg(&self.fs.root)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Agent::new(child)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn state(&self) -> Option<AppliedState> {
        AppliedState::read(&self.state_file()).ok().flatten()
    }

    /// Waits for a state file newer than `after` (applied_at), up to 10 s.
    fn wait_applied(&self, after: u64) -> AppliedState {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.state()
                && s.applied_at_unix_ms > after
            {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "no apply after {after}; agent log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Writes the config by a temporary file renamed over it (editor style).
    fn write_renamed(&self, text: &str) {
        let tmp = self.config.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.config).unwrap();
    }

    /// Writes the config in place.
    fn write_in_place(&self, text: &str) {
        std::fs::write(&self.config, text).unwrap();
    }
}

fn open(dir: &Path, name: &str) -> MapData {
    MapData::from_pin(dir.join(name)).unwrap_or_else(|e| panic!("open pin {name}: {e}"))
}

/// The connection table's secret pinned in `dir`.
fn pinned_secret(dir: &Path) -> FlowHashKey {
    let m: Array<MapData, FlowTableConfig> =
        Array::try_from(Map::Array(open(dir, lb_common::MAP_FLOW_TABLE_CONFIG))).unwrap();
    flow_table_config(&m).unwrap().key
}

fn vips(dir: &Path) -> BTreeMap<(u16, u8, [u32; 4]), ServiceEntry> {
    let m: HashMap<MapData, VipKey, ServiceEntry> =
        HashMap::try_from(Map::HashMap(open(dir, lb_common::MAP_VIPS))).unwrap();
    m.iter()
        .map(|r| {
            let (k, v) = r.unwrap();
            ((u16::from_be(k.port), k.protocol, k.addr), v)
        })
        .collect()
}

fn backend(dir: &Path, id: u32) -> BackendEntry {
    let m: Array<MapData, BackendEntry> =
        Array::try_from(Map::Array(open(dir, lb_common::MAP_BACKENDS))).unwrap();
    m.get(&id, 0).unwrap()
}

fn table(dir: &Path, index: u32) -> Vec<u32> {
    let outer: ArrayOfMaps<MapData, Array<MapData, u32>> =
        ArrayOfMaps::try_from(Map::ArrayOfMaps(open(dir, lb_common::MAP_MAGLEV_TABLES))).unwrap();
    let inner = outer.get(&index, 0).unwrap();
    (0..inner.len())
        .map(|i| inner.get(&i, 0).unwrap())
        .collect()
}

fn v4(s: &str) -> u32 {
    let a: std::net::Ipv4Addr = s.parse().unwrap();
    u32::from_ne_bytes(a.octets())
}

/// Checks every service of the state against the maps: VIPS entry (id,
/// live index, size), the live table's slots per backend id equal the state's
/// slot counts, backends' LIVE flag and generation.
fn check_maps(dir: &Path, st: &AppliedState) {
    let v = vips(dir);
    for s in &st.services {
        let IpAddr::V4(vip) = s.vip else {
            panic!("v4 only here")
        };
        let proto = if s.protocol == "tcp" { 6 } else { 17 };
        let key = (s.port, proto, [u32::from_ne_bytes(vip.octets()), 0, 0, 0]);
        let e = v
            .get(&key)
            .unwrap_or_else(|| panic!("no VIPS entry for {}", s.name));
        assert_eq!(e.service_id, s.service_id, "{}", s.name);
        assert_eq!(
            e.table_index,
            2 * s.service_id + s.table_parity,
            "{}",
            s.name
        );
        assert_eq!(e.table_size, s.table_size, "{}", s.name);
        // The address marker.
        assert!(v.contains_key(&(0, 0, key.2)), "marker of {}", s.name);
        let slots = if s.table_size > 0 {
            table(dir, e.table_index)
        } else {
            Vec::new()
        };
        assert_eq!(slots.len() as u32, s.table_size);
        for b in &s.backends {
            let count = slots.iter().filter(|&&id| id == b.id).count() as u32;
            assert_eq!(count, b.slots, "{} {}", s.name, b.address);
            let be = backend(dir, b.id);
            let IpAddr::V4(a) = b.address else { panic!() };
            assert_eq!(be.addr[0], u32::from_ne_bytes(a.octets()));
            assert_eq!(be.generation, b.generation);
            let live = b.state != BackendState::Down || s.panic;
            assert_eq!(be.flags & BACKEND_LIVE != 0, live, "{} LIVE", b.address);
        }
        let ids: Vec<u32> = s.backends.iter().map(|b| b.id).collect();
        assert!(
            slots.iter().all(|id| ids.contains(id)),
            "table refers to foreign ids"
        );
    }
    for r in &st.retired_backends {
        assert_eq!(
            backend(dir, r.id).flags & BACKEND_LIVE,
            0,
            "retired {} still LIVE",
            r.id
        );
    }
    // No VIPS entry beyond the services and their markers.
    let vip_count: std::collections::BTreeSet<IpAddr> = st.services.iter().map(|s| s.vip).collect();
    assert_eq!(
        v.len(),
        st.services.len() + vip_count.len(),
        "stale VIPS entries: {v:?}"
    );
}

/// (address, weight, drain) of a backend.
type Backend<'a> = (&'a str, u32, bool);

/// YAML of services given as (name, vip, port, backends).
fn yaml(services: &[(&str, &str, u16, &[Backend<'_>])]) -> String {
    let mut s = String::from("maglev_table_size: 251\nconntrack_entries: 4096\nservices:\n");
    for (name, vip, port, backends) in services {
        s += &format!(
            "  - name: {name}\n    vip: {vip}\n    port: {port}\n    protocol: tcp\n    backends:\n"
        );
        for (addr, weight, drain) in *backends {
            s += &format!(
                "      - address: {addr}\n        weight: {weight}\n        drain: {drain}\n"
            );
        }
    }
    s
}

fn backend_of<'a>(
    st: &'a AppliedState,
    service: &str,
    addr: &str,
) -> &'a lb::state::AppliedBackend {
    let a: IpAddr = addr.parse().unwrap();
    st.services
        .iter()
        .find(|s| s.name == service)
        .unwrap()
        .backends
        .iter()
        .find(|b| b.address == a)
        .unwrap()
}

fn xdp_attached(net: &NetNsPair) -> bool {
    let out = std::process::Command::new("ip")
        .args(["-n", &net.lb, "-j", "link", "show", "dev", &net.lb_if])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.contains("\"xdp\"") || text.contains("xdpgeneric") || text.contains("\"prog\"")
}

/// Runs one named step of a scenario that must share one agent: a failure
/// inside is re-raised naming the step, so the report says which step broke.
fn step<T>(name: &str, body: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            let why = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(panic without a message)");
            panic!("step `{name}` failed: {why}");
        }
    }
}

/// A fresh namespace pair, bpffs and file paths for one agent test.
fn setup(tag: &str) -> Setup {
    let net = NetNsPair::new(tag);
    let fs = TestBpffs::new(tag);
    Setup {
        config: fs.base.join("lb.yaml"),
        state_dir: fs.base.join("state"),
        log: fs.base.join("agent.log"),
        net,
        fs,
    }
}

/// `lb SUBCOMMAND --iface IF ARGS --pin-root .. --state-dir ..` in the agent's
/// namespace (pins are keyed by it), run to completion and required to succeed.
fn lb_ok(setup: &Setup, subcommand: &str, args: &[&str]) -> std::process::Output {
    let out = setup
        .net
        .exec_in_lb(lb_bin().to_str().unwrap())
        .args([subcommand, "--iface", &setup.net.lb_if])
        .args(args)
        .arg("--pin-root")
        .arg(&setup.fs.root)
        .arg("--state-dir")
        .arg(&setup.state_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "lb {subcommand}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn scale_events_invalid_config_and_restart() {
    let setup = setup("agent");
    let dir = setup.pin_dir();
    let b2 = ("198.18.3.2", 1, false);
    let b3 = ("198.18.3.3", 1, false);
    let b4 = ("198.18.3.4", 1, false);
    let b4w = ("198.18.3.4", 3, false);
    let c1 = ("198.18.4.2", 1, false);
    let two = yaml(&[
        ("web", "198.18.100.1", 80, &[b2, b4w]),
        ("api", "198.18.100.2", 443, &[c1]),
    ]);

    let (agent, st, id2, id3, old_table) = step("1. initial: two backends", || {
        setup.write_in_place(&yaml(&[("web", "198.18.100.1", 80, &[b2, b3])]));
        let agent = setup.start(&[]);
        let st = setup.wait_applied(0);
        assert_eq!(st.services.len(), 1);
        assert_eq!(st.services[0].table_size, 251);
        check_maps(&dir, &st);
        assert!(xdp_attached(&setup.net), "XDP not attached");
        let id2 = backend_of(&st, "web", "198.18.3.2").id;
        let id3 = backend_of(&st, "web", "198.18.3.3").id;
        let old_table = table(
            &dir,
            2 * st.services[0].service_id + st.services[0].table_parity,
        );
        (agent, st, id2, id3, old_table)
    });

    let (st, id4) = step("2. add a backend (rename over)", || {
        setup.write_renamed(&yaml(&[("web", "198.18.100.1", 80, &[b2, b3, b4])]));
        let st = setup.wait_applied(st.applied_at_unix_ms);
        check_maps(&dir, &st);
        let id4 = backend_of(&st, "web", "198.18.3.4").id;
        assert!(![id2, id3].contains(&id4));
        let new_table = table(
            &dir,
            2 * st.services[0].service_id + st.services[0].table_parity,
        );
        // Maglev moves slots mostly to the new backend; a few may shuffle between
        // the old ones (established flows stay through the connection table).
        let to_new = old_table
            .iter()
            .zip(&new_table)
            .filter(|(o, n)| o != n && **n == id4)
            .count();
        let between_old = old_table
            .iter()
            .zip(&new_table)
            .filter(|(o, n)| o != n && **n != id4)
            .count();
        assert_eq!(to_new as u32, backend_of(&st, "web", "198.18.3.4").slots);
        assert!(
            between_old * 20 <= old_table.len(),
            "{between_old} slots moved between old backends"
        );
        assert!(backend_of(&st, "web", "198.18.3.4").slots > 0);
        (st, id4)
    });

    let st = step(
        "3. drain a backend (in place): no slots, still LIVE",
        || {
            let b3d = ("198.18.3.3", 1, true);
            setup.write_in_place(&yaml(&[("web", "198.18.100.1", 80, &[b2, b3d, b4])]));
            let st = setup.wait_applied(st.applied_at_unix_ms);
            check_maps(&dir, &st);
            let d = backend_of(&st, "web", "198.18.3.3");
            assert_eq!((d.state, d.slots, d.id), (BackendState::Draining, 0, id3));
            assert_ne!(backend(&dir, id3).flags & BACKEND_LIVE, 0);
            st
        },
    );

    let st = step(
        "4. remove the drained backend: retired, LIVE cleared",
        || {
            setup.write_renamed(&yaml(&[("web", "198.18.100.1", 80, &[b2, b4])]));
            let st = setup.wait_applied(st.applied_at_unix_ms);
            check_maps(&dir, &st);
            assert!(st.retired_backends.iter().any(|r| r.id == id3));
            assert_eq!(backend(&dir, id3).flags & BACKEND_LIVE, 0);
            st
        },
    );

    let st = step("5. reweight a backend to 3", || {
        setup.write_renamed(&yaml(&[("web", "198.18.100.1", 80, &[b2, b4w])]));
        let st = setup.wait_applied(st.applied_at_unix_ms);
        check_maps(&dir, &st);
        let s2 = backend_of(&st, "web", "198.18.3.2").slots;
        let s4 = backend_of(&st, "web", "198.18.3.4").slots;
        assert!(s4 > 2 * s2, "weight 3 vs 1: {s4} vs {s2}");
        st
    });

    let st = step(
        "6. add a service on another VIP; lb stats sees both",
        || {
            setup.write_renamed(&two);
            let st = setup.wait_applied(st.applied_at_unix_ms);
            check_maps(&dir, &st);
            assert_eq!(st.services.len(), 2);
            assert_ne!(st.services[0].service_id, st.services[1].service_id);
            // `lb stats --json` reads the same pins and state file.
            let out = lb_ok(&setup, "stats", &["--json", "--interval", "0"]);
            let json = String::from_utf8_lossy(&out.stdout);
            let v: serde_json::Value = serde_json::from_str(&json).expect("stats JSON");
            for name in ["\"web\"", "\"api\"", "198.18.3.4", "198.18.4.2"] {
                assert!(json.contains(name), "{name} missing from lb stats: {v}");
            }
            for svc in v["services"].as_array().expect("services") {
                assert_eq!(svc["encap"], "ipip", "the default encapsulation: {v}");
            }
            st
        },
    );

    let st = step("6b. a new table size for both services, and back", || {
        // Both services get new tables in one batch write, each checked slot by slot.
        setup.write_renamed(&two.replace("maglev_table_size: 251", "maglev_table_size: 257"));
        let st = setup.wait_applied(st.applied_at_unix_ms);
        check_maps(&dir, &st);
        assert!(st.services.iter().all(|s| s.table_size == 257), "{st:?}");
        setup.write_renamed(&two);
        let st = setup.wait_applied(st.applied_at_unix_ms);
        check_maps(&dir, &st);
        assert!(st.services.iter().all(|s| s.table_size == 251), "{st:?}");
        st
    });

    let st = step(
        "7. an invalid file changes nothing; SIGHUP re-reads",
        || {
            let vips_before = vips(&dir);
            setup.write_renamed(
                "maglev_table_size: 250\nservices:\n  - name: web\n    vip: not-an-ip\n",
            );
            std::thread::sleep(Duration::from_millis(1500));
            assert_eq!(
                setup.state().unwrap(),
                st,
                "state changed after an invalid file"
            );
            assert_eq!(vips(&dir), vips_before);
            check_maps(&dir, &st);
            assert!(
                setup.log_text().contains("config refused"),
                "log:\n{}",
                setup.log_text()
            );
            setup.write_renamed(&two);
            let st = setup.wait_applied(st.applied_at_unix_ms);
            assert!(st.services.len() == 2);
            // SAFETY: signalling our own child.
            let r = unsafe { libc::kill(agent.child.id() as i32, libc::SIGHUP) };
            assert_eq!(r, 0);
            let st = setup.wait_applied(st.applied_at_unix_ms);
            assert!(
                setup.log_text().contains("SIGHUP: no change"),
                "log:\n{}",
                setup.log_text()
            );
            st
        },
    );

    let agent = step(
        "8. kill -9 and restart: pins and a conntrack entry adopted",
        || {
            let flow = flow_to_web();
            let pinned_to = FlowEntry {
                backend_id: id4,
                generation: backend_of(&st, "web", "198.18.3.4").generation,
            };
            let secret = pinned_secret(&dir);
            assert_ne!(secret, FlowHashKey::default(), "the agent wrote no secret");
            put_flow(&dir, &secret, &flow, pinned_to);
            let vips_before = vips(&dir);
            let backends_before: Vec<BackendEntry> = (0..8).map(|i| backend(&dir, i)).collect();
            agent.kill9();
            assert!(xdp_attached(&setup.net), "XDP detached when the agent died");
            assert!(dir.join("link").exists());
            let agent = setup.start(&[]);
            let st2 = setup.wait_applied(st.applied_at_unix_ms);
            assert!(
                setup.log_text().contains("adopted"),
                "log:\n{}",
                setup.log_text()
            );
            assert_eq!(
                st2.services, st.services,
                "restart changed the applied services"
            );
            check_maps(&dir, &st2);
            assert_eq!(vips(&dir), vips_before);
            let backends_after: Vec<BackendEntry> = (0..8).map(|i| backend(&dir, i)).collect();
            for (a, b) in backends_before.iter().zip(&backends_after) {
                assert_eq!(
                    (a.addr, a.generation, a.flags & BACKEND_LIVE),
                    (b.addr, b.generation, b.flags & BACKEND_LIVE)
                );
            }
            // The adopted table keeps its secret (else every flow would miss), and
            // the secret is never logged.
            assert_eq!(
                pinned_secret(&dir),
                secret,
                "the secret changed on adoption"
            );
            let log = setup.log_text();
            for word in secret.finish {
                assert!(!log.contains(&format!("{word:x}")) && !log.contains(&word.to_string()));
            }
            assert_eq!(get_flow(&dir, &secret, &flow), Some(pinned_to));
            assert!(xdp_attached(&setup.net));
            agent
        },
    );
    drop(agent);
    lb::kernel::detach_and_remove(&dir).unwrap();
}

/// A TCP flow from a client to the `web` VIP 198.18.100.1:80.
fn flow_to_web() -> FlowKey {
    FlowKey {
        src: [v4("198.18.1.2"), 0, 0, 0],
        dst: [v4("198.18.100.1"), 0, 0, 0],
        src_port: 40000u16.to_be(),
        dst_port: 80u16.to_be(),
        protocol: 6,
        family: lb_common::flow::FAMILY_V4,
        pad: [0; 2],
    }
}

/// Inserts `flow -> to` into the connection table pinned in `dir`.
fn put_flow(dir: &Path, secret: &FlowHashKey, flow: &FlowKey, to: FlowEntry) {
    let mut ct: Array<MapData, FlowBucket> =
        Array::try_from(Map::Array(open(dir, lb_common::MAP_CONNTRACK))).unwrap();
    conntrack_put(&mut ct, secret, flow, to).unwrap();
}

/// Looks `flow` up in the connection table pinned in `dir`.
fn get_flow(dir: &Path, secret: &FlowHashKey, flow: &FlowKey) -> Option<FlowEntry> {
    let ct: Array<MapData, FlowBucket> =
        Array::try_from(Map::Array(open(dir, lb_common::MAP_CONNTRACK))).unwrap();
    conntrack_get(&ct, secret, flow).unwrap()
}

/// Pins of another map layout (here an earlier release's 8-byte-value
/// connection table) are not adopted: the agent says which map differs, clears
/// the pins and starts fresh with the same config. Then `lb stop` detaches and
/// removes pins and state.
#[test]
fn pins_of_another_layout_are_replaced_and_stop_removes_them() {
    let setup = setup("layout");
    let dir = setup.pin_dir();
    setup.write_in_place(&yaml(&[(
        "web",
        "198.18.100.1",
        80,
        &[("198.18.3.2", 1, false)],
    )]));
    let agent = setup.start(&[]);
    let st = setup.wait_applied(0);
    let secret = pinned_secret(&dir);
    let flow = flow_to_web();
    let pinned_to = FlowEntry {
        backend_id: backend_of(&st, "web", "198.18.3.2").id,
        generation: backend_of(&st, "web", "198.18.3.2").generation,
    };
    put_flow(&dir, &secret, &flow, pinned_to);
    agent.kill9();

    let ct_pin = dir.join(lb_common::MAP_CONNTRACK);
    std::fs::remove_file(&ct_pin).unwrap();
    let old: Array<MapData, u64> = Array::create(1024, 0).unwrap();
    old.pin(&ct_pin).unwrap();
    let agent = setup.start(&[]);
    let st2 = setup.wait_applied(st.applied_at_unix_ms);
    let log = setup.log_text();
    assert!(
        log.contains("pinned maps of another layout (CONNTRACK: pinned type 2, key 4 B, value 8 B"),
        "log:\n{log}"
    );
    assert_eq!(st2.services.len(), st.services.len());
    check_maps(&dir, &st2);
    assert_eq!(get_flow(&dir, &secret, &flow), None, "a fresh table");
    assert_ne!(
        pinned_secret(&dir),
        secret,
        "a fresh table gets a new secret"
    );
    assert!(xdp_attached(&setup.net));
    drop(agent);

    // lb stop: detached, pins and state removed.
    lb_ok(&setup, "stop", &[]);
    assert!(!dir.exists());
    assert!(!setup.state_file().exists());
    assert!(!xdp_attached(&setup.net), "still attached after lb stop");
}

#[test]
fn decap_attaches_pins_and_detaches() {
    let net = NetNsPair::new("decap");
    let fs = TestBpffs::new("decap");
    let run = |extra: &[&str]| {
        let out = net
            .exec_in_lb(lb_bin().to_str().unwrap())
            .args(["decap", "--iface", &net.lb_if, "--skb"])
            .arg("--pin-root")
            .arg(&fs.root)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["--address", "198.18.100.1"]);
    let dir = lb::kernel::decap_pin_dir(&fs.root, net.lb_netns(), &net.lb_if);
    assert!(dir.join("link").exists());
    assert!(
        xdp_attached(&net),
        "decap not attached after the command exited"
    );
    let addrs: HashMap<MapData, lb_common::DecapKey, u32> =
        HashMap::try_from(Map::HashMap(open(&dir, lb_common::MAP_DECAP_ADDRS))).unwrap();
    // IPv4 keys (the interface's IPv6 link-local address is there too).
    let mut got: Vec<u32> = addrs
        .keys()
        .map(|k| k.unwrap())
        .filter(|k| k.family == lb_common::flow::FAMILY_V4)
        .map(|k| k.addr[0])
        .collect();
    got.sort();
    let mut want = vec![v4("198.18.200.1"), v4("198.18.100.1")];
    want.sort();
    assert_eq!(got, want);
    drop(addrs);
    run(&["--detach"]);
    assert!(!dir.exists());
    assert!(!xdp_attached(&net));
}

/// Waits (up to 10 s) for a state file satisfying `pred`.
fn wait_state(setup: &Setup, what: &str, pred: impl Fn(&AppliedState) -> bool) -> AppliedState {
    lb_tests::agent_process::wait_state(&setup.state_file(), what, pred, || setup.log_text())
}

#[test]
fn health_checks_take_backends_out_and_back() {
    let setup = setup("health");
    let dir = setup.pin_dir();
    // A TCP server on the peer (198.18.200.2:8080); 198.18.3.9 answers nothing.
    let listen = || {
        lb_tests::netns::in_netns(&setup.net.peer, || {
            std::net::TcpListener::bind("198.18.200.2:8080").expect("bind in peer")
        })
    };
    let listener = listen();
    setup.write_in_place(
        "maglev_table_size: 251\nconntrack_entries: 4096\nservices:\n  - name: hc\n    vip: 198.18.100.5\n    port: 8080\n    protocol: tcp\n    panic_threshold: 0\n    health_check:\n      kind: tcp\n      interval_ms: 100\n      timeout_ms: 50\n      rise: 2\n      fall: 2\n    backends:\n      - address: 198.18.200.2\n      - address: 198.18.3.9\n",
    );
    let _agent = setup.start(&["--metrics", "127.0.0.1:9911"]);
    let down = |st: &AppliedState, a: &str| backend_of(st, "hc", a).state == BackendState::Down;
    let st = wait_state(&setup, "198.18.3.9 down", |s| {
        down(s, "198.18.3.9") && !down(s, "198.18.200.2")
    });
    check_maps(&dir, &st);
    assert_eq!(backend_of(&st, "hc", "198.18.3.9").slots, 0);
    assert_eq!(backend_of(&st, "hc", "198.18.200.2").slots, 251);
    assert_eq!(
        backend(&dir, backend_of(&st, "hc", "198.18.3.9").id).flags & BACKEND_LIVE,
        0
    );

    // The server goes away: every backend down, panic off -> empty table.
    drop(listener);
    let st = wait_state(&setup, "all down", |s| down(s, "198.18.200.2"));
    check_maps(&dir, &st);
    assert_eq!(st.services[0].table_size, 0);

    // It comes back: up again with every slot, same id.
    let id = backend_of(&st, "hc", "198.18.200.2").id;
    let _listener = listen();
    let st = wait_state(&setup, "back up", |s| !down(s, "198.18.200.2"));
    check_maps(&dir, &st);
    assert_eq!(st.services[0].table_size, 251);
    assert_eq!(backend_of(&st, "hc", "198.18.200.2").id, id);
    assert!(
        setup.log_text().contains("up -> down"),
        "log:\n{}",
        setup.log_text()
    );
    // The metrics endpoint (inside the LB namespace) shows the service.
    let body = lb_tests::netns::in_netns(&setup.net.lb, || {
        use std::io::{Read as _, Write as _};
        let mut c = std::net::TcpStream::connect("127.0.0.1:9911").expect("metrics endpoint");
        c.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        c.read_to_string(&mut body).unwrap();
        body
    });
    assert!(body.contains("service=\"hc\""), "metrics:\n{body}");
    lb::kernel::detach_and_remove(&dir).unwrap();
}

/// Under `ip netns exec` (a private mount namespace) the agent mounts the pin
/// root's bpffs in the host mount namespace, so pins outlive the agent.
#[test]
fn pin_root_mounted_by_the_agent_outlives_it() {
    let net = NetNsPair::new("mnt");
    let fs = TestBpffs::unmounted("mnt");
    let setup = Setup {
        config: fs.base.join("lb.yaml"),
        state_dir: fs.base.join("state"),
        log: fs.base.join("agent.log"),
        net,
        fs,
    };
    setup.write_in_place(&yaml(&[(
        "web",
        "198.18.100.1",
        80,
        &[("198.18.3.2", 1, false)],
    )]));
    let agent = setup.start(&[]);
    let st = setup.wait_applied(0);
    agent.kill9();
    // Seen from the test's (host) mount namespace, after the agent is gone.
    assert!(
        lb::kernel::bpffs::is_bpffs(&setup.fs.root),
        "pin root is not a bpffs here"
    );
    // Mounted private to root (mode=0700), not the bpffs default 1777.
    let mode = std::os::unix::fs::MetadataExt::mode(&std::fs::metadata(&setup.fs.root).unwrap());
    assert_eq!(mode & 0o077, 0, "pin root mode {mode:o}");
    assert!(
        !setup.log_text().contains("writable by other users"),
        "{}",
        setup.log_text()
    );
    let dir = setup.pin_dir();
    check_maps(&dir, &st);
    assert!(xdp_attached(&setup.net));
    lb::kernel::detach_and_remove(&dir).unwrap();
}
