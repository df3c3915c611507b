//! What every end-to-end test does first: a lab with `lb decap` on the backends,
//! the agent running on a config file the test rewrites, and a client; plus
//! "write the config and wait until the agent applied it", timed.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::client::Client;
use super::config::{ConfigFile, LabConfig};
use super::error::Result;
use super::process::lb_binary;
use super::stats::ServiceView;
use super::topology::Lab;

/// How long a config change may take to show up in `lb stats`.
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A lab with the agent running on a config the test owns.
#[derive(Debug)]
pub struct Scenario {
    /// The lab (dropped last: declared first in tests).
    pub lab: Lab,
    /// The config file the agent watches.
    pub file: ConfigFile,
    /// The current config.
    pub config: LabConfig,
    /// The client.
    pub client: Client,
    /// Time from each save to applied, in order.
    pub apply_times: Vec<Duration>,
}

impl Scenario {
    /// Builds a lab with `backends` backends (more than the config may name),
    /// starts decap, writes `config` and starts the agent on it.
    pub fn start(backends: u8, config: LabConfig) -> Result<Scenario> {
        Self::start_with_args(backends, config, &[])
    }

    /// [`Scenario::start`] with extra `lb run` arguments (e.g. `--metrics ADDR`).
    pub fn start_with_args(backends: u8, config: LabConfig, extra: &[&str]) -> Result<Scenario> {
        let lb = lb_binary()?;
        let mut lab = Lab::new(backends)?;
        lab.start_decap(&lb)?;
        let file = ConfigFile::new(lab.scratch().join("lb.yaml"));
        file.write(&config)?;
        lab.start_agent(file.path(), extra)?;
        let client = Client::new(lab.client_ns.clone());
        let mut scenario = Scenario {
            lab,
            file,
            config,
            client,
            apply_times: Vec::new(),
        };
        scenario.wait_applied()?;
        Ok(scenario)
    }

    /// Waits until `lb stats` shows the current config for every service.
    pub fn wait_applied(&mut self) -> Result<Duration> {
        let expected = self.config.clone();
        let (_, took) = self
            .lab
            .wait_stats("config applied", APPLY_TIMEOUT, |stats| {
                super::stats::matches(stats, &expected)
            })?;
        Ok(took)
    }

    /// Saves `config` (temp file + rename) and waits until it is applied;
    /// returns the time from save to applied (also recorded).
    pub fn apply(&mut self, config: LabConfig) -> Result<Duration> {
        self.config = config;
        let saved = Instant::now();
        self.file.write(&self.config)?;
        self.wait_applied()?;
        let took = saved.elapsed();
        self.apply_times.push(took);
        Ok(took)
    }

    /// Edits the current config with `f`, then [`Scenario::apply`]s it.
    pub fn edit(&mut self, f: impl FnOnce(&mut LabConfig)) -> Result<Duration> {
        let mut config = self.config.clone();
        f(&mut config);
        self.apply(config)
    }

    /// The per-backend view of one service from `lb stats --json`.
    pub fn service(&mut self, vip: IpAddr, port: u16) -> Result<ServiceView> {
        let stats = self.lab.stats()?;
        Ok(super::stats::service(&stats, vip, port).unwrap_or_default())
    }

    /// Median and max of the recorded save -> applied times (seen through
    /// `lb stats`), and of the agent's own change -> applied times (its log).
    pub fn apply_summary(&self) -> String {
        let mut times: Vec<f64> = self
            .apply_times
            .iter()
            .map(|d| d.as_secs_f64() * 1e3)
            .collect();
        // The first `applied:` line is the initial config, not a save.
        let mut agent: Vec<f64> = self.lab.agent_apply_ms().into_iter().skip(1).collect();
        format!(
            "{} config saves: save->visible in lb stats {}; agent's change->applied {}",
            times.len(),
            median_max(&mut times),
            median_max(&mut agent)
        )
    }
}

fn median_max(values: &mut [f64]) -> String {
    values.sort_by(f64::total_cmp);
    match (values.get(values.len() / 2), values.last()) {
        (Some(median), Some(max)) => format!("median {median:.0} ms, max {max:.0} ms"),
        _ => "none".into(),
    }
}
