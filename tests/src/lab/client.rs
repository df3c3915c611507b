//! The client side: real sockets in the client namespace, opened by threads
//! that entered it. Long-lived TCP and UDP flows remember which backend first
//! answered; every later answer must come from that same backend.

use std::net::{SocketAddr, UdpSocket};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::background::Churn;
use super::error::{LabError, Result};
use super::flows::{FlowSet, Tally, tcp_open};
use super::netns::NetNs;
use super::udp::UdpFlow;

/// The client namespace's socket factory.
#[derive(Clone, Debug)]
pub struct Client {
    ns: Arc<NetNs>,
}

/// Result of a batch of short connections.
#[derive(Debug, Default, Clone)]
pub struct ShortReport {
    /// Answers per backend.
    pub by_backend: Tally,
    /// Connections that failed (connect, send or answer).
    pub failed: usize,
    /// A few failure reasons.
    pub errors: Vec<String>,
    /// When each failed connection was in flight: from just before its
    /// connect to its failure (so that a test can tell whether a failure
    /// overlapped an event that may break connections in flight).
    pub failed_during: Vec<Range<Instant>>,
}

impl ShortReport {
    fn merge(&mut self, other: ShortReport) {
        for (k, v) in other.by_backend {
            *self.by_backend.entry(k).or_default() += v;
        }
        self.failed += other.failed;
        self.errors.extend(other.errors);
        self.errors.truncate(10);
        self.failed_during.extend(other.failed_during);
    }

    /// The failed connections that were not in flight at any time in
    /// `windows`: the failures those events do not explain.
    pub fn failed_outside(&self, windows: &[Range<Instant>]) -> usize {
        self.failed_during
            .iter()
            .filter(|f| !windows.iter().any(|w| f.start <= w.end && w.start <= f.end))
            .count()
    }

    /// Connections that got an answer.
    pub fn answered(&self) -> usize {
        self.by_backend.values().sum()
    }

    /// A backend's share of the answered connections (0..=1).
    pub fn share(&self, backend: &str) -> f64 {
        let total = self.answered();
        if total == 0 {
            return 0.0;
        }
        self.by_backend.get(backend).copied().unwrap_or(0) as f64 / total as f64
    }
}

pub(super) fn short_one(dst: SocketAddr, report: &mut ShortReport) {
    let start = Instant::now();
    match tcp_open(dst) {
        Ok(flow) => *report.by_backend.entry(flow.backend).or_default() += 1,
        Err(e) => {
            report.failed += 1;
            report.failed_during.push(start..Instant::now());
            if report.errors.len() < 10 {
                report.errors.push(format!("{}: {e}", e.kind()));
            }
        }
    }
}

impl Client {
    /// A client whose sockets live in `ns`.
    pub fn new(ns: Arc<NetNs>) -> Client {
        Client { ns }
    }

    /// Opens `n` long-lived TCP connections to `dst`, each asked once which
    /// backend it reached. Fails if any cannot be opened.
    pub fn open_tcp(&self, dst: SocketAddr, n: usize) -> Result<FlowSet> {
        self.ns.run(|| {
            let flows = (0..n)
                .map(|i| {
                    tcp_open(dst)
                        .map_err(LabError::io(format!("open long-lived tcp #{i} to {dst}")))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(FlowSet { flows })
        })?
    }

    /// Opens `n` short TCP connections to `dst` (one request each, then close)
    /// from `workers` threads; bounded by `limit` in time.
    pub fn short_tcp(
        &self,
        dst: SocketAddr,
        n: usize,
        workers: usize,
        limit: Duration,
    ) -> Result<ShortReport> {
        let workers = workers.clamp(1, n.max(1));
        let deadline = Instant::now() + limit;
        let handles = (0..workers)
            .map(|w| {
                let count = n / workers + usize::from(w < n % workers);
                self.ns.spawn("short-tcp", move || {
                    let mut report = ShortReport::default();
                    for _ in 0..count {
                        if Instant::now() > deadline {
                            report.failed += 1;
                            report.failed_during.push(deadline..Instant::now());
                            continue;
                        }
                        short_one(dst, &mut report);
                    }
                    report
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut total = ShortReport::default();
        for handle in handles {
            let report = handle
                .join()
                .map_err(|_| LabError::Thread("short-tcp".into()))??;
            total.merge(report);
        }
        Ok(total)
    }

    /// Opens about `per_second` new short connections per second to `dst` in
    /// the background, for at most `limit`.
    pub fn churn(&self, dst: SocketAddr, per_second: u32, limit: Duration) -> Result<Churn> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let gap = Duration::from_secs(1) / per_second.max(1);
        let handle = self.ns.spawn("churn", move || {
            let mut report = ShortReport::default();
            let deadline = Instant::now() + limit;
            let mut next = Instant::now();
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                short_one(dst, &mut report);
                next += gap;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            report
        })?;
        let thread = std::thread::spawn(move || {
            handle
                .join()
                .map_err(|_| LabError::Thread("churn".into()))?
        });
        Ok(Churn { stop, thread })
    }

    /// Opens `n` UDP flows (connected sockets, distinct source ports) to `dst`
    /// and learns each one's backend. Fails if any gets no answer.
    pub fn open_udp(&self, dst: SocketAddr, n: usize) -> Result<Vec<UdpFlow>> {
        self.ns.run(|| {
            (0..n)
                .map(|i| {
                    let what = format!("udp flow #{i} to {dst}");
                    let bind: SocketAddr = if dst.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" }
                        .parse()
                        .expect("literal address");
                    let socket = UdpSocket::bind(bind).map_err(LabError::io(what.clone()))?;
                    socket.connect(dst).map_err(LabError::io(what.clone()))?;
                    UdpFlow::start(socket, &what)
                })
                .collect()
        })?
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::ShortReport;

    #[test]
    fn only_failures_in_flight_during_a_window_are_excused() {
        let t = Instant::now();
        let at = |ms: u64| t + Duration::from_millis(ms);
        let report = ShortReport {
            failed: 4,
            failed_during: vec![at(0)..at(5), at(8)..at(12), at(20)..at(30), at(41)..at(42)],
            ..ShortReport::default()
        };
        // Window 10..25 overlaps the second and third failures only.
        assert_eq!(report.failed_outside(&[at(10)..at(25)]), 2);
        assert_eq!(report.failed_outside(&[at(10)..at(25), at(40)..at(41)]), 1);
        assert_eq!(report.failed_outside(&[]), 4);
    }
}
