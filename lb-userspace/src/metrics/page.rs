//! The live status page served at `/` by `lb run --metrics ADDR`: static
//! assets embedded in the binary (plain HTML, CSS and JavaScript, no external
//! fetch), and `/stats.json`, which the page polls every second: the shape of
//! `lb stats --json` with rates between the two latest samples.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::state::AppliedState;
use crate::stats::{Rates, Snapshot, StatsError, report_json};

/// Path of the JSON the page polls.
pub const STATS_JSON_PATH: &str = "/stats.json";

/// Requests closer together than this share one sample (several open pages
/// then see rates over a sensible interval).
const MIN_SAMPLE_GAP: Duration = Duration::from_millis(500);
/// Rates over a longer gap than this are not shown (nobody was polling).
const MAX_RATE_GAP: Duration = Duration::from_secs(10);

/// One embedded static file.
#[derive(Debug, PartialEq, Eq)]
pub struct Asset {
    /// URL path.
    pub path: &'static str,
    /// Content-Type header.
    pub content_type: &'static str,
    /// Content.
    pub body: &'static str,
}

/// Every static file of the page.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("assets/status.html"),
    },
    Asset {
        path: "/status.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("assets/status.css"),
    },
    Asset {
        path: "/status.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/status.js"),
    },
];

/// The embedded file served at `path`, if any.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// Takes snapshots for `/stats.json` and keeps the previous one for rates.
#[derive(Debug)]
pub struct Sampler {
    pin_dir: PathBuf,
    state_path: PathBuf,
    samples: Mutex<Samples>,
}

#[derive(Debug, Default)]
struct Samples {
    previous: Option<(Instant, Snapshot)>,
    latest: Option<(Instant, Snapshot)>,
}

impl Sampler {
    /// A sampler of the maps pinned in `pin_dir` and the state file `state_path`.
    pub fn new(pin_dir: PathBuf, state_path: PathBuf) -> Self {
        Self {
            pin_dir,
            state_path,
            samples: Mutex::new(Samples::default()),
        }
    }

    /// The `lb stats --json` report of a fresh sample (or of the latest one,
    /// if younger than half a second), with rates since the sample before.
    pub fn stats_json(&self) -> Result<String, StatsError> {
        let mut samples = self
            .samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let stale = samples
            .latest
            .as_ref()
            .is_none_or(|(at, _)| now.duration_since(*at) >= MIN_SAMPLE_GAP);
        if stale {
            let state = AppliedState::read(&self.state_path)?;
            let snap = Snapshot::read(&self.pin_dir, state.as_ref())?;
            samples.previous = samples.latest.replace((now, snap));
        }
        let Some((at, snap)) = &samples.latest else {
            unreachable!("a sample was just taken");
        };
        let rates = samples.previous.as_ref().and_then(|(prev_at, prev)| {
            let elapsed = at.duration_since(*prev_at);
            (elapsed <= MAX_RATE_GAP).then(|| Rates::between(prev, snap, elapsed))
        });
        Ok(serde_json::to_string(&report_json(snap, rates.as_ref()))
            .expect("the report serializes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_self_contained() {
        for a in ASSETS {
            for external in ["http://", "https://", "//cdn", "@import"] {
                assert!(
                    !a.body.contains(external),
                    "{} refers to something external ({external})",
                    a.path
                );
            }
        }
        let html = asset("/").expect("index").body;
        assert!(html.contains("/status.js") && html.contains("/status.css"));
        assert!(asset("/status.js").unwrap().body.contains(STATS_JSON_PATH));
        assert_eq!(asset("/etc/passwd"), None);
    }
}
