//! `lb maglev`: each backend's slot count and share of its service's Maglev
//! table, as the agent would build it from the config (no root needed), and
//! the table's fingerprint (what `lb stats` shows for the live table while
//! every backend is up).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use lb::config::{self, ConfigError, ServiceConfig};
use lb::maglev::{MaglevTable, WeightedBackend};
use serde_json::json;

/// Arguments of `lb maglev`.
#[derive(clap::Args)]
pub struct Args {
    /// The config file (YAML).
    pub file: PathBuf,
    /// Only this service.
    #[arg(long)]
    pub service: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One backend's place in its service's table.
struct BackendShare {
    address: String,
    weight: u32,
    drain: bool,
    slots: u32,
    share: f64,
}

/// Slot counts of `service`'s backends in a table of `size` built from the
/// backends taking new flows (not draining, weight > 0), in config order, and
/// the table's fingerprint.
fn shares(service: &ServiceConfig, size: u32) -> anyhow::Result<(Vec<BackendShare>, u32)> {
    // Health is not known here: every backend counts as healthy.
    let eligible = lb::health::select_for_service(service, |_| true).take_new_flows;
    let input: Vec<WeightedBackend> = eligible
        .iter()
        .map(|&i| WeightedBackend {
            address: service.backends[i].address,
            weight: service.backends[i].weight,
        })
        .collect();
    let table = MaglevTable::build(size, &input)
        .with_context(|| format!("building the table of service {}", service.name))?;
    let counts = table.slot_counts(input.len());
    let fingerprint = if input.is_empty() {
        lb::maglev::fingerprint(&[], &[])
    } else {
        table.fingerprint(&input)
    };
    let mut slots = vec![0u32; service.backends.len()];
    for (k, &i) in eligible.iter().enumerate() {
        slots[i] = counts[k];
    }
    let shares = service
        .backends
        .iter()
        .zip(slots)
        .map(|(b, slots)| BackendShare {
            address: b.address.to_string(),
            weight: b.weight,
            drain: b.drain,
            slots,
            share: 100.0 * f64::from(slots) / f64::from(size),
        })
        .collect();
    Ok((shares, fingerprint))
}

/// Runs `lb maglev`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = match config::load(&args.file) {
        Ok(config) => config,
        Err(ConfigError::Invalid(problems)) => {
            for problem in &problems {
                eprintln!("{problem}");
            }
            anyhow::bail!(
                "{} is invalid ({} problem(s)); see `lb check`",
                args.file.display(),
                problems.len()
            );
        }
        Err(error) => return Err(error.into()),
    };
    let services: Vec<&ServiceConfig> = match &args.service {
        Some(name) => {
            let found: Vec<&ServiceConfig> =
                config.services.iter().filter(|s| &s.name == name).collect();
            if found.is_empty() {
                let known: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
                anyhow::bail!(
                    "no service named {name:?} in {} (services: {})",
                    args.file.display(),
                    known.join(", ")
                );
            }
            found
        }
        None => config.services.iter().collect(),
    };
    let size = config.maglev_table_size;
    let mut rows = Vec::new();
    for service in services {
        rows.push((service, shares(service, size)?));
    }
    if args.json {
        let services: Vec<_> = rows
            .iter()
            .map(|(service, (backends, fingerprint))| {
                json!({
                    "name": service.name,
                    "vip": service.vip.to_string(),
                    "port": service.port,
                    "protocol": service.protocol.as_str(),
                    "table_size": size,
                    "fingerprint": lb::maglev::fingerprint_hex(*fingerprint),
                    "backends": backends.iter().map(|b| json!({
                        "address": b.address,
                        "weight": b.weight,
                        "drain": b.drain,
                        "slots": b.slots,
                        "share": b.share,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "services": services }))?
        );
    } else {
        for (i, (service, (backends, fingerprint))) in rows.iter().enumerate() {
            if i > 0 {
                println!();
            }
            let endpoint = match service.vip {
                std::net::IpAddr::V4(a) => format!("{a}:{}", service.port),
                std::net::IpAddr::V6(a) => format!("[{a}]:{}", service.port),
            };
            println!(
                "service {}  {endpoint}/{}  table {size}  fingerprint {}",
                service.name,
                service.protocol.as_str(),
                lb::maglev::fingerprint_hex(*fingerprint)
            );
            let width = backends
                .iter()
                .map(|b| b.address.len())
                .max()
                .unwrap_or(0)
                .max("backend".len());
            println!(
                "  {:<width$}  {:>6}  {:<5}  {:>8}  {:>7}",
                "backend", "weight", "drain", "slots", "share"
            );
            for b in backends {
                println!(
                    "  {:<width$}  {:>6}  {:<5}  {:>8}  {:>6.2}%",
                    b.address,
                    b.weight,
                    if b.drain { "yes" } else { "no" },
                    b.slots,
                    b.share
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
