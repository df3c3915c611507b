//! Threaded NAPI for a veth, so that its receive path runs in a kernel thread
//! (`napi/<ifname>-<id>`) that can be pinned to one CPU and whose CPU time can
//! be read: a veth has no interrupt to steer, and without threading its
//! receive work runs as softirq on whichever CPU sent the frames.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use lb_tests::lab::{cmd, netns::NetNs};

/// Turns threaded NAPI on for `ifname` (needs its NAPI, i.e. an XDP program
/// attached), pins its thread(s) to `cpu` and returns their pids.
pub fn thread_and_pin(ns: &NetNs, ifname: &str, cpu: usize) -> Result<Vec<i32>> {
    cmd::exec_in(
        ns.name(),
        "sh",
        &["-c", &format!("echo 1 > /sys/class/net/{ifname}/threaded")],
    )?;
    // The threads appear with the write; allow a moment, bounded.
    for _ in 0..50 {
        let pids = threads(ifname);
        if !pids.is_empty() {
            for &pid in &pids {
                pin(pid, cpu)?;
            }
            return Ok(pids);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!("no napi/{ifname}-* thread after turning threaded NAPI on")
}

/// Pids of the NAPI threads of `ifname` (their comm is `napi/<ifname>-<id>`).
pub fn threads(ifname: &str) -> Vec<i32> {
    let prefix = format!("napi/{ifname}-");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim_end().starts_with(&prefix))
        })
        .collect()
}

/// Pins task `pid` (0: the calling thread) to `cpu`.
pub fn pin(pid: i32, cpu: usize) -> Result<()> {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity only reads it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        bail!(
            "sched_setaffinity({pid}, cpu {cpu}): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// CPU time (ns) task `pid` has run, from `/proc/PID/schedstat`.
pub fn cpu_ns(pid: i32) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .with_context(|| format!("read /proc/{pid}/schedstat"))?;
    parse_schedstat(&text).with_context(|| format!("/proc/{pid}/schedstat: {text:?}"))
}

/// The first field of a schedstat line: time on CPU, ns.
pub fn parse_schedstat(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_schedstat;

    #[test]
    fn schedstat_first_field() {
        assert_eq!(parse_schedstat("493546 12969424 4\n"), Some(493_546));
        assert_eq!(parse_schedstat(""), None);
    }
}
