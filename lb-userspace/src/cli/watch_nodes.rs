//! `lb watch --netns A,B,C`: the nodes of a tier side by side. Each refresh
//! reads every node after entering the node's network namespace (so pins are
//! located exactly as `lb stats` run inside it would), then draws
//! one view with a column per node (`--json`: one object per refresh with a
//! report per node).

use std::fs::File;
use std::os::fd::AsRawFd as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use lb::stats::{NodeView, Rates, Snapshot, render_nodes_text, report_json};

use super::stats::Source;
use super::watch::{CursorGuard, draw};

/// The placeholder replaced by each namespace's name in `--pin-root` and `--state-dir`.
const NETNS_PLACEHOLDER: &str = "{netns}";

/// `source` for namespace `ns` (its placeholder replaced).
fn source_for(source: &Source, ns: &str) -> Source {
    let fill = |p: &PathBuf| PathBuf::from(p.to_string_lossy().replace(NETNS_PLACEHOLDER, ns));
    Source {
        iface: source.iface.clone(),
        pin_root: fill(&source.pin_root),
        state_dir: source.state_dir.as_ref().map(fill),
    }
}

/// Moves the calling thread into the network namespace of the nsfs file
/// `ns` (`what` names it in errors).
fn enter(ns: &File, what: &str) -> anyhow::Result<()> {
    // SAFETY: setns(2) on an open nsfs fd; it only changes this thread's
    // network namespace.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("entering network namespace {what}"));
    }
    Ok(())
}

/// Reads `ns`'s snapshot from inside it (the calling thread stays there).
fn read_in(source: &Source, ns: &str) -> anyhow::Result<Snapshot> {
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).with_context(|| format!("opening {path}"))?;
    enter(&file, ns)?;
    Ok(source_for(source, ns).target()?.snapshot()?)
}

/// One snapshot per namespace, each read from inside it, one after the
/// other on the calling thread, which returns to its own namespace after
/// each. Call it on the main thread: what locates pins by "the process's
/// namespace" (`/proc/self/ns/net`) sees the main thread's.
fn read_all(source: &Source, names: &[String]) -> anyhow::Result<Vec<Result<Snapshot, String>>> {
    let home =
        File::open("/proc/thread-self/ns/net").context("opening /proc/thread-self/ns/net")?;
    let mut out = Vec::with_capacity(names.len());
    for ns in names {
        let read = read_in(source, ns);
        // Back home before anything else: failing that, later reads would be wrong.
        enter(&home, "of lb watch itself")?;
        out.push(read.map_err(|e| format!("{e:#}")));
    }
    Ok(out)
}

/// Column labels: the names without the prefix they all share (`lab-n1`,
/// `lab-n2` -> `n1`, `n2`), cut after a separator so labels stay whole
/// words; the names themselves when that would leave one empty.
fn short_labels(names: &[String]) -> Vec<String> {
    let Some(first) = names.first() else {
        return Vec::new();
    };
    let mut common = first.len();
    for name in &names[1..] {
        common = common.min(
            first
                .bytes()
                .zip(name.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    let cut = first[..common].rfind(['-', '_', '.']).map_or(0, |i| i + 1);
    if names.len() < 2 || names.iter().any(|n| n.len() <= cut) {
        return names.to_vec();
    }
    names.iter().map(|n| n[cut..].to_owned()).collect()
}

/// One frame: the side-by-side text, or one JSON line.
fn render(
    names: &[String],
    snaps: &[Result<Snapshot, String>],
    rates: &[Option<Rates>],
    json: bool,
) -> anyhow::Result<String> {
    if json {
        let nodes: Vec<serde_json::Value> = names
            .iter()
            .zip(snaps.iter().zip(rates))
            .map(|(name, (snap, rates))| match snap {
                Ok(s) => {
                    serde_json::json!({ "netns": name, "report": report_json(s, rates.as_ref()) })
                }
                Err(e) => serde_json::json!({ "netns": name, "error": e }),
            })
            .collect();
        return serde_json::to_string(&serde_json::json!({ "nodes": nodes }))
            .context("encoding JSON");
    }
    let labels = short_labels(names);
    let views: Vec<NodeView<'_>> = labels
        .iter()
        .zip(snaps.iter().zip(rates))
        .map(|(name, (snap, rates))| NodeView {
            name,
            snapshot: snap.as_ref().map_err(String::as_str),
            rates: rates.as_ref(),
        })
        .collect();
    Ok(render_nodes_text(&views))
}

/// Runs `lb watch --netns ...`.
pub fn run(
    source: &Source,
    names: &[String],
    interval: f64,
    count: Option<u64>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        interval.is_finite() && interval > 0.0,
        "--interval must be a number of seconds > 0"
    );
    for ns in names {
        anyhow::ensure!(
            !ns.is_empty() && !ns.contains('/') && ns != "." && ns != "..",
            "--netns: {ns:?} is not a network namespace name"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdout()) && !json;
    let _cursor = CursorGuard::new(tty);
    runtime.block_on(async {
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let mut prev: Vec<Option<(Snapshot, Instant)>> = vec![None; names.len()];
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(interval));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut frames = 0u64;
        while count.is_none_or(|n| frames < n) {
            tokio::select! {
                _ = &mut ctrl_c => break,
                _ = ticker.tick() => {}
            }
            let now = Instant::now();
            let snaps = read_all(source, names)?;
            let rates: Vec<Option<Rates>> = snaps
                .iter()
                .zip(&prev)
                .map(|(snap, p)| {
                    let (p, at) = p.as_ref()?;
                    Some(Rates::between(p, snap.as_ref().ok()?, now - *at))
                })
                .collect();
            draw(
                &render(names, &snaps, &rates, json)?,
                tty,
                json,
                frames == 0,
            )?;
            prev = snaps
                .into_iter()
                .map(|s| s.ok().map(|s| (s, now)))
                .collect();
            frames += 1;
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::{Source, source_for};

    #[test]
    fn labels_drop_the_shared_prefix_at_a_separator() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            super::short_labels(&names(&["lblab9-0-n1", "lblab9-0-n2", "lblab9-0-n10"])),
            ["n1", "n2", "n10"]
        );
        assert_eq!(
            super::short_labels(&names(&["edge1", "edge2"])),
            ["edge1", "edge2"]
        );
        assert_eq!(super::short_labels(&names(&["a-x", "a-"])), ["a-x", "a-"]);
        assert_eq!(super::short_labels(&names(&["solo-1"])), ["solo-1"]);
    }

    #[test]
    fn the_netns_placeholder_names_each_node_s_directories() {
        let source = Source {
            iface: Some("l0".into()),
            pin_root: PathBuf::from("/run/lblab/{netns}/bpffs"),
            state_dir: Some(PathBuf::from("/var/lib/{netns}/state")),
        };
        let n1 = source_for(&source, "tier-n1");
        assert_eq!(n1.pin_root, Path::new("/run/lblab/tier-n1/bpffs"));
        assert_eq!(
            n1.state_dir.as_deref(),
            Some(Path::new("/var/lib/tier-n1/state"))
        );
        assert_eq!(n1.iface.as_deref(), Some("l0"));
        let plain = Source {
            iface: None,
            pin_root: PathBuf::from("/run/lb/bpffs"),
            state_dir: None,
        };
        assert_eq!(source_for(&plain, "x").pin_root, Path::new("/run/lb/bpffs"));
    }
}
