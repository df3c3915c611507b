//! A process's memory from `/proc/PID/status`: resident set now (VmRSS) and
//! its peak (VmHWM).

use anyhow::{Context, Result};

/// Resident memory of a process, KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    /// VmRSS.
    pub rss_kib: u64,
    /// VmHWM (peak RSS).
    pub peak_kib: u64,
}

/// Reads `/proc/PID/status`.
pub fn of(pid: u32) -> Result<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    parse(&text).with_context(|| format!("no VmRSS/VmHWM in /proc/{pid}/status"))
}

/// VmRSS and VmHWM of a status file's text.
pub fn parse(status: &str) -> Option<Memory> {
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..]
            .trim_start_matches(':')
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some(Memory {
        rss_kib: field("VmRSS")?,
        peak_kib: field("VmHWM")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_and_peak() {
        let s = "Name:\tlb\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t3\n";
        assert_eq!(
            parse(s),
            Some(Memory {
                rss_kib: 10240,
                peak_kib: 20480
            })
        );
        assert_eq!(parse("Name:\tkthread\n"), None);
    }
}
