//! The agent's core: every decision of the agent, with no I/O and no clock
//! (quinn-proto's shape). The shell ([`crate::agent::run`]) reads files,
//! signals, the health monitor and the resolver into [`Event`]s, passes each
//! to [`AgentCore::handle`] with the current time, and carries out the
//! [`Effect`]s it gets back in order (map operations through the aya layer,
//! state file, routes, log lines), feeding the outcome of each apply and
//! announcement sync back in as an event.
//!
//! What the core guarantees:
//! - one plan sees one health snapshot (a value, never the live monitor);
//! - settings, the insert budget and next hops are map operations of the
//!   plan, applied and rolled back with it;
//! - the applied view changes only when an apply succeeded: after a failure
//!   the core knows the maps hold the old state ([`ApplyOutcome::RolledBack`])
//!   or that the entries the failed ops touched are unknown
//!   ([`ApplyOutcome::Uncertain`]: they are all rewritten first on the next
//!   apply), and it retries the wanted config on the next tick or health event;
//! - the health monitor follows a new config only once it is applied.

mod event;
#[cfg(test)]
mod model_tests;
mod plan_apply;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub use event::{ApplyOutcome, Effect, Event, Level, LogLine};

use crate::config::Config;
use crate::health::HealthSnapshot;
use crate::plan::{Link, MapOp, NextHop, NextHops, Plan, next_hop_ops};
use crate::state::AppliedState;

/// How long after an apply unknown next hops are retried at the fast pace.
pub const FAST_NEIGHBOUR_WINDOW: Duration = Duration::from_secs(5);

/// What the core starts from.
#[derive(Clone, Debug)]
pub struct CoreStart {
    /// The interface the program is attached to (for SETTINGS).
    pub link: Link,
    /// The applied state: adopted from the pins, or empty.
    pub applied: AppliedState,
    /// The connection table's insert budget the datapath was opened with.
    pub insert_budget: u32,
}

/// A config wanted but not applied yet (its apply failed): retried on the
/// next tick or health event.
#[derive(Clone, Debug)]
struct Wanted {
    config: Config,
    why: String,
    started: Instant,
}

/// The apply the shell is carrying out.
#[derive(Debug)]
enum Pending {
    /// A plan toward `config`.
    Plan {
        plan: Box<Plan>,
        ops: Vec<MapOp>,
        config: Config,
        settings: lb_common::Settings,
        why: String,
        started: Instant,
    },
    /// A next hop rewritten into the entries of its address (after the
    /// repair of what a failed apply left unknown, if anything).
    NextHop {
        address: IpAddr,
        next_hop: Option<NextHop>,
        ops: Vec<MapOp>,
    },
}

/// The agent's state and decisions.
#[derive(Debug)]
pub struct AgentCore {
    link: Link,
    /// What the maps hold (services, ids, table size, announcements).
    applied: AppliedState,
    /// The config the maps hold (`None` before the first apply).
    config: Option<Config>,
    /// SETTINGS as this agent wrote them (`None` before its first apply).
    settings: Option<lb_common::Settings>,
    /// The connection table's insert budget as written.
    insert_budget: u32,
    /// Next hops as written into the backend entries (and known for
    /// addresses with no backend yet).
    next_hops: NextHops,
    /// The last health snapshot.
    health: HealthSnapshot,
    /// A config whose apply failed, to retry.
    wanted: Option<Wanted>,
    /// Ops whose apply left entries unknown: rewritten from the applied view
    /// first on the next apply.
    uncertain: Vec<MapOp>,
    pending: Option<Pending>,
    /// Events that arrived while an apply was pending.
    queued: VecDeque<Event>,
    /// Until when unknown next hops are retried at the fast pace.
    fast_until: Option<Instant>,
}

impl AgentCore {
    /// A core over `start`; nothing is applied until the first
    /// [`Event::ConfigLoaded`].
    pub fn new(start: CoreStart) -> Self {
        AgentCore {
            link: start.link,
            applied: start.applied,
            config: None,
            settings: None,
            insert_budget: start.insert_budget,
            next_hops: NextHops::new(),
            health: HealthSnapshot::all_up(),
            wanted: None,
            uncertain: Vec::new(),
            pending: None,
            queued: VecDeque::new(),
            fast_until: None,
        }
    }

    /// What the maps hold, as far as the core knows.
    pub fn applied(&self) -> &AppliedState {
        &self.applied
    }

    /// The config the maps hold (`None` before the first successful apply).
    pub fn config(&self) -> Option<&Config> {
        self.config.as_ref()
    }

    /// The next hops known, by address.
    pub fn next_hops(&self) -> &NextHops {
        &self.next_hops
    }

    /// False while entries a failed apply touched may differ from the
    /// applied view (until the next apply rewrites them).
    pub fn is_reconciled(&self) -> bool {
        self.uncertain.is_empty()
    }

    /// True while a config waits to be applied again (its apply failed).
    pub fn has_wanted(&self) -> bool {
        self.wanted.is_some()
    }

    /// Whether unknown next hops are retried at the fast pace at `now` (the
    /// shell ticks [`Event::FastRetryTick`] only then).
    pub fn wants_fast_retry(&self, now: Instant) -> bool {
        self.fast_until.is_some_and(|until| now < until)
    }

