//! `lb check`: validates a config file without root.

use std::path::PathBuf;
use std::process::ExitCode;

use lb::config::{self, ConfigError};

/// Arguments of `lb check`.
#[derive(clap::Args)]
pub struct Args {
    /// The config file (YAML).
    pub file: PathBuf,
    /// Print the outcome as one JSON document on stdout (problems with line,
    /// path and message), for CI pipelines; the exit code is the same.
    #[arg(long)]
    pub json: bool,
}

/// Runs `lb check`: prints `ok: ...` and exits 0 when the file is valid;
/// otherwise prints every problem on its own line and exits 1. Warnings go to
/// stderr either way.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.json {
        return Ok(run_json(&args.file));
    }
    match config::load(&args.file) {
        Ok(config) => {
            for warning in config::warnings(&config) {
                eprintln!("warning: {warning}");
            }
            println!(
                "ok: {} services, {} backends, maglev table {}",
                config.services.len(),
                config.backend_count(),
                config.maglev_table_size
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(ConfigError::Invalid(problems)) => {
            for problem in &problems {
                println!("{problem}");
            }
            eprintln!("{}: {} problem(s)", args.file.display(), problems.len());
            Ok(ExitCode::FAILURE)
        }
        Err(error) => Err(error.into()),
    }
}

/// `lb check --json`: the report on stdout, exit 1 unless the file is valid
/// (an unreadable file is a problem in the report, not an error on stderr).
fn run_json(file: &std::path::Path) -> ExitCode {
    let result = config::load(file);
    let report = config::report::check_report(&file.display().to_string(), &result);
    println!("{report}");
    if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
