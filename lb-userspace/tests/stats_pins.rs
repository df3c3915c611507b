//! Privileged: the embedded datapath's maps pinned into a private bpffs, an
//! applied-state file, counters written by hand per CPU; then `lb stats`
//! (JSON and text), `lb stats` on an interface with nothing attached, and a
//! scrape of the metrics endpoint must show exactly those figures.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use aya::maps::{PerCpuArray, PerCpuValues};
use aya::{Ebpf, EbpfLoader};
use lb::announce::{AnnounceState, VipAnnouncement};
use lb::state::{
    AppliedBackend, AppliedService, AppliedState, BackendState, RetiredBackend, state_path,
};
use lb_common::{BackendStats, GlobalCounter, ServiceStats};

const IFACE: &str = "lbstat0";
const MAPS: [&str; lb::kernel::MAP_NAMES.len()] = lb::kernel::MAP_NAMES;

/// A private bpffs under `/run/lb-test-<pid>-stats/`, unmounted and removed on drop.
struct Scratch {
    root: PathBuf,
    bpffs: PathBuf,
}

impl Scratch {
    fn new() -> Self {
        let root = PathBuf::from(format!("/run/lb-test-{}-stats", std::process::id()));
        let bpffs = root.join("bpffs");
        // A leftover of a killed run with the same pid.
        let _ = Command::new("umount").arg(&bpffs).status();
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&bpffs).unwrap();
        let scratch = Self { root, bpffs };
        let ok = Command::new("mount")
            .args(["-t", "bpf", "bpf"])
            .arg(&scratch.bpffs)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount -t bpf {}", scratch.bpffs.display());
        scratch
    }

    /// Pins are keyed by network namespace: `<bpffs>/ns<inode>/<iface>`.
    fn pin_dir(&self) -> PathBuf {
        lb::kernel::pin_dir(&self.bpffs, netns(), IFACE)
    }

    fn state_dir(&self) -> PathBuf {
        self.root.join("state")
    }
}

/// The test's network namespace (the CLI it runs shares it).
fn netns() -> lb::netns::NetnsId {
    lb::netns::NetnsId::current().unwrap()
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.bpffs).status();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Loads the datapath's maps pinned under `pin_dir` (no program loaded).
fn load_pinned(pin_dir: &Path) -> Ebpf {
    std::fs::create_dir_all(pin_dir).unwrap();
    let mask = lb_common::flow_table::user::conntrack_mask(1024);
    let mut loader = EbpfLoader::new();
    lb_common::flow_table::user::size_conntrack(&mut loader, &mask);
    for name in MAPS {
        loader.map_pin_path(name, pin_dir.join(name));
    }
    let ebpf = loader
        .load(lb::object::EBPF_OBJECT)
        .expect("load eBPF object");
    for name in MAPS {
        assert!(pin_dir.join(name).exists(), "{name} not pinned");
    }
    ebpf
}

fn nr_cpus() -> usize {
    aya::util::nr_cpus().expect("nr_cpus")
}

/// Writes `f(cpu)` on every CPU at `index` of a per-CPU map.
fn set_per_cpu<V: aya::Pod>(ebpf: &mut Ebpf, map: &str, index: u32, f: impl Fn(u64) -> V) {
    let mut m: PerCpuArray<_, V> = PerCpuArray::try_from(ebpf.map_mut(map).unwrap()).unwrap();
    let values: Vec<V> = (0..nr_cpus() as u64).map(f).collect();
    m.set(index, PerCpuValues::try_from(values).unwrap(), 0)
        .unwrap();
}

/// Sum over CPUs 0..n of `base * (cpu + 1)`.
fn total(base: u64) -> u64 {
    let n = nr_cpus() as u64;
    base * n * (n + 1) / 2
}

fn backend_stats(ebpf: &mut Ebpf, id: u32, scale: u64) {
    set_per_cpu(ebpf, lb_common::MAP_BACKEND_STATS, id, |cpu| BackendStats {
        packets: scale * 10 * (cpu + 1),
        bytes: scale * 1000 * (cpu + 1),
        new_flows: scale * (cpu + 1),
        hits: scale * 7 * (cpu + 1),
        redirects: scale * 2 * (cpu + 1),
        hit_bytes: scale * 700 * (cpu + 1),
    });
}

