//! Second chance in the tier (issue 14), counted on both ends: the balancers'
//! global counters (flows sent to the live table's pick with the previous
//! pick as GUE hint) and the backends' decap counters (hinted packets handed
//! on to the previous owner, passed up locally, or not forwardable).

use lb_common::DecapCounter;

use super::Tier;
use super::measure::global;
use crate::lab::error::Result;

/// Second-chance counters summed over some nodes and every backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SecondChance {
    /// Balancers: flows that got a previous-owner hint (`second_chance_flows`).
    pub flows: u64,
    /// Balancers: packets sent with a hint (`second_chance_packets`).
    pub packets: u64,
    /// Balancers: packets sent in GUE (`gue_encapsulated`).
    pub gue_packets: u64,
    /// Decaps: hinted packets re-encapsulated to the previous owner.
    pub forwarded: u64,
    /// Decaps: hinted packets passed up (a local socket, a SYN, not TCP, or the
    /// hint names the backend itself).
    pub passed_local: u64,
    /// Decaps: hinted packets that could not be forwarded (no route, MTU).
    pub forward_failed: u64,
}

impl SecondChance {
    /// The counters now, on the balancers of `nodes` (1-based; a node whose
    /// agent is gone still answers `lb stats` from its pins) and on every
    /// backend's decap.
    pub fn read(tier: &mut Tier, nodes: &[u8]) -> Result<SecondChance> {
        let mut sum = SecondChance::default();
        for n in nodes {
            let stats = tier.nodes[usize::from(*n) - 1].stats(tier.lb())?;
            sum.flows += global(&stats, "second_chance_flows");
            sum.packets += global(&stats, "second_chance_packets");
            sum.gue_packets += global(&stats, "gue_encapsulated");
        }
        let backends: Vec<u8> = tier.lab.backends().iter().map(|b| b.index).collect();
        for b in backends {
            let c = tier.lab.decap_counters(b)?;
            let at = |counter: DecapCounter| c.get(counter as usize).copied().unwrap_or(0);
            sum.forwarded += at(DecapCounter::SecondChanceForwarded);
            sum.passed_local += at(DecapCounter::HintPassedLocal);
            sum.forward_failed += at(DecapCounter::HintForwardFailed);
        }
        Ok(sum)
    }

    /// Counter by counter, `self - before` (saturating).
    pub fn since(&self, before: &SecondChance) -> SecondChance {
        SecondChance {
            flows: self.flows.saturating_sub(before.flows),
            packets: self.packets.saturating_sub(before.packets),
            gue_packets: self.gue_packets.saturating_sub(before.gue_packets),
            forwarded: self.forwarded.saturating_sub(before.forwarded),
            passed_local: self.passed_local.saturating_sub(before.passed_local),
            forward_failed: self.forward_failed.saturating_sub(before.forward_failed),
        }
    }
}

impl std::fmt::Display for SecondChance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "balancers: {} flows took the second chance ({} hinted packets, {} GUE packets); \
             decaps: {} packets forwarded to the previous owner, {} passed up locally, {} not forwardable",
            self.flows,
            self.packets,
            self.gue_packets,
            self.forwarded,
            self.passed_local,
            self.forward_failed
        )
    }
}
