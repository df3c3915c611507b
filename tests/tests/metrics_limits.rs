//! The metrics listener under descriptor exhaustion (issue 11, item 7), with
//! the real agent in the lab: `lb run` raises its own soft `RLIMIT_NOFILE` to
//! the hard limit at start, warns that `--metrics 0.0.0.0:…` exposes the
//! counters, and when idle clients exhaust its descriptors (EMFILE on
//! `accept`) the endpoint keeps going: once they close, `/metrics` answers
//! again and the agent still applies config changes.
//!
//! One test in its own binary: it lowers this process's soft descriptor
//! limit (inherited by the agent) while it starts the agent.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use lb_tests::lab::{LabConfig, Scenario};

const METRICS_PORT: u16 = 9100;
/// The descriptor limit forced on the running agent.
const SQUEEZED_LIMIT: u64 = 64;
/// Idle connections opened against it: well past the limit.
const IDLE_CONNECTIONS: usize = 200;

fn set_soft_nofile(soft: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on structs we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        let old = limit.rlim_cur;
        limit.rlim_cur = soft.min(limit.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        old
    }
}

/// (soft, hard) "Max open files" of process `pid`.
fn open_files_limit(pid: u32) -> (String, String) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_owned(), fields[4].to_owned())
}

/// `GET path` on the metrics port; the status line, or the I/O error.
fn get(path: &str) -> std::io::Result<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], METRICS_PORT));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    Ok(resp.lines().next().unwrap_or_default().to_owned())
}

#[test]
fn metrics_listener_survives_descriptor_exhaustion() {
    // The agent inherits a soft limit below its hard limit, and raises it.
    let old_soft = set_soft_nofile(1024);
    let started = Scenario::start_with_args(
        2,
        LabConfig::equal(1),
        &["--metrics", &format!("0.0.0.0:{METRICS_PORT}")],
    );
    set_soft_nofile(old_soft);
    let mut s = started.expect("scenario");
    let pid = s.lab.agent_pid().expect("agent pid");
    let (soft, hard) = open_files_limit(pid);
    assert_eq!(soft, hard, "the agent did not raise its soft limit");
    assert!(
        s.lab.agent_log().contains("exposes the counters"),
        "no warning for --metrics 0.0.0.0: {}",
        s.lab.agent_log()
    );
    let ns = s.lab.lb_ns.clone();
    assert_eq!(
        ns.run(|| get("/metrics")).unwrap().expect("metrics"),
        "HTTP/1.1 200 OK"
    );

    // Squeeze the running agent to 64 descriptors, then hold up to 200 idle
    // connections open against its metrics port.
    let status = Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--nofile={SQUEEZED_LIMIT}:{SQUEEZED_LIMIT}"),
        ])
        .status()
        .expect("prlimit");
    assert!(status.success());
    let idle: Vec<TcpStream> = ns
        .run(|| {
            // Until the accept queue is full too (a connect times out).
            (0..IDLE_CONNECTIONS)
                .map_while(|_| {
                    TcpStream::connect_timeout(
                        &SocketAddr::from(([127, 0, 0, 1], METRICS_PORT)),
                        Duration::from_millis(300),
                    )
                    .ok()
                })
                .collect()
        })
        .unwrap();
    assert!(
        idle.len() as u64 > SQUEEZED_LIMIT,
        "only {} connections opened",
        idle.len()
    );
    let start = Instant::now();
    while !s.lab.agent_log().contains("accept failed") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the agent never ran out of descriptors: {}",
            s.lab.agent_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Pressure ends: the endpoint answers again, the agent still applies.
    drop(idle);
    let start = Instant::now();
    let answer = loop {
        match ns.run(|| get("/metrics")).unwrap() {
            Ok(line) if line == "HTTP/1.1 200 OK" => break start.elapsed(),
            other => assert!(
                start.elapsed() < Duration::from_secs(10),
                "/metrics did not come back after the pressure: {other:?}\n{}",
                s.lab.agent_log()
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    println!("/metrics answered again {answer:?} after the idle connections closed");
    assert_eq!(
        ns.run(|| get("/stats.json")).unwrap().expect("stats.json"),
        "HTTP/1.1 200 OK"
    );
    assert!(s.lab.agent_running(), "{}", s.lab.agent_log());
    s.edit(|c| {
        c.add(2, 1);
    })
    .expect("a config change after the pressure applies");
    assert!(
        s.lab.agent_log().contains("accepting connections again"),
        "{}",
        s.lab.agent_log()
    );
}
