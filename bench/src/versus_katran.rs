//! lb against Katran in the same run (`lb-bench --katran DIR`).
//!
//! Katran's XDP balancer (two builds, see [`crate::katran`]) runs behind the
//! same frame-restoring wrapper as lb (`bench_restore`, tail call through
//! `TARGET`), on the same template frames and flow cycling, timed by the same
//! function ([`per_packet::time_checked`]). The runs interleave (lb, Katran,
//! Katran insert, lb, ...) so that both see the same machine; each figure is
//! the median of its runs less the wrapper's own cost, and each ratio the
//! median of the runs' own lb/Katran ratios, with their range. Every run
//! checks the verdict and the frame: an IPIP packet to one of the reals for a
//! forwarded packet, the frame untouched for a passed one.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use aya::{
    Ebpf, TestRun as _,
    maps::PerCpuArray,
    programs::{ProgramFd, TestRunOptions},
};
use lb_tests::{
    frames::Tcp,
    harness::{XDP_PASS, XDP_TX},
};

use crate::katran::{DEFAULT_OBJECT, FlowKey, INSERT_OBJECT, Katran};
use crate::one_line::{self, OneLine};
use crate::per_packet::{
    self, BACKENDS, CLIENT, EVERY_PASS_NEW, NOT_A_VIP, RunTime, Sizes, UNSERVED_PORT, VIP,
};
use crate::report::{Report, Row, Target};

/// The goals, as lb's cost over Katran's: a hot established flow.
const HOT_MAX: f64 = 0.58;
/// Established flows, cold (1,000,000 cycled).
const COLD_MAX: f64 = 0.5;
/// A new flow, against Katran with its insert.
const NEW_FLOW_MAX: f64 = 0.5;
/// Packets neither serves (not a VIP; a VIP address on an unserved port).
const NOT_SERVED_MAX: f64 = 1.0;

/// The section's name in the table.
const SECTION: &str = "lb vs Katran";

/// What a case's programs must do with every frame.
#[derive(Clone, Copy, PartialEq)]
enum Verdict {
    /// XDP_TX, IPIP to one of the reals (lb's backends) of the VIP.
    Forward,
    /// XDP_PASS, the frame untouched.
    Pass,
}

/// A program measured behind the wrapper.
struct Contender {
    name: String,
    fd: ProgramFd,
}

/// The frame, flow cycling and verdict of one row.
struct Case {
    name: String,
    frame: Vec<u8>,
    flows: u32,
    verdict: Verdict,
}

/// What a contender's runs of a case came to, net of the wrapper's cost.
struct Figure {
    median: f64,
    runs: Vec<f64>,
}

/// The ratio of two figures of the same runs: the median of the runs' own
/// ratios and their range.
fn ratio(lb: &Figure, katran: &Figure) -> (f64, f64, f64) {
    let mut r: Vec<f64> = lb
        .runs
        .iter()
        .zip(&katran.runs)
        .map(|(l, k)| l / k)
        .collect();
    r.sort_by(f64::total_cmp);
    (r[r.len() / 2], r[0], r[r.len() - 1])
}