    /// Handles one event at `now`; returns what the shell must do, in order.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Effect> {
        if let Event::Applied(outcome) = event {
            let mut effects = self.applied_outcome(outcome, now);
            while self.pending.is_none() {
                let Some(next) = self.queued.pop_front() else {
                    break;
                };
                effects.extend(self.handle(next, now));
            }
            return effects;
        }
        if self.pending.is_some() {
            self.queued.push_back(event);
            return Vec::new();
        }
        match event {
            Event::ConfigLoaded {
                config,
                why,
                started,
                health,
            } => {
                self.health = health;
                self.fast_until = Some(now + FAST_NEIGHBOUR_WINDOW);
                let mut effects = Vec::new();
                if let Some(old) = &self.config
                    && old.conntrack_entries != config.conntrack_entries
                {
                    effects.push(Effect::warn(
                        "conntrack_entries changes take effect on `lb run --fresh` only",
                    ));
                }
                self.wanted = None;
                effects.extend(self.start_plan(Wanted {
                    config,
                    why,
                    started,
                }));
                effects
            }
            Event::HealthChanged { event, health } => {
                self.health = health;
                let mut effects = vec![Effect::info(event.to_string())];
                let target = self.wanted.take().or_else(|| {
                    self.config.clone().map(|config| Wanted {
                        config,
                        why: "health change".into(),
                        started: now,
                    })
                });
                if let Some(target) = target {
                    effects.extend(self.start_plan(target));
                }
                effects
            }
            Event::NextHopResolved { address, next_hop } => self.next_hop(address, next_hop),
            Event::RefreshTick => {
                let mut effects = vec![Effect::ResolveNextHops(self.backend_addresses(false))];
                if let Some(config) = &self.config {
                    // Routes changed behind lb's back (or the link detached)
                    // are noticed here.
                    effects.push(self.sync_announcements(config, "announcements"));
                }
                let retry = self.wanted.take().or_else(|| {
                    // A failed next-hop write left entries unknown: repair
                    // them with a plan of the applied config.
                    let config = self
                        .config
                        .as_ref()
                        .filter(|_| !self.uncertain.is_empty())?;
                    Some(Wanted {
                        config: config.clone(),
                        why: "repair".into(),
                        started: now,
                    })
                });
                if let Some(wanted) = retry {
                    effects.extend(self.start_plan(wanted));
                }
                effects
            }
            Event::FastRetryTick if self.wants_fast_retry(now) => {
                vec![Effect::ResolveNextHops(self.backend_addresses(true))]
            }
            Event::FastRetryTick => Vec::new(),
            Event::DrainMarkerChanged => match &self.config {
                Some(config) => vec![self.sync_announcements(config, "lb drain")],
                None => Vec::new(),
            },
            Event::Announced(announce) => {
                self.applied.announce = announce;
                Vec::new()
            }
            Event::Applied(_) => unreachable!("handled above"),
        }
    }

    /// Every backend address of the wanted (or applied) config and of the
    /// applied services; with `only_unknown`, those without a next hop.
    fn backend_addresses(&self, only_unknown: bool) -> Vec<IpAddr> {
        let config = self
            .wanted
            .as_ref()
            .map(|w| &w.config)
            .or(self.config.as_ref());
        let mut addrs: Vec<IpAddr> = config
            .into_iter()
            .flat_map(|c| c.services.iter())
            .flat_map(|s| s.backends.iter().map(|b| b.address))
            .chain(
                self.applied
                    .services
                    .iter()
                    .flat_map(|s| s.backends.iter().map(|b| b.address)),
            )
            .collect();
        addrs.sort();
        addrs.dedup();
        addrs.retain(|a| !(only_unknown && self.next_hops.contains_key(a)));
        addrs
    }

    fn sync_announcements(&self, config: &Config, why: &'static str) -> Effect {
        Effect::SyncAnnouncements {
            state: Box::new(self.applied.clone()),
            announce: config.announce,
            write_unchanged: false,
            why,
        }
    }

    /// A next hop found or lost: rewrites the backend entries of its address
    /// (through an apply) when it changed. While a failed apply left entries
    /// unknown, the apply repairs them first: a backend entry written from
    /// the view (LIVE or not) must not meet a table the failed apply left.
    fn next_hop(&mut self, address: IpAddr, next_hop: Option<NextHop>) -> Vec<Effect> {
        if self.next_hops.get(&address).copied() == next_hop {
            return Vec::new();
        }
        let writes = next_hop_ops(&self.applied.services, address, next_hop);
        if writes.is_empty() {
            return self.next_hop_written(address, next_hop);
        }
        let mut ops = self.repair_first();
        ops.extend(writes);
        self.pending = Some(Pending::NextHop {
            address,
            next_hop,
            ops: ops.clone(),
        });
        vec![Effect::Apply { ops }]
    }

    fn next_hop_written(&mut self, address: IpAddr, next_hop: Option<NextHop>) -> Vec<Effect> {
        match next_hop {
            Some(nh) => {
                self.next_hops.insert(address, nh);
                vec![Effect::info(format!(
                    "next hop toward backend {address}: {nh:?}"
                ))]
            }
            None => {
                self.next_hops.remove(&address);
                vec![Effect::warn(format!(
                    "next hop toward backend {address} unknown (resolution triggered; the datapath uses its FIB lookup meanwhile)"
                ))]
            }
        }
    }
}
