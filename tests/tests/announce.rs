//! Privileged tests of what makes lb nodes a tier. VIP announcement: real
//! kernel routes (`ip route show proto P`) in a namespace of their own follow
//! attach, health, node drain (`announce.enabled: false` by live reload, and
//! `lb drain`),
//! `lb stop`, kill -9 and restart (reconciliation); two agents in one
//! namespace leave each other's routes alone. Agreement: separate agents on
//! the same YAML build bit-identical tables, and agents with different
//! histories (other backend ids) and restarted agents show the same table
//! fingerprint as `lb maglev`. Needs root and `LB_BIN` (or a built `lb`).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use lb::state::AppliedState;
use lb_tests::agent_process::{Agent, lb_bin};
use lb_tests::netns::{NetNsPair, TestBpffs, ip, ip_quiet};

/// One agent's files: config, log, and the pins/state it shares with others.
struct AgentFiles {
    ns: String,
    iface: String,
    pin_root: PathBuf,
    state_dir: PathBuf,
    config: PathBuf,
    log: PathBuf,
}

impl AgentFiles {
    fn new(ns: &str, iface: &str, fs: &TestBpffs, tag: &str) -> Self {
        Self {
            ns: ns.into(),
            iface: iface.into(),
            pin_root: fs.root.clone(),
            state_dir: fs.base.join("state"),
            config: fs.base.join(format!("{tag}.yaml")),
            log: fs.base.join(format!("{tag}.log")),
        }
    }

