//! `lb-lab`: the interactive lab behind `cargo xtask run`.
//!
//! Builds the namespace lab (client, router, load balancer, three backends in
//! the config plus a fourth one ready to be added), starts `lb decap` on the
//! backends, `lb run` on the load balancer with the given config, a bounded
//! client load, and shows `lb watch`. Edit the config file while it runs.
//! `--nodes N` builds a tier instead: N lb nodes (`lb run` + BIRD) behind a
//! router running FRR (BGP ECMP, BFD), shown by `lb watch --netns`.
//! Ctrl-C (SIGINT or SIGTERM) or any error tears everything down.

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use lb_tests::lab::config::gue_port_in;
use lb_tests::lab::forward::forward;
use lb_tests::lab::process::{Proc, lb_binary};
use lb_tests::lab::prometheus::{PROMETHEUS_ADDR, Prometheus};
use lb_tests::lab::tier::Tier;
use lb_tests::lab::{Client, Lab, LabError, LiveLoad, LoadSpec, LoadStatus, addr};

/// The lb lab: a client, a router, the load balancer and backends in network
/// namespaces, with live client load. Edit the config while it runs.
#[derive(Parser)]
#[command(name = "lb-lab")]
struct Args {
    /// The lab config the agent runs with (and watches).
    #[arg(long, default_value = "config/lb.yaml")]
    config: PathBuf,
    /// Backends in the config (b1..bN at 198.18.3.2, 198.18.4.2, ...).
    #[arg(long, default_value_t = 3)]
    backends: u8,
    /// Extra backends created but not in the config, ready to be added.
    #[arg(long, default_value_t = 1)]
    spare: u8,
    /// Stop the client load after this many minutes.
    #[arg(long, default_value_t = 60)]
    minutes: u64,
    /// Print a client status line every 2 s instead of running `lb watch`.
    #[arg(long)]
    no_watch: bool,
    /// Host port (127.0.0.1) relayed to the agent's status page and metrics
    /// (`lb run --metrics 127.0.0.1:9100` in the load balancer namespace); 0: none.
    #[arg(long, default_value_t = 9100)]
    status_port: u16,
    /// Also run a real Prometheus in the load balancer namespace, scraping the
    /// agent every second with lb's alerting rules loaded.
    #[arg(long)]
    prometheus: bool,
    /// Host port (127.0.0.1) relayed to that Prometheus; 0: none.
    #[arg(long, default_value_t = 9090)]
    prometheus_port: u16,
    /// Extra arguments for `lb run` (e.g. `--xdp-mode skb`).
    #[arg(long, allow_hyphen_values = true)]
    run_arg: Vec<String>,
    /// Build a tier of this many lb nodes behind a router running BGP with
    /// ECMP and BFD (FRR), each node running `lb run` and BIRD (1: the
    /// single load balancer, no BGP).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=8))]
    nodes: u8,
}

/// The agent's metrics endpoint inside the load balancer namespace.
const LAB_METRICS: &str = "127.0.0.1:9100";

/// Relays the status page (and starts Prometheus) as asked; prints where.
fn observe(lab: &mut Lab, args: &Args) -> Result<Option<Prometheus>> {
    let ns = lab.lb_ns.clone();
    if args.status_port != 0 {
        match forward(args.status_port, ns.clone(), LAB_METRICS.parse()?) {
            Ok(()) => println!(
                "status page: http://127.0.0.1:{0}/  (metrics: http://127.0.0.1:{0}/metrics)",
                args.status_port
            ),
            Err(e) => println!("status page not relayed to the host: {e}"),
        }
    }
    if !args.prometheus {
        return Ok(None);
    }
    let prometheus =
        Prometheus::start(ns.clone(), lab.scratch(), LAB_METRICS).context("start prometheus")?;
    if args.prometheus_port != 0 {
        match forward(args.prometheus_port, ns, PROMETHEUS_ADDR.parse()?) {
            Ok(()) => println!(
                "prometheus: http://127.0.0.1:{}/ (scraping the agent every second, lb's alert rules loaded)",
                args.prometheus_port
            ),
            Err(e) => println!("prometheus not relayed to the host: {e}"),
        }
    }
    Ok(Some(prometheus))
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe { libc::signal(signal, on_signal as *const () as libc::sighandler_t) };
    }
}

