//! The one-line floor (`bench_one_line` of `bench-ebpf`): encapsulation after
//! one read of a cache line that the flow chooses in a table of a given size.
//! Next to lb and Katran on the cold rows, it shows what any connection table
//! that reads one line per packet costs at least on this machine, for a table
//! as large as lb's and for one half that size (what slots half as wide would
//! take). The rate section runs `bench_one_line_forward` the same way: the
//! encapsulating forwarder after the one line, on the DUT of its topology.

use anyhow::{Context, Result, ensure};
use aya::{
    Ebpf, EbpfLoader,
    maps::Array,
    programs::{ProgramFd, Xdp},
};

use crate::per_packet::{self, BACKENDS, BENCH_OBJECT};

/// The per-packet floor's program (behind the wrapper: `XDP_TX`).
pub(crate) const PROGRAM: &str = "bench_one_line";
/// The rate floor's program (encapsulate, redirect to the sink).
pub(crate) const FORWARD_PROGRAM: &str = "bench_one_line_forward";

/// Bytes of one line (`LINES`' value).
pub(crate) const LINE_BYTES: u64 = 64;

/// A loaded floor program over `lines` lines.
pub(crate) struct OneLine {
    /// The object (it owns `LINES` and the program).
    pub(crate) ebpf: Ebpf,
    /// The loaded program's name.
    program: &'static str,
    /// Lines of `LINES`.
    pub(crate) lines: u32,
}

impl OneLine {
    /// Loads `program` ([`PROGRAM`] or [`FORWARD_PROGRAM`]) over a table of
    /// `lines` lines (a power of two), every line naming one of the reals
    /// (round robin) as outer destination.
    pub(crate) fn load(lines: u32, program: &'static str) -> Result<Self> {
        ensure!(lines.is_power_of_two(), "{lines} lines: not a power of two");
        let mask = lines - 1;
        let outer_src = u32::from_ne_bytes([198, 18, 2, 2]);
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("LINES", lines)
            .override_global("LINE_MASK", &mask, true)
            .override_global("LINE_OUTER_SRC", &outer_src, true)
            .load(BENCH_OBJECT)
            .context("load the baseline programs for the one-line floor")?;
        let prog: &mut Xdp = ebpf.program_mut(program).context(program)?.try_into()?;
        prog.load()
            .with_context(|| format!("verifier rejected {program}"))?;
        let mut table: Array<_, [u32; 16]> =
            Array::try_from(ebpf.map_mut("LINES").context("LINES")?)?;
        for i in 0..lines {
            let real = per_packet::backend(1 + i % BACKENDS);
            let mut line = [0u32; 16];
            line[0] = u32::from_ne_bytes(real.octets());
            table
                .set(i, line, 0)
                .with_context(|| format!("LINES: write line {i}"))?;
        }
        Ok(Self {
            ebpf,
            program,
            lines,
        })
    }

    /// The program, for the wrapper's `TARGET`.
    pub(crate) fn prog_fd(&self) -> Result<ProgramFd> {
        per_packet::prog_fd(&self.ebpf, self.program)
    }

    /// The program, to attach it (the rate section's DUT).
    pub(crate) fn program_mut(&mut self) -> Result<&mut Xdp> {
        let name = self.program;
        Ok(self.ebpf.program_mut(name).context(name)?.try_into()?)
    }

    /// The table's size: `32 MiB`, `32 KiB`.
    pub(crate) fn size_text(&self) -> String {
        let bytes = u64::from(self.lines) * LINE_BYTES;
        if bytes >= 1 << 20 {
            format!("{} MiB", bytes >> 20)
        } else {
            format!("{} KiB", bytes >> 10)
        }
    }
}
