//! The lab's `lb` config: four services (TCP and UDP, IPv4 and IPv6) over the
//! same backend set, encapsulated in IPIP or GUE, rendered to YAML, and
//! written the way editors save files (a temporary file renamed over the
//! original).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::addr;
use super::error::{LabError, Result};

/// One backend's settings, shared by every service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendSpec {
    /// Relative weight.
    pub weight: u32,
    /// Draining: no new flows.
    pub drain: bool,
}

/// Which services the config declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Services {
    /// TCP port 80 on the IPv4 VIP (`web`).
    pub tcp4: bool,
    /// UDP port 5353 on the IPv4 VIP (`dns`).
    pub udp4: bool,
    /// TCP port 80 on the IPv6 VIP (`web6`).
    pub tcp6: bool,
    /// UDP port 5353 on the IPv6 VIP (`dns6`).
    pub udp6: bool,
}

impl Services {
    /// All four.
    pub const ALL: Services = Services {
        tcp4: true,
        udp4: true,
        tcp6: true,
        udp6: true,
    };
}

/// Maglev table size of the test configs: a prime at least 100 x the lab's
/// backends (so shares stay within 1 % of the weights), small enough that a
/// debug-build agent rewrites four tables in milliseconds rather than seconds.
pub const TEST_TABLE_SIZE: u32 = 4099;

/// The lab config: backend index (1-based) -> settings, for every service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabConfig {
    /// `maglev_table_size` (`None`: the agent's default, 65537).
    pub maglev_table_size: Option<u32>,
    /// Backends by index.
    pub backends: BTreeMap<u8, BackendSpec>,
    /// Declared services.
    pub services: Services,
    /// A TCP health check on the TCP services (`None`: no health checking).
    pub health: Option<HealthSpec>,
    /// How every service reaches its backends.
    pub encap: LabEncap,
}

/// The encapsulation of every service of a [`LabConfig`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LabEncap {
    /// IPv4-in-IPv4 / IPv6-in-IPv6 (`encap` left out: lb's default).
    #[default]
    Ipip,
    /// `encap: gue` with second chance.
    Gue {
        /// `encapsulation.gue_port` (`None`: lb's default, 6080); the lab's
        /// decapsulators must be started with the same port.
        port: Option<u16>,
        /// Each service's `second_chance_s` (`None`: lb's default).
        second_chance_s: Option<u32>,
    },
}

impl LabEncap {
    /// GUE on lb's default port with lb's default grace period.
    pub const GUE: LabEncap = LabEncap::Gue {
        port: None,
        second_chance_s: None,
    };

    /// The GUE port given to `lb decap --gue-port`, when not the default.
    pub fn gue_port(self) -> Option<u16> {
        match self {
            LabEncap::Gue { port, .. } => port,
            LabEncap::Ipip => None,
        }
    }
}

/// A TCP-connect health check with these timings, and a panic threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthSpec {
    /// `interval_ms`.
    pub interval_ms: u64,
    /// `timeout_ms`.
    pub timeout_ms: u64,
    /// `rise`.
    pub rise: u32,
    /// `fall`.
    pub fall: u32,
    /// `panic_threshold` in percent (0 = panic mode off).
    pub panic_percent: u32,
}

impl LabConfig {
    /// Backends `1..=n` with weight 1, every service.
    pub fn equal(n: u8) -> LabConfig {
        Self::weighted(&vec![1; usize::from(n)])
    }

    /// Backends `1..` with the given weights, every service.
    pub fn weighted(weights: &[u32]) -> LabConfig {
        let backends = weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                (
                    i as u8 + 1,
                    BackendSpec {
                        weight: *w,
                        drain: false,
                    },
                )
            })
            .collect();
        LabConfig {
            maglev_table_size: Some(TEST_TABLE_SIZE),
            backends,
            services: Services::ALL,
            health: None,
            encap: LabEncap::Ipip,
        }
    }

    /// The same config with every service on `encap`.
    pub fn with_encap(mut self, encap: LabEncap) -> LabConfig {
        self.encap = encap;
        self
    }

    /// Adds (or replaces) backend `index`.
    pub fn add(&mut self, index: u8, weight: u32) -> &mut Self {
        self.backends.insert(
            index,
            BackendSpec {
                weight,
                drain: false,
            },
        );
        self
    }

    /// Removes backend `index`.
    pub fn remove(&mut self, index: u8) -> &mut Self {
        self.backends.remove(&index);
        self
    }

    /// Sets `drain` on backend `index`.
    pub fn drain(&mut self, index: u8, drain: bool) -> &mut Self {
        if let Some(b) = self.backends.get_mut(&index) {
            b.drain = drain;
        }
        self
    }

    /// Sets the weight of backend `index`.
    pub fn weight(&mut self, index: u8, weight: u32) -> &mut Self {
        if let Some(b) = self.backends.get_mut(&index) {
            b.weight = weight;
        }
        self
    }

    /// The YAML text.
    pub fn to_yaml(&self) -> String {
        // A small connection table: labs run in parallel, each with its own.
        let mut out =
            String::from("# lb lab config (written by the lab)\nconntrack_entries: 65536\n");
        if let Some(size) = self.maglev_table_size {
            let _ = writeln!(out, "maglev_table_size: {size}");
        }
        if let Some(port) = self.encap.gue_port() {
            let _ = writeln!(out, "encapsulation:\n  gue_port: {port}");
        }
        out.push_str("services:\n");
        let services = [
            (self.services.tcp4, "web", false, addr::TCP_PORT, "tcp"),
            (self.services.udp4, "dns", false, addr::UDP_PORT, "udp"),
            (self.services.tcp6, "web6", true, addr::TCP_PORT, "tcp"),
            (self.services.udp6, "dns6", true, addr::UDP_PORT, "udp"),
        ];
        for (on, name, v6, port, proto) in services {
            if !on {
                continue;
            }
            let _ = writeln!(
                out,
                "  - name: {name}\n    vip: {}\n    port: {port}\n    protocol: {proto}",
                addr::vip(v6)
            );
            if let LabEncap::Gue {
                second_chance_s, ..
            } = self.encap
            {
                out.push_str("    encap: gue\n");
                if let Some(s) = second_chance_s {
                    let _ = writeln!(out, "    second_chance_s: {s}");
                }
            }
            out.push_str("    backends:\n");
            for (index, spec) in &self.backends {
                let _ = writeln!(
                    out,
                    "      - address: {}\n        weight: {}\n        drain: {}",
                    addr::backend_link(*index).host(v6),
                    spec.weight,
                    spec.drain
                );
            }
            if let (Some(h), "tcp") = (self.health, proto) {
                let _ = writeln!(
                    out,
                    "    panic_threshold: {}.{:02}\n    health_check:\n      kind: tcp\n      interval_ms: {}\n      timeout_ms: {}\n      rise: {}\n      fall: {}",
                    h.panic_percent / 100,
                    h.panic_percent % 100,
                    h.interval_ms,
                    h.timeout_ms,
                    h.rise,
                    h.fall
                );
            }
        }
        out
    }
}

