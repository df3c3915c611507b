//! `lb decap`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use lb::kernel::decap::{DecapAttach, attach_decap};
use lb::kernel::{Interface, check_pin_dir, decap_pin_dir, detach_and_remove};
use lb::netns::NetnsId;
use lb::state::DEFAULT_PIN_ROOT;
use lb_common::DecapCounter;

/// Arguments of `lb decap`.
#[derive(clap::Args)]
pub struct Args {
    /// Interface the encapsulated packets arrive on.
    #[arg(long)]
    iface: String,
    /// Extra local address accepted as outer destination (repeatable).
    #[arg(long = "address")]
    addresses: Vec<IpAddr>,
    /// UDP destination port on which GUE is accepted (repeatable, at most 4).
    #[arg(long = "gue-port", default_value = "6080",
          value_parser = clap::value_parser!(u16).range(1..))]
    gue_ports: Vec<u16>,
    /// Detach and remove the pins instead.
    #[arg(long, conflicts_with = "stats")]
    detach: bool,
    /// Print the decapsulator's counters (summed over CPUs) instead of attaching.
    #[arg(long)]
    stats: bool,
    /// How `--stats` prints: `text` (one `name value` line each) or
    /// `prometheus` (a text exposition, for node_exporter's textfile collector).
    #[arg(long, value_enum, default_value_t = StatsFormat::Text, requires = "stats")]
    format: StatsFormat,
    /// Use generic (skb) mode instead of native.
    #[arg(long)]
    skb: bool,
    /// bpffs root of the pin directories.
    #[arg(long, default_value = DEFAULT_PIN_ROOT)]
    pin_root: PathBuf,
}

/// The output of `lb decap --stats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum StatsFormat {
    /// One `name value` line per counter.
    Text,
    /// `lb_decap_events_total{iface, counter}`, Prometheus text format.
    Prometheus,
}

/// Runs `lb decap`: attaches `lb_decap` and pins it under
/// `<root>/ns<netns inode>/decap-<iface>` (keyed by network namespace: the
/// same interface name in another namespace is another interface).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let netns = NetnsId::current().context("which network namespace this is")?;
    let root = if args.detach || args.stats {
        lb::kernel::bpffs::secure_root(&args.pin_root)?
    } else {
        lb::kernel::bpffs::ensure_bpffs(&args.pin_root)?
    };
    let dir = decap_pin_dir(&root, netns, &args.iface);
    if args.stats {
        let counts = read_counts(&dir)?;
        print!(
            "{}",
            match args.format {
                StatsFormat::Text => counts
                    .iter()
                    .map(|(c, v)| format!("{} {v}\n", c.name()))
                    .collect(),
                StatsFormat::Prometheus => lb::metrics::decap::encode_decap(&args.iface, &counts),
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    if args.gue_ports.len() > lb_common::MAX_DECAP_GUE_PORTS {
        anyhow::bail!(
            "--gue-port given {} times: lb_decap accepts at most {} GUE ports",
            args.gue_ports.len(),
            lb_common::MAX_DECAP_GUE_PORTS
        );
    }
    if args.detach {
        let detached = detach_and_remove(&dir)?;
        eprintln!(
            "{}: decap {}",
            args.iface,
            if detached {
                "detached"
            } else {
                "was not attached"
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let iface = Interface::read(&args.iface)?;
    detach_and_remove(&dir)?;
    check_pin_dir(&dir, true)?;
    lb::private_dir::ensure(&dir)?;
    let mut all = iface.addresses.clone();
    all.extend(&args.addresses);
    eprintln!(
        "{}: accepting {} local address(es): {all:?}; GUE on UDP port(s) {:?}",
        args.iface,
        all.len(),
        args.gue_ports
    );
    warn_if_not_forwarding(&args.iface);
    let request = DecapAttach {
        dir: &dir,
        ifindex: iface.ifindex,
        addresses: &all,
        gue_ports: &args.gue_ports,
        skb: args.skb,
    };
    attach_decap(lb::object::EBPF_OBJECT, &request)
        .with_context(|| format!("attaching lb_decap to {}", args.iface))?;
    eprintln!(
        "{}: lb_decap attached ({}), pinned under {}; `lb decap --iface {} --detach` removes it",
        args.iface,
        if args.skb { "skb" } else { "native" },
        dir.display(),
        args.iface
    );
    Ok(ExitCode::SUCCESS)
}

/// The counters of the decapsulator pinned in `dir` (summed over CPUs), in
/// [`DecapCounter::ALL`] order.
fn read_counts(dir: &Path) -> anyhow::Result<Vec<(DecapCounter, u64)>> {
    let path = dir.join(lb_common::MAP_DECAP_STATS);
    let map = lb::kernel::pinned::per_cpu_array::<u64>(&path).with_context(|| {
        format!(
            "open per-CPU array {} (is lb decap attached to this interface?)",
            path.display()
        )
    })?;
    let mut out = Vec::new();
    for counter in DecapCounter::ALL {
        let values = map
            .get(&(*counter as u32), 0)
            .with_context(|| format!("read {} index {}", path.display(), *counter as u32))?;
        let sum = values.iter().fold(0u64, |a, v| a.wrapping_add(*v));
        out.push((*counter, sum));
    }
    Ok(out)
}

/// Second chance forwards with `bpf_fib_lookup`, which answers "forwarding
/// disabled" unless the receiving interface forwards: say so at attach time
/// (hinted packets are then passed up, counted `hint_forward_failed`).
fn warn_if_not_forwarding(iface: &str) {
    for family in ["ipv4", "ipv6"] {
        let path = format!("/proc/sys/net/{family}/conf/{iface}/forwarding");
        if let Ok(value) = std::fs::read_to_string(&path)
            && value.trim() == "0"
        {
            eprintln!(
                "{iface}: {path} is 0: second chance cannot forward {family} packets to a \
                 flow's previous owner (they are passed up, counted hint_forward_failed); \
                 set it to 1 to enable it"
            );
        }
    }
}