/// Runs the lb/Katran rows. Without `katran` (no `--katran`), a full run
/// says why it skips them; a quick run still runs lb's side of every case
/// (the verdict and frame checks, the interleaving) so that the code stays
/// exercised without Katran.
pub(crate) fn run(
    report: &mut Report,
    quick: bool,
    katran: Option<&Path>,
    established_only: bool,
) -> Result<()> {
    if katran.is_none() && !quick {
        report.note(
            "lb vs Katran: skipped (no --katran DIR; build Katran's objects with \
             bench/katran/build.sh KATRAN_GIT_DIR DIR)",
        );
        return Ok(());
    }
    let sizes = per_packet::sizes(quick);
    let mut lb = per_packet::lb_case(&sizes);
    let mut bench = per_packet::load_bench()?;
    let reals: Vec<_> = (1..=BACKENDS).map(per_packet::backend).collect();
    let (mut default, insert) = match katran {
        Some(dir) => (
            Some(Katran::load(dir, DEFAULT_OBJECT, VIP, 80, &reals)?),
            Some(Katran::load(dir, INSERT_OBJECT, VIP, 80, &reals)?),
        ),
        None => (None, None),
    };

    let ack = per_packet::frame(CLIENT, VIP, Tcp::Ack)?;
    let pass = per_packet::bare(&bench, "bench_pass", &ack, &sizes, XDP_PASS)?;
    let pass_fd = per_packet::prog_fd(&bench, "bench_pass")?;
    let wrapper = per_packet::wrapped(&mut bench, pass_fd, &ack, 0, &sizes, XDP_PASS)?;
    let net = |t: f64| (t - wrapper + pass).max(0.0);

    let lb_fd = per_packet::lb_prog_fd(&lb)?;
    let lb_c = Contender {
        name: "lb".into(),
        fd: lb_fd,
    };
    let default_c = contender("Katran (default)", &default)?;
    let insert_c = contender("Katran (insert)", &insert)?;
    let mut ctx = Rows {
        report,
        bench: &mut bench,
        sizes,
        net: &net,
    };

    let description = match katran {
        Some(dir) => format!(
            "lb vs Katran: Katran's balancer.bpf.c from {} ({} and {}: MAX_CONN_RATE raised so \
             every new flow is inserted), one TCP VIP {VIP}:80, {BACKENDS} IPv4 reals, a {}-slot \
             ring, one {}-flow LRU per CPU; runs interleaved lb, Katran (, Katran insert), \
             {} runs x {} passes each, behind the same wrapper (its {:.1} ns replaced by the \
             empty program's {pass:.1} ns); ratios are the median of the runs' own lb/Katran ratios",
            dir.display(),
            DEFAULT_OBJECT,
            INSERT_OBJECT,
            crate::katran::RING_SIZE,
            crate::katran::LRU_SIZE,
            sizes.runs,
            sizes.passes.max(per_packet::MIN_PASSES),
            wrapper - pass,
        ),
        None => "lb vs Katran: no --katran DIR, lb's side only (smoke run)".into(),
    };

    // Hot: one established flow, pinned in both beforehand.
    if let Some(k) = default.as_mut() {
        k.pin_flows([(FlowKey::tcp_v4(CLIENT, 40000, VIP, 80), 1)])?;
    }
    let hot = Case {
        name: "established flow, hot (1 flow)".into(),
        frame: ack.clone(),
        flows: 0,
        verdict: Verdict::Forward,
    };
    let misses_before = misses(&default)?;
    ctx.case(&hot, &lb_c, &[(&default_c, Some(HOT_MAX))])?;
    ctx.no_more_misses(&default, misses_before, "hot")?;

    // Cold: the wrapper cycles over `cold_flows` flows, all pinned in both.
    per_packet::pin_cold_flows(&mut lb, sizes.cold_flows);
    if let Some(k) = default.as_mut() {
        k.pin_flows((0..sizes.cold_flows).map(|flow| {
            let (client, port) = per_packet::cold_client(flow);
            (FlowKey::tcp_v4(client, port, VIP, 80), 1 + flow % BACKENDS)
        }))?;
    }
    let cold = Case {
        name: format!("established flows, cold ({} flows)", sizes.cold_flows),
        frame: ack.clone(),
        flows: sizes.cold_flows,
        verdict: Verdict::Forward,
    };
    // The one-line floors: a table as large as lb's, and one half that size.
    let lines = lb_common::flow_buckets(sizes.cold_flows * 2);
    let floors = [
        OneLine::load(lines, one_line::PROGRAM)?,
        OneLine::load((lines / 2).max(1), one_line::PROGRAM)?,
    ];
    let floor_c = floors
        .iter()
        .map(|f| {
            Ok(Some(Contender {
                name: format!("one-line floor, {}", f.size_text()),
                fd: f.prog_fd()?,
            }))
        })
        .collect::<Result<Vec<_>>>()?;
    let hits_before = lb.global(lb_common::GlobalCounter::ConntrackHit);
    let misses_before = misses(&default)?;
    let figures = ctx.case(
        &cold,
        &lb_c,
        &[
            (&default_c, Some(COLD_MAX)),
            (&floor_c[0], None),
            (&floor_c[1], None),
        ],
    )?;
    if let [_, katran, floor_figures @ ..] = &figures[..]
        && let Some(k) = &default_c
    {
        for (c, f) in floor_c.iter().flatten().zip(floor_figures) {
            ctx.floor_row(c, f, k, katran, &cold);
        }
    }
    let hits = lb.global(lb_common::GlobalCounter::ConntrackHit) - hits_before;
    let passes = u64::from(sizes.passes) * sizes.runs as u64;
    ensure!(
        hits * 100 >= passes * 99,
        "cold case: lb found only {hits} flows in {passes} passes; the pinned flows were not found"
    );
    ctx.no_more_misses(&default, misses_before, "cold")?;
    if established_only {
        report.note(description + "; established flows only (--only established)");
        return Ok(());
    }

    let syn = per_packet::frame(CLIENT, VIP, Tcp::Syn)?;
    let new_flow = Case {
        name: "new flow, new client every pass".into(),
        frame: syn.clone(),
        flows: EVERY_PASS_NEW,
        verdict: Verdict::Forward,
    };
    ctx.case(
        &new_flow,
        &lb_c,
        &[(&insert_c, Some(NEW_FLOW_MAX)), (&default_c, None)],
    )?;
    if let (Some(k), Some(c)) = (&insert, &insert_c) {
        ctx.check_insert(k, c, &new_flow)?;
    }
    let same_syn = Case {
        name: "same SYN every pass".into(),
        frame: syn,
        flows: 0,
        verdict: Verdict::Forward,
    };
    ctx.case(&same_syn, &lb_c, &[(&insert_c, None), (&default_c, None)])?;
    let not_vip = Case {
        name: "non-VIP packet passed".into(),
        frame: per_packet::frame(CLIENT, NOT_A_VIP, Tcp::Ack)?,
        flows: 0,
        verdict: Verdict::Pass,
    };
    ctx.case(&not_vip, &lb_c, &[(&default_c, Some(NOT_SERVED_MAX))])?;
    let unserved = Case {
        name: "VIP address, unserved port, passed".into(),
        frame: per_packet::frame_to(CLIENT, VIP, UNSERVED_PORT, Tcp::Ack)?,
        flows: 0,
        verdict: Verdict::Pass,
    };
    ctx.case(&unserved, &lb_c, &[(&default_c, Some(NOT_SERVED_MAX))])?;

    report.note(description);
    Ok(())
}

