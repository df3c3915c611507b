//! Runs the `lb` binary: `lb check` and `lb maglev` (no root needed).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A config file in a temporary directory, removed on drop.
struct TempConfig {
    dir: PathBuf,
    path: PathBuf,
}

impl TempConfig {
    fn new(name: &str, text: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("lb-cli-test-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lb.yaml");
        std::fs::write(&path, text).unwrap();
        TempConfig { dir, path }
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn lb(args: &[&str], file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lb"))
        .args(args)
        .arg(file)
        .output()
        .expect("run lb")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn lab_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/lb.yaml")
}

#[test]
fn check_accepts_the_lab_config() {
    let output = lb(&["check"], &lab_config());
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stdout(&output),
        "ok: 3 services, 9 backends, maglev table 65537\n"
    );
}

#[test]
fn check_warns_on_stderr_but_passes() {
    let config = TempConfig::new(
        "warn",
        "maglev_table_size: 101\nservices:\n  - {name: a, vip: 198.18.100.1, port: 1, protocol: udp, backends: [{address: 198.18.3.2}, {address: 198.18.4.2}]}\n",
    );
    let output = lb(&["check"], &config.path);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stdout(&output),
        "ok: 1 services, 2 backends, maglev table 101\n"
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("warning: services[a]: maglev_table_size 101"),
        "{stderr}"
    );
}

#[test]
fn check_lists_every_problem() {
    let config = TempConfig::new(
        "bad",
        "\
maglev_table_size: 65536
services:
  - name: web
    vip: 198.18.100.1
    port: 80
    protocol: tcp
    colour: blue
    backends:
      - address: 198.18.3.2
      - address: 198.18.3.x
      - address: 198.18.3.2
  - name: dns
    vip: 198.18.100.1
    port: 5353
    protocol: udp
    backends: []
",
    );
    let output = lb(&["check"], &config.path);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let out = stdout(&output);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "line 1: maglev_table_size: maglev_table_size 65536 is not prime (e.g. 65537, 131071, 1000003)",
            "line 7: services[web]: unknown key \"colour\" (expected one of: name, vip, port, protocol, backends, health_check, panic_threshold, encap, second_chance_s)",
            "line 10: services[web].backends[198.18.3.x]: invalid address \"198.18.3.x\"",
            "line 11: services[web].backends[198.18.3.2]: duplicate backend 198.18.3.2 (also backend #1 of this service)",
            "line 16: services[dns].backends: service has no backends",
        ],
    );
}

#[test]
fn check_reports_duplicates_of_valid_backends() {
    let config = TempConfig::new(
        "dup",
        "services:\n  - name: web\n    vip: 198.18.100.1\n    port: 80\n    protocol: tcp\n    backends:\n      - address: 198.18.3.2\n      - address: 198.18.3.2\n",
    );
    let output = lb(&["check"], &config.path);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(
        stdout(&output),
        "line 8: services[web].backends[198.18.3.2]: duplicate backend 198.18.3.2 (also backend #1 of this service)\n"
    );
}

#[test]
fn check_missing_file_fails() {
    let output = lb(&["check"], Path::new("/nonexistent/lb.yaml"));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains("cannot read")
    );
}

fn maglev_json(args: &[&str], file: &Path) -> serde_json::Value {
    let mut all = vec!["maglev", "--json"];
    all.extend_from_slice(args);
    let output = lb(&all, file);
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn maglev_json_slots_sum_to_table_size() {
    let json = maglev_json(&[], &lab_config());
    let services = json["services"].as_array().unwrap();
    let names: Vec<&str> = services
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "dns", "web6"]);
    for service in services {
        assert_eq!(service["table_size"], 65537);
        let backends = service["backends"].as_array().unwrap();
        assert_eq!(backends.len(), 3);
        let total: u64 = backends.iter().map(|b| b["slots"].as_u64().unwrap()).sum();
        assert_eq!(total, 65537, "{service}");
        for b in backends {
            let share = b["share"].as_f64().unwrap();
            assert!((share - 100.0 / 3.0).abs() < 1.0, "{b}");
        }
    }
    assert_eq!(services[2]["vip"], "2001:2:0:100::1");
    assert_eq!(services[1]["protocol"], "udp");
    assert_eq!(services[1]["port"], 5353);
}

#[test]
fn maglev_weights_and_drain() {
    let config = TempConfig::new(
        "weights",
        "\
services:
  - name: web
    vip: 198.18.100.1
    port: 80
    protocol: tcp
    backends:
      - address: 198.18.3.2
      - address: 198.18.4.2
      - address: 198.18.5.2
        weight: 2
      - address: 198.18.6.2
        drain: true
      - address: 198.18.7.2
        weight: 0
  - name: other
    vip: 198.18.100.2
    port: 80
    protocol: tcp
    backends:
      - address: 198.18.3.2
",
    );
    let json = maglev_json(&["--service", "web"], &config.path);
    let services = json["services"].as_array().unwrap();
    assert_eq!(services.len(), 1);
    let backends = services[0]["backends"].as_array().unwrap();
    let slots: Vec<u64> = backends
        .iter()
        .map(|b| b["slots"].as_u64().unwrap())
        .collect();
    let shares: Vec<f64> = backends
        .iter()
        .map(|b| b["share"].as_f64().unwrap())
        .collect();
    assert_eq!(slots.iter().sum::<u64>(), 65537);
    for (share, want) in shares.iter().zip([25.0, 25.0, 50.0]) {
        assert!((share - want).abs() < 1.0, "{shares:?}");
    }
    assert_eq!(&slots[3..], [0, 0]);
    assert_eq!(backends[3]["drain"], true);
    assert_eq!(backends[4]["weight"], 0);
}

#[test]
fn maglev_text_output() {
    let output = lb(&["maglev", "--service", "dns"], &lab_config());
    assert!(output.status.success(), "{output:?}");
    let out = stdout(&output);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("service dns  198.18.100.1:5353/udp  table 65537  fingerprint "),
        "{out}"
    );
    // 8 hex digits, the same as the JSON's.
    let fingerprint = lines[0].rsplit(' ').next().unwrap();
    assert_eq!(fingerprint.len(), 8, "{out}");
    assert!(fingerprint.chars().all(|c| c.is_ascii_hexdigit()), "{out}");
    let json = maglev_json(&["--service", "dns"], &lab_config());
    assert_eq!(json["services"][0]["fingerprint"], fingerprint);
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[2].trim_start().starts_with("198.18.3.2"), "{out}");
    let total: u64 = lines[2..]
        .iter()
        .map(|l| l.split_whitespace().nth(3).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 65537);
}

#[test]
fn maglev_unknown_service_is_named() {
    let output = lb(&["maglev", "--service", "nope"], &lab_config());
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("no service named \"nope\""), "{stderr}");
}
