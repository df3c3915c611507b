//! The benchmark table and its JSON form.

use serde_json::{Value, json};

/// A target the issue sets for a figure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// The figure must be at most this (times, costs).
    AtMost(f64),
    /// The figure must be at least this (rates, ratios).
    AtLeast(f64),
    /// The figure divided by a baseline of the same run (`base`, named `of`)
    /// must be at most `bound`: how per-packet costs state their targets, since
    /// absolute nanoseconds move by 2x between machines of the same kind.
    RatioAtMost {
        /// Largest allowed ratio.
        bound: f64,
        /// The baseline's short name (`encap-only`, `pass`).
        of: &'static str,
        /// The baseline's figure in this run.
        base: f64,
    },
    /// The median of the figure's runs' own ratios to a baseline run right
    /// before each (`ratio`, baseline named `of`) must be at most `bound`:
    /// for figures judged against the empty program, whose cost is of the
    /// order of this VM's swings between minutes.
    RunRatioAtMost {
        /// Largest allowed ratio.
        bound: f64,
        /// The baseline's short name (`pass`).
        of: &'static str,
        /// The median of the runs' ratios.
        ratio: f64,
    },
}

impl Target {
    /// Whether `value` meets the target.
    pub fn met(self, value: f64) -> bool {
        match self {
            Target::AtMost(t) => value <= t,
            Target::AtLeast(t) => value >= t,
            Target::RatioAtMost { bound, base, .. } => value / base <= bound,
            Target::RunRatioAtMost { bound, ratio, .. } => ratio <= bound,
        }
    }

    /// `<=40` / `>=0.9`.
    pub fn text(self) -> String {
        match self {
            Target::AtMost(t) => format!("<={t}"),
            Target::AtLeast(t) => format!(">={t}"),
            Target::RatioAtMost { bound, of, .. } => format!("<={bound}x {of}"),
            Target::RunRatioAtMost { bound, of, .. } => format!("<={bound}x {of}, paired"),
        }
    }

    /// The bound.
    pub fn bound(self) -> f64 {
        match self {
            Target::AtMost(t) | Target::AtLeast(t) => t,
            Target::RatioAtMost { bound, .. } | Target::RunRatioAtMost { bound, .. } => bound,
        }
    }
}

/// One measured figure.
pub struct Row {
    /// Section (per-packet, control plane).
    pub section: &'static str,
    /// What was measured.
    pub name: String,
    /// The figure.
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
    /// Target, when the issue sets one.
    pub target: Option<Target>,
    /// Free-form comparison against the baselines of the same run.
    pub versus: String,
}

/// Everything one run measured.
pub struct Report {
    quick: bool,
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Report {
    /// An empty report.
    pub fn new(quick: bool) -> Self {
        Self {
            quick,
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn push(&mut self, row: Row) {
        eprintln!("lb-bench: {} {:.1} {}", row.name, row.value, row.unit);
        self.rows.push(row);
    }

    /// Adds a methodology note printed under the table.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// The table as text.
    pub fn table(&self) -> String {
        let mut s = format!(
            "lb-bench{} — {}\n\n{:<14} {:<52} {:>9}      {:<26} {}\n",
            if self.quick {
                " --quick (smoke run, numbers meaningless)"
            } else {
                ""
            },
            machine(),
            "section",
            "figure",
            "value",
            "target",
            "versus baselines (same run)"
        );
        for r in &self.rows {
            let target = r.target.map_or(String::new(), |t| {
                let verdict = if t.met(r.value) { "met" } else { "MISSED" };
                format!("{} {verdict}", t.text())
            });
            s += &format!(
                "{:<14} {:<52} {:>9} {:<4} {:<26} {}\n",
                r.section,
                r.name,
                figure(r.value, r.unit),
                r.unit,
                target,
                r.versus
            );
        }
        s += "\n";
        for n in &self.notes {
            s += &format!("- {n}\n");
        }
        s
    }

    /// The table as JSON.
    pub fn json(&self) -> Value {
        json!({
            "quick": self.quick,
            "machine": machine(),
            "unix_time": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            "rows": self.rows.iter().map(|r| json!({
                "section": r.section,
                "name": r.name,
                "value": r.value,
                "unit": r.unit,
                "target": r.target.map(Target::text),
                "target_bound": r.target.map(Target::bound),
                "met": r.target.map(|t| t.met(r.value)),
                "versus": r.versus,
            })).collect::<Vec<_>>(),
            "notes": self.notes,
        })
    }
}

/// A figure as the table prints it: nanoseconds with one decimal (the
/// per-packet figures are precise to about 0.1 ns), anything else with 3
/// significant digits (at least one decimal).
fn figure(v: f64, unit: &str) -> String {
    if unit == "ns" || v.abs() < 100.0 && v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Kernel, CPU model and core count.
fn machine() -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    // Counted from /proc: after pinning, available_parallelism() says 1.
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    format!("Linux {}, {model}, {cores} cores", kernel.trim())
}

#[cfg(test)]
mod tests {
    use super::figure;

    #[test]
    fn nanoseconds_keep_one_decimal_other_units_three_digits() {
        assert_eq!(figure(15.04, "ns"), "15.0");
        assert_eq!(figure(252.46, "ns"), "252.5");
        assert_eq!(figure(7.26, "ns"), "7.3");
        assert_eq!(figure(252.46, "ms"), "252");
        assert_eq!(figure(21.077, "ms"), "21.1");
        assert_eq!(figure(0.536, "x"), "0.54");
    }
}
