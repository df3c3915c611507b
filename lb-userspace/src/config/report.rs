//! `lb check --json`: the outcome of checking a config file as one JSON
//! document, for CI pipelines and editors.
//!
//! ```json
//! {"file": "lb.yaml", "ok": false, "warnings": [],
//!  "problems": [{"line": 4, "path": "services[web].port", "message": "..."}]}
//! ```
//!
//! A valid file has `"ok": true`, no problems and a `summary`; `line` is null
//! when the problem has no line (a missing file, a cross-service limit).

use serde_json::{Value, json};

use super::{Config, ConfigError, Problem, warnings};

/// The JSON report of checking `file`, whose outcome is `result`.
pub fn check_report(file: &str, result: &Result<Config, ConfigError>) -> Value {
    match result {
        Ok(config) => json!({
            "file": file,
            "ok": true,
            "problems": [],
            "warnings": warnings(config),
            "summary": {
                "services": config.services.len(),
                "backends": config.backend_count(),
                "maglev_table_size": config.maglev_table_size,
            },
        }),
        Err(ConfigError::Invalid(problems)) => json!({
            "file": file,
            "ok": false,
            "problems": problems.iter().map(problem).collect::<Vec<_>>(),
            "warnings": [],
        }),
        Err(other) => json!({
            "file": file,
            "ok": false,
            "problems": [{"line": null, "path": "(file)", "message": other.to_string()}],
            "warnings": [],
        }),
    }
}

fn problem(problem: &Problem) -> Value {
    json!({
        "line": problem.line,
        "path": problem.location,
        "message": problem.message,
    })
}

#[cfg(test)]
mod tests {
    use super::check_report;
    use crate::config::{ConfigError, load, parse};

    #[test]
    fn problems_carry_line_path_and_message() {
        let text = "services:\n  - name: web\n    vip: 198.18.100.1\n    port: 70000\n    protocol: tcp\n    backends: [{address: 198.18.3.2}]\n";
        let report = check_report("x.yaml", &parse(text));
        assert_eq!(report["ok"], false);
        assert_eq!(report["file"], "x.yaml");
        let problems = report["problems"].as_array().unwrap();
        assert_eq!(problems.len(), 1, "{report}");
        assert_eq!(problems[0]["line"], 4);
        assert_eq!(problems[0]["path"], "services[web].port");
        assert_eq!(problems[0]["message"], "port 70000 out of range 0..=65535");
    }

    #[test]
    fn a_valid_file_has_a_summary_and_its_warnings() {
        let text = "maglev_table_size: 101\nservices:\n  - {name: a, vip: 198.18.100.1, port: 1, protocol: udp, backends: [{address: 198.18.3.2}, {address: 198.18.4.2}]}\n";
        let report = check_report("x.yaml", &parse(text));
        assert_eq!(report["ok"], true);
        assert_eq!(report["problems"].as_array().unwrap().len(), 0);
        assert_eq!(report["summary"]["services"], 1);
        assert_eq!(report["summary"]["backends"], 2);
        assert_eq!(report["summary"]["maglev_table_size"], 101);
        let warnings = report["warnings"].as_array().unwrap();
        assert!(
            warnings[0]
                .as_str()
                .unwrap()
                .starts_with("services[a]: maglev_table_size 101"),
            "{report}"
        );
    }

    #[test]
    fn an_unreadable_file_is_one_problem_without_a_line() {
        let result = load(std::path::Path::new("/nonexistent/lb.yaml"));
        assert!(matches!(result, Err(ConfigError::Read { .. })));
        let report = check_report("/nonexistent/lb.yaml", &result);
        assert_eq!(report["ok"], false);
        assert_eq!(report["problems"][0]["line"], serde_json::Value::Null);
        assert_eq!(report["problems"][0]["path"], "(file)");
        let message = report["problems"][0]["message"].as_str().unwrap();
        assert!(message.contains("/nonexistent/lb.yaml"), "{message}");
    }
}
