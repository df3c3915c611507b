//! `lb`: the XDP load balancer's agent and CLI.
//!
//! Every subcommand lives in its own file under `cli/`; this file only parses
//! arguments, sets up logging and dispatches.

mod cli;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// An XDP layer-4 load balancer with weighted Maglev and direct server return.
#[derive(Parser)]
#[command(name = "lb", version, after_long_help = FILES_AND_UNITS)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a config file (no root needed).
    Check(cli::check::Args),
    /// Show each backend's share of the Maglev table.
    Maglev(cli::maglev::Args),
    /// Attach the load balancer to an interface and apply the config, live.
    Run(cli::run::Args),
    /// Detach the load balancer from an interface and remove its pinned state.
    Stop(cli::stop::Args),
    /// Withdraw every VIP of an interface's agent (or announce again with --undo), forwarding on.
    Drain(cli::drain::Args),
    /// Print per-service and per-backend counters.
    Stats(cli::stats::Args),
    /// Show the counters live, refreshed every second.
    Watch(cli::watch::Args),
    /// Backend side: attach the decapsulating XDP program to an interface.
    Decap(cli::decap::Args),
    /// Print the shell completion script for bash, zsh or fish.
    Completions(cli::completions::Args),
    /// Write the man pages (lb.1 and one per subcommand) into a directory.
    Man(cli::man::Args),
    /// Print the JSON Schema of the config file (for editors and CI).
    Schema,
}

/// Shown by `lb --help` and in lb(1): where the packaged pieces are.
const FILES_AND_UNITS: &str = "\
Files (Debian package):
  /etc/lb/lb.yaml              the config (lb check validates it)
  /usr/share/lb/lb.schema.json its JSON Schema, for editors (lb schema prints it)
  /run/lb/bpffs, /run/lb/state pinned maps and links, per-interface state

systemd units:
  lb@IFACE.service             lb run --iface IFACE --config /etc/lb/lb.yaml
  lb-decap@IFACE.service       lb decap --iface IFACE (backends)";

/// The full clap command of `lb`: what the man pages and completions are made from.
fn command() -> clap::Command {
    Cli::command()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_logging();
    let result = match cli.command {
        Command::Check(args) => cli::check::run(args),
        Command::Maglev(args) => cli::maglev::run(args),
        Command::Run(args) => cli::run::run(args),
        Command::Stop(args) => cli::stop::run(args),
        Command::Drain(args) => cli::drain::run(args),
        Command::Stats(args) => cli::stats::run(args),
        Command::Watch(args) => cli::watch::run(args),
        Command::Decap(args) => cli::decap::run(args),
        Command::Completions(args) => cli::completions::run(args, command()),
        Command::Man(args) => cli::man::run(args, command()),
        Command::Schema => cli::schema::run(),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", describe(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `: `-separated, skipping a cause whose text the
/// message before it already contains (most messages quote their source).
fn describe(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn causes_already_quoted_are_not_repeated() {
        let io = std::io::Error::other("disk on fire");
        let quoted = anyhow::Error::new(io).context("cannot read a.yaml: disk on fire");
        assert_eq!(describe(&quoted), "cannot read a.yaml: disk on fire");
        let io = std::io::Error::other("disk on fire");
        let plain = anyhow::Error::new(io).context("loading the config");
        assert_eq!(describe(&plain), "loading the config: disk on fire");
    }
}
