//! The agent: initial apply, then live reloads (inotify on the config's
//! directory, SIGHUP), health-driven re-plans and neighbour refreshes, until
//! SIGINT/SIGTERM. Exiting leaves the datapath attached (`lb stop` detaches).

pub mod config_read;
pub mod lock;
pub mod neighbours;
pub mod resolver;
pub mod watcher;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::signal::unix::{SignalKind, signal};

use crate::config::{Config, ConfigError};
use crate::health::{HealthMonitor, MonitorConfig, targets_from_config};
use crate::kernel::{Datapath, DatapathError, ModeChoice, OpenOptions};
use crate::netns::NetnsId;
use crate::plan::{Plan, PlanError, Previous, plan};
use crate::state::{AppliedState, StateError, ensure_state_dirs, lock_path, state_path};
use lock::AgentLock;
use resolver::{Resolved, Resolver};

/// How often next hops toward backends are re-resolved.
pub const NEIGHBOUR_REFRESH: Duration = Duration::from_secs(3);
/// How often unknown next hops are retried right after an apply.
pub const FAST_NEIGHBOUR_RETRY: Duration = Duration::from_millis(100);
/// How long after an apply unknown next hops are retried at that pace.
pub const FAST_NEIGHBOUR_WINDOW: Duration = Duration::from_secs(5);
/// How long a config-file event waits for the rest of the burst one save makes
/// (an editor's write, close and rename) before the file is read.
pub const SAVE_COALESCE: Duration = Duration::from_millis(5);

/// Options of `lb run`.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// Config file.
    pub config_path: PathBuf,
    /// Interface.
    pub ifname: String,
    /// The network namespace the agent (and the interface) lives in.
    pub netns: NetnsId,
    /// bpffs pin root.
    pub pin_root: PathBuf,
    /// State-file directory.
    pub state_dir: PathBuf,
    /// XDP mode.
    pub mode: ModeChoice,
    /// Start from scratch.
    pub fresh: bool,
}