    fn write(&self, text: &str) {
        let tmp = self.config.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.config).unwrap();
    }

    fn start(&self) -> Agent {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(lb_bin())
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .args(["--iface", &self.iface, "--xdp-mode", "skb"])
            .arg("--pin-root")
            .arg(&self.pin_root)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Agent::new(child)
    }

    /// `lb ARGS --iface IF --pin-root R --state-dir S` in the namespace.
    fn lb(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(lb_bin())
            .args(args)
            .args(["--iface", &self.iface])
            .arg("--pin-root")
            .arg(&self.pin_root)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .output()
            .unwrap()
    }

    fn stats_json(&self) -> serde_json::Value {
        let out = self.lb(&["stats", "--json", "--interval", "0"]);
        assert!(
            out.status.success(),
            "lb stats: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn netns(&self) -> lb::netns::NetnsId {
        lb_tests::netns::netns_id(&self.ns)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn state(&self) -> Option<AppliedState> {
        AppliedState::read(&lb::state::state_path(
            &self.state_dir,
            self.netns(),
            &self.iface,
        ))
        .ok()
        .flatten()
    }
}

/// Destinations of the main-table routes of `protocol` in `ns` (both families).
fn routes(ns: &str, protocol: u8) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for family in ["-4", "-6"] {
        let out = std::process::Command::new("ip")
            .args([
                "-n", ns, family, "-j", "route", "show", "table", "main", "proto",
            ])
            .arg(protocol.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        if text.trim().is_empty() {
            continue;
        }
        let list: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        all.extend(list.iter().map(|r| r["dst"].as_str().unwrap().to_string()));
    }
    all
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Waits (up to 10 s) until the routes of `protocol` in `ns` are `want`.
fn wait_routes(ns: &str, protocol: u8, want: &[&str], logs: &[&AgentFiles]) {
    let want = set(want);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let have = routes(ns, protocol);
        if have == want {
            return;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = logs.iter().map(|a| a.log_text()).collect();
            panic!(
                "routes proto {protocol}: have {have:?}, want {want:?}; logs:\n{}",
                logs.join("\n----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (up to 10 s) until the agent's state satisfies `pred`.
fn wait_state(a: &AgentFiles, what: &str, pred: impl Fn(&AppliedState) -> bool) -> AppliedState {
    let path = lb::state::state_path(&a.state_dir, a.netns(), &a.iface);
    lb_tests::agent_process::wait_state(&path, what, pred, || a.log_text())
}

fn reason(st: &AppliedState, vip: &str) -> (bool, String) {
    let v = st
        .announce
        .vips
        .iter()
        .find(|v| v.vip.to_string() == vip)
        .unwrap_or_else(|| panic!("no announcement of {vip}: {:?}", st.announce));
    (v.announced, v.reason.clone())
}

const PROTO: u8 = 251;
const HC_VIP: &str = "198.18.100.5";
const V6_VIP: &str = "2001:2::100:5";

/// A health-checked IPv4 service (backend: the peer's 198.18.200.2:8080,
/// panic off) and an IPv6 service without checks; `extra` goes on top.
fn config(extra: &str) -> String {
    format!(
        "{extra}maglev_table_size: 251\nconntrack_entries: 4096\nservices:\n  - name: hc\n    vip: {HC_VIP}\n    port: 8080\n    protocol: tcp\n    panic_threshold: 0\n    health_check:\n      kind: tcp\n      interval_ms: 100\n      timeout_ms: 50\n      rise: 2\n      fall: 2\n    backends:\n      - address: 198.18.200.2\n  - name: web6\n    vip: {V6_VIP}\n    port: 80\n    protocol: tcp\n    backends:\n      - address: 2001:2::3:2\n"
    )
}

fn announce(enabled: bool) -> String {
    format!("announce:\n  enabled: {enabled}\n  protocol: {PROTO}\n")
}

#[test]
fn routes_follow_health_drain_stop_kill_and_restart() {
    let net = NetNsPair::new("ann");
    let fs = TestBpffs::new("ann");
    let a = AgentFiles::new(&net.lb, &net.lb_if, &fs, "a");
    let listen = || {
        lb_tests::netns::in_netns(&net.peer, || {
            std::net::TcpListener::bind("198.18.200.2:8080").expect("bind in peer")
        })
    };
    let listener = listen();
    a.write(&config(&announce(true)));
    let agent = a.start();

    // Attached, backend up: both VIPs announced.
    wait_routes(&net.lb, PROTO, &[HC_VIP, V6_VIP], &[&a]);
    // Not vacuously: a state written before the first announcement has no VIPs.
    let st = wait_state(&a, "announced", |s| {
        !s.announce.vips.is_empty() && s.announce.vips.iter().all(|v| v.announced)
    });
    assert_eq!(reason(&st, HC_VIP), (true, "backends live".into()));
    assert_eq!(st.announce.protocol, PROTO);
    assert!(!st.announce.draining);

    // Every backend down, panic off: withdrawn, with the reason.
    drop(listener);
    wait_routes(&net.lb, PROTO, &[V6_VIP], &[&a]);
    let st = wait_state(&a, "hc withdrawn", |s| !reason(s, HC_VIP).0);
    assert_eq!(reason(&st, HC_VIP), (false, "every backend down".into()));
    let stats = a.stats_json();
    let vips = stats["vips"].as_array().expect("vips in lb stats --json");
    let hc = vips.iter().find(|v| v["vip"] == HC_VIP).unwrap();
    assert_eq!(hc["announced"], false);
    assert_eq!(hc["reason"], "every backend down");

    // Back up: announced again.
    let listener = listen();
    wait_routes(&net.lb, PROTO, &[HC_VIP, V6_VIP], &[&a]);

    // Node drain by live reload: every VIP withdrawn, the datapath stays.
    a.write(&config(&announce(false)));
    wait_routes(&net.lb, PROTO, &[], &[&a]);
    let st = wait_state(&a, "draining", |s| s.announce.draining);
    assert!(
        st.announce
            .vips
            .iter()
            .all(|v| !v.announced && v.reason.contains("draining"))
    );
    assert!(
        st.services.iter().all(|s| s.table_size > 0),
        "tables kept while draining"
    );
    let stats = a.stats_json();
    assert_eq!(stats["draining"], true);
    assert_eq!(stats["attached"], true);

    // Undrain.
    a.write(&config(&announce(true)));
    wait_routes(&net.lb, PROTO, &[HC_VIP, V6_VIP], &[&a]);

    // The same with `lb drain` / `lb drain --undo` (no config change).
    let out = a.lb(&["drain"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        routes(&net.lb, PROTO),
        set(&[]),
        "withdrawn when lb drain returns"
    );
    let st = a.state().unwrap();
    assert!(st.announce.draining);
    assert_eq!(
        reason(&st, V6_VIP),
        (false, "node draining (lb drain)".into())
    );
    let out = a.lb(&["drain", "--undo"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(routes(&net.lb, PROTO), set(&[HC_VIP, V6_VIP]));

    // kill -9: the routes stay (the datapath keeps forwarding).
    agent.kill9();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(routes(&net.lb, PROTO), set(&[HC_VIP, V6_VIP]));

    // Meanwhile: one of lb's routes goes missing, a stale route of lb's
    // protocol appears, and routes of other protocols exist.
    ip(&[
        "-n",
        &net.lb,
        "-6",
        "route",
        "del",
        &format!("{V6_VIP}/128"),
        "proto",
        &PROTO.to_string(),
    ]);
    ip(&[
        "-n",
        &net.lb,
        "route",
        "add",
        "198.18.100.99/32",
        "dev",
        "lo",
        "proto",
        &PROTO.to_string(),
    ]);
    ip(&[
        "-n",
        &net.lb,
        "route",
        "add",
        "198.18.100.98/32",
        "dev",
        "lo",
        "proto",
        "252",
    ]);
    ip(&[
        "-n",
        &net.lb,
        "route",
        "add",
        "198.18.100.97/32",
        "dev",
        "lo",
    ]);
    assert_eq!(routes(&net.lb, PROTO), set(&[HC_VIP, "198.18.100.99"]));

    // The restarted agent reconciles: adds the missing, removes the stale,
    // leaves the others alone.
    let agent = a.start();
    wait_routes(&net.lb, PROTO, &[HC_VIP, V6_VIP], &[&a]);
    assert_eq!(routes(&net.lb, 252), set(&["198.18.100.98"]));
    assert!(
        routes(&net.lb, 3).contains("198.18.100.97"),
        "boot-protocol route removed"
    );
    let log = a.log_text();
    assert!(
        log.contains("removed stale route 198.18.100.99"),
        "log:\n{log}"
    );
    assert!(log.contains(&format!("announce {V6_VIP}")), "log:\n{log}");

    // lb stop refuses while the agent runs; once the agent is gone (its
    // routes kept), lb stop withdraws them and leaves other protocols alone.
    let out = a.lb(&["stop"]);
    assert!(!out.status.success(), "lb stop under a running agent");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("lb run runs for"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(agent);
    assert_eq!(routes(&net.lb, PROTO), set(&[HC_VIP, V6_VIP]));
    let out = a.lb(&["stop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_routes(&net.lb, PROTO, &[], &[&a]);
    assert!(a.state().is_none(), "state file left after lb stop");
    assert_eq!(routes(&net.lb, 252), set(&["198.18.100.98"]));
    drop(listener);
}

/// Two agents in one namespace (interfaces `lb_if` and a second veth), one
/// state directory: a VIP both announce stays while either does; neither
/// agent's reconciliation or `lb stop` removes the other's routes.
#[test]
fn two_agents_in_one_namespace_keep_each_others_routes() {
    let net = NetNsPair::new("ann2");
    let fs = TestBpffs::new("ann2");
    let short = &net.lb_if[3..];
    let (if2, if2_peer) = (format!("lbC{short}"), format!("lbD{short}"));
    ip(&[
        "-n", &net.lb, "link", "add", &if2, "type", "veth", "peer", "name", &if2_peer,
    ]);
    ip(&["-n", &net.lb, "link", "set", &if2, "up"]);
    ip(&["-n", &net.lb, "link", "set", &if2_peer, "up"]);
    let a = AgentFiles::new(&net.lb, &net.lb_if, &fs, "a");
    let b = AgentFiles::new(&net.lb, &if2, &fs, "b");
    let yaml = |extra: &str, vips: &[&str]| {
        let mut s = format!("{extra}maglev_table_size: 251\nservices:\n");
        for (i, vip) in vips.iter().enumerate() {
            s += &format!(
                "  - name: s{i}\n    vip: {vip}\n    port: 80\n    protocol: tcp\n    backends:\n      - address: 198.18.3.{}\n",
                i + 2
            );
        }
        s
    };
    let p = format!("announce:\n  protocol: {PROTO}\n");
    let drain = format!("announce:\n  protocol: {PROTO}\n  enabled: false\n");
    a.write(&yaml(&p, &["198.18.100.1", "198.18.100.2"]));
    b.write(&yaml(&p, &["198.18.100.1", "198.18.100.3"]));
    let agent_a = a.start();
    let agent_b = b.start();
    let all = ["198.18.100.1", "198.18.100.2", "198.18.100.3"];
    wait_routes(&net.lb, PROTO, &all, &[&a, &b]);

    // A drains: its own VIP goes, the shared one stays (B announces it).
    a.write(&yaml(&drain, &["198.18.100.1", "198.18.100.2"]));
    wait_routes(&net.lb, PROTO, &["198.18.100.1", "198.18.100.3"], &[&a, &b]);
    wait_state(&a, "a draining", |s| s.announce.draining);
    assert!(
        a.log_text().contains("route kept"),
        "log:\n{}",
        a.log_text()
    );

    // A restarts undrained: its reconciliation leaves B's routes alone.
    agent_a.kill9();
    a.write(&yaml(&p, &["198.18.100.1", "198.18.100.2"]));
    let agent_a = a.start();
    wait_routes(&net.lb, PROTO, &all, &[&a, &b]);
    // A few of A's periodic reconciliations.
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(routes(&net.lb, PROTO), set(&all));

    // lb stop of B: the shared VIP stays for A.
    drop(agent_b);
    assert!(b.lb(&["stop"]).status.success());
    wait_routes(&net.lb, PROTO, &["198.18.100.1", "198.18.100.2"], &[&a, &b]);
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(
        routes(&net.lb, PROTO),
        set(&["198.18.100.1", "198.18.100.2"])
    );
    drop(agent_a);
    assert!(a.lb(&["stop"]).status.success());
    wait_routes(&net.lb, PROTO, &[], &[&a, &b]);
    ip_quiet(&["-n", &net.lb, "link", "del", &if2]);
}

/// The live Maglev table of service `name` read from the pins, as backend
/// addresses per slot (through the state's id -> address map).
fn live_table(a: &AgentFiles, st: &AppliedState, name: &str) -> (Vec<u32>, Vec<std::net::IpAddr>) {
    use aya::maps::{Array, ArrayOfMaps, Map, MapData};
    let s = st.services.iter().find(|s| s.name == name).unwrap();
    let dir = lb::kernel::pin_dir(&a.pin_root, a.netns(), &a.iface);
    let outer: ArrayOfMaps<MapData, Array<MapData, u32>> = ArrayOfMaps::try_from(Map::ArrayOfMaps(
        MapData::from_pin(dir.join(lb_common::MAP_MAGLEV_TABLES)).unwrap(),
    ))
    .unwrap();
    let inner = outer.get(&(2 * s.service_id + s.table_parity), 0).unwrap();
    let ids: Vec<u32> = (0..inner.len())
        .map(|i| inner.get(&i, 0).unwrap())
        .collect();
    let addresses = s.backends.iter().map(|b| b.address).collect();
    (ids, addresses)
}

/// The fingerprint of the pinned table, computed from the kernel's copy.
fn pinned_fingerprint(a: &AgentFiles, st: &AppliedState, name: &str) -> u32 {
    let s = st.services.iter().find(|s| s.name == name).unwrap();
    let (ids, addresses) = live_table(a, st, name);
    let slots: Vec<u32> = ids
        .iter()
        .map(|id| s.backends.iter().position(|b| b.id == *id).unwrap() as u32)
        .collect();
    lb::maglev::fingerprint(&slots, &addresses)
}

fn fingerprints(st: &AppliedState) -> Vec<(String, u32)> {
    st.services
        .iter()
        .map(|s| (s.name.clone(), s.fingerprint.expect("fingerprint in state")))
        .collect()
}

/// Three agents in three namespaces: A and B start on the same YAML, C
/// starts without one backend that is added later (so its ids differ).
#[test]
fn nodes_on_the_same_yaml_agree_across_processes_histories_and_restarts() {
    let backends = |skip_first: bool| {
        let all = [
            ("198.18.3.2", "2001:2::3:2", 1),
            ("198.18.3.3", "2001:2::3:3", 1),
            ("198.18.3.4", "2001:2::3:4", 2),
        ];
        let mut s = String::from("maglev_table_size: 1021\nservices:\n");
        for (name, vip, v6) in [
            ("web", "198.18.100.1", false),
            ("web6", "2001:2::100:1", true),
        ] {
            s += &format!(
                "  - name: {name}\n    vip: {vip}\n    port: 80\n    protocol: tcp\n    backends:\n"
            );
            for (k, (a4, a6, w)) in all.iter().enumerate() {
                if skip_first && k == 0 {
                    continue;
                }
                s += &format!(
                    "      - address: {}\n        weight: {w}\n",
                    if v6 { a6 } else { a4 }
                );
            }
        }
        s
    };
    let nets: Vec<NetNsPair> = ["fpa", "fpb", "fpc"]
        .iter()
        .map(|t| NetNsPair::new(t))
        .collect();
    let fss: Vec<TestBpffs> = ["fpa", "fpb", "fpc"]
        .iter()
        .map(|t| TestBpffs::new(t))
        .collect();
    let files: Vec<AgentFiles> = nets
        .iter()
        .zip(&fss)
        .map(|(n, fs)| AgentFiles::new(&n.lb, &n.lb_if, fs, "agent"))
        .collect();
    let (a, b, c) = (&files[0], &files[1], &files[2]);
    a.write(&backends(false));
    b.write(&backends(false));
    c.write(&backends(true));
    let _agent_a = a.start();
    let _agent_b = b.start();
    let agent_c = c.start();
    let applied = |f: &AgentFiles, n: usize| {
        wait_state(f, "every backend applied", move |s| {
            s.services.len() == 2 && s.services.iter().all(|x| x.backends.len() == n)
        })
    };
    let sa = applied(a, 3);
    let sb = applied(b, 3);
    applied(c, 2);
    // C learns of 198.18.3.2 later: it gets the next free id.
    c.write(&backends(false));
    let sc = applied(c, 3);

    // Same YAML, separate processes: bit-identical tables, ids and generations.
    for name in ["web", "web6"] {
        assert_eq!(live_table(a, &sa, name), live_table(b, &sb, name), "{name}");
    }
    let ids = |s: &AppliedState| -> Vec<(u32, u32)> {
        s.services
            .iter()
            .flat_map(|x| x.backends.iter().map(|b| (b.id, b.generation)))
            .collect()
    };
    assert_eq!(ids(&sa), ids(&sb));
    // Another history: other ids, the same slot -> address map and fingerprint.
    assert_ne!(ids(&sa), ids(&sc), "C's history must give other ids");
    assert_eq!(fingerprints(&sa), fingerprints(&sb));
    assert_eq!(fingerprints(&sa), fingerprints(&sc));
    // The fingerprint is the live (pinned) table's.
    for (f, s) in [(a, &sa), (c, &sc)] {
        for (name, fp) in fingerprints(s) {
            assert_eq!(pinned_fingerprint(f, s, &name), fp, "{name}");
        }
    }
    // lb maglev on the YAML, and lb stats, show the same value.
    let out = std::process::Command::new(lb_bin())
        .args(["maglev", "--json"])
        .arg(&a.config)
        .output()
        .unwrap();
    let maglev: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stats = c.stats_json();
    for (i, (name, fp)) in fingerprints(&sa).into_iter().enumerate() {
        let hex = format!("{fp:08x}");
        assert_eq!(maglev["services"][i]["name"], name.as_str());
        assert_eq!(maglev["services"][i]["fingerprint"], hex.as_str());
        assert_eq!(stats["services"][i]["fingerprint"], hex.as_str());
    }

    // kill -9 and restart (adopting the pins): unchanged.
    agent_c.kill9();
    let before = sc.applied_at_unix_ms;
    let _agent_c = c.start();
    let restarted = wait_state(c, "restarted apply", |s| s.applied_at_unix_ms > before);
    assert_eq!(fingerprints(&restarted), fingerprints(&sa));
    assert_eq!(ids(&restarted), ids(&sc));
}

/// A drained node (live reload of `announce.enabled: false`) withdraws every
/// VIP but keeps forwarding what still arrives: in the one-node lab the
/// router's static route still sends the VIPs' traffic, and long-lived
/// connections as well as new ones are served throughout.
#[test]
fn a_drained_node_withdraws_every_vip_and_keeps_forwarding() {
    use lb_tests::lab::{LabConfig, Scenario, addr};
    let mut s = Scenario::start(2, LabConfig::equal(2)).expect("scenario");
    let ns = s.lab.lb_ns.name().to_string();
    let vips = [addr::vip(false).to_string(), addr::vip(true).to_string()];
    let vips: Vec<&str> = vips.iter().map(String::as_str).collect();
    wait_routes(&ns, 250, &vips, &[]);
    let stats = s.lab.stats().unwrap();
    assert_eq!(stats["draining"], false);
    assert!(
        stats["vips"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["announced"] == true),
        "{stats}"
    );
    let mut flows = s
        .client
        .open_tcp(addr::tcp_service(false), 40)
        .expect("long-lived connections");

    let drained = format!("announce:\n  enabled: false\n{}", s.config.to_yaml());
    s.file.write_text(&drained).unwrap();
    wait_routes(&ns, 250, &[], &[]);
    let (stats, _) = s
        .lab
        .wait_stats("draining", Duration::from_secs(10), |st| {
            st["draining"] == true
        })
        .unwrap();
    assert!(
        stats["vips"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["announced"] == false && v["reason"].as_str().unwrap().contains("draining")),
        "{stats}"
    );
    let text = String::from_utf8(
        s.lab
            .lb_command(&["stats", "--interval", "0"])
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(text.contains("node DRAINING"), "{text}");

    // Whatever still arrives is forwarded: old connections and new ones.
    for _ in 0..3 {
        assert_eq!(
            flows.ping_all(),
            0,
            "broken while draining: {:?}",
            flows.broken_examples(5)
        );
    }
    for v6 in [false, true] {
        let report = s
            .client
            .short_tcp(addr::tcp_service(v6), 200, 4, Duration::from_secs(30))
            .expect("short connections");
        assert_eq!(
            report.failed, 0,
            "new connections while draining: {:?}",
            report.errors
        );
    }

    // Undrain: announced again.
    let normal = s.config.to_yaml();
    s.file.write_text(&normal).unwrap();
    wait_routes(&ns, 250, &vips, &[]);
    assert_eq!(flows.ping_all(), 0);
    assert_eq!(flows.broken(), 0);
}
