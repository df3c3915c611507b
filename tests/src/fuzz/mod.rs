//! The datapath fuzzer: generated and mutated frames (see [`generate`])
//! through BPF_PROG_TEST_RUN against the real `lb_xdp` with a realistic
//! config (see [`setup`]), each outcome checked (see [`mod@check`]).
//!
//! It runs in a fresh network namespace with only a loopback interface, so
//! the program's FIB lookups see no host route. `cargo xtask test` runs a
//! short pass (`tests/tests/fuzz.rs`); `cargo xtask fuzz --frames N` a long one.

pub mod check;
pub mod generate;
pub mod setup;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lb_common::GlobalCounter as G;

use crate::harness::Lb;
use check::{Outcome, check};
use generate::{Rng, mutate, seed};

/// Seeds whose every truncation is run first.
const TRUNCATED_SEEDS: usize = 16;
/// Failures kept (with their frames) for the report; more are only counted.
const KEPT_FAILURES: usize = 10;

/// One frame that broke a rule.
#[derive(Debug)]
pub struct Failure {
    /// Its index in the run.
    pub index: u64,
    /// Which rule, and how.
    pub why: String,
    /// The action returned.
    pub action: u32,
    /// The frame.
    pub frame: Vec<u8>,
}

/// What a run saw.
#[derive(Debug, Default)]
pub struct Report {
    /// Frames run.
    pub frames: u64,
    /// The generator's seed.
    pub seed: u64,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// Frames by terminal counter.
    pub terminal: BTreeMap<&'static str, u64>,
    /// Frames by XDP action.
    pub actions: BTreeMap<&'static str, u64>,
    /// ICMP errors forwarded to a backend.
    pub icmp_errors_forwarded: u64,
    /// "Too big" answers sent.
    pub too_big_sent: u64,
    /// Frames encapsulated in GUE.
    pub gue_encapsulated: u64,
    /// GUE frames that named a previous owner (second chance).
    pub second_chance: u64,
    /// Frames that broke a rule (count).
    pub failed: u64,
    /// The first of them.
    pub failures: Vec<Failure>,
}

fn action_name(a: u32) -> &'static str {
    match a {
        0 => "aborted",
        1 => "drop",
        2 => "pass",
        3 => "tx",
        4 => "redirect",
        _ => "other",
    }
}

/// Every global counter, summed over CPUs, in [`G::ALL`] order.
fn globals(lb: &Lb) -> Vec<u64> {
    G::ALL.iter().map(|&c| lb.global(c)).collect()
}

impl Report {
    fn record(&mut self, lb: &Lb, before: &mut Vec<u64>, frame: Vec<u8>) {
        let (action, output) = lb.run(&frame);
        let after = globals(lb);
        let moved: Vec<u64> = after
            .iter()
            .zip(before.iter())
            .map(|(a, b)| a - b)
            .collect();
        *before = after;
        let index = self.frames;
        self.frames += 1;
        *self.actions.entry(action_name(action)).or_default() += 1;
        self.icmp_errors_forwarded += moved[G::IcmpErrorForwarded as usize];
        self.too_big_sent += moved[G::IcmpTooBigSent as usize];
        self.gue_encapsulated += moved[G::GueEncapsulated as usize];
        self.second_chance += moved[G::SecondChancePackets as usize];
        let outcome = Outcome {
            input: &frame,
            action,
            output: &output,
            moved: &moved,
        };
        match check(&outcome) {
            Ok(t) => *self.terminal.entry(t.label()).or_default() += 1,
            Err(why) => {
                self.failed += 1;
                if self.failures.len() < KEPT_FAILURES {
                    self.failures.push(Failure {
                        index,
                        why,
                        action,
                        frame,
                    });
                }
            }
        }
    }

    /// Frames per second.
    pub fn rate(&self) -> f64 {
        self.frames as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "fuzz: {} frames (seed {}) in {:.1} s ({:.0} frames/s), {} broke a rule",
            self.frames,
            self.seed,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.failed
        )?;
        writeln!(f, "  actions: {:?}", self.actions)?;
        writeln!(f, "  terminal counters: {:?}", self.terminal)?;
        writeln!(
            f,
            "  icmp errors forwarded: {}, too-big answers sent: {}, GUE encapsulated: {} \
             ({} with a second-chance hint)",
            self.icmp_errors_forwarded,
            self.too_big_sent,
            self.gue_encapsulated,
            self.second_chance
        )?;
        for x in &self.failures {
            let hex: String = x
                .frame
                .iter()
                .take(96)
                .map(|b| format!("{b:02x}"))
                .collect();
            writeln!(
                f,
                "  frame {} ({} bytes, action {}): {}\n    {hex}",
                x.index,
                x.frame.len(),
                x.action,
                x.why
            )?;
        }
        Ok(())
    }
}

/// Runs `frames` frames from `seed` against a freshly loaded datapath (in
/// the calling thread's network namespace): every truncation (from the
/// Ethernet header on) of a few seeds first, then seeds and their mutations.
pub fn run_here(frames: u64, seed_value: u64) -> Report {
    let lb = setup::datapath();
    let mut rng = Rng::new(seed_value);
    let mut report = Report {
        seed: seed_value,
        ..Report::default()
    };
    let start = Instant::now();
    let mut before = globals(&lb);
    'prelude: for _ in 0..TRUNCATED_SEEDS {
        let f = seed(&mut rng);
        for cut in generate::MIN_FRAME..=f.len().min(300) {
            if report.frames >= frames {
                break 'prelude;
            }
            report.record(&lb, &mut before, f[..cut].to_vec());
        }
    }
    while report.frames < frames {
        let mut f = seed(&mut rng);
        if rng.chance(85) {
            mutate(&mut rng, &mut f);
        }
        report.record(&lb, &mut before, f);
    }
    report.elapsed = start.elapsed();
    report
}

/// Like [`run_here`], inside a fresh network namespace (created and deleted).
pub fn run(frames: u64, seed_value: u64) -> Report {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let ns = format!(
        "lbt-fuzz-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    crate::netns::ip_quiet(&["netns", "del", &ns]);
    crate::netns::ip(&["netns", "add", &ns]);
    crate::netns::ip(&["-n", &ns, "link", "set", "lo", "up"]);
    let result = std::panic::catch_unwind(|| {
        crate::netns::in_netns(&ns, move || run_here(frames, seed_value))
    });
    crate::netns::ip_quiet(&["netns", "del", &ns]);
    result.unwrap_or_else(|e| std::panic::resume_unwind(e))
}