fn state(pin_dir: &Path) -> AppliedState {
    let backend = |addr: &str, id, weight, state, slots| AppliedBackend {
        address: addr.parse().unwrap(),
        id,
        generation: 1,
        weight,
        drain: state == BackendState::Draining,
        state,
        slots,
    };
    AppliedState {
        ifname: IFACE.into(),
        ifindex: 4242,
        pin_dir: pin_dir.into(),
        config_path: "/etc/lb/test.yaml".into(),
        applied_at_unix_ms: 1_700_000_000_000,
        last_apply_seconds: 0.0,
        xdp_mode: "skb".into(),
        maglev_table_size: 13,
        services: vec![
            AppliedService {
                name: "web".into(),
                vip: "198.18.100.1".parse().unwrap(),
                port: 80,
                protocol: "tcp".into(),
                service_id: 3,
                table_parity: 0,
                table_size: 13,
                panic: false,
                backends: vec![
                    backend("198.18.3.2", 7, 2, BackendState::Active, 9),
                    backend("198.18.3.3", 8, 0, BackendState::Draining, 0),
                    backend("198.18.3.4", 9, 1, BackendState::Down, 4),
                ],
                fingerprint: Some(0x0bad_cafe),
                encap: Default::default(),
            },
            AppliedService {
                name: "dns6".into(),
                vip: "2001:2::100:1".parse().unwrap(),
                port: 53,
                protocol: "udp".into(),
                service_id: 5,
                table_parity: 1,
                table_size: 13,
                panic: false,
                backends: vec![backend("2001:2::3:2", 12, 1, BackendState::Active, 13)],
                fingerprint: Some(0x0000_00ff),
                encap: Default::default(),
            },
        ],
        retired_backends: vec![RetiredBackend {
            id: 20,
            generation: 1,
        }],
        announce: AnnounceState {
            draining: false,
            protocol: 250,
            netns: None,
            vips: vec![
                VipAnnouncement {
                    vip: "198.18.100.1".parse().unwrap(),
                    announced: true,
                    reason: "backends live".into(),
                },
                VipAnnouncement {
                    vip: "2001:2::100:1".parse().unwrap(),
                    announced: false,
                    reason: "every backend down".into(),
                },
            ],
            drain_token: None,
        },
    }
}

fn lb(scratch: &Scratch, args: &[&str]) -> Output {
    let bin = std::env::var_os("LB_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_lb").into());
    Command::new(bin)
        .args(args)
        .arg("--pin-root")
        .arg(&scratch.bpffs)
        .arg("--state-dir")
        .arg(scratch.state_dir())
        .output()
        .expect("run lb")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "lb failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// `GET path` over HTTP/1.1: (status line, body).
fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").expect("response head");
    (head.lines().next().unwrap().to_string(), body.to_string())
}

