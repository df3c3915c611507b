//! The agent: initial apply, then live reloads (inotify on the config's
//! directory, SIGHUP), health-driven re-plans and neighbour refreshes, until
//! SIGINT/SIGTERM. Exiting leaves the datapath attached (`lb stop` detaches).
//!
//! Every decision is made by the pure [`pure_core::AgentCore`]; this module is its
//! shell: the tokio loop turns files, signals, health events, resolved next
//! hops and timers into [`pure_core::Event`]s and carries out the
//! [`pure_core::Effect`]s (map operations through [`Datapath::apply`], the state
//! file, routes, health targets, log lines).

pub mod config_read;
pub mod lock;
pub mod neighbours;
pub mod pure_core;
pub mod resolver;
pub mod watcher;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::signal::unix::{SignalKind, signal};

use crate::config::ConfigError;
use crate::health::{HealthMonitor, MonitorConfig};
use crate::kernel::{Datapath, KernelError, ModeChoice, OpenOptions};
use crate::netns::NetnsId;
use crate::plan::PlanError;
use crate::state::{AppliedState, StateError, ensure_state_dirs, lock_path, state_path};
use lock::AgentLock;
use pure_core::{AgentCore, ApplyOutcome, CoreStart, Effect, Event, Level, LogLine};
use resolver::Resolver;

