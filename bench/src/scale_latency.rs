//! Scale-event latency of the real agent, and its memory: from the config file
//! being saved (temporary file renamed over it, as editors do) to the change
//! being visible in the BPF maps, polled through the agent's pins every
//! millisecond (the changed service's VIPS entry flips to its freshly filled
//! Maglev table: the last step of an apply the datapath can see).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use aya::maps::{Array, ArrayOfMaps, Map, MapData};
use lb_common::ServiceEntry;

use crate::agent_host::{AgentHost, vip_key};
use crate::memory;
use crate::report::{Report, Row, Target};
use crate::scale_config::{Event, Extra, applied_ms, percentile, vip, yaml};

/// How long one change may take to show in the maps.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the agent may take to start and apply its first config.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// The maps' poll interval.
const POLL: Duration = Duration::from_millis(1);

/// Latency of `events` scale events at `services` x `backends`; with
/// `memory`, first the agent's memory once it has applied the config.
pub fn run(
    report: &mut Report,
    services: u32,
    backends: u32,
    events: u32,
    target: Option<Target>,
    memory: bool,
) -> Result<()> {
    let mut extras = vec![Extra::Absent; services as usize];
    let host = AgentHost::start(&yaml(services, backends, &extras), START_TIMEOUT)?;
    if memory {
        agent_memory(report, &host, services, backends)?;
    }
    let vips = host.vips()?;
    let mut visible = Vec::with_capacity(events as usize);
    for k in 0..events {
        let event = Event::nth(k, services);
        let key = vip_key(vip(event.service), 80);
        let before = vips.get(&key, 0).context("service missing from VIPS")?;
        let applies = host.applied_count();
        extras[event.service as usize] = event.extra;
        let text = yaml(services, backends, &extras);
        let saved = save(&host, &text)?;
        let entry = wait_changed(&host, || vips.get(&key, 0).ok(), before, saved)?;
        visible.push(saved.elapsed().as_secs_f64() * 1e3);
        // The next save only once the agent has finished this apply (its log
        // line), so that events never coalesce.
        wait_applies(&host, applies + 1)?;
        if k + 1 == events {
            let live = distinct_backends(&host, entry)?;
            ensure!(
                live == event.backends_after(backends),
                "after the last event, service s{} has {live} backends in its table, expected {}",
                event.service,
                event.backends_after(backends)
            );
        }
    }
    let agent: Vec<f64> = applied_ms(&host.log()).into_iter().skip(1).collect();
    let shape = format!("{services}x{backends}");
    let p = |v: &[f64], q| percentile(v, q).unwrap_or(f64::NAN);
    for (q, tgt) in [(50.0, None), (99.0, target)] {
        report.push(Row {
            section: "control-plane",
            name: format!("scale event {shape}: save -> maps, p{q:.0} ({events} events)"),
            value: p(&visible, q),
            unit: "ms",
            target: tgt,
            versus: format!(
                "agent's own change->applied p{q:.0} {:.1} ms; max {:.1} ms",
                p(&agent, q),
                visible.iter().copied().fold(0.0, f64::max)
            ),
        });
    }
    Ok(())
}

/// The agent's memory after it applied `services` x `backends`.
fn agent_memory(report: &mut Report, host: &AgentHost, services: u32, backends: u32) -> Result<()> {
    // Let it settle (state file written, health/neighbour tasks idle).
    std::thread::sleep(Duration::from_millis(500));
    let pid = host.pid().context("agent not running")?;
    let m = memory::of(pid)?;
    report.push(Row {
        section: "control-plane",
        name: format!("agent RSS, {services}x{backends} applied"),
        value: m.rss_kib as f64 / 1024.0,
        unit: "MiB",
        target: None,
        versus: format!("peak (VmHWM) {:.1} MiB", m.peak_kib as f64 / 1024.0),
    });
    Ok(())
}

/// Writes `text` to a temporary file and renames it over the config; returns
/// the instant of the rename (the save).
fn save(host: &AgentHost, text: &str) -> Result<Instant> {
    let path = host.config.path();
    let tmp = path.with_file_name(".lb.yaml.bench");
    std::fs::write(&tmp, text)?;
    let saved = Instant::now();
    std::fs::rename(&tmp, path)?;
    Ok(saved)
}

/// Polls `read` every [`POLL`] until it differs from `before` (bounded).
fn wait_changed(
    host: &AgentHost,
    read: impl Fn() -> Option<ServiceEntry>,
    before: ServiceEntry,
    saved: Instant,
) -> Result<ServiceEntry> {
    loop {
        if let Some(now) = read()
            && now != before
        {
            return Ok(now);
        }
        if saved.elapsed() > EVENT_TIMEOUT {
            bail!(
                "the agent never applied the change (waited {EVENT_TIMEOUT:?}): {}",
                host.log()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// Waits (bounded) until the agent has logged `n` applies.
fn wait_applies(host: &AgentHost, n: usize) -> Result<()> {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while host.applied_count() < n {
        if Instant::now() > deadline {
            bail!("the agent did not log its apply: {}", host.log());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// Distinct backend ids in the Maglev table `entry` points at.
fn distinct_backends(host: &AgentHost, entry: ServiceEntry) -> Result<u32> {
    let path = host.pin_dir().join(lb_common::MAP_MAGLEV_TABLES);
    let outer: ArrayOfMaps<MapData, Array<MapData, u32>> = ArrayOfMaps::try_from(
        Map::ArrayOfMaps(MapData::from_pin(&path).with_context(|| format!("{}", path.display()))?),
    )?;
    let inner = outer.get(&entry.table_index, 0)?;
    let mut ids: Vec<u32> = (0..entry.table_size)
        .map(|i| inner.get(&i, 0))
        .collect::<Result<_, _>>()?;
    ids.sort_unstable();
    ids.dedup();
    Ok(ids.len() as u32)
}