fn banner(lab: &Lab, config: &std::path::Path, args: &Args) {
    println!("lb lab {} is up:", lab.prefix());
    println!("  client 198.18.1.2 -> router -> load balancer l0 198.18.2.2 (lb run)");
    for b in lab.backends() {
        let spare = if b.index > args.backends {
            "   <- spare: not in the config yet"
        } else {
            ""
        };
        println!(
            "  backend {} {} / {}{spare}",
            b.name,
            b.addr(false),
            b.addr(true)
        );
    }
    println!(
        "  VIPs {}:{} tcp, :{} udp, [{}]:{} tcp",
        addr::VIP4,
        addr::TCP_PORT,
        addr::UDP_PORT,
        addr::VIP6,
        addr::TCP_PORT
    );
    println!(
        "Edit {} live, e.g. add backend 198.18.6.2 (and 2001:2:0:6::2 for the IPv6 services),",
        config.display()
    );
    println!("set `drain: true` or change a `weight:`; the counters shift within a second.");
    println!(
        "Ctrl-C tears everything down. Client load runs for {} minutes.",
        args.minutes
    );
}

fn run(args: &Args) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the lab needs root (network namespaces, BPF)");
    }
    let config = std::fs::canonicalize(&args.config)
        .with_context(|| format!("config {} not found", args.config.display()))?;
    install_signal_handlers();
    if args.nodes > 1 {
        return run_tier(args, &config);
    }
    let lb = lb_binary()?;
    let mut lab = Lab::new(args.backends + args.spare).context("build the lab")?;
    let text = std::fs::read_to_string(&config)
        .with_context(|| format!("reading {}", config.display()))?;
    lab.set_decap_gue_port(gue_port_in(&text));
    lab.start_decap(&lb).context("start lb decap")?;
    let mut extra: Vec<&str> = vec!["--metrics", LAB_METRICS];
    extra.extend(args.run_arg.iter().map(String::as_str));
    lab.start_agent(&config, &extra).context("start lb run")?;
    let prometheus = observe(&mut lab, args)?;
    let load = client_load(&Client::new(lab.client_ns.clone()), args)?;
    banner(&lab, &config, args);
    let watch = spawn_watch(args, &lab.scratch().join("watch.log"), || {
        Ok(lab.watch_command()?)
    })?;
    let (outcome, status) = serve(load, watch, args, || {
        if lab.agent_running() {
            Ok(())
        } else {
            Err(anyhow::anyhow!("lb run exited:\n{}", lab.agent_log()))
        }
    });
    println!("\ntearing the lab down");
    drop(prometheus);
    lab.teardown();
    report_load(status);
    outcome
}

/// The bounded client load both labs run: 50 long-lived TCP connections and
/// 40 new ones a second to the IPv4 and IPv6 TCP services.
fn client_load(client: &Client, args: &Args) -> Result<LiveLoad> {
    Ok(LiveLoad::start(
        client,
        LoadSpec {
            targets: vec![addr::tcp_service(false), addr::tcp_service(true)],
            long_lived: 50,
            new_per_second: 40,
            limit: Duration::from_secs(args.minutes * 60),
        },
    )?)
}

/// `lb watch` on this terminal (after 3 s, so that it has something to show),
/// unless `--no-watch`; its own output goes to `log`.
fn spawn_watch(
    args: &Args,
    log: &std::path::Path,
    command: impl FnOnce() -> Result<std::process::Command>,
) -> Result<Option<Proc>> {
    if args.no_watch {
        return Ok(None);
    }
    std::thread::sleep(Duration::from_secs(3));
    let mut command = command()?;
    command
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    Ok(Some(Proc::spawn(command, log)?))
}

/// Runs until Ctrl-C, `lb watch` exiting, `check` failing (an agent gone) or
/// the client load finishing; without `lb watch`, prints the load's status
/// every 2 s. Then stops `lb watch` and the load: the outcome, and the load's
/// final status.
fn serve(
    mut load: LiveLoad,
    mut watch: Option<Proc>,
    args: &Args,
    mut check: impl FnMut() -> Result<()>,
) -> (Result<()>, Result<LoadStatus, LabError>) {
    let mut last_status = Instant::now();
    let outcome = loop {
        std::thread::sleep(Duration::from_millis(100));
        if STOP.load(Ordering::SeqCst) {
            break Ok(());
        }
        if let Some(status) = watch.as_mut().and_then(Proc::try_wait) {
            break if status.success() {
                Ok(())
            } else {
                Err(anyhow::anyhow!("lb watch exited: {status}"))
            };
        }
        if let Err(e) = check() {
            break Err(e);
        }
        if load.finished() {
            println!("client load finished after {} minutes", args.minutes);
            break Ok(());
        }
        if watch.is_none() && last_status.elapsed() >= Duration::from_secs(2) {
            println!("{}", load.status());
            last_status = Instant::now();
        }
    };
    if let Some(mut watch) = watch {
        watch.stop(Duration::from_secs(2));
    }
    (outcome, load.stop())
}

/// Prints how the client load ended.
fn report_load(status: Result<LoadStatus, LabError>) {
    match status {
        Ok(status) => println!("client load: {status}"),
        Err(e) => println!("client load failed: {e}"),
    }
}

