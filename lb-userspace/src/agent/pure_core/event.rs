//! What goes into the agent's core ([`Event`]) and what comes out
//! ([`Effect`]). Events carry every input the core needs (configs already
//! read and validated, health as a snapshot value, next hops, outcomes of its
//! own effects, wall-clock time where it is recorded); effects say what the
//! shell must do, in order.

use std::net::IpAddr;
use std::time::Instant;

use crate::announce::AnnounceState;
use crate::config::{AnnounceConfig, Config};
use crate::health::{HealthEvent, HealthSnapshot, HealthTarget};
use crate::plan::{MapOp, NextHop, PlanError};
use crate::state::AppliedState;

/// An input of the core.
#[derive(Clone, Debug)]
pub enum Event {
    /// A config was read and validated: the initial one, or a reload.
    ConfigLoaded {
        /// The config.
        config: Config,
        /// What caused it (`initial apply`, `SIGHUP`, `config file changed`).
        why: String,
        /// When the cause was seen (the apply's duration counts from it).
        started: Instant,
        /// The monitor's health snapshot, taken as the config was read.
        health: HealthSnapshot,
    },
    /// A backend changed health state.
    HealthChanged {
        /// The transition (logged as one line).
        event: HealthEvent,
        /// The monitor's snapshot taken after it.
        health: HealthSnapshot,
    },
    /// The resolver found (or lost) the next hop toward a backend address.
    NextHopResolved {
        /// The backend address.
        address: IpAddr,
        /// Its next hop, `None` when unknown.
        next_hop: Option<NextHop>,
    },
    /// The periodic refresh: next hops, announcements, a retry of a config
    /// not yet applied.
    RefreshTick,
    /// The quick retry of unknown next hops right after an apply.
    FastRetryTick,
    /// `lb drain`'s marker changed.
    DrainMarkerChanged,
    /// The outcome of the last [`Effect::Apply`] (answered before any other
    /// event; events that arrive meanwhile wait in the core).
    Applied(ApplyOutcome),
    /// The outcome of an [`Effect::SyncAnnouncements`]: the announcements as
    /// reconciled with the kernel routes.
    Announced(AnnounceState),
}

/// What became of an [`Effect::Apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Every op was applied.
    Done {
        /// Wall-clock time, Unix milliseconds (recorded in the state file).
        at_unix_ms: u64,
    },
    /// An op failed and every entry written before it was put back: the maps
    /// hold what they held before the apply.
    RolledBack {
        /// The error (naming the op and map).
        error: String,
    },
    /// An op failed and some entries could not be put back: the maps may
    /// hold part of the apply. The core rewrites every entry the failed ops
    /// touched on its next apply.
    Uncertain {
        /// The error (naming what could not be restored).
        error: String,
    },
}

/// Severity of a [`LogLine`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Normal operation.
    Info,
    /// Something users should look at.
    Warn,
    /// Something failed.
    Error,
}

/// One line for the agent's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// Severity.
    pub level: Level,
    /// The service it is about (logged as a field), if any.
    pub service: Option<String>,
    /// The text.
    pub message: String,
}

/// An output of the core, for the shell to carry out in order.
#[derive(Debug)]
pub enum Effect {
    /// Apply these map operations all or nothing; answer with
    /// [`Event::Applied`].
    Apply {
        /// The ops, in order.
        ops: Vec<MapOp>,
    },
    /// Planning failed (the config is refused; the maps keep the last good
    /// state). Also logged; the first apply's failure stops the agent.
    PlanFailed(PlanError),
    /// Probe these targets from now on (the applied config's).
    SetHealthTargets(Vec<HealthTarget>),
    /// Look up the next hops toward these addresses (answers arrive as
    /// [`Event::NextHopResolved`]).
    ResolveNextHops(Vec<IpAddr>),
    /// Write the state file.
    WriteState {
        /// The state to write.
        state: Box<AppliedState>,
        /// What the apply was for (for error lines).
        why: String,
    },
    /// Decide the VIP announcements for `state`, reconcile the kernel routes
    /// and write the state file if they changed (or `write_unchanged`);
    /// answer with [`Event::Announced`].
    SyncAnnouncements {
        /// The applied state.
        state: Box<AppliedState>,
        /// The applied config's announcement settings.
        announce: AnnounceConfig,
        /// Write the state file even when nothing changed.
        write_unchanged: bool,
        /// What triggered it (for error lines).
        why: &'static str,
    },
    /// Log a line.
    Log(LogLine),
}

impl Effect {
    /// An info line.
    pub fn info(message: impl Into<String>) -> Self {
        Self::log(Level::Info, message)
    }

    /// A warning line.
    pub fn warn(message: impl Into<String>) -> Self {
        Self::log(Level::Warn, message)
    }

    /// An error line.
    pub fn error(message: impl Into<String>) -> Self {
        Self::log(Level::Error, message)
    }

    fn log(level: Level, message: impl Into<String>) -> Self {
        Effect::Log(LogLine {
            level,
            service: None,
            message: message.into(),
        })
    }
}
