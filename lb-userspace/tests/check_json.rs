//! `lb check --json`: one JSON document on stdout, the same exit codes.

use std::path::Path;
use std::process::{Command, Output};

fn check_json(file: &Path) -> (Output, serde_json::Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_lb"))
        .args(["check", "--json"])
        .arg(file)
        .output()
        .expect("run lb");
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {output:?}"));
    (output, report)
}

#[test]
fn valid_file_reports_ok_and_exits_0() {
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/lb.yaml");
    let (output, report) = check_json(&lab);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(report["ok"], true);
    assert_eq!(report["summary"]["services"], 3);
    assert_eq!(report["problems"], serde_json::json!([]));
}

#[test]
fn every_problem_has_line_path_and_message_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("lb-check-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "maglev_table_size: 65536\nservices:\n  - name: web\n    vip: 198.18.100.1\n    port: 80\n    protocol: sctp\n    backends: [{address: 198.18.3.2}]\n",
    )
    .unwrap();
    let (output, report) = check_json(&file);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(report["ok"], false);
    let problems = report["problems"].as_array().unwrap();
    let found: Vec<(u64, &str)> = problems
        .iter()
        .map(|p| {
            assert!(p["message"].is_string(), "{p}");
            (p["line"].as_u64().unwrap(), p["path"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        found,
        [(1, "maglev_table_size"), (6, "services[web].protocol")]
    );
}

#[test]
fn missing_file_is_a_problem_in_the_report() {
    let (output, report) = check_json(Path::new("/nonexistent/lb.yaml"));
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(report["problems"][0]["path"], "(file)");
    assert!(output.stderr.is_empty(), "{output:?}");
}
