//! A real Prometheus (Debian's `prometheus` package) for the lab: started in
//! the load balancer's namespace, listening on `127.0.0.1:9090` there, with its
//! own storage under the lab's scratch directory, scraping the agent's
//! metrics endpoint every second and evaluating lb's alerting rules. Killed
//! (with everything under the scratch directory) when the lab ends.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::error::{LabError, Result};
use super::netns::NetNs;
use super::process::Proc;

/// Where Prometheus listens, inside the namespace.
pub const PROMETHEUS_ADDR: &str = "127.0.0.1:9090";
/// How long Prometheus may take to answer after it starts.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// lb's alerting rules (`deploy/prometheus/lb-rules.yaml`).
pub fn rules_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/lb-rules.yaml")
}

/// lb's Grafana dashboard (`deploy/grafana/lb.json`).
pub fn dashboard_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/lb.json")
}

/// A running Prometheus; killed on drop.
#[derive(Debug)]
pub struct Prometheus {
    ns: Arc<NetNs>,
    proc: Proc,
}

impl Prometheus {
    /// Starts Prometheus in `ns`, scraping `target` (`host:port`, job `lb`,
    /// target label `tier="lab"`) every second with lb's rules loaded; data and
    /// log under `scratch`. Waits (bounded) until it answers queries.
    pub fn start(ns: Arc<NetNs>, scratch: &Path, target: &str) -> Result<Prometheus> {
        let config = scratch.join("prometheus.yml");
        let rules = std::fs::canonicalize(rules_file())
            .map_err(LabError::io(format!("{}", rules_file().display())))?;
        let text = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: lb\n    static_configs:\n      - targets: ['{target}']\n        labels:\n          tier: lab\n",
            rules.display()
        );
        std::fs::write(&config, text)
            .map_err(LabError::io(format!("write {}", config.display())))?;
        let storage = scratch.join("prometheus-data");
        let args = [
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", storage.display()),
            format!("--web.listen-address={PROMETHEUS_ADDR}"),
            "--storage.tsdb.retention.time=1h".into(),
            "--log.level=warn".into(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let proc = Proc::spawn_in(
            ns.name(),
            Path::new("prometheus"),
            &args,
            &scratch.join("prometheus.log"),
        )?;
        let mut prometheus = Prometheus { ns, proc };
        let start = Instant::now();
        loop {
            if let Some(status) = prometheus.proc.try_wait() {
                return Err(LabError::Output {
                    command: prometheus.proc.name().to_owned(),
                    message: format!("exited {status}: {}", prometheus.proc.log_text()),
                });
            }
            if prometheus
                .get("/-/ready")
                .is_ok_and(|(code, _)| code == 200)
            {
                return Ok(prometheus);
            }
            if start.elapsed() > READY_TIMEOUT {
                return Err(LabError::Timeout {
                    what: format!("prometheus to start: {}", prometheus.proc.log_text()),
                    seconds: READY_TIMEOUT.as_secs_f64(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `GET path` on Prometheus's HTTP API: status code and body.
    pub fn get(&self, path: &str) -> Result<(u16, String)> {
        let path = path.to_owned();
        let answer = self.ns.run(move || -> std::io::Result<String> {
            let addr: SocketAddr = PROMETHEUS_ADDR.parse().expect("address");
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            // HTTP/1.0: the body ends when the connection closes (no chunks).
            write!(s, "GET {path} HTTP/1.0\r\nHost: prometheus\r\n\r\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        })?;
        let text = answer.map_err(LabError::io("prometheus HTTP"))?;
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let code = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Ok((code, body.to_owned()))
    }

    /// An instant query: the whole API answer (`status`, `data`, `error`).
    pub fn query(&self, expr: &str) -> Result<Value> {
        let (_, body) = self.get(&format!("/api/v1/query?query={}", url_encode(expr)))?;
        serde_json::from_str(&body).map_err(|e| LabError::Output {
            command: format!("prometheus query {expr}"),
            message: format!("{e}: {body}"),
        })
    }

    /// The result vector of an instant query (empty on error).
    pub fn vector(&self, expr: &str) -> Result<Vec<Value>> {
        Ok(self.query(expr)?["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Prometheus's log so far.
    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }
}

/// Percent-encodes `text` for a URL query value.
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::url_encode;

    #[test]
    fn encodes_promql() {
        assert_eq!(
            url_encode(r#"rate(x{a="b"}[1m]) > 0"#),
            "rate%28x%7Ba%3D%22b%22%7D%5B1m%5D%29%20%3E%200"
        );
    }
}
