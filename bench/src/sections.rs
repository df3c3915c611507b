//! The benchmark sections `--only` selects (pure).

use std::str::FromStr;

/// A section of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// Per-packet cost through BPF_PROG_TEST_RUN.
    PerPacket,
    /// Packet rate end to end across veths.
    Rate,
    /// Maglev build, scale-event latency, agent memory.
    ControlPlane,
    /// Only the lb-against-Katran rows of established flows (hot, cold and
    /// the one-line floors): the quick A/B of a datapath change, about 25 s.
    Established,
}

impl Section {
    /// The accepted names, for messages.
    pub const NAMES: &'static str = "per-packet|rate|control-plane|established";
}

impl FromStr for Section {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "per-packet" => Ok(Section::PerPacket),
            "rate" => Ok(Section::Rate),
            "control-plane" => Ok(Section::ControlPlane),
            "established" => Ok(Section::Established),
            other => anyhow::bail!("unknown section {other:?} (expected {})", Section::NAMES),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Section;

    #[test]
    fn names_parse() {
        assert_eq!("rate".parse::<Section>().unwrap(), Section::Rate);
        assert_eq!(
            "control-plane".parse::<Section>().unwrap(),
            Section::ControlPlane
        );
        assert_eq!(
            "established".parse::<Section>().unwrap(),
            Section::Established
        );
        assert!("all".parse::<Section>().is_err());
    }
}
