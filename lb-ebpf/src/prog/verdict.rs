//! A frame's verdict, and the `Result`-like step every stage returns.

use aya_ebpf::bindings::xdp_action;
use lb_common::GlobalCounter;

use crate::prog::counters::count;

/// What happens to the frame: an XDP action whose counter, if it has one,
/// has been counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict(u32);

/// A stage's outcome: `Ok` to go on to the next stage, `Err` when the frame's
/// fate is decided (so that an early exit reads as `?`).
pub type Step<T> = Result<T, Verdict>;

impl Verdict {
    /// The XDP action.
    #[inline(always)]
    pub fn action(self) -> u32 {
        self.0
    }

    /// Whether the frame is dropped.
    #[inline(always)]
    pub fn is_drop(self) -> bool {
        self.0 == xdp_action::XDP_DROP
    }

    /// Passes a frame that is not for a VIP, counting `PassNotVip`.
    #[inline(always)]
    pub fn pass_not_vip() -> Self {
        Self::pass(GlobalCounter::PassNotVip)
    }

    /// Passes the frame unchanged, counting `c`.
    #[inline(always)]
    pub fn pass(c: GlobalCounter) -> Self {
        count(c);
        Self(xdp_action::XDP_PASS)
    }

    /// Drops the frame, counting `c`.
    #[inline(always)]
    pub fn drop(c: GlobalCounter) -> Self {
        count(c);
        Self::dropped()
    }

    /// Drops the frame; its counters were counted where the cause was found.
    #[inline(always)]
    pub fn dropped() -> Self {
        Self(xdp_action::XDP_DROP)
    }

    /// Sends the frame back out the ingress interface, counting `c`.
    #[inline(always)]
    pub fn tx(c: GlobalCounter) -> Self {
        count(c);
        Self(xdp_action::XDP_TX)
    }

    /// Sends a frame forwarded to a backend back out the ingress interface:
    /// counted in the backend's record (`lb_common::BackendStats`), not here.
    #[inline(always)]
    pub fn forwarded_tx() -> Self {
        Self(xdp_action::XDP_TX)
    }

    /// Redirects a frame forwarded to a backend (`bpf_redirect` was called):
    /// counted in the backend's record, not here.
    #[inline(always)]
    pub fn forwarded_redirect() -> Self {
        Self(xdp_action::XDP_REDIRECT)
    }
}