/// The contender `name` of a loaded Katran build (`None` without it).
fn contender(name: &'static str, katran: &Option<Katran>) -> Result<Option<Contender>> {
    katran
        .as_ref()
        .map(|k| {
            Ok(Contender {
                name: name.into(),
                fd: k.prog_fd()?,
            })
        })
        .transpose()
}

/// TCP non-SYN LRU misses of Katran's default build so far (0 without it).
fn misses(katran: &Option<Katran>) -> Result<u64> {
    katran.as_ref().map_or(Ok(0), Katran::lru_misses)
}

/// What the cases share.
struct Rows<'a> {
    report: &'a mut Report,
    bench: &'a mut Ebpf,
    sizes: Sizes,
    /// A wrapped time less the wrapper's cost.
    net: &'a dyn Fn(f64) -> f64,
}

impl Rows<'_> {
    /// Runs `case` interleaved for lb and every other contender present
    /// (Katran's builds, the floors), and adds its rows: each figure, then lb
    /// over each other one (against `bound`, if set). Returns the figures, lb's
    /// first, then the present contenders' in order.
    fn case(
        &mut self,
        case: &Case,
        lb: &Contender,
        katrans: &[(&Option<Contender>, Option<f64>)],
    ) -> Result<Vec<Figure>> {
        let present: Vec<(&Contender, Option<f64>)> = katrans
            .iter()
            .filter_map(|(c, bound)| c.as_ref().map(|c| (c, *bound)))
            .collect();
        let contenders: Vec<&Contender> = std::iter::once(lb)
            .chain(present.iter().map(|(c, _)| *c))
            .collect();
        let runs = self.interleave(case, &contenders)?;
        let figures = runs
            .into_iter()
            .map(|r| self.figure(r))
            .collect::<Result<Vec<_>>>()?;
        for (c, f) in contenders.iter().zip(&figures).rev() {
            self.report.push(Row {
                section: SECTION,
                name: format!("{}: {}", c.name, case.name),
                value: f.median,
                unit: "ns",
                target: None,
                versus: runs_text(f),
            });
        }
        for ((c, bound), k) in present.iter().zip(&figures[1..]) {
            let (median, min, max) = ratio(&figures[0], k);
            self.report.push(Row {
                section: SECTION,
                name: format!("lb / {}: {}", c.name, case.name),
                value: median,
                unit: "x",
                target: bound.map(Target::AtMost),
                versus: format!(
                    "runs {min:.2}..{max:.2}x ({} runs); lb {:.1} ns, {} {:.1} ns",
                    k.runs.len(),
                    figures[0].median,
                    c.name,
                    k.median
                ),
            });
        }
        Ok(figures)
    }

    /// The row of a one-line floor over Katran on `case`: when it is above
    /// lb's goal ([`COLD_MAX`]), no table that reads a line of that size per
    /// packet can meet the goal on this machine.
    fn floor_row(
        &mut self,
        floor: &Contender,
        figure: &Figure,
        katran: &Contender,
        katran_figure: &Figure,
        case: &Case,
    ) {
        let (median, min, max) = ratio(figure, katran_figure);
        let verdict = floor_verdict(median, min, COLD_MAX);
        self.report.push(Row {
            section: SECTION,
            name: format!("{} / {}: {}", floor.name, katran.name, case.name),
            value: median,
            unit: "x",
            target: None,
            versus: format!(
                "runs {min:.2}..{max:.2}x; {verdict} of lb <= {COLD_MAX}x {}",
                katran.name
            ),
        });
    }

    /// `sizes.runs` rounds of one run per contender, in order.
    fn interleave(&mut self, case: &Case, contenders: &[&Contender]) -> Result<Vec<Vec<RunTime>>> {
        let mut runs = vec![Vec::with_capacity(self.sizes.runs); contenders.len()];
        for _ in 0..self.sizes.runs {
            for (c, out) in contenders.iter().zip(&mut runs) {
                let p = per_packet::aimed(self.bench, &c.fd, &case.frame, case.flows)?;
                let t = per_packet::time_checked(p, &case.frame, self.sizes.passes, |v, out| {
                    check(case, v, out)
                })
                .with_context(|| format!("{}: {}", c.name, case.name))?;
                out.push(t);
            }
        }
        Ok(runs)
    }

    /// The median of `runs` (logged like every per-packet figure) and each
    /// run, net of the wrapper.
    fn figure(&self, runs: Vec<RunTime>) -> Result<Figure> {
        let net_runs = runs.iter().map(|r| (self.net)(r.precise)).collect();
        let mut it = runs.into_iter();
        let median = per_packet::median(&self.sizes, || it.next().context("no run left"))?;
        Ok(Figure {
            median: (self.net)(median),
            runs: net_runs,
        })
    }

    /// Fails unless one more pass of `case` (a new flow every pass) through
    /// `katran` leaves that flow in its LRU: the insert build must insert.
    fn check_insert(&mut self, katran: &Katran, c: &Contender, case: &Case) -> Result<()> {
        let p = per_packet::aimed(self.bench, &c.fd, &case.frame, case.flows)?;
        let r = p.test_run(TestRunOptions {
            data_in: Some(&case.frame),
            ..Default::default()
        })?;
        ensure!(
            r.return_value == XDP_TX,
            "{}: {}: returned {}",
            c.name,
            case.name,
            r.return_value
        );
        // The wrapper's pass counter after that pass is the flow it sent.
        let passes: PerCpuArray<_, u64> =
            PerCpuArray::try_from(self.bench.map("PASSES").context("PASSES")?)?;
        let cpu = crate::katran::current_cpu()?;
        let flow = *passes
            .get(&0, 0)?
            .get(cpu as usize)
            .context("PASSES of this CPU")? as u32;
        let (client, port) = per_packet::cold_client(flow);
        ensure!(
            katran.has_flow(&FlowKey::tcp_v4(client, port, VIP, 80))?,
            "{}: the new flow {client}:{port} is not in its LRU after its SYN (not the insert build?)",
            c.name
        );
        Ok(())
    }

    /// Fails when Katran's LRU missed more than 1 % of the passes since
    /// `before`: an established-flow row must measure its LRU hits.
    fn no_more_misses(&self, katran: &Option<Katran>, before: u64, case: &str) -> Result<()> {
        let missed = misses(katran)? - before;
        let passes = u64::from(self.sizes.passes) * self.sizes.runs as u64;
        ensure!(
            missed * 100 <= passes,
            "{case} case: Katran missed its LRU {missed} times in {passes} passes; the pinned \
             flows were not found"
        );
        Ok(())
    }
}

