//! Per-backend health state machine: pure, no I/O, no clock reads.
//!
//! A backend is [`HealthState::Up`] or [`HealthState::Down`]. Consecutive probe
//! results move it between the two, damped by `rise` and `fall`:
//!
//! - Up → Down after `fall` consecutive failures;
//! - Down → Up after `rise` consecutive successes.
//!
//! Any result of the other kind resets the run, so a flapping backend
//! (alternating success/failure) never changes state when `rise, fall >= 2`.
//!
//! A new backend starts **Up**: it is trusted until it has failed `fall` times.
//! Starting Down would black-hole a freshly configured service (every backend
//! down, or in panic) until `rise` probes had passed, and would make a config
//! reload that only adds a backend briefly shrink capacity; starting Up costs at
//! most `fall` intervals of new flows to a backend that was dead on arrival,
//! the same cost as any backend that dies later.

use std::time::Instant;

/// Health of one backend as far as new flows are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HealthState {
    /// Takes new flows.
    Up,
    /// Failed `fall` consecutive probes; takes no new flows until `rise` successes.
    Down,
}

impl HealthState {
    /// `"up"` or `"down"`, as shown by `lb stats` / `lb watch`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

impl std::fmt::Display for HealthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change of [`HealthState`] caused by one probe result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transition {
    /// Up → Down: `fall` consecutive failures.
    UpToDown,
    /// Down → Up: `rise` consecutive successes.
    DownToUp,
}

impl Transition {
    /// The state before the transition.
    pub fn from(self) -> HealthState {
        match self {
            Self::UpToDown => HealthState::Up,
            Self::DownToUp => HealthState::Down,
        }
    }

    /// The state after the transition.
    pub fn to(self) -> HealthState {
        match self {
            Self::UpToDown => HealthState::Down,
            Self::DownToUp => HealthState::Up,
        }
    }
}

impl std::fmt::Display for Transition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -> {}", self.from(), self.to())
    }
}

/// The result of one probe, as the state machine sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeOutcome {
    /// The probe passed.
    Success,
    /// The probe failed (refused, timed out, bad status, ...).
    Failure,
}

impl ProbeOutcome {
    /// `Success` when `ok`, else `Failure`.
    pub fn from_ok(ok: bool) -> Self {
        if ok { Self::Success } else { Self::Failure }
    }
}

/// The health state machine of one backend.
///
/// Time is passed in (`now`) and only recorded, so tests drive it with a fake
/// clock; it never reads a clock itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendHealth {
    state: HealthState,
    since: Instant,
    consecutive_successes: u32,
    consecutive_failures: u32,
    rise: u32,
    fall: u32,
    last_observed: Option<Instant>,
}

impl BackendHealth {
    /// A new backend, [`HealthState::Up`] since `now` (see the module docs for why).
    /// `rise` and `fall` of 0 are treated as 1.
    pub fn new(rise: u32, fall: u32, now: Instant) -> Self {
        Self::with_state(HealthState::Up, rise, fall, now)
    }

    /// A backend starting in `state` since `now`.
    /// `rise` and `fall` of 0 are treated as 1.
    pub fn with_state(state: HealthState, rise: u32, fall: u32, now: Instant) -> Self {
        Self {
            state,
            since: now,
            consecutive_successes: 0,
            consecutive_failures: 0,
            rise: rise.max(1),
            fall: fall.max(1),
            last_observed: None,
        }
    }

    /// Changes `rise`/`fall` (config reload) keeping the state and the current
    /// runs; the new thresholds apply from the next [`observe`](Self::observe).
    pub fn set_thresholds(&mut self, rise: u32, fall: u32) {
        self.rise = rise.max(1);
        self.fall = fall.max(1);
    }

