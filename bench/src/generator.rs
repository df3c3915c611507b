//! The traffic generator: BPF_PROG_TEST_RUN with live frames
//! (BPF_F_TEST_XDP_LIVE_FRAMES) on `bench_gen`, in the generator namespace,
//! one thread pinned to one CPU. Each frame the program returns XDP_TX for is
//! really transmitted out of the ingress interface given in the context.
//! The syscall is issued through `lb::kernel::sys` (aya's test run needs the
//! program object, which cannot leave its `Ebpf`; a program fd can).
//!
//! Every test-run call with repeat > 1 costs tens of milliseconds of fixed
//! time asleep (the kernel swaps the XDP dispatcher in and out), so one call
//! covers the whole measurement: it is given far more frames than it can send
//! in time and is ended by a signal (the kernel checks for one between
//! batches and returns EINTR).

use std::os::fd::{AsFd as _, AsRawFd as _};
use std::os::unix::thread::JoinHandleExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use aya::programs::ProgramFd;
use lb::kernel::sys::{self, TestRunAttr};
use lb_tests::lab::netns::NetNs;

/// Frames per test-run call: an upper bound (minutes at the rates seen
/// here); the call is normally ended by [`STOP_SIGNAL`].
const FRAMES_PER_CALL: u32 = 1 << 30;
/// Ends a running test-run call (a no-op handler is installed for it).
const STOP_SIGNAL: i32 = libc::SIGUSR1;
/// Frames per kernel batch (the kernel's maximum). A veth's receive ring
/// holds 256 frames; the DUT drains it on the same CPU after every batch.
const BATCH: u32 = 256;

/// The `struct xdp_md` context of a live run (data, data_end, data_meta,
/// ingress_ifindex, rx_queue_index, egress_ifindex): the whole `len`-byte
/// frame, received on `ifindex` queue 0 (so XDP_TX sends out of `ifindex`).
pub fn xdp_md(len: u32, ifindex: u32) -> [u8; 24] {
    let fields = [0u32, len, 0, ifindex, 0, 0];
    let mut out = [0u8; 24];
    for (chunk, f) in out.chunks_exact_mut(4).zip(fields) {
        chunk.copy_from_slice(&f.to_ne_bytes());
    }
    out
}

/// One live-frames test run of `prog_fd`; `Ok(false)` when a signal ended it.
fn test_run(prog_fd: u32, frame: &[u8], ctx: &[u8]) -> Result<bool> {
    let mut attr = TestRunAttr::live(prog_fd, frame, ctx, FRAMES_PER_CALL, BATCH);
    sys::prog_test_run(&mut attr).map_err(|e| anyhow!("bpf(BPF_PROG_TEST_RUN, live frames): {e}"))
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// Installs a no-op handler for [`STOP_SIGNAL`] (without it the signal would
/// end the process).
fn install_stop_handler() -> Result<()> {
    // SAFETY: a zeroed sigaction with a valid handler and an empty mask.
    let rc = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = ignore_signal as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(STOP_SIGNAL, &sa, std::ptr::null_mut())
    };
    if rc != 0 {
        bail!("sigaction: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) -> Result<()> {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity only reads it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        bail!(
            "sched_setaffinity(cpu {cpu}): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// A running generator thread; stopped on drop.
pub struct Generator {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<lb_tests::lab::Result<Result<()>>>>,
}

impl Generator {
    /// Starts running `prog` (which rewrites `frame`) and sending the result
    /// out of `ifindex` (in `ns`) from a thread pinned to `cpu`, for at most
    /// `limit`.
    pub fn start(
        ns: &Arc<NetNs>,
        prog: ProgramFd,
        frame: Vec<u8>,
        ifindex: u32,
        cpu: usize,
        limit: Duration,
    ) -> Result<Generator> {
        install_stop_handler()?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let handle = ns.spawn("lb-bench-gen", move || -> Result<()> {
            pin(cpu)?;
            let ctx = xdp_md(frame.len() as u32, ifindex);
            let started = Instant::now();
            // Bounded in calls and time; each call in frames (and by the signal).
            let mut calls = 0;
            while !s.load(Ordering::Relaxed) && started.elapsed() < limit && calls < 100 {
                test_run(prog.as_fd().as_raw_fd() as u32, &frame, &ctx)?;
                calls += 1;
            }
            Ok(())
        })?;
        Ok(Generator {
            stop,
            handle: Some(handle),
        })
    }

    /// Stops the thread (flag, then the signal until it has exited, bounded);
    /// fails with the thread's error.
    pub fn stop(mut self) -> Result<()> {
        self.halt();
        match self.handle.take() {
            Some(handle) => handle
                .join()
                .map_err(|_| anyhow!("generator thread panicked"))??,
            None => Ok(()),
        }
    }

    /// Sets the stop flag and signals the thread until it has finished
    /// (bounded: 5 s).
    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let Some(handle) = &self.handle else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !handle.is_finished() && Instant::now() < deadline {
            // SAFETY: the thread has not been joined, so its pthread_t is valid.
            unsafe { libc::pthread_kill(handle.as_pthread_t(), STOP_SIGNAL) };
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        self.halt();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::xdp_md;

    #[test]
    fn context_carries_length_and_ingress() {
        let md = xdp_md(64, 7);
        assert_eq!(&md[..4], &[0; 4]);
        assert_eq!(u32::from_ne_bytes(md[4..8].try_into().unwrap()), 64);
        assert_eq!(&md[8..12], &[0; 4]);
        assert_eq!(u32::from_ne_bytes(md[12..16].try_into().unwrap()), 7);
        assert_eq!(&md[16..], &[0; 8]);
    }
}
