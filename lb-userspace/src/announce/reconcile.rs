//! The I/O step of announcements: under the routes lock, bring the kernel's
//! routes of lb's protocol to "every VIP announced by this agent or claimed by
//! another agent of the namespace", record the outcome in the agent's state
//! and write its state file. Every route change is logged once.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use super::claims::{self, claimed_by_others};
use super::routes::{self, RouteError};
use super::{AnnounceState, DrainCause, VipAnnouncement, decide_for, drain};
use crate::config::AnnounceConfig;
use crate::state::{AppliedState, StateError};

/// Where an agent's announcements live.
#[derive(Clone, Debug)]
pub struct Paths<'a> {
    /// This agent's state file; its directory holds the other agents' state
    /// files (their claims) and the routes lock.
    pub state_file: &'a Path,
    /// This agent's pin directory (its `link` pin says "attached").
    pub pin_dir: &'a Path,
}

/// Decides every VIP's announcement for `applied` (attachment read from the
/// link pin, drain from `config` or `lb drain`'s marker), reconciles the kernel routes, stores the
/// result in `applied.announce` and writes the state file, all under the
/// routes lock. With `write_unchanged` false the state file is only written
/// when the announcements changed. Route problems are logged (the VIP shows
/// as not announced, with the error as reason); only a failed state-file
/// write is returned.
pub fn sync(
    paths: &Paths<'_>,
    applied: &mut AppliedState,
    config: &AnnounceConfig,
    write_unchanged: bool,
) -> Result<(), StateError> {
    let attached = paths.pin_dir.join(crate::kernel::LINK_PIN).exists();
    let (drain_asked, drain_token) = drain::read(paths.state_file);
    let drain = if !config.enabled {
        Some(DrainCause::Config)
    } else if drain_asked {
        Some(DrainCause::Command)
    } else {
        None
    };
    let mut decided = decide_for(attached, drain, &applied.services);
    let netns = claims::netns_id();
    let dir = state_dir(paths.state_file);
    let _lock = match claims::lock(dir) {
        Ok(lock) => Some(lock),
        Err(e) => {
            tracing::error!("{e}; reconciling routes without it");
            None
        }
    };
    let before = applied.announce.clone();
    let own: Vec<IpAddr> = before.announced().collect();
    if before.protocol != config.protocol && !own.is_empty() {
        tracing::info!(
            "route protocol {} -> {}: moving the announced routes",
            before.protocol,
            config.protocol
        );
        let others = claimed_by_others(dir, paths.state_file, netns, before.protocol);
        withdraw(&own, &others, before.protocol);
    }
    let was: BTreeMap<IpAddr, &VipAnnouncement> = if before.protocol == config.protocol {
        before.vips.iter().map(|v| (v.vip, v)).collect()
    } else {
        BTreeMap::new()
    };
    if let Err(e) = reconcile(paths, netns, config.protocol, &mut decided, &was) {
        let reason = format!("routes unreadable: {e}");
        // Once per cause, not on every periodic reconciliation.
        if !before.vips.iter().any(|v| v.reason == reason) {
            tracing::error!("announcements: {e}; routes left as they are");
        }
        for d in decided.iter_mut().filter(|d| d.announced) {
            d.announced = was.get(&d.vip).is_some_and(|w| w.announced);
            d.reason = reason.clone();
        }
    }
    applied.announce = AnnounceState {
        draining: drain.is_some(),
        drain_token,
        protocol: config.protocol,
        netns,
        vips: decided,
    };
    // Detached by `lb stop` under a running agent: its state file is gone
    // and stays gone.
    let detached_and_stopped = !attached && !paths.state_file.exists();
    if write_unchanged || (applied.announce != before && !detached_and_stopped) {
        applied.write(paths.state_file)?;
    }
    Ok(())
}