/// How often next hops toward backends are re-resolved.
pub const NEIGHBOUR_REFRESH: Duration = Duration::from_secs(3);
/// How often unknown next hops are retried right after an apply.
pub const FAST_NEIGHBOUR_RETRY: Duration = Duration::from_millis(100);
/// How long after an apply unknown next hops are retried at that pace.
pub use pure_core::FAST_NEIGHBOUR_WINDOW;
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
    Datapath(#[from] KernelError),
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

/// The shell around the core: the I/O its effects ask for.
struct Shell {
    opts: AgentOptions,
    datapath: Datapath,
    monitor: HealthMonitor,
    resolver: Resolver,
    core: AgentCore,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Shell {
    fn state_path(&self) -> PathBuf {
        state_path(&self.opts.state_dir, self.opts.netns, &self.opts.ifname)
    }

    /// Passes `event` to the core and carries out what it asks, feeding the
    /// outcomes of applies and announcement syncs back in. Returns the first
    /// failure (an apply, a plan, the state file), already logged.
    fn handle(&mut self, event: Event) -> Result<(), AgentError> {
        let mut effects: VecDeque<Effect> = self.core.handle(event, Instant::now()).into();
        let mut failure = None;
        while let Some(effect) = effects.pop_front() {
            let answer = match effect {
                Effect::Apply { ops } => {
                    let outcome = match self.datapath.apply(&ops) {
                        Ok(()) => ApplyOutcome::Done {
                            at_unix_ms: now_ms(),
                        },
                        Err(e) => {
                            let error = e.to_string();
                            let uncertain = matches!(e, KernelError::RollbackFailed { .. });
                            failure.get_or_insert(AgentError::Datapath(e));
                            if uncertain {
                                ApplyOutcome::Uncertain { error }
                            } else {
                                ApplyOutcome::RolledBack { error }
                            }
                        }
                    };
                    Some(Event::Applied(outcome))
                }
                Effect::PlanFailed(e) => {
                    failure.get_or_insert(AgentError::Plan(e));
                    None
                }
                Effect::SetHealthTargets(targets) => {
                    self.monitor.update_targets(targets);
                    None
                }
                Effect::ResolveNextHops(addresses) => {
                    self.resolver.request(addresses);
                    None
                }
                Effect::WriteState { state, why } => {
                    if let Err(e) = state.write(&self.state_path()) {
                        tracing::error!("{why}: {e}");
                        failure.get_or_insert(AgentError::State(e));
                    }
                    None
                }
                Effect::SyncAnnouncements {
                    mut state,
                    announce,
                    write_unchanged,
                    why,
                } => {
                    let state_file = self.state_path();
                    let paths = crate::announce::reconcile::Paths {
                        state_file: &state_file,
                        pin_dir: self.datapath.pin_dir(),
                    };
                    if let Err(e) = crate::announce::reconcile::sync(
                        &paths,
                        &mut state,
                        &announce,
                        write_unchanged,
                    ) {
                        tracing::error!("{why}: {e}");
                    }
                    Some(Event::Announced(state.announce))
                }
                Effect::Log(line) => {
                    log(&line);
                    None
                }
            };
            if let Some(event) = answer {
                effects.extend(self.core.handle(event, Instant::now()));
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Reads the config file (refused: logged, nothing changes) and hands it
    /// to the core with the current health.
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
        let event = Event::ConfigLoaded {
            config,
            why: why.to_string(),
            started,
            health: self.monitor.health_snapshot(),
        };
        // Failures are logged by the core and the shell; the loop goes on.
        let _logged = self.handle(event);
    }

    /// Hands `event` to the core; failures are already logged.
    fn handle_logged(&mut self, event: Event) {
        let _logged = self.handle(event);
    }
}

/// Writes one of the core's log lines.
fn log(line: &LogLine) {
    let message = &line.message;
    match (line.level, &line.service) {
        (Level::Info, None) => tracing::info!("{message}"),
        (Level::Info, Some(service)) => tracing::info!(service = %service, "{message}"),
        (Level::Warn, None) => tracing::warn!("{message}"),
        (Level::Warn, Some(service)) => tracing::warn!(service = %service, "{message}"),
        (Level::Error, None) => tracing::error!("{message}"),
        (Level::Error, Some(service)) => tracing::error!(service = %service, "{message}"),
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
    let mut watch = watcher::watch(&opts.config_path)?;
    let (resolver, mut resolved) = Resolver::start()?;
    let core = AgentCore::new(CoreStart {
        link: iface.link(),
        applied,
        insert_budget: config.conntrack_insert_budget,
    });
    let mut shell = Shell {
        opts,
        datapath,
        monitor,
        resolver,
        core,
    };
    let started = Instant::now();
    shell.handle(Event::ConfigLoaded {
        config,
        why: "initial apply".into(),
        started,
        health: shell.monitor.health_snapshot(),
    })?;
    // `lb drain` writes its marker beside the state file (whose directory the
    // first apply created): a drain takes effect at once.
    let mut drain_watch =
        watcher::watch(&crate::announce::drain::marker_path(&shell.state_path()))?;

    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(NEIGHBOUR_REFRESH);
    tick.tick().await;
    // Right after an apply, next hops not yet known (a fresh host has sent
    // nothing, so its gateway's MAC is unknown) are retried quickly, so new
    // flows do not wait for the periodic refresh (the core decides how long).
    let mut fast = tokio::time::interval(FAST_NEIGHBOUR_RETRY);
    loop {
        tokio::select! {
            Some(at) = watch.recv() => {
                // Coalesce the burst of events one save makes.
                tokio::time::sleep(SAVE_COALESCE).await;
                while watch.try_recv().is_ok() {}
                shell.reload(at, "config file changed").await;
            }
            Some(_) = drain_watch.recv() => {
                tokio::time::sleep(SAVE_COALESCE).await;
                while drain_watch.try_recv().is_ok() {}
                shell.handle_logged(Event::DrainMarkerChanged);
            }
            _ = hup.recv() => shell.reload(Instant::now(), "SIGHUP").await,
            Some(r) = resolved.recv() => shell.handle_logged(Event::NextHopResolved {
                address: r.address,
                next_hop: r.next_hop,
            }),
            _ = fast.tick(), if shell.core.wants_fast_retry(Instant::now()) => {
                shell.handle_logged(Event::FastRetryTick);
            }
            Some(event) = health_events.recv() => {
                let health = shell.monitor.health_snapshot();
                shell.handle_logged(Event::HealthChanged { event, health });
            }
            _ = tick.tick() => shell.handle_logged(Event::RefreshTick),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!(
        "exiting; the datapath stays attached and keeps forwarding (`lb stop --iface {}` detaches it)",
        shell.opts.ifname
    );
    Ok(())
}