/// Errors that stop the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The initial config is unusable.
    #[error("config: {0}")]
    Config(#[from] ConfigError),
    /// The datapath failed.
    #[error("datapath: {0}")]
    Datapath(#[from] DatapathError),
    /// Planning failed.
    #[error("plan: {0}")]
    Plan(#[from] PlanError),
    /// The state file.
    #[error(transparent)]
    State(#[from] StateError),
    /// Another agent runs for the interface, or the lock failed.
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    /// The state directory cannot be trusted.
    #[error(transparent)]
    Dir(#[from] crate::private_dir::PrivateDirError),
    /// Watching files or signals.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Logs every problem of an invalid config.
pub fn log_config_error(path: &std::path::Path, e: &ConfigError) {
    match e {
        ConfigError::Invalid(problems) => {
            for p in problems {
                match p.line {
                    Some(line) => {
                        tracing::error!("{}:{line}: {}: {}", path.display(), p.location, p.message)
                    }
                    None => tracing::error!("{}: {}: {}", path.display(), p.location, p.message),
                }
            }
        }
        other => tracing::error!("{other}"),
    }
}

/// The running agent's state.
struct Agent {
    opts: AgentOptions,
    datapath: Datapath,
    monitor: HealthMonitor,
    config: Config,
    applied: AppliedState,
    resolver: Resolver,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn summary(plan: &Plan) -> String {
    if plan.changes.is_empty() {
        return "no change".into();
    }
    plan.changes
        .iter()
        .map(|c| {
            format!(
                "{}: {} ({} slots moved, table {})",
                c.name,
                c.changes.join(", "),
                c.slots_moved,
                c.table_size
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl Agent {
    fn state_path(&self) -> PathBuf {
        state_path(&self.opts.state_dir, self.opts.netns, &self.opts.ifname)
    }

    /// Asks the resolver thread for the next hops toward every backend; with
    /// `only_unknown`, only for addresses without one (what an apply needs; the
    /// periodic refresh does the rest). Returns at once.
    fn refresh_neighbours(&mut self, config: &Config, only_unknown: bool) {
        let mut addrs: Vec<std::net::IpAddr> = config
            .services
            .iter()
            .flat_map(|s| s.backends.iter().map(|b| b.address))
            .collect();
        addrs.extend(self.datapath.backend_addresses());
        addrs.sort();
        addrs.dedup();
        addrs.retain(|a| !(only_unknown && self.datapath.has_next_hop(*a)));
        self.resolver.request(addrs);
    }

    /// Writes a next hop the resolver found (or lost) into the datapath.
    fn next_hop_resolved(&mut self, r: Resolved) {
        let a = r.address;
        match self.datapath.set_next_hop(a, r.next_hop) {
            Ok(true) => match r.next_hop {
                Some(nh) => tracing::info!("next hop toward backend {a}: {nh:?}"),
                None => tracing::warn!(
                    "next hop toward backend {a} unknown (resolution triggered; the datapath uses its FIB lookup meanwhile)"
                ),
            },
            Ok(false) => {}
            Err(e) => tracing::error!(backend = %a, "writing next hop: {e}"),
        }
    }

    /// Plans and applies `config` with the current health view.
    fn apply(&mut self, config: Config, started: Instant, why: &str) -> Result<(), AgentError> {
        let prev = Previous {
            maglev_table_size: self.applied.maglev_table_size,
            services: &self.applied.services,
            retired: &self.applied.retired_backends,
        };
        let p = plan(&prev, &config, &self.monitor)?;
        let new_settings =
            config.encapsulation != self.config.encapsulation || self.applied.services.is_empty();
        if new_settings {
            self.datapath.write_settings(&config.encapsulation)?;
        }
        self.refresh_neighbours(&config, true);
        if let Err(e) = self.datapath.apply(&p.ops) {
            // The maps were rolled back; so are the settings. `applied` is
            // untouched: it still describes the maps.
            if new_settings && let Err(e) = self.datapath.write_settings(&self.config.encapsulation)
            {
                tracing::error!("restoring the settings after a failed apply: {e}");
            }
            return Err(e.into());
        }
        self.applied.services = p.services.clone();
        self.applied.retired_backends = p.retired.clone();
        self.applied.maglev_table_size = config.maglev_table_size;
        self.applied.config_path = self.opts.config_path.clone();
        self.applied.applied_at_unix_ms = now_ms();
        self.applied.xdp_mode = self.datapath.mode().to_string();
        // The state file carries the duration up to just before its own write.
        self.applied.last_apply_seconds = started.elapsed().as_secs_f64();
        self.applied.write(&self.state_path())?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            "{why}: {} — {} map ops, applied in {ms:.1} ms",
            summary(&p),
            p.ops.len()
        );
        for s in &self.applied.services {
            if s.panic {
                tracing::warn!(service = %s.name, "PANIC MODE: too few healthy backends, using all of them");
            }
        }
        // Announcements follow the applied tables at once (the state file
        // written above still claims exactly the routes installed so far).
        if let Err(e) = self.sync_announcements(&config.announce, false) {
            tracing::error!("announcements: {e}");
        }
        self.config = config;
        Ok(())
    }

    /// Re-decides the VIP announcements, reconciles the kernel routes and
    /// writes the state file (always with `write_unchanged`, else only when
    /// the announcements changed).
    fn sync_announcements(
        &mut self,
        announce: &crate::config::AnnounceConfig,
        write_unchanged: bool,
    ) -> Result<(), StateError> {
        let state_file = self.state_path();
        let pin_dir = self.datapath.pin_dir().to_path_buf();
        let paths = crate::announce::reconcile::Paths {
            state_file: &state_file,
            pin_dir: &pin_dir,
        };
        crate::announce::reconcile::sync(&paths, &mut self.applied, announce, write_unchanged)
    }

    async fn reload(&mut self, started: Instant, why: &str) {
        let read =
            config_read::load_within(&self.opts.config_path, config_read::CONFIG_READ_TIMEOUT);
        let config = match read.await {
            Ok(c) => c,
            Err(e) => {
                log_config_error(&self.opts.config_path, &e);
                tracing::error!(
                    "{why}: config refused; keeping the last good state (nothing applied)"
                );
                return;
            }
        };
        if config.conntrack_entries != self.config.conntrack_entries {
            tracing::warn!("conntrack_entries changes take effect on `lb run --fresh` only");
        }
        if config.conntrack_insert_budget != self.config.conntrack_insert_budget
            && let Err(e) = self
                .datapath
                .set_insert_budget(config.conntrack_insert_budget)
        {
            tracing::error!("{why}: conntrack_insert_budget not applied: {e}");
        }
        self.monitor.update_targets(targets_from_config(&config));
        if let Err(e) = self.apply(config, started, why) {
            tracing::error!("{why}: apply failed: {e}");
        }
    }
}

/// Runs the agent until SIGINT/SIGTERM.
pub async fn run(opts: AgentOptions) -> Result<(), AgentError> {
    // One agent per (network namespace, interface), held until we exit.
    ensure_state_dirs(&opts.state_dir, opts.netns)?;
    let _lock = AgentLock::acquire(
        &lock_path(&opts.state_dir, opts.netns, &opts.ifname),
        &opts.ifname,
    )?;
    let config = config_read::load_within(&opts.config_path, config_read::CONFIG_READ_TIMEOUT)
        .await
        .inspect_err(|e| log_config_error(&opts.config_path, e))?;
    let path = state_path(&opts.state_dir, opts.netns, &opts.ifname);
    let previous = match AppliedState::read(&path) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("{e}; starting fresh");
            None
        }
    };
    let (datapath, adopted) = Datapath::open(
        &OpenOptions {
            pin_root: opts.pin_root.clone(),
            ifname: opts.ifname.clone(),
            netns: opts.netns,
            conntrack_entries: config.conntrack_entries,
            conntrack_insert_budget: config.conntrack_insert_budget,
            mode: opts.mode,
            fresh: opts.fresh,
        },
        previous,
    )?;
    let iface = datapath.interface().clone();
    let applied = adopted.unwrap_or_else(|| AppliedState {
        ifname: iface.name.clone(),
        ifindex: iface.ifindex,
        pin_dir: crate::kernel::pin_dir(&opts.pin_root, opts.netns, &opts.ifname),
        config_path: opts.config_path.clone(),
        applied_at_unix_ms: 0,
        last_apply_seconds: 0.0,
        xdp_mode: datapath.mode().to_string(),
        maglev_table_size: 0,
        services: Vec::new(),
        retired_backends: Vec::new(),
        announce: Default::default(),
    });
    if applied.services.is_empty() {
        // Nothing adopted: remove a stale state file before the first apply.
        let _ignored = std::fs::remove_file(&path);
    }
    let (monitor, mut health_events) = HealthMonitor::new(MonitorConfig::default());
    monitor.update_targets(targets_from_config(&config));
    let mut watch = watcher::watch(&opts.config_path)?;
    let (resolver, mut resolved) = Resolver::start()?;
    let mut agent = Agent {
        opts,
        datapath,
        monitor,
        config: config.clone(),
        applied,
        resolver,
    };
    let started = Instant::now();
    agent.datapath.write_settings(&config.encapsulation)?;
    agent.apply(config, started, "initial apply")?;
    // `lb drain` writes its marker beside the state file (whose directory the
    // first apply created): a drain takes effect at once.
    let mut drain_watch =
        watcher::watch(&crate::announce::drain::marker_path(&agent.state_path()))?;

    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(NEIGHBOUR_REFRESH);
    tick.tick().await;
    // Right after an apply, next hops not yet known (a fresh host has sent
    // nothing, so its gateway's MAC is unknown) are retried quickly, so new
    // flows do not wait for the periodic refresh.
    let mut fast = tokio::time::interval(FAST_NEIGHBOUR_RETRY);
    let mut fast_until = Instant::now() + FAST_NEIGHBOUR_WINDOW;
    loop {
        tokio::select! {
            Some(at) = watch.recv() => {
                // Coalesce the burst of events one save makes.
                tokio::time::sleep(SAVE_COALESCE).await;
                while watch.try_recv().is_ok() {}
                agent.reload(at, "config file changed").await;
                fast_until = Instant::now() + FAST_NEIGHBOUR_WINDOW;
            }
            Some(_) = drain_watch.recv() => {
                tokio::time::sleep(SAVE_COALESCE).await;
                while drain_watch.try_recv().is_ok() {}
                let cfg = agent.config.clone();
                if let Err(e) = agent.sync_announcements(&cfg.announce, false) {
                    tracing::error!("lb drain: {e}");
                }
            }
            _ = hup.recv() => {
                agent.reload(Instant::now(), "SIGHUP").await;
                fast_until = Instant::now() + FAST_NEIGHBOUR_WINDOW;
            }
            Some(r) = resolved.recv() => agent.next_hop_resolved(r),
            _ = fast.tick(), if Instant::now() < fast_until => {
                let cfg = agent.config.clone();
                agent.refresh_neighbours(&cfg, true);
            }
            Some(ev) = health_events.recv() => {
                tracing::info!("{ev}");
                let cfg = agent.config.clone();
                if let Err(e) = agent.apply(cfg, Instant::now(), "health change") {
                    tracing::error!("health change: apply failed: {e}");
                }
            }
            _ = tick.tick() => {
                let cfg = agent.config.clone();
                agent.refresh_neighbours(&cfg, false);
                // Routes changed behind lb's back (or the link detached) are
                // noticed here.
                if let Err(e) = agent.sync_announcements(&cfg.announce, false) {
                    tracing::error!("announcements: {e}");
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!(
        "exiting; the datapath stays attached and keeps forwarding (`lb stop --iface {}` detaches it)",
        agent.opts.ifname
    );
    Ok(())
}