/// Brings the routes of `protocol` to the announced VIPs of `decided` plus
/// those other agents claim; logs each change; a VIP whose route could not be
/// added is marked not announced with the error as reason.
fn reconcile(
    paths: &Paths<'_>,
    netns: Option<u64>,
    protocol: u8,
    decided: &mut [VipAnnouncement],
    was: &BTreeMap<IpAddr, &VipAnnouncement>,
) -> Result<(), RouteError> {
    let others = claimed_by_others(
        state_dir(paths.state_file),
        paths.state_file,
        netns,
        protocol,
    );
    let present = routes::list(protocol)?;
    let mut wanted: BTreeSet<IpAddr> = decided
        .iter()
        .filter(|d| d.announced)
        .map(|d| d.vip)
        .collect();
    wanted.extend(others.iter().copied());
    let kernel: Vec<routes::KernelRoute> = present.iter().map(|(_, r)| r.clone()).collect();
    let changes = routes::changes(&kernel, &wanted);
    let own: BTreeMap<IpAddr, usize> = decided
        .iter()
        .enumerate()
        .map(|(i, d)| (d.vip, i))
        .collect();
    for r in &changes.remove {
        let v6 = present
            .iter()
            .find(|(_, p)| p == r)
            .is_some_and(|(v6, _)| *v6);
        match routes::delete(v6, r, protocol) {
            Ok(()) => match r.vip().and_then(|vip| own.get(&vip)) {
                Some(&i) => {
                    let d = &decided[i];
                    tracing::info!("withdraw {}: {}", d.vip, d.reason);
                }
                None => tracing::info!(
                    "removed stale route {} proto {protocol} (no agent announces it)",
                    r.dst
                ),
            },
            Err(e) => tracing::error!("removing route {} proto {protocol}: {e}", r.dst),
        }
    }
    for vip in &changes.add {
        let result = routes::add(*vip, protocol);
        let Some(&i) = own.get(vip) else {
            match result {
                Ok(()) => tracing::info!(
                    "re-added route {vip} proto {protocol}: another agent of this namespace announces it"
                ),
                Err(e) => tracing::error!("re-adding route {vip} (another agent's): {e}"),
            }
            continue;
        };
        let d = &mut decided[i];
        match result {
            Ok(()) if was.get(vip).is_some_and(|w| w.announced) => {
                tracing::info!("announce {vip}: {} (its route was missing)", d.reason)
            }
            Ok(()) => tracing::info!("announce {vip}: {}", d.reason),
            Err(e) => {
                let reason = format!("route not installed: {e}");
                // Once per cause, not on every periodic reconciliation.
                if was.get(vip).is_none_or(|w| w.reason != reason) {
                    tracing::error!("announce {vip}: {e}");
                }
                d.announced = false;
                d.reason = reason;
            }
        }
    }
    // Transitions the kernel did not see (route kept or already right).
    let removed: BTreeSet<IpAddr> = changes.remove.iter().filter_map(|r| r.vip()).collect();
    for d in decided.iter() {
        let before = was.get(&d.vip).map(|w| (w.announced, w.reason.as_str()));
        if changes.add.contains(&d.vip) || removed.contains(&d.vip) {
            continue;
        }
        match before {
            Some((a, why)) if a == d.announced && why == d.reason => {}
            Some((true, _)) if !d.announced && others.contains(&d.vip) => tracing::info!(
                "withdraw {}: {} (route kept: another agent of this namespace announces it)",
                d.vip,
                d.reason
            ),
            None if !d.announced => {
                tracing::info!("not announcing {}: {}", d.vip, d.reason)
            }
            _ => tracing::info!(
                "{} {}: {}",
                if d.announced { "announce" } else { "withdraw" },
                d.vip,
                d.reason
            ),
        }
    }
    Ok(())
}

/// The directory of a state file (where claims and the lock live).
fn state_dir(state_file: &Path) -> &Path {
    state_file.parent().unwrap_or(Path::new("."))
}

/// Deletes the routes of `vips` (of `protocol`) that no other agent claims
/// (`others`); logs each.
fn withdraw(vips: &[IpAddr], others: &BTreeSet<IpAddr>, protocol: u8) {
    for vip in vips.iter().filter(|v| !others.contains(v)) {
        match routes::delete(vip.is_ipv6(), &routes::host_route(*vip), protocol) {
            Ok(()) => tracing::info!("withdraw {vip}: route proto {protocol} removed"),
            Err(e) => tracing::error!("withdraw {vip}: {e}"),
        }
    }
}

/// `lb stop`'s part: withdraws every VIP `state` announces (unless another
/// agent of the namespace claims it), under the routes lock, then runs `then`
/// (removing the state file) before the lock is released. Returns the VIPs
/// withdrawn; when the state belongs to another network namespace nothing is
/// touched and an error says so.
pub fn withdraw_all(
    state_file: &Path,
    state: &AppliedState,
    then: impl FnOnce(),
) -> Result<Vec<IpAddr>, String> {
    let netns = claims::netns_id();
    let own: Vec<IpAddr> = state.announce.announced().collect();
    if !own.is_empty() && state.announce.netns.is_some() && state.announce.netns != netns {
        then();
        return Err(format!(
            "the agent announced {} VIP(s) from another network namespace; run `lb stop` there \
             to withdraw their routes",
            own.len()
        ));
    }
    let dir = state_dir(state_file);
    let _lock = claims::lock(dir).map_err(|e| e.to_string())?;
    let protocol = state.announce.protocol;
    let others = claimed_by_others(dir, state_file, netns, protocol);
    let mut withdrawn = Vec::new();
    let mut errors = Vec::new();
    for vip in own.iter().filter(|v| !others.contains(v)) {
        match routes::delete(vip.is_ipv6(), &routes::host_route(*vip), protocol) {
            Ok(()) => withdrawn.push(*vip),
            Err(e) => errors.push(format!("{vip}: {e}")),
        }
    }
    then();
    if errors.is_empty() {
        Ok(withdrawn)
    } else {
        Err(format!("withdrawing routes: {}", errors.join("; ")))
    }
}