/// What a floor's ratio to Katran (median `median`, smallest run `min`)
/// says of lb's goal `goal` (lb at most `goal` x Katran).
fn floor_verdict(median: f64, min: f64, goal: f64) -> &'static str {
    if min > goal {
        "above the goal in every run: the goal is below this floor"
    } else if median > goal {
        "above the goal in most runs"
    } else {
        "below the goal: the goal is not below this floor"
    }
}

/// `runs 61.2..64.0 ns (7 runs)`.
fn runs_text(f: &Figure) -> String {
    let min = f.runs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = f.runs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("runs {min:.1}..{max:.1} ns ({} runs)", f.runs.len())
}

/// Checks one test run's verdict and output frame against `case`.
fn check(case: &Case, verdict: u32, out: &[u8]) -> Result<()> {
    match case.verdict {
        Verdict::Pass => {
            ensure!(
                verdict == XDP_PASS,
                "returned {verdict} instead of XDP_PASS"
            );
            ensure!(out == case.frame, "changed a frame it passed");
        }
        Verdict::Forward => {
            ensure!(verdict == XDP_TX, "returned {verdict} instead of XDP_TX");
            check_ipip(out)?;
        }
    }
    Ok(())
}

/// An IPIP frame (20 bytes of outer IPv4 ahead of the template's) to one
/// of the reals, the inner packet still to the VIP.
fn check_ipip(out: &[u8]) -> Result<()> {
    ensure!(
        out.len() == 64 + 20,
        "wrote a {}-byte frame, expected 84 (IPIP around 64)",
        out.len()
    );
    ensure!(out[12..14] == [0x08, 0x00], "outer frame is not IPv4");
    ensure!(
        out[14] == 0x45 && out[23] == 4,
        "outer header is not IPv4 without options carrying IPIP (protocol {})",
        out[23]
    );
    let dst = std::net::Ipv4Addr::new(out[30], out[31], out[32], out[33]);
    ensure!(
        (1..=BACKENDS).any(|id| per_packet::backend(id) == dst),
        "outer destination {dst} is not one of the reals"
    );
    let inner_dst = std::net::Ipv4Addr::new(out[50], out[51], out[52], out[53]);
    ensure!(
        inner_dst == VIP && out[43] == 6,
        "inner packet is not the TCP packet to {VIP} (destination {inner_dst})"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Case, Figure, Verdict, check, floor_verdict, ratio};
    use crate::per_packet::{self, CLIENT, NOT_A_VIP, VIP};
    use lb_tests::{
        frames::{Tcp, ipip},
        harness::{XDP_DROP, XDP_PASS, XDP_TX},
    };

    fn case(frame: Vec<u8>, verdict: Verdict) -> Case {
        Case {
            name: "test".into(),
            frame,
            flows: 0,
            verdict,
        }
    }

    #[test]
    fn a_forwarded_packet_must_be_ipip_to_a_real_around_the_vip_packet() {
        let ack = per_packet::frame(CLIENT, VIP, Tcp::Ack).unwrap();
        let fwd = case(ack.clone(), Verdict::Forward);
        let to_real = ipip(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            "198.18.2.2".parse().unwrap(),
            per_packet::backend(3),
            &ack,
        );
        check(&fwd, XDP_TX, &to_real).unwrap();
        assert!(check(&fwd, XDP_DROP, &to_real).is_err());
        let elsewhere = ipip(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            "198.18.2.2".parse().unwrap(),
            "198.18.3.9".parse().unwrap(),
            &ack,
        );
        let e = check(&fwd, XDP_TX, &elsewhere).unwrap_err().to_string();
        assert!(e.contains("198.18.3.9"), "{e}");
        // The frame passed back unchanged is not a forwarded packet.
        assert!(check(&fwd, XDP_TX, &ack).is_err());
        let other = per_packet::frame(CLIENT, NOT_A_VIP, Tcp::Ack).unwrap();
        let wrong_inner = ipip(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            "198.18.2.2".parse().unwrap(),
            per_packet::backend(1),
            &other,
        );
        assert!(check(&fwd, XDP_TX, &wrong_inner).is_err());
    }

    #[test]
    fn a_passed_packet_must_be_untouched() {
        let other = per_packet::frame(CLIENT, NOT_A_VIP, Tcp::Ack).unwrap();
        let pass = case(other.clone(), Verdict::Pass);
        check(&pass, XDP_PASS, &other).unwrap();
        assert!(check(&pass, XDP_TX, &other).is_err());
        let mut changed = other.clone();
        changed[20] ^= 1;
        assert!(check(&pass, XDP_PASS, &changed).is_err());
    }

    #[test]
    fn a_floor_above_the_goal_in_every_run_rules_the_goal_out() {
        assert!(floor_verdict(0.6, 0.55, 0.5).contains("goal is below this floor"));
        assert!(floor_verdict(0.6, 0.45, 0.5).contains("most runs"));
        assert!(floor_verdict(0.42, 0.34, 0.5).contains("not below this floor"));
    }

    #[test]
    fn ratio_is_the_median_of_the_runs_own_ratios() {
        let lb = Figure {
            median: 0.0,
            runs: vec![50.0, 60.0, 40.0],
        };
        let katran = Figure {
            median: 0.0,
            runs: vec![100.0, 100.0, 100.0],
        };
        assert_eq!(ratio(&lb, &katran), (0.5, 0.4, 0.6));
    }
}
