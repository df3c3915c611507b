//! The decapsulator's counters as a Prometheus text exposition (pure): what
//! `lb decap --stats --format prometheus` prints. `lb decap` attaches and
//! exits, so it serves no endpoint: the output is for node_exporter's textfile
//! collector (or any scraper of a file), which reads the classic text format
//! (version 0.0.4), not the OpenMetrics one `lb run --metrics` serves.

use std::fmt::Write as _;

use lb_common::DecapCounter;

/// The counter's name (a classic-format counter: `_total` in its name).
pub const DECAP_METRIC: &str = "lb_decap_events_total";

/// Encodes `counts` (one per [`DecapCounter`], summed over CPUs) of the
/// decapsulator on interface `iface` as one counter,
/// `lb_decap_events_total{iface, counter}`.
pub fn encode_decap(iface: &str, counts: &[(DecapCounter, u64)]) -> String {
    let mut out = format!(
        "# HELP {DECAP_METRIC} Packets lb_decap handled on a backend host, by outcome \
         (the counters of lb decap --stats).\n# TYPE {DECAP_METRIC} counter\n"
    );
    let iface = label_value(iface);
    for (counter, value) in counts {
        writeln!(
            out,
            "{DECAP_METRIC}{{iface=\"{iface}\",counter=\"{}\"}} {value}",
            counter.name()
        )
        .expect("writing to a String cannot fail");
    }
    out
}

/// `value` escaped for a label value of the text format: backslash, double
/// quote and line feed.
fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_counter_with_the_interface_label_escaped() {
        let counts: Vec<_> = DecapCounter::ALL
            .iter()
            .enumerate()
            .map(|(i, c)| (*c, i as u64 * 10))
            .collect();
        let text = encode_decap("eth\"0\\", &counts);
        assert!(
            text.contains("# TYPE lb_decap_events_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("lb_decap_events_total{iface=\"eth\\\"0\\\\\",counter=\"gue_v4\"} 30\n"),
            "{text}"
        );
        let samples = text
            .lines()
            .filter(|l| l.starts_with("lb_decap_events_total{"))
            .count();
        assert_eq!(samples, DecapCounter::ALL.len());
        assert_eq!(label_value("a\nb"), "a\\nb");
    }
}
