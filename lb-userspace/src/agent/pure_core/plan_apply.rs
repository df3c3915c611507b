//! The core's applies: planning a wanted config against the applied view (with
//! the settings, insert budget and repairs in front), and what an apply's
//! outcome changes.

use std::time::Instant;

use super::{AgentCore, ApplyOutcome, Effect, Level, LogLine, Pending, Wanted};
use crate::health::targets_from_config;
use crate::plan::{MapOp, Plan, Previous, plan, repair_ops, settings};

impl AgentCore {
    /// The applied view as the planner takes it.
    fn previous(&self) -> Previous<'_> {
        Previous {
            maglev_table_size: self.applied.maglev_table_size,
            services: &self.applied.services,
            retired: &self.applied.retired_backends,
            next_hops: &self.next_hops,
        }
    }

    /// The writes every apply starts with while a failed apply left entries
    /// unknown: those entries back to the applied view (then SETTINGS and
    /// the insert budget as written), before anything is written on top of
    /// it. Empty when nothing is uncertain.
    pub(super) fn repair_first(&self) -> Vec<MapOp> {
        if self.uncertain.is_empty() {
            return Vec::new();
        }
        let mut ops = repair_ops(&self.previous(), &self.uncertain);
        if let Some(s) = self.settings {
            ops.push(MapOp::PutSettings { settings: s });
        }
        ops.push(MapOp::SetInsertBudget {
            budget: self.insert_budget,
        });
        ops
    }

    /// Plans `wanted` with the last health snapshot and asks for the apply
    /// (or commits at once when there is nothing to write).
    pub(super) fn start_plan(&mut self, wanted: Wanted) -> Vec<Effect> {
        let Wanted {
            config,
            why,
            started,
        } = wanted;
        let p = match plan(&self.previous(), &config, &self.health) {
            Ok(p) => p,
            Err(e) => {
                return vec![
                    Effect::error(format!("{why}: apply failed: plan: {e}")),
                    Effect::PlanFailed(e),
                ];
            }
        };
        let settings = settings(&self.link, &config.encapsulation);
        let mut ops = self.repair_first();
        if self.settings != Some(settings) {
            ops.push(MapOp::PutSettings { settings });
        }
        if config.conntrack_insert_budget != self.insert_budget {
            ops.push(MapOp::SetInsertBudget {
                budget: config.conntrack_insert_budget,
            });
        }
        ops.extend(p.ops.iter().cloned());
        let mut effects = vec![Effect::ResolveNextHops(unknown_next_hops(self, &config))];
        let pending = Pending::Plan {
            plan: Box::new(p),
            ops: ops.clone(),
            config,
            settings,
            why,
            started,
        };
        // Also with no op: its outcome records the time of the apply.
        self.pending = Some(pending);
        effects.push(Effect::Apply { ops });
        effects
    }

    /// The outcome of the pending apply.
    pub(super) fn applied_outcome(&mut self, outcome: ApplyOutcome, now: Instant) -> Vec<Effect> {
        match outcome {
            ApplyOutcome::Done { at_unix_ms } => self.applied_ok(at_unix_ms, now),
            ApplyOutcome::RolledBack { error } => self.apply_failed(error, false),
            ApplyOutcome::Uncertain { error } => self.apply_failed(error, true),
        }
    }

    /// The pending apply succeeded at `at_unix_ms` (wall clock).
    fn applied_ok(&mut self, at_unix_ms: u64, now: Instant) -> Vec<Effect> {
        match self.pending.take() {
            None => vec![Effect::error(
                "an apply outcome with no apply pending (ignored)",
            )],
            Some(Pending::NextHop {
                address, next_hop, ..
            }) => {
                // Its ops began with the repair of what was uncertain.
                self.uncertain.clear();
                self.next_hop_written(address, next_hop)
            }
            Some(Pending::Plan {
                plan,
                config,
                settings,
                why,
                started,
                ..
            }) => {
                // Its ops began with the repair of what was uncertain.
                self.uncertain.clear();
                self.settings = Some(settings);
                self.insert_budget = config.conntrack_insert_budget;
                self.commit(*plan, config, &why, started, at_unix_ms, now)
            }
        }
    }

    /// Records an applied plan and says what follows from it: health targets
    /// (for a new config), the state file, the log, the announcements.
    fn commit(
        &mut self,
        p: Plan,
        config: crate::config::Config,
        why: &str,
        started: Instant,
        at_unix_ms: u64,
        now: Instant,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.config.as_ref() != Some(&config) {
            effects.push(Effect::SetHealthTargets(targets_from_config(&config)));
        }
        self.applied.services = p.services.clone();
        self.applied.retired_backends = p.retired.clone();
        self.applied.maglev_table_size = config.maglev_table_size;
        self.applied.applied_at_unix_ms = at_unix_ms;
        let seconds = now.saturating_duration_since(started).as_secs_f64();
        self.applied.last_apply_seconds = seconds;
        effects.push(Effect::WriteState {
            state: Box::new(self.applied.clone()),
            why: why.to_string(),
        });
        effects.push(Effect::info(format!(
            "{why}: {} — {} map ops, applied in {:.1} ms",
            summary(&p),
            p.ops.len(),
            seconds * 1000.0
        )));
        for s in self.applied.services.iter().filter(|s| s.panic) {
            effects.push(Effect::Log(LogLine {
                level: Level::Warn,
                service: Some(s.name.clone()),
                message: "PANIC MODE: too few healthy backends, using all of them".into(),
            }));
        }
        self.fast_until = Some(now + super::FAST_NEIGHBOUR_WINDOW);
        // Announcements follow the applied tables at once.
        effects.push(self.sync_announcements(&config, "announcements"));
        self.config = Some(config);
        effects
    }

    /// The pending apply failed: the applied view stays (the maps hold it, or
    /// with `uncertain`, the touched entries are rewritten next time) and the
    /// config is retried on the next tick or health event.
    fn apply_failed(&mut self, error: String, uncertain: bool) -> Vec<Effect> {
        match self.pending.take() {
            None => vec![Effect::error(
                "an apply outcome with no apply pending (ignored)",
            )],
            Some(Pending::NextHop { address, ops, .. }) => {
                if uncertain {
                    self.uncertain.extend(ops);
                }
                vec![Effect::Log(LogLine {
                    level: Level::Error,
                    service: None,
                    message: format!("backend {address}: writing next hop: {error}"),
                })]
            }
            Some(Pending::Plan {
                ops,
                config,
                why,
                started,
                ..
            }) => {
                let mut effects = vec![Effect::error(format!("{why}: apply failed: {error}"))];
                if uncertain {
                    effects.push(Effect::error(format!(
                        "{why}: the maps may hold part of the failed apply; every entry it touched is rewritten on the next apply"
                    )));
                    self.uncertain.extend(ops);
                }
                self.wanted = Some(Wanted {
                    config,
                    why,
                    started,
                });
                effects
            }
        }
    }
}

/// Addresses of `config`'s backends whose next hop is not known yet (what an
/// apply needs at once; the periodic refresh does the rest).
fn unknown_next_hops(core: &AgentCore, config: &crate::config::Config) -> Vec<std::net::IpAddr> {
    let mut addrs: Vec<std::net::IpAddr> = config
        .services
        .iter()
        .flat_map(|s| s.backends.iter().map(|b| b.address))
        .chain(
            core.applied
                .services
                .iter()
                .flat_map(|s| s.backends.iter().map(|b| b.address)),
        )
        .filter(|a| !core.next_hops.contains_key(a))
        .collect();
    addrs.sort();
    addrs.dedup();
    addrs
}

/// One line of what a plan changed: `web: +198.18.3.4 (5 slots moved, table 13)`.
fn summary(plan: &Plan) -> String {
    if plan.changes.is_empty() {
        return "no change".into();
    }
    plan.changes
        .iter()
        .map(|c| {
            format!(
                "{}: {} ({} slots moved, table {})",
                c.name,
                c.changes.join(", "),
                c.slots_moved,
                c.table_size
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
