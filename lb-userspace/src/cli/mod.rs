//! One module per subcommand; each has `Args` (clap) and `run`.

pub mod check;
pub mod completions;
pub mod decap;
pub mod drain;
pub mod maglev;
pub mod man;
pub mod run;
pub mod schema;
pub mod stats;
pub mod stop;
pub mod watch;
pub mod watch_nodes;

/// Logs go to stderr through `tracing`; `RUST_LOG` filters (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
