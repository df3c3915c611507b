//! Privileged tests of the host-side hardening: a pin root another user could
//! write to (planted symbolic links and directories, checked with an
//! unprivileged user), no shell around `--pin-root`, one agent per (network
//! namespace, interface), and pins keyed by network namespace so same-named
//! interfaces of two namespaces never share (or take over) each other's pins.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use lb::state::{AppliedState, state_path};
use lb_tests::agent_process::{Agent, lb_bin};
use lb_tests::netns::{NetNsPair, TestBpffs, ip, ip_quiet, netns_id};

/// The unprivileged user of these tests (`nobody`).
const NOBODY: &str = "65534";

/// `lb ARGS` inside network namespace `ns`, run to completion.
fn lb_in(ns: &str, args: &[&str], pin_root: &Path, state_dir: Option<&Path>) -> Output {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns])
        .arg(lb_bin())
        .args(args)
        .arg("--pin-root")
        .arg(pin_root)
        .stdin(Stdio::null());
    if let Some(dir) = state_dir {
        c.arg("--state-dir").arg(dir);
    }
    c.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `program args` as the unprivileged user; true on success.
fn as_nobody(program: &str, args: &[&OsStr]) -> bool {
    Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "--",
            program,
        ])
        .args(args)
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// A root-only directory with one file in it: what a planted link points to.
fn victim(base: &Path) -> PathBuf {
    let v = base.join("victim");
    std::fs::create_dir_all(&v).unwrap();
    std::fs::set_permissions(&v, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(v.join("precious"), b"keep me").unwrap();
    v
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

const CONFIG: &str = "maglev_table_size: 251\nconntrack_entries: 4096\nservices:\n  - name: web\n    vip: 198.18.100.1\n    port: 80\n    protocol: tcp\n    backends:\n      - address: 198.18.3.2\n";

#[test]
fn links_and_directories_planted_by_another_user_are_refused_never_followed() {
    let net = NetNsPair::new("hlink");
    // Mounted without `mode=`: 1777, as the issue found lb's own bpffs.
    let fs = TestBpffs::new("hlink");
    assert_eq!(mode(&fs.root), 0o1777);
    let state_dir = fs.base.join("state");
    let victim = victim(&fs.base);
    let ns_dir = lb::kernel::netns_dir(&fs.root, net.lb_netns());
    // The unprivileged user plants links where the pins of lb_if go: the
    // namespace's directory and the earlier releases' `<root>/<iface>`.
    for planted in [&ns_dir, &fs.root.join(&net.lb_if)] {
        assert!(
            as_nobody(
                "ln",
                &[OsStr::new("-s"), victim.as_os_str(), planted.as_os_str()]
            ),
            "nobody could not plant {}",
            planted.display()
        );
    }
    let stop = lb_in(
        &net.lb,
        &["stop", "--iface", &net.lb_if],
        &fs.root,
        Some(&state_dir),
    );
    assert!(!stop.status.success(), "lb stop followed the planted link");
    let why = stderr(&stop);
    assert!(
        why.contains(&format!(
            "{} is a symbolic link (owned by uid {NOBODY}); refusing to follow it",
            ns_dir.display()
        )),
        "{why}"
    );
    let config = fs.base.join("lb.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let cfg = config.to_str().unwrap();
    let run = lb_in(
        &net.lb,
        &[
            "run",
            "--config",
            cfg,
            "--iface",
            &net.lb_if,
            "--xdp-mode",
            "skb",
        ],
        &fs.root,
        Some(&state_dir),
    );
    assert!(!run.status.success(), "lb run used the planted link");
    assert!(
        stderr(&run).contains("is a symbolic link"),
        "{}",
        stderr(&run)
    );
    assert!(victim.join("precious").exists(), "the victim was emptied");
    // lb made the pin root private: the user can plant nothing more.
    assert_eq!(
        mode(&fs.root) & 0o1022,
        0,
        "pin root still writable by others"
    );
    assert!(!as_nobody("mkdir", &[fs.root.join("x").as_os_str()]));

    // A directory the user made (before the root was tightened), with a
    // `link` directory where the XDP link pin goes, is refused by name too.
    std::fs::remove_file(&ns_dir).unwrap();
    std::fs::set_permissions(&fs.root, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let iface_dir = ns_dir.join(&net.lb_if);
    assert!(as_nobody(
        "mkdir",
        &[OsStr::new("-p"), iface_dir.join("link").as_os_str()]
    ));
    let run = lb_in(
        &net.lb,
        &[
            "run",
            "--config",
            cfg,
            "--iface",
            &net.lb_if,
            "--xdp-mode",
            "skb",
        ],
        &fs.root,
        Some(&state_dir),
    );
    assert!(!run.status.success());
    assert!(
        stderr(&run).contains(&format!(
            "{} is owned by uid {NOBODY}, not root; refusing to use it",
            ns_dir.display()
        )),
        "{}",
        stderr(&run)
    );
    // Once the planted directory is gone, lb runs, and what it made is root's
    // alone: pins, their directories and the state file.
    std::fs::remove_dir_all(&ns_dir).unwrap();
    let mut agent = spawn_agent(&net.lb, &net.lb_if, cfg, &fs.root, &state_dir);
    let state = state_path(&state_dir, net.lb_netns(), &net.lb_if);
    wait_for_state(&state, &mut agent);
    assert_eq!(mode(&state), 0o600, "state file");
    assert_eq!(mode(&ns_dir), 0o700);
    assert_eq!(mode(&ns_dir.join(&net.lb_if)), 0o700);
    assert_eq!(mode(state.parent().unwrap()), 0o700);
    assert!(
        !as_nobody("cat", &[state.as_os_str()]),
        "nobody read the state file"
    );
    // `lb stats` as that user says it needs root.
    let stats = Command::new("ip")
        .args(["netns", "exec", &net.lb, "setpriv"])
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
        ])
        .arg(lb_bin())
        .args([
            "stats",
            "--iface",
            &net.lb_if,
            "--interval",
            "0",
            "--pin-root",
        ])
        .arg(&fs.root)
        .arg("--state-dir")
        .arg(&state_dir)
        .output()
        .unwrap();
    assert!(!stats.status.success());
    assert!(
        stderr(&stats).contains("permission denied: lb stats and lb watch need root"),
        "{}",
        stderr(&stats)
    );
    agent.stop();
    let stop = lb_in(
        &net.lb,
        &["stop", "--iface", &net.lb_if],
        &fs.root,
        Some(&state_dir),
    );
    assert!(stop.status.success(), "{}", stderr(&stop));
    assert!(victim.join("precious").exists());
}

/// Starts `lb run` in `ns`; its stderr goes to a log next to the state dir.
fn spawn_agent(ns: &str, iface: &str, config: &str, root: &Path, state_dir: &Path) -> Agent {
    let log = std::fs::File::create(state_dir.with_extension(format!("{iface}.log"))).unwrap();
    Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(lb_bin())
        .args([
            "run",
            "--config",
            config,
            "--iface",
            iface,
            "--xdp-mode",
            "skb",
        ])
        .arg("--pin-root")
        .arg(root)
        .arg("--state-dir")
        .arg(state_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
        .into()
}

/// Waits (up to 15 s) for the agent's first state file.
fn wait_for_state(path: &Path, agent: &mut Agent) -> AppliedState {
    wait_for_state_where(path, agent, |_| true)
}

/// Waits (up to 15 s) for a state file satisfying `pred`.
fn wait_for_state_where(
    path: &Path,
    agent: &mut Agent,
    pred: impl Fn(&AppliedState) -> bool,
) -> AppliedState {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(s)) = AppliedState::read(path)
            && pred(&s)
        {
            return s;
        }
        if let Some(status) = agent.child.try_wait().unwrap() {
            panic!("lb run exited {status} before writing {}", path.display());
        }
        assert!(
            Instant::now() < deadline,
            "no state file {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_pin_root_is_an_argument_never_a_shell_command() {
    let net = NetNsPair::new("hinj");
    let fs = TestBpffs::unmounted("hinj");
    let pwned = fs.base.join("pwned");
    // Under `ip netns exec` the bpffs is mounted in the parent's (this
    // test's) mount namespace: once through `nsenter ... sh -c` with the path
    // spliced in, which ran this.
    let evil = format!(
        "{}/x'; touch {}; echo '",
        fs.base.display(),
        pwned.display()
    );
    let evil = PathBuf::from(evil);
    let out = lb_in(&net.lb, &["decap", "--iface", "no-such-if0"], &evil, None);
    let mounted_bpffs = lb::kernel::bpffs::is_bpffs(&evil);
    let _ = Command::new("umount").arg("-l").arg(&evil).output();
    assert!(!pwned.exists(), "the pin root ran as a shell command");
    assert!(
        !out.status.success(),
        "decap on a missing interface succeeded"
    );
    assert!(
        mounted_bpffs,
        "no bpffs mounted at the odd (but valid) path: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("no-such-if0"), "{}", stderr(&out));
}

#[test]
fn a_second_agent_on_one_interface_is_refused_with_the_first_ones_pid() {
    let net = NetNsPair::new("hlock");
    let fs = TestBpffs::new("hlock");
    let state_dir = fs.base.join("state");
    let config = fs.base.join("lb.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let cfg = config.to_str().unwrap();
    let mut first = spawn_agent(&net.lb, &net.lb_if, cfg, &fs.root, &state_dir);
    let state = state_path(&state_dir, net.lb_netns(), &net.lb_if);
    // The agent writes its state after the apply and again once its VIP
    // announcements are reconciled: compare against that settled state.
    let applied = wait_for_state_where(&state, &mut first, |s| s.announce.netns.is_some());
    // `ip netns exec` execs lb: the child's pid is the agent's.
    let pid = first.child.id();
    let second = lb_in(
        &net.lb,
        &[
            "run",
            "--config",
            cfg,
            "--iface",
            &net.lb_if,
            "--xdp-mode",
            "skb",
        ],
        &fs.root,
        Some(&state_dir),
    );
    assert!(!second.status.success(), "a second agent started");
    assert!(
        stderr(&second).contains(&format!(
            "lb run already runs for {} as pid {pid}",
            net.lb_if
        )),
        "{}",
        stderr(&second)
    );
    // The first agent's state is untouched, and `lb stop` will not pull the
    // datapath from under it.
    assert_eq!(AppliedState::read(&state).unwrap(), Some(applied));
    let stop = lb_in(
        &net.lb,
        &["stop", "--iface", &net.lb_if],
        &fs.root,
        Some(&state_dir),
    );
    assert!(!stop.status.success());
    assert!(
        stderr(&stop).contains(&format!("lb run runs for {} as pid {pid}", net.lb_if)),
        "{}",
        stderr(&stop)
    );
    // Killed hard, the first agent leaves no stale lock: a new one starts.
    first.kill9();
    std::fs::remove_file(&state).unwrap();
    let mut again = spawn_agent(&net.lb, &net.lb_if, cfg, &fs.root, &state_dir);
    wait_for_state(&state, &mut again);
    again.stop();
    let stop = lb_in(
        &net.lb,
        &["stop", "--iface", &net.lb_if],
        &fs.root,
        Some(&state_dir),
    );
    assert!(stop.status.success(), "{}", stderr(&stop));
}

/// A network namespace with a veth pair `name` / `name`p inside, up, with
/// address `addr`; deleted on drop.
struct LoneNs {
    ns: String,
}

impl LoneNs {
    fn new(ns: String, name: &str, addr: &str) -> Self {
        ip_quiet(&["netns", "del", &ns]);
        ip(&["netns", "add", &ns]);
        let peer = format!("{name}p");
        ip(&[
            "-n", &ns, "link", "add", name, "type", "veth", "peer", "name", &peer,
        ]);
        ip(&["-n", &ns, "addr", "add", addr, "dev", name]);
        for dev in [name, peer.as_str(), "lo"] {
            ip(&["-n", &ns, "link", "set", dev, "up"]);
        }
        Self { ns }
    }

    fn xdp_attached(&self, dev: &str) -> bool {
        let out = Command::new("ip")
            .args(["-n", &self.ns, "-j", "link", "show", "dev", dev])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        text.contains("\"xdp\"") || text.contains("xdpgeneric") || text.contains("\"prog\"")
    }
}

impl Drop for LoneNs {
    fn drop(&mut self) {
        ip_quiet(&["netns", "del", &self.ns]);
    }
}

#[test]
fn same_named_interfaces_in_two_namespaces_keep_their_own_pins_and_agents() {
    let pid = std::process::id();
    let name = format!("hs{:x}", pid % 0xfffff);
    let a = LoneNs::new(format!("lbt-hns-{pid}-a"), &name, "198.18.201.1/24");
    let b = LoneNs::new(format!("lbt-hns-{pid}-b"), &name, "198.18.202.1/24");
    let fs = TestBpffs::new("hns");
    let state_dir = fs.base.join("state");
    let decap = |ns: &LoneNs, extra: &[&str]| {
        let mut args = vec!["decap", "--iface", &name, "--skb"];
        args.extend(extra);
        let out = lb_in(&ns.ns, &args, &fs.root, None);
        assert!(out.status.success(), "{}", stderr(&out));
    };
    decap(&a, &[]);
    decap(&b, &[]);
    assert!(a.xdp_attached(&name), "B's decap detached A's");
    assert!(b.xdp_attached(&name));
    let (ida, idb) = (netns_id(&a.ns), netns_id(&b.ns));
    assert_ne!(ida, idb);
    for id in [ida, idb] {
        let dir = lb::kernel::decap_pin_dir(&fs.root, id, &name);
        assert!(dir.join("link").exists(), "{}", dir.display());
    }
    decap(&b, &["--detach"]);
    assert!(!b.xdp_attached(&name));
    assert!(a.xdp_attached(&name), "B's detach detached A's decap");
    decap(&a, &["--detach"]);
    assert!(!a.xdp_attached(&name));

    // Two agents on same-named interfaces: both run, each with its own pins
    // and state file (the lock is per namespace too).
    let config = fs.base.join("lb.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let cfg = config.to_str().unwrap();
    let mut agent_a = spawn_agent(&a.ns, &name, cfg, &fs.root, &state_dir);
    let state_a = state_path(&state_dir, ida, &name);
    let sa = wait_for_state(&state_a, &mut agent_a);
    let mut agent_b = spawn_agent(&b.ns, &name, cfg, &fs.root, &state_dir);
    let state_b = state_path(&state_dir, idb, &name);
    let sb = wait_for_state(&state_b, &mut agent_b);
    assert_ne!(sa.pin_dir, sb.pin_dir);
    assert!(
        agent_a.child.try_wait().unwrap().is_none(),
        "agent A exited"
    );
    assert!(a.xdp_attached(&name) && b.xdp_attached(&name));
    // `lb stats` in each namespace sees its own interface.
    for ns in [&a, &b] {
        let out = lb_in(
            &ns.ns,
            &["stats", "--json", "--interval", "0"],
            &fs.root,
            Some(&state_dir),
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    agent_a.stop();
    agent_b.stop();
    let stop = |ns: &LoneNs| {
        let out = lb_in(
            &ns.ns,
            &["stop", "--iface", &name],
            &fs.root,
            Some(&state_dir),
        );
        assert!(out.status.success(), "{}", stderr(&out));
    };
    stop(&b);
    assert!(a.xdp_attached(&name), "B's stop detached A's datapath");
    assert!(state_a.exists() && !state_b.exists());
    stop(&a);
    assert!(!a.xdp_attached(&name));
}

#[test]
fn pins_of_the_earlier_layout_on_this_interface_are_retired_on_upgrade() {
    let net = NetNsPair::new("hold");
    let fs = TestBpffs::new("hold");
    let state_dir = fs.base.join("state");
    // What an earlier release left: its XDP link pinned at <root>/<iface>/link,
    // attached to the interface.
    let legacy = fs.root.join(&net.lb_if);
    let (dir, ifname) = (legacy.clone(), net.lb_if.clone());
    lb_tests::netns::in_netns(&net.lb, move || {
        use aya::programs::{Xdp, XdpMode, links::FdLink};
        let mut loader = aya::EbpfLoader::new();
        lb_common::flow_table::user::size_conntrack(&mut loader, &0);
        let mut ebpf = loader.load(lb::object::EBPF_OBJECT).unwrap();
        let prog: &mut Xdp = ebpf
            .program_mut(lb_common::PROG_DECAP)
            .unwrap()
            .try_into()
            .unwrap();
        prog.load().unwrap();
        let iface = lb::kernel::Interface::read(&ifname).unwrap();
        let id = prog
            .attach_to_if_index(iface.ifindex, XdpMode::Skb)
            .unwrap();
        let link = FdLink::try_from(prog.take_link(id).unwrap()).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        link.pin(dir.join("link")).unwrap();
    });
    let config = fs.base.join("lb.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut agent = spawn_agent(
        &net.lb,
        &net.lb_if,
        config.to_str().unwrap(),
        &fs.root,
        &state_dir,
    );
    let state = state_path(&state_dir, net.lb_netns(), &net.lb_if);
    let applied = wait_for_state(&state, &mut agent);
    assert!(
        !legacy.exists(),
        "the earlier layout's pins are still there"
    );
    assert_eq!(
        applied.pin_dir,
        lb::kernel::pin_dir(&fs.root, net.lb_netns(), &net.lb_if)
    );
    let log = std::fs::read_to_string(state_dir.with_extension(format!("{}.log", net.lb_if)))
        .unwrap_or_default();
    assert!(log.contains("an earlier lb release's datapath"), "{log}");
    agent.stop();
    let stop = lb_in(
        &net.lb,
        &["stop", "--iface", &net.lb_if],
        &fs.root,
        Some(&state_dir),
    );
    assert!(stop.status.success(), "{}", stderr(&stop));
}