    /// Records one probe result taken at `now`; returns the transition it
    /// caused, if any.
    pub fn observe(&mut self, outcome: ProbeOutcome, now: Instant) -> Option<Transition> {
        self.last_observed = Some(now);
        match outcome {
            ProbeOutcome::Success => {
                self.consecutive_successes = self.consecutive_successes.saturating_add(1);
                self.consecutive_failures = 0;
                if self.state == HealthState::Down && self.consecutive_successes >= self.rise {
                    return Some(self.enter(HealthState::Up, now));
                }
            }
            ProbeOutcome::Failure => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.consecutive_successes = 0;
                if self.state == HealthState::Up && self.consecutive_failures >= self.fall {
                    return Some(self.enter(HealthState::Down, now));
                }
            }
        }
        None
    }

    fn enter(&mut self, state: HealthState, now: Instant) -> Transition {
        self.state = state;
        self.since = now;
        match state {
            HealthState::Up => Transition::DownToUp,
            HealthState::Down => Transition::UpToDown,
        }
    }

    /// The current state.
    pub fn state(&self) -> HealthState {
        self.state
    }

    /// Whether the backend is [`HealthState::Up`].
    pub fn is_up(&self) -> bool {
        self.state == HealthState::Up
    }

    /// When the current state was entered (creation time if never changed).
    pub fn since(&self) -> Instant {
        self.since
    }

    /// When the last probe result was recorded, if any.
    pub fn last_observed(&self) -> Option<Instant> {
        self.last_observed
    }

    /// Length of the current run of successes (0 after a failure).
    pub fn consecutive_successes(&self) -> u32 {
        self.consecutive_successes
    }

    /// Length of the current run of failures (0 after a success).
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Successes needed to go Down → Up.
    pub fn rise(&self) -> u32 {
        self.rise
    }

    /// Failures needed to go Up → Down.
    pub fn fall(&self) -> u32 {
        self.fall
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use ProbeOutcome::{Failure, Success};

    /// A fake clock: a fixed base plus a manually advanced offset.
    struct FakeClock {
        base: Instant,
        offset: Duration,
    }

    impl FakeClock {
        fn new() -> Self {
            Self {
                base: Instant::now(),
                offset: Duration::ZERO,
            }
        }

        /// Advances by one probe interval and returns the new "now".
        fn tick(&mut self) -> Instant {
            self.offset += Duration::from_millis(1000);
            self.base + self.offset
        }

        fn now(&self) -> Instant {
            self.base + self.offset
        }
    }

    /// Feeds `outcomes` one per tick; returns the index and kind of each transition.
    fn run(
        health: &mut BackendHealth,
        clock: &mut FakeClock,
        outcomes: &[ProbeOutcome],
    ) -> Vec<(usize, Transition)> {
        outcomes
            .iter()
            .enumerate()
            .filter_map(|(i, &o)| health.observe(o, clock.tick()).map(|t| (i, t)))
            .collect()
    }

    #[test]
    fn starts_up_and_stays_up_on_success() {
        let mut clock = FakeClock::new();
        let mut h = BackendHealth::new(2, 3, clock.now());
        assert_eq!(h.state(), HealthState::Up);
        assert_eq!(run(&mut h, &mut clock, &[Success; 10]), vec![]);
        assert!(h.is_up());
        assert_eq!(h.consecutive_successes(), 10);
    }

    #[test]
    fn falls_after_exactly_fall_failures() {
        let mut clock = FakeClock::new();
        let start = clock.now();
        let mut h = BackendHealth::new(2, 3, start);
        let transitions = run(&mut h, &mut clock, &[Failure; 5]);
        assert_eq!(transitions, vec![(2, Transition::UpToDown)]);
        assert_eq!(h.state(), HealthState::Down);
        assert_eq!(h.since(), start + Duration::from_millis(3000));
        assert_eq!(h.consecutive_failures(), 5);
    }

    #[test]
    fn rises_after_exactly_rise_successes() {
        let mut clock = FakeClock::new();
        let mut h = BackendHealth::new(2, 3, clock.now());
        run(&mut h, &mut clock, &[Failure; 3]);
        assert_eq!(h.state(), HealthState::Down);
        let transitions = run(&mut h, &mut clock, &[Success; 4]);
        assert_eq!(transitions, vec![(1, Transition::DownToUp)]);
        assert!(h.is_up());
        assert_eq!(h.since(), clock.now() - Duration::from_millis(2000));
    }

    #[test]
    fn failure_run_is_reset_by_a_success() {
        let mut clock = FakeClock::new();
        let mut h = BackendHealth::new(2, 3, clock.now());
        let transitions = run(
            &mut h,
            &mut clock,
            &[Failure, Failure, Success, Failure, Failure, Success],
        );
        assert_eq!(transitions, vec![]);
        assert!(h.is_up());
    }

    #[test]
    fn flapping_is_damped_both_ways() {
        let mut clock = FakeClock::new();
        let mut h = BackendHealth::new(2, 2, clock.now());
        let flap: Vec<_> = (0..20).map(|i| ProbeOutcome::from_ok(i % 2 == 0)).collect();
        assert_eq!(run(&mut h, &mut clock, &flap), vec![]);
        assert!(h.is_up());

        run(&mut h, &mut clock, &[Failure, Failure]);
        assert_eq!(h.state(), HealthState::Down);
        assert_eq!(run(&mut h, &mut clock, &flap), vec![]);
        assert_eq!(h.state(), HealthState::Down);
    }

    #[test]
    fn full_cycle_reports_each_transition_once() {
        let mut clock = FakeClock::new();
        let mut h = BackendHealth::new(2, 3, clock.now());
        let mut outcomes = vec![Success; 2];
        outcomes.extend([Failure; 4]);
        outcomes.extend([Success; 3]);
        outcomes.extend([Failure; 3]);
        let transitions = run(&mut h, &mut clock, &outcomes);
        assert_eq!(
            transitions,
            vec![
                (4, Transition::UpToDown),
                (7, Transition::DownToUp),
                (11, Transition::UpToDown),
            ]
        );
    }

    #[test]
    fn zero_thresholds_act_as_one() {
        let mut clock = FakeClock::new();
        let mut h = BackendHealth::new(0, 0, clock.now());
        assert_eq!((h.rise(), h.fall()), (1, 1));
        assert_eq!(h.observe(Failure, clock.tick()), Some(Transition::UpToDown));
        assert_eq!(h.observe(Success, clock.tick()), Some(Transition::DownToUp));
    }

    #[test]
    fn new_thresholds_apply_from_next_observation() {
        let mut clock = FakeClock::new();
        let mut h = BackendHealth::new(2, 5, clock.now());
        run(&mut h, &mut clock, &[Failure; 2]);
        assert!(h.is_up());
        h.set_thresholds(2, 2);
        assert!(h.is_up(), "changing thresholds alone changes nothing");
        assert_eq!(h.observe(Failure, clock.tick()), Some(Transition::UpToDown));
    }

    #[test]
    fn records_last_observation_time() {
        let mut clock = FakeClock::new();
        let mut h = BackendHealth::with_state(HealthState::Down, 1, 1, clock.now());
        assert_eq!(h.last_observed(), None);
        let t = clock.tick();
        h.observe(Failure, t);
        assert_eq!(h.last_observed(), Some(t));
    }
}
