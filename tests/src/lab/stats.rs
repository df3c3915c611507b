//! Reading `lb stats --json`: which backends each service has, with their
//! weight and state, compared with a [`LabConfig`].
//!
//! The JSON (see `lb::stats::Snapshot`): `{"services": [{"name", "vip", "port",
//! "protocol", "backends": [{"address", "state", "weight", "new_flows", ...}]}]}`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

use super::addr;
use super::config::LabConfig;

/// One backend as `lb stats` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackendView {
    /// `active`, `draining` or `down`.
    pub state: String,
    /// Weight.
    pub weight: u64,
    /// New flows so far.
    pub new_flows: u64,
    /// Slots held in the live Maglev table.
    pub slots: u64,
}

/// One service: backend address -> view.
pub type ServiceView = BTreeMap<IpAddr, BackendView>;

/// The service with `vip` and `port` in `lb stats --json` output.
pub fn service(stats: &Value, vip: IpAddr, port: u16) -> Option<ServiceView> {
    let services = stats.get("services")?.as_array()?;
    let svc = services.iter().find(|s| {
        s.get("vip")
            .and_then(Value::as_str)
            .and_then(|v| v.parse::<IpAddr>().ok())
            == Some(vip)
            && s.get("port").and_then(Value::as_u64) == Some(u64::from(port))
    })?;
    let mut view = ServiceView::new();
    for b in svc.get("backends")?.as_array()? {
        let address: IpAddr = b.get("address")?.as_str()?.parse().ok()?;
        let num = |k: &str| b.get(k).and_then(Value::as_u64).unwrap_or(0);
        view.insert(
            address,
            BackendView {
                state: b
                    .get("state")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                weight: num("weight"),
                new_flows: num("new_flows"),
                slots: num("slots"),
            },
        );
    }
    Some(view)
}

/// Whether `stats` shows exactly `config`'s backends (address, weight, drain)
/// for every service of the config, with table slots only for backends that
/// take new flows.
pub fn matches(stats: &Value, config: &LabConfig) -> bool {
    let services = [
        (config.services.tcp4, false, addr::TCP_PORT),
        (config.services.udp4, false, addr::UDP_PORT),
        (config.services.tcp6, true, addr::TCP_PORT),
        (config.services.udp6, true, addr::UDP_PORT),
    ];
    services
        .into_iter()
        .filter(|(on, _, _)| *on)
        .all(|(_, v6, port)| {
            let Some(view) = service(stats, addr::vip(v6), port) else {
                return false;
            };
            view.len() == config.backends.len()
                && config.backends.iter().all(|(index, spec)| {
                    view.get(&addr::backend_link(*index).host(v6))
                        .is_some_and(|b| {
                            let takes_new = !spec.drain && spec.weight > 0;
                            b.weight == u64::from(spec.weight)
                                && b.state == if takes_new { "active" } else { "draining" }
                                && (b.slots > 0) == takes_new
                        })
                })
        })
}
