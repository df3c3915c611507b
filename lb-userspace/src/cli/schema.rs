//! `lb schema`.

use std::process::ExitCode;

/// Runs `lb schema`: prints the config file's JSON Schema (generated from the
/// config types; the same text as the shipped `lb.schema.json`).
pub fn run() -> anyhow::Result<ExitCode> {
    print!("{}", lb::config::schema::json_schema_text());
    Ok(ExitCode::SUCCESS)
}
