//! Prometheus and Grafana (issue 16): lb's alerting rules pass
//! `promtool check rules` and their unit tests (`promtool test rules`, one
//! test per alert), and a real Prometheus scraping the lab's agent sees every
//! series of the README's metrics table and evaluates every PromQL
//! expression of the rules and of the Grafana dashboard without error.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lb_tests::lab::prometheus::{Prometheus, dashboard_file, rules_file};
use lb_tests::lab::{LabConfig, Scenario, addr};
use serde_json::Value;

const METRICS: &str = "127.0.0.1:9100";

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool (Debian package prometheus)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

fn rules() -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(rules_file()).unwrap()).unwrap()
}

/// Every `expr` of the rules file, with the alert's name.
fn rule_exprs() -> Vec<(String, String)> {
    let rules = rules();
    let mut out = Vec::new();
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let name = rule["alert"]
                .as_str()
                .or(rule["record"].as_str())
                .unwrap()
                .to_owned();
            out.push((name, rule["expr"].as_str().unwrap().to_owned()));
        }
    }
    out
}

/// Every target `expr` of the dashboard, with its panel title; Grafana's
/// variables replaced by what they select with "All".
fn dashboard_exprs() -> Vec<(String, String)> {
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(dashboard_file()).unwrap())
        .expect("dashboard JSON");
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "5s")
                .replace("$instance", ".*")
                .replace("$service", ".*");
            assert!(!expr.contains('$'), "unknown variable in {expr}");
            out.push((panel["title"].as_str().unwrap().to_owned(), expr));
        }
    }
    out
}

/// The series names of the README's metrics table.
fn readme_series() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(repo_file("README.md")).unwrap();
    let section = readme
        .split("### Metrics: `lb run --metrics ADDR`")
        .nth(1)
        .expect("README metrics section")
        .split("\n## ")
        .next()
        .unwrap();
    let mut names = BTreeSet::new();
    for line in section.lines().filter(|l| l.starts_with("| `lb_")) {
        let first_cell = line.split('|').nth(1).unwrap();
        for part in first_cell.split('`').skip(1).step_by(2) {
            if part.starts_with("lb_") {
                names.insert(part.to_owned());
            }
        }
    }
    assert!(
        names.len() >= 10,
        "too few series in the README table: {names:?}"
    );
    names
}

#[test]
fn alert_rules_pass_promtool_check_and_unit_tests() {
    let rules = rules_file();
    let checked = promtool(&["check", "rules", rules.to_str().unwrap()]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tests = repo_file("deploy/prometheus/lb-rules.test.yaml");
    let tested = promtool(&["test", "rules", tests.to_str().unwrap()]);
    assert!(tested.contains("SUCCESS"), "{tested}");

    // Every alert has a unit test.
    let alerts: BTreeSet<String> = rule_exprs().into_iter().map(|(name, _)| name).collect();
    let test_file: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&tests).unwrap()).unwrap();
    let mut tested_alerts = BTreeSet::new();
    for test in test_file["tests"].as_sequence().unwrap() {
        for case in test["alert_rule_test"].as_sequence().into_iter().flatten() {
            if case["exp_alerts"]
                .as_sequence()
                .is_some_and(|a| !a.is_empty())
            {
                tested_alerts.insert(case["alertname"].as_str().unwrap().to_owned());
            }
        }
    }
    assert_eq!(alerts, tested_alerts, "alerts without a firing unit test");
    for wanted in [
        "LbNodeNotAttached",
        "LbBackendDown",
        "LbServicePanicMode",
        "LbDatapathDrops",
        "LbNonSynMissBurst",
        "LbTableFingerprintMismatch",
    ] {
        assert!(alerts.contains(wanted), "{wanted} missing");
    }
}

#[test]
fn prometheus_scrapes_the_lab_and_every_expression_evaluates() {
    let s = Scenario::start_with_args(3, LabConfig::equal(3), &["--metrics", METRICS])
        .expect("scenario");
    let web = SocketAddr::new(addr::vip(false), addr::TCP_PORT);
    let churn = s
        .client
        .churn(web, 40, Duration::from_secs(40))
        .expect("client load");
    let prometheus =
        Prometheus::start(s.lab.lb_ns.clone(), s.lab.scratch(), METRICS).expect("prometheus");

    // Scraped, with traffic seen over at least two scrapes.
    let start = Instant::now();
    loop {
        let up = prometheus.vector(r#"up{job="lb"} == 1"#).unwrap();
        let moving = prometheus
            .vector("sum(rate(lb_backend_packets_total[5s])) > 0")
            .unwrap();
        if !up.is_empty() && !moving.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no traffic scraped: up {up:?}\n{}",
            prometheus.log_text()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    println!(
        "Prometheus saw the lab's traffic {:?} after it started",
        start.elapsed()
    );

    // Every series of the README's table.
    for name in readme_series() {
        let found = prometheus
            .vector(&format!(r#"count({{__name__="{name}",job="lb"}})"#))
            .unwrap();
        assert!(!found.is_empty(), "series {name} (README) not scraped");
    }

    // Every expression of the rules and the dashboard evaluates.
    for (whence, expr) in rule_exprs().into_iter().chain(dashboard_exprs()) {
        let answer = prometheus.query(&expr).unwrap();
        assert_eq!(
            answer["status"], "success",
            "{whence}: {expr} failed: {answer}"
        );
    }
    // The per-backend panels show the traffic.
    let per_backend = prometheus
        .vector(r#"sum by (service, backend) (rate(lb_backend_new_flows_total{service="web"}[5s])) > 0"#)
        .unwrap();
    assert_eq!(per_backend.len(), 3, "{per_backend:?}");

    // Prometheus itself evaluated every rule without error.
    let start = Instant::now();
    loop {
        let (_, body) = prometheus.get("/api/v1/rules").unwrap();
        let rules: Value = serde_json::from_str(&body).unwrap();
        let all: Vec<&Value> = rules["data"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap())
            .collect();
        assert_eq!(all.len(), rule_exprs().len(), "{body}");
        if all.iter().all(|r| r["health"] == "ok") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10) && all.iter().all(|r| r["health"] != "err"),
            "rule evaluation failed: {body}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let firing = prometheus.vector(r#"ALERTS{alertstate="firing"}"#).unwrap();
    assert!(
        firing.is_empty(),
        "alerts firing in a healthy lab: {firing:?}"
    );

    drop(prometheus);
    let report = churn.finish().expect("client load");
    assert_eq!(report.failed, 0, "{:?}", report.errors);
}
