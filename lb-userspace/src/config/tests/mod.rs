//! Tests of config parsing and validation.

mod files;
mod fuzz;
mod good;
mod gue;
mod problems;

use super::{ConfigError, Problem, parse};

/// The problems of `text`, which must be invalid.
fn problems(text: &str) -> Vec<Problem> {
    match parse(text) {
        Ok(config) => panic!("expected problems, got {config:?}"),
        Err(ConfigError::Invalid(problems)) => problems,
        Err(other) => panic!("unexpected error {other}"),
    }
}

/// Asserts that `text` has exactly one problem, at `line` and `location`, whose
/// message contains `message`.
fn one_problem(text: &str, line: usize, location: &str, message: &str) {
    let all = problems(text);
    assert_eq!(all.len(), 1, "expected one problem, got {all:#?}");
    assert_problem(&all[0], line, location, message);
}

fn assert_problem(problem: &Problem, line: usize, location: &str, message: &str) {
    assert_eq!(problem.line, Some(line), "{problem:?}");
    assert_eq!(problem.location, location, "{problem:?}");
    assert!(
        problem.message.contains(message),
        "{:?} does not contain {message:?}",
        problem.message
    );
}

/// A valid one-service config; `{extra}` lines are appended to the service.
fn web(extra: &str) -> String {
    format!(
        "services:
  - name: web
    vip: 198.18.100.1
    port: 80
    protocol: tcp
    backends:
      - address: 198.18.3.2
      - address: 198.18.4.2
{extra}"
    )
}
