//! Background loads: pinging long-lived connections, streams of new ones.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::client::ShortReport;
use super::error::{LabError, Result};
use super::flows::FlowSet;

/// Background pinging of a [`FlowSet`] until [`Pinger::finish`] (bounded);
/// more flows can join while it runs.
#[derive(Debug)]
pub struct Pinger {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicU64>,
    deadline: Instant,
    flows: Arc<Mutex<FlowSet>>,
    thread: JoinHandle<u64>,
}

impl Pinger {
    /// Pings every flow, then sleeps `interval`, over and over, for at most `limit`.
    pub fn start(flows: FlowSet, interval: Duration, limit: Duration) -> Pinger {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicU64::new(0));
        let flows = Arc::new(Mutex::new(flows));
        let deadline = Instant::now() + limit;
        let (flag, count, shared) = (stop.clone(), rounds.clone(), flows.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                if let Ok(mut flows) = shared.lock() {
                    flows.ping_all();
                }
                count.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(interval);
            }
            count.load(Ordering::SeqCst)
        });
        Pinger {
            stop,
            rounds,
            deadline,
            flows,
            thread,
        }
    }

    /// Adds flows to the running set.
    pub fn add(&self, mut more: FlowSet) {
        if let Ok(mut flows) = self.flows.lock() {
            flows.flows.append(&mut more.flows);
        }
    }

    /// Runs `f` on the flows (the pinger waits meanwhile).
    pub fn with<T>(&self, f: impl FnOnce(&mut FlowSet) -> T) -> T {
        let mut flows = self
            .flows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut flows)
    }

    /// Waits until at least `rounds` background rounds ran (bounded by the
    /// pinger's own time limit), then [`Pinger::finish`]es: a slow machine
    /// still exercises every flow that often across the event under test.
    pub fn finish_after_rounds(self, rounds: u64) -> Result<(FlowSet, u64)> {
        while self.rounds.load(Ordering::SeqCst) < rounds && Instant::now() < self.deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.finish()
    }

    /// Stops, pings every flow one last time, and returns the flows and the
    /// number of background rounds.
    pub fn finish(self) -> Result<(FlowSet, u64)> {
        self.stop.store(true, Ordering::SeqCst);
        let rounds = self
            .thread
            .join()
            .map_err(|_| LabError::Thread("pinger".into()))?;
        let mut flows = std::mem::take(
            &mut *self
                .flows
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        flows.ping_all();
        Ok((flows, rounds))
    }
}

/// Background stream of new short TCP connections until [`Churn::finish`].
#[derive(Debug)]
pub struct Churn {
    pub(super) stop: Arc<AtomicBool>,
    pub(super) thread: JoinHandle<Result<ShortReport>>,
}

impl Churn {
    /// Stops and returns what the new connections saw.
    pub fn finish(self) -> Result<ShortReport> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .join()
            .map_err(|_| LabError::Thread("churn".into()))?
    }
}
