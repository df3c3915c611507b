//! Async tests of the prober against real listeners on loopback.

mod monitor;
mod probes;
mod servers;
mod storm;
