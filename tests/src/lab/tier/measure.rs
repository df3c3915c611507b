//! Figures the tier tests compare across nodes, read from each node's
//! `lb stats --json` (pure), and the shares they form.

use std::net::IpAddr;

use lb::maglev::{MaglevTable, WeightedBackend};
use serde_json::Value;

use crate::lab::addr::backend_link;
use crate::lab::config::{LabConfig, TEST_TABLE_SIZE};

/// New flows a node has taken on its services of `protocol` (`tcp`/`udp`),
/// summed over backends.
pub fn new_flows(stats: &Value, protocol: &str) -> u64 {
    stats["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["protocol"].as_str() == Some(protocol))
        .flat_map(|s| s["backends"].as_array().into_iter().flatten())
        .filter_map(|b| b["new_flows"].as_u64())
        .sum()
}

/// A global counter (`non_syn_miss`, `conntrack_miss`...).
pub fn global(stats: &Value, label: &str) -> u64 {
    stats["global"][label].as_u64().unwrap_or(0)
}

/// Each count's share of their sum (all 0 when the sum is 0).
pub fn shares(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .map(|c| {
            if total == 0 {
                0.0
            } else {
                *c as f64 / total as f64
            }
        })
        .collect()
}

/// Element-wise `after - before` (saturating).
pub fn deltas(before: &[u64], after: &[u64]) -> Vec<u64> {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| a.saturating_sub(*b))
        .collect()
}

/// The Maglev backends of `config` for one family (those taking new flows).
fn maglev_backends(config: &LabConfig, v6: bool) -> Vec<WeightedBackend> {
    config
        .backends
        .iter()
        .filter(|(_, spec)| !spec.drain && spec.weight > 0)
        .map(|(index, spec)| WeightedBackend {
            address: backend_link(*index).host(v6),
            weight: spec.weight,
        })
        .collect()
}

/// The slot owners (addresses) of `config`'s table for one family, built with
/// lb's own Maglev code, as every node builds it.
fn owners(config: &LabConfig, v6: bool) -> Vec<Option<IpAddr>> {
    let backends = maglev_backends(config, v6);
    let size = config.maglev_table_size.unwrap_or(TEST_TABLE_SIZE);
    let table = MaglevTable::build(size, &backends).expect("lab configs build");
    table
        .slots()
        .iter()
        .map(|i| backends.get(*i as usize).map(|b| b.address))
        .collect()
}

/// The fraction of the Maglev table whose owner differs between `before`
/// and `after` (one family): the chance that a flow without a connection
/// entry is sent to another backend than before the change.
pub fn changed_slots(before: &LabConfig, after: &LabConfig, v6: bool) -> f64 {
    let (a, b) = (owners(before, v6), owners(after, v6));
    let changed = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    changed as f64 / a.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sums_new_flows_by_protocol_and_reads_slots() {
        let stats = json!({"global": {"non_syn_miss": 7}, "services": [
            {"name": "web", "protocol": "tcp", "table_size": 100, "backends": [
                {"address": "198.18.3.2", "new_flows": 3, "slots": 25},
                {"address": "198.18.6.2", "new_flows": 4, "slots": 20}]},
            {"name": "dns", "protocol": "udp", "table_size": 100, "backends": [
                {"address": "198.18.3.2", "new_flows": 9, "slots": 50}]}]});
        assert_eq!(new_flows(&stats, "tcp"), 7);
        assert_eq!(new_flows(&stats, "udp"), 9);
        assert_eq!(global(&stats, "non_syn_miss"), 7);
        assert_eq!(shares(&[1, 3]), vec![0.25, 0.75]);
        assert_eq!(deltas(&[1, 5], &[4, 5]), vec![3, 0]);
    }

    #[test]
    fn adding_a_backend_moves_about_its_share_of_the_slots() {
        let before = LabConfig::weighted(&[1, 1, 2]);
        let mut after = before.clone();
        after.add(4, 1);
        for v6 in [false, true] {
            let changed = changed_slots(&before, &after, v6);
            assert!((0.19..0.35).contains(&changed), "{changed}");
            assert_eq!(changed_slots(&before, &before, v6), 0.0);
        }
    }
}
