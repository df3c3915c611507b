//! Privileged end-to-end test of `lb run` against hostile config files: a
//! FIFO renamed over the config (it used to hang the agent for good, SIGTERM
//! included), a symlink to /dev/zero (read until the OOM killer came), a file
//! nested 100,000 deep (24 s in the YAML parser) and one over the size cap.
//! Each is refused with a log line saying why, the last good state stays, the
//! next good file applies, and SIGTERM still ends the agent. Needs root; build
//! `lb` first (`cargo build -p lb-userspace`) or set `LB_BIN`.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use lb::state::AppliedState;
use lb_tests::agent_process::{Agent, lb_bin};
use lb_tests::netns::{NetNsPair, TestBpffs};

fn config(backend: &str) -> String {
    format!(
        "maglev_table_size: 13\nconntrack_entries: 4096\nservices:\n  - name: web\n    vip: 198.18.100.1\n    port: 80\n    protocol: tcp\n    backends:\n      - address: {backend}\n"
    )
}

/// Polls `what` every 50 ms for up to 15 s.
fn wait_for(what: &str, log: &Path, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; agent log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Renames `make`'s file over `config` (how editors save).
fn rename_over(config: &Path, make: impl FnOnce(&Path)) {
    let tmp = config.with_extension("new");
    let _ignored = std::fs::remove_file(&tmp);
    make(&tmp);
    std::fs::rename(&tmp, config).unwrap();
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[test]
fn hostile_config_files_are_refused_and_the_agent_stays_responsive() {
    let net = NetNsPair::new("cf");
    let fs = TestBpffs::new("cf");
    let work = fs.base.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let config_path = work.join("lb.yaml");
    let state_dir = work.join("state");
    let log = work.join("agent.log");
    std::fs::write(&config_path, config("198.18.3.2")).unwrap();
    let state_file = lb::state::state_path(&state_dir, net.lb_netns(), &net.lb_if);
    let backends = || -> Vec<String> {
        AppliedState::read(&state_file)
            .ok()
            .flatten()
            .map(|s| {
                s.services
                    .iter()
                    .flat_map(|s| s.backends.iter().map(|b| b.address.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let log_has = |text: &str| {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(text)
    };
    let mut agent = Agent::new(
        net.exec_in_lb(lb_bin().to_str().unwrap())
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            .args(["--iface", &net.lb_if, "--xdp-mode", "skb"])
            .arg("--pin-root")
            .arg(&fs.root)
            .arg("--state-dir")
            .arg(&state_dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for("the initial apply", &log, || backends() == ["198.18.3.2"]);
    // The watch starts after the first apply.
    std::thread::sleep(Duration::from_millis(300));

    rename_over(&config_path, mkfifo);
    wait_for("the FIFO refused", &log, || {
        log_has("it is a FIFO, not a regular file")
    });

    rename_over(&config_path, |p| {
        std::os::unix::fs::symlink("/dev/zero", p).unwrap()
    });
    wait_for("/dev/zero refused", &log, || {
        log_has("it is a character device, not a regular file")
    });

    rename_over(&config_path, |p| {
        std::fs::write(p, format!("services:\n{}", "[\n".repeat(100_000))).unwrap()
    });
    wait_for("deep nesting refused", &log, || {
        log_has("nesting deeper than 32")
    });

    rename_over(&config_path, |p| {
        let f = std::fs::File::create(p).unwrap();
        f.set_len(lb::config::input::MAX_CONFIG_BYTES + 1).unwrap();
    });
    wait_for("an oversized file refused", &log, || {
        log_has("more than the limit of 16777216 bytes")
    });
    assert_eq!(
        backends(),
        ["198.18.3.2"],
        "a refused file changed the state"
    );

    rename_over(&config_path, |p| {
        std::fs::write(p, config("198.18.3.3")).unwrap()
    });
    wait_for("the next good file applied", &log, || {
        backends() == ["198.18.3.3"]
    });

    // SIGTERM ends it promptly.
    // SAFETY: signalling our own child.
    assert_eq!(
        unsafe { libc::kill(agent.child.id() as i32, libc::SIGTERM) },
        0
    );
    let mut exited = None;
    wait_for("the agent to exit on SIGTERM", &log, || {
        exited = agent.child.try_wait().unwrap();
        exited.is_some()
    });
    assert!(exited.unwrap().success(), "{exited:?}");
    lb::kernel::detach_and_remove(&lb::kernel::pin_dir(&fs.root, net.lb_netns(), &net.lb_if))
        .unwrap();
}