fn tier_banner(tier: &Tier, args: &Args, backend_pins: &std::path::Path) {
    println!(
        "lb tier {} is up: client (198.18.1.2-9) -> router (FRR: BGP ECMP over the nodes, L4 hash, BFD 100 ms x 3)",
        tier.lab.prefix()
    );
    for node in &tier.nodes {
        println!(
            "  node {} {} (lb run + BIRD), config {}",
            node.name,
            node.uplink_v4(),
            node.file.path().display()
        );
    }
    for b in tier.lab.backends() {
        println!("  backend {} {} / {}", b.name, b.addr(false), b.addr(true));
    }
    println!(
        "Drain a node: add `announce: {{enabled: false}}` to its config (its VIP routes are withdrawn);"
    );
    println!(
        "the router's view: ip -n {} route show {}   |   vtysh --vty_socket {}/frr-router -c 'show bgp summary'",
        tier.router(),
        addr::VIP4,
        tier.lab.scratch().display()
    );
    println!(
        "{} is copied to every node when it changes (a node's own file: that node only).",
        args.config.display()
    );
    second_chance_help(tier, backend_pins);
    println!(
        "Ctrl-C tears everything down. Client load runs for {} minutes.",
        args.minutes
    );
}

/// How to see second chance at work (services with `encap: gue`).
fn second_chance_help(tier: &Tier, backend_pins: &std::path::Path) {
    let (Some(node), Some(backend)) = (tier.nodes.first(), tier.lab.backends().first()) else {
        return;
    };
    let lb = tier.lb().display();
    println!(
        "Second chance (services with `encap: gue`): add the spare backend, then fail a node:"
    );
    println!(
        "  ip -n {} link set r-n2 down          (its carrier drops; `up` brings it back)",
        tier.router()
    );
    println!(
        "  ip netns exec {} {lb} stats --iface l0 --pin-root {}   (second_chance_flows, per node)",
        node.ns.name(),
        node.pin_root().display()
    );
    println!(
        "  ip netns exec {} {lb} decap --iface s0 --pin-root {} --stats   (second_chance_forwarded, per backend)",
        backend.ns.name(),
        backend_pins.join(&backend.name).display()
    );
}

/// Copies the tier's config file to every node's own file whenever it
/// changes, so one edit reaches the whole tier (as a deployment tool would).
struct ConfigMirror {
    path: std::path::PathBuf,
    seen: Option<std::time::SystemTime>,
}

impl ConfigMirror {
    fn new(path: &std::path::Path) -> ConfigMirror {
        ConfigMirror {
            path: path.to_owned(),
            seen: modified(path),
        }
    }

    /// When the file changed since the last look, writes it to every node and
    /// says so.
    fn sync(&mut self, tier: &Tier) {
        let now = modified(&self.path);
        if now == self.seen {
            return;
        }
        self.seen = now;
        match std::fs::read_to_string(&self.path) {
            Ok(text) => {
                for node in &tier.nodes {
                    if let Err(e) = node.file.write_text(&text) {
                        println!("{}: config not copied: {e}", node.name);
                    }
                }
                println!("{} changed: copied to every node", self.path.display());
            }
            Err(e) => println!("{}: {e}", self.path.display()),
        }
    }
}

fn modified(path: &std::path::Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The tier: `--nodes N` lb nodes behind a BGP router, live load, `lb watch --netns`.
fn run_tier(args: &Args, config: &std::path::Path) -> Result<()> {
    if args.prometheus {
        bail!("--prometheus runs with the single load balancer lab only (not with --nodes)");
    }
    let yaml =
        std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let mut tier = Tier::with_yaml(args.nodes, args.nodes, args.backends + args.spare, yaml)
        .context("build the tier")?;
    let load = client_load(&Client::new(tier.lab.client_ns.clone()), args)?;
    let backend_pins = tier.lab.pin_root().context("the lab's bpffs")?;
    tier_banner(&tier, args, &backend_pins);
    let log = tier.lab.scratch().join("watch.log");
    let watch = spawn_watch(args, &log, || Ok(tier.watch_command(&[])))?;
    let mut mirror = ConfigMirror::new(config);
    let (outcome, status) = serve(load, watch, args, || {
        mirror.sync(&tier);
        match tier
            .nodes
            .iter_mut()
            .find_map(|n| (!n.agent_running()).then_some(n))
        {
            Some(node) => Err(anyhow::anyhow!(
                "lb run exited on {}:\n{}",
                node.name,
                node.agent_log()
            )),
            None => Ok(()),
        }
    });
    println!("\ntearing the tier down");
    tier.teardown();
    report_load(status);
    outcome
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lb-lab: {e:#}");
            ExitCode::FAILURE
        }
    }
}
