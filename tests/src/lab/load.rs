//! A continuous, bounded client load for the interactive lab: keeps a number of
//! long-lived TCP connections open (pinging each, replacing broken ones) and
//! opens new short connections at a steady rate, for at most a time limit.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::client::Client;
use super::error::{LabError, Result};
use super::flows::{FlowSet, Tally};

/// What the load does.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// Services to connect to (round robin).
    pub targets: Vec<SocketAddr>,
    /// Long-lived connections kept open per target.
    pub long_lived: usize,
    /// New short connections per second, over all targets.
    pub new_per_second: u32,
    /// Stop after this long at the latest.
    pub limit: Duration,
}

/// Counters of the load so far.
#[derive(Clone, Debug, Default)]
pub struct LoadStatus {
    /// Long-lived connections open now, by backend.
    pub open_by_backend: Tally,
    /// Long-lived connections that broke (and were replaced), by original backend.
    pub broken_by_backend: Tally,
    /// New connections answered in the last second, by backend.
    pub last_second: Tally,
    /// New connections answered in total.
    pub new_ok: usize,
    /// New connections that failed in total.
    pub new_failed: usize,
    /// Seconds since start.
    pub seconds: u64,
}

fn fmt_tally(t: &Tally) -> String {
    if t.is_empty() {
        return "-".into();
    }
    t.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl std::fmt::Display for LoadStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{:>4}s] long-lived open: {} | broken so far: {} | new/s: {} | new ok {} failed {}",
            self.seconds,
            fmt_tally(&self.open_by_backend),
            fmt_tally(&self.broken_by_backend),
            fmt_tally(&self.last_second),
            self.new_ok,
            self.new_failed
        )
    }
}

/// The running load; [`LiveLoad::stop`] ends it.
#[derive(Debug)]
pub struct LiveLoad {
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<LoadStatus>>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl LiveLoad {
    /// Starts the load from `client`'s namespace.
    pub fn start(client: &Client, spec: LoadSpec) -> Result<LiveLoad> {
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(LoadStatus::default()));
        let (flag, shared, client) = (stop.clone(), status.clone(), client.clone());
        let thread = std::thread::Builder::new()
            .name("live-load".into())
            .spawn(move || run(&client, &spec, &flag, &shared))
            .map_err(LabError::io("spawn live load"))?;
        Ok(LiveLoad {
            stop,
            status,
            thread: Some(thread),
        })
    }

    /// A snapshot of the counters.
    pub fn status(&self) -> LoadStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Whether the load has ended (time limit reached or failed).
    pub fn finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops the load and returns its final counters.
    pub fn stop(&mut self) -> Result<LoadStatus> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .map_err(|_| LabError::Thread("live-load".into()))??;
        }
        Ok(self.status())
    }
}

impl Drop for LiveLoad {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn run(
    client: &Client,
    spec: &LoadSpec,
    stop: &AtomicBool,
    status: &Mutex<LoadStatus>,
) -> Result<()> {
    let start = Instant::now();
    let mut pools: Vec<FlowSet> = spec.targets.iter().map(|_| FlowSet::default()).collect();
    let mut broken = Tally::new();
    let (mut new_ok, mut new_failed) = (0, 0);
    let mut second = Tally::new();
    let mut second_start = Instant::now();
    let mut next_target = 0;
    let tick = Duration::from_millis(250);
    let per_tick = (spec.new_per_second as usize).div_ceil(4);
    while !stop.load(Ordering::Relaxed) && start.elapsed() < spec.limit {
        let tick_start = Instant::now();
        for (pool, target) in pools.iter_mut().zip(&spec.targets) {
            pool.ping_all();
            for flow in pool.flows.iter().filter(|f| f.broken.is_some()) {
                *broken.entry(flow.backend.clone()).or_default() += 1;
            }
            pool.flows.retain(|f| f.broken.is_none());
            let missing = spec.long_lived.saturating_sub(pool.flows.len());
            if missing > 0
                && let Ok(mut more) = client.open_tcp(*target, missing)
            {
                pool.flows.append(&mut more.flows);
            }
        }
        if !spec.targets.is_empty() && per_tick > 0 {
            let target = spec.targets[next_target % spec.targets.len()];
            next_target += 1;
            let report = client.short_tcp(target, per_tick, 2, Duration::from_secs(5))?;
            new_ok += report.answered();
            new_failed += report.failed;
            for (k, v) in report.by_backend {
                *second.entry(k).or_default() += v;
            }
        }
        if second_start.elapsed() >= Duration::from_secs(1) {
            if let Ok(mut s) = status.lock() {
                let mut open = Tally::new();
                for pool in &pools {
                    for (k, v) in pool.by_backend() {
                        *open.entry(k).or_default() += v;
                    }
                }
                *s = LoadStatus {
                    open_by_backend: open,
                    broken_by_backend: broken.clone(),
                    last_second: std::mem::take(&mut second),
                    new_ok,
                    new_failed,
                    seconds: start.elapsed().as_secs(),
                };
            }
            second_start = Instant::now();
        }
        if let Some(rest) = tick.checked_sub(tick_start.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    Ok(())
}