#[test]
fn stats_and_metrics_read_the_pinned_counters() {
    let scratch = Scratch::new();
    let pin_dir = scratch.pin_dir();
    let mut ebpf = load_pinned(&pin_dir);
    lb::state::ensure_state_dirs(&scratch.state_dir(), netns()).unwrap();
    state(&pin_dir)
        .write(&state_path(&scratch.state_dir(), netns(), IFACE))
        .unwrap();
    backend_stats(&mut ebpf, 7, 3);
    backend_stats(&mut ebpf, 8, 1);
    backend_stats(&mut ebpf, 12, 5);
    // Retired: its shares of the global counters still count. Id 30 is in
    // no state: its record is not read.
    backend_stats(&mut ebpf, 20, 2);
    backend_stats(&mut ebpf, 30, 100);
    set_per_cpu(&mut ebpf, lb_common::MAP_SERVICE_STATS, 3, |cpu| {
        ServiceStats {
            packets: 40 * (cpu + 1),
            bytes: 4000 * (cpu + 1),
            no_backend: 2 * (cpu + 1),
        }
    });
    for c in GlobalCounter::ALL {
        set_per_cpu(&mut ebpf, lb_common::MAP_GLOBAL_STATS, *c as u32, |cpu| {
            (*c as u64 + 1) * 100 * (cpu + 1)
        });
    }

    // JSON, no rates; --iface omitted: the only pinned interface is chosen.
    let v: serde_json::Value = serde_json::from_str(&stdout(&lb(
        &scratch,
        &["stats", "--json", "--interval", "0"],
    )))
    .unwrap();
    assert_eq!(v["iface"], IFACE);
    assert_eq!(v["attached"], false, "no XDP link is pinned");
    assert_eq!(v["xdp_mode"], "skb");
    assert_eq!(v["applied_at_unix_ms"], 1_700_000_000_000u64);
    assert!(v["interval_s"].is_null());
    let web = &v["services"][0];
    assert_eq!(web["name"], "web");
    assert_eq!(web["vip"], "198.18.100.1");
    // The service's record (its misses) plus the hits of the ids it holds:
    // 7 (scale 3) and 8 (scale 1), 7 hits of 100 bytes per unit of scale.
    assert_eq!(web["packets"], total(40 + 4 * 7));
    assert_eq!(web["bytes"], total(4000 + 4 * 700));
    assert_eq!(web["no_backend"], total(2));
    let b = &web["backends"];
    assert_eq!(b[0]["address"], "198.18.3.2");
    assert_eq!(b[0]["id"], 7);
    assert_eq!(b[0]["state"], "active");
    assert_eq!(b[0]["weight"], 2);
    assert_eq!(b[0]["slots"], 9);
    assert_eq!(b[0]["share"], 9.0 / 13.0);
    assert_eq!(b[0]["packets"], total(30));
    assert_eq!(b[0]["bytes"], total(3000));
    assert_eq!(b[0]["new_flows"], total(3));
    assert_eq!(b[1]["state"], "draining");
    assert_eq!(b[1]["packets"], total(10));
    assert_eq!(b[2]["state"], "down");
    assert_eq!(b[2]["packets"], 0);
    let dns = &v["services"][1];
    assert_eq!(dns["vip"], "2001:2::100:1");
    assert_eq!(
        dns["packets"],
        total(5 * 7),
        "service 5's record was never written: backend 12's hits only"
    );
    assert_eq!(dns["bytes"], total(5 * 700));
    assert_eq!(dns["backends"][0]["new_flows"], total(5));
    // Announcements and fingerprints, from the state file.
    assert_eq!(v["draining"], false);
    assert_eq!(v["vips"][0]["vip"], "198.18.100.1");
    assert_eq!(v["vips"][0]["announced"], true);
    assert_eq!(v["vips"][0]["reason"], "backends live");
    assert_eq!(v["vips"][1]["announced"], false);
    assert_eq!(v["vips"][1]["reason"], "every backend down");
    assert_eq!(web["fingerprint"], "0badcafe");
    assert_eq!(dns["fingerprint"], "000000ff");
    // Backends 7, 8, 12 and retired 20 (scales 3 + 1 + 5 + 2) hold 7 hits,
    // 10 packets and 2 redirects per unit of scale.
    let shares = |c: GlobalCounter| match c {
        GlobalCounter::ConntrackHit => total(11 * 7),
        GlobalCounter::Tx => total(11 * 8),
        GlobalCounter::Redirect => total(11 * 2),
        _ => 0,
    };
    for c in GlobalCounter::ALL {
        assert_eq!(
            v["global"][c.label()],
            total((*c as u64 + 1) * 100) + shares(*c),
            "{}",
            c.label()
        );
    }

    // Text.
    let text = stdout(&lb(
        &scratch,
        &["stats", "--iface", IFACE, "--interval", "0"],
    ));
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.trim_start().starts_with("198.18.3.2"))
        .unwrap_or_else(|| panic!("{text}"))
        .split_whitespace()
        .collect();
    let (p, by, f) = (
        total(30).to_string(),
        total(3000).to_string(),
        total(3).to_string(),
    );
    assert_eq!(
        row,
        ["198.18.3.2", "7", "active", "2", "9", "69.2%", &p, &by, &f]
    );
    assert!(
        text.contains("vip 2001:2::100:1  NOT announced: every backend down"),
        "{text}"
    );
    assert!(text.contains("table 13  fingerprint 0badcafe"), "{text}");

    // Rates: counters bumped while `lb stats` waits between its samples.
    let child = Command::new(env!("CARGO_BIN_EXE_lb"))
        .args([
            "stats",
            "--json",
            "--interval",
            "2",
            "--iface",
            IFACE,
            "--pin-root",
        ])
        .arg(&scratch.bpffs)
        .arg("--state-dir")
        .arg(scratch.state_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    backend_stats(&mut ebpf, 7, 5); // packets total(30) -> total(50)
    let out = child.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let interval = v["interval_s"].as_f64().unwrap();
    assert!((2.0..3.0).contains(&interval), "interval {interval}");
    let b0 = &v["services"][0]["backends"][0];
    assert_eq!(b0["packets"], total(50));
    let pps = b0["rate"]["packets_per_s"].as_f64().unwrap();
    let want = total(20) as f64 / interval;
    assert!((pps - want).abs() < 1e-6 * want, "pps {pps}, want {want}");
    assert_eq!(
        v["services"][0]["backends"][1]["rate"]["packets_per_s"],
        0.0
    );

    // Nothing attached to another interface: a clear error, non-zero exit.
    let missing = format!("nope{}", std::process::id() % 10000);
    let out = lb(&scratch, &["stats", "--iface", &missing]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "nothing attached to {missing}: no pinned maps under {}",
            lb::kernel::pin_dir(&scratch.bpffs, netns(), &missing).display()
        )),
        "{err}"
    );

    // Metrics endpoint on 127.0.0.1:0.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime
        .block_on(lb::metrics::MetricsServer::bind(
            "127.0.0.1:0".parse().unwrap(),
            pin_dir.clone(),
            state_path(&scratch.state_dir(), netns(), IFACE),
        ))
        .unwrap();
    let addr = server.local_addr().unwrap();
    let task = runtime.spawn(server.run());
    let (status, body) = http_get(addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let has = |line: String| assert!(body.lines().any(|l| l == line), "no {line:?} in\n{body}");
    has(format!(
        r#"lb_backend_packets_total{{service="web",backend="198.18.3.2"}} {}"#,
        total(50)
    ));
    has(format!(
        r#"lb_backend_new_flows_total{{service="dns6",backend="2001:2::3:2"}} {}"#,
        total(5)
    ));
    has(r#"lb_backend_up{service="web",backend="198.18.3.4"} 0"#.into());
    has(r#"lb_vip_announced{vip="198.18.100.1"} 1"#.into());
    has(r#"lb_vip_announced{vip="2001:2::100:1"} 0"#.into());
    has("lb_node_draining 0".into());
    has(format!(
        r#"lb_service_table_fingerprint{{service="web"}} {}"#,
        0x0bad_cafe_u32
    ));
    has(r#"lb_backend_weight{service="web",backend="198.18.3.2"} 2"#.into());
    has(format!(
        r#"lb_service_no_backend_total{{service="web"}} {}"#,
        total(2)
    ));
    has(format!(
        r#"lb_datapath_events_total{{counter="conntrack_miss"}} {}"#,
        total(200)
    ));
    // Fresh on every scrape.
    backend_stats(&mut ebpf, 7, 6);
    let (_, body) = http_get(addr, "/metrics");
    assert!(
        body.contains(&format!(
            r#"lb_backend_packets_total{{service="web",backend="198.18.3.2"}} {}"#,
            total(60)
        )),
        "{body}"
    );
    assert!(body.contains("lb_agent_last_apply_seconds "), "{body}");
    let (status, _) = http_get(addr, "/nope");
    assert_eq!(status, "HTTP/1.1 404 Not Found");

    // The status page and its JSON (the `lb stats --json` shape, rates
    // between the two latest samples).
    let (status, html) = http_get(addr, "/");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(html.contains("<script src=\"/status.js\">"), "{html}");
    let (status, js) = http_get(addr, "/status.js");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(js.contains("/stats.json"));
    let json = |addr| {
        let (status, body) = http_get(addr, "/stats.json");
        assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    let first = json(addr);
    assert_eq!(first["services"][0]["backends"][0]["packets"], total(60));
    assert!(first["services"][0]["backends"][0]["rate"].is_null());
    backend_stats(&mut ebpf, 7, 8);
    std::thread::sleep(Duration::from_millis(600));
    let second = json(addr);
    let b0 = &second["services"][0]["backends"][0];
    assert_eq!(b0["packets"], total(80));
    let interval = second["interval_s"].as_f64().unwrap();
    let pps = b0["rate"]["packets_per_s"].as_f64().unwrap();
    let want = total(20) as f64 / interval;
    assert!((pps - want).abs() < 1e-6 * want, "pps {pps}, want {want}");
    assert_eq!(second["last_apply_s"], 0.0);
    task.abort();

    // `lb watch` without a terminal: frames separated by a blank line.
    let start = Instant::now();
    let text = stdout(&lb(
        &scratch,
        &[
            "watch",
            "--iface",
            IFACE,
            "--count",
            "2",
            "--interval",
            "0.2",
        ],
    ));
    assert!(start.elapsed() < Duration::from_secs(10));
    let frames: Vec<&str> = text.split("\n\ninterface ").collect();
    assert_eq!(frames.len(), 2, "{text}");
    assert!(frames[1].contains("rates per second"), "{text}");
    drop(ebpf);
}