/// The `encapsulation.gue_port` a config text sets, if any: the lab's
/// decapsulators must accept GUE there (`None`: lb's default, 6080, or a text
/// that does not parse, which `lb run` reports itself).
pub fn gue_port_in(yaml: &str) -> Option<u16> {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).ok()?;
    let port = value.get("encapsulation")?.get("gue_port")?.as_u64()?;
    u16::try_from(port).ok()
}

/// A config file that is replaced atomically on every write.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
}

impl ConfigFile {
    /// A config file at `path` (not written yet).
    pub fn new(path: impl Into<PathBuf>) -> ConfigFile {
        ConfigFile { path: path.into() }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `config`.
    pub fn write(&self, config: &LabConfig) -> Result<()> {
        self.write_text(&config.to_yaml())
    }

    /// Writes `text` to a temporary file next to the config, then renames it
    /// over the config, as editors do.
    pub fn write_text(&self, text: &str) -> Result<()> {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = self.path.with_file_name(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).map_err(LabError::io(format!("write {}", tmp.display())))?;
        std::fs::rename(&tmp, &self.path).map_err(LabError::io(format!(
            "rename {} over {}",
            tmp.display(),
            self.path.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_lists_every_backend_per_family() {
        let mut config = LabConfig::weighted(&[1, 1, 2]);
        config.drain(2, true);
        let yaml = config.to_yaml();
        assert!(yaml.contains("vip: 198.18.100.1\n    port: 80\n    protocol: tcp"));
        assert!(yaml.contains("vip: 2001:2:0:100::1\n    port: 5353\n    protocol: udp"));
        assert!(yaml.contains("- address: 198.18.5.2\n        weight: 2\n        drain: false"));
        assert!(yaml.contains("- address: 2001:2:0:4::2\n        weight: 1\n        drain: true"));
        assert_eq!(yaml.matches("- address:").count(), 12);
        assert!(!yaml.contains("encap"), "{yaml}");
    }

    #[test]
    fn gue_configs_name_the_encapsulation_on_every_service() {
        let config = LabConfig::equal(2).with_encap(LabEncap::Gue {
            port: Some(7000),
            second_chance_s: Some(120),
        });
        let yaml = config.to_yaml();
        assert!(
            yaml.contains("encapsulation:\n  gue_port: 7000\n"),
            "{yaml}"
        );
        assert_eq!(yaml.matches("    encap: gue\n").count(), 4, "{yaml}");
        assert_eq!(yaml.matches("    second_chance_s: 120\n").count(), 4);
        assert_eq!(gue_port_in(&yaml), Some(7000), "{yaml}");
        let plain = LabConfig::equal(2).with_encap(LabEncap::GUE).to_yaml();
        assert_eq!(gue_port_in(&plain), None);
        assert_eq!(gue_port_in("encapsulation: [broken"), None);
        assert!(!plain.contains("encapsulation:") && !plain.contains("second_chance_s"));
        assert_eq!(plain.matches("    encap: gue\n").count(), 4, "{plain}");
    }

    #[test]
    fn lab_configs_pass_lb_validation() {
        let mut config = LabConfig::equal(3);
        config.add(4, 3).drain(2, true).remove(1).weight(3, 0);
        for c in [LabConfig::weighted(&[1, 1, 2]), config] {
            let parsed = lb::config::parse(&c.to_yaml())
                .unwrap_or_else(|e| panic!("{e:?}\n{}", c.to_yaml()));
            assert_eq!(parsed.services.len(), 4);
            assert_eq!(parsed.conntrack_entries, 65536);
            assert_eq!(parsed.maglev_table_size, TEST_TABLE_SIZE);
        }
    }
}
