//! Figures the tier tests compare across nodes, read from each node's
//! `lb stats --json` (pure), and the shares they form.

use serde_json::Value;

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

/// The share of the Maglev table that backend `address` holds in the service
/// named `service` (slots / table size; 0 when absent).
pub fn slot_share(stats: &Value, service: &str, address: &str) -> f64 {
    let Some(svc) = stats["services"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"].as_str() == Some(service))
    else {
        return 0.0;
    };
    let size = svc["table_size"].as_u64().unwrap_or(0);
    let slots = svc["backends"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|b| b["address"].as_str() == Some(address))
        .and_then(|b| b["slots"].as_u64())
        .unwrap_or(0);
    if size == 0 {
        0.0
    } else {
        slots as f64 / size as f64
    }
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
        assert!((slot_share(&stats, "web", "198.18.6.2") - 0.2).abs() < 1e-9);
        assert_eq!(shares(&[1, 3]), vec![0.25, 0.75]);
        assert_eq!(deltas(&[1, 5], &[4, 5]), vec![3, 0]);
    }
}
