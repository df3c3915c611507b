//! Shared helpers of the privileged tests.
//!
//! - [`agent_process`]: the `lb` binary under test and a kill-on-drop `lb run`.
//! - [`browser`]: headless Chromium driven over the DevTools pipe.
//! - [`frames`]: test frames for the datapath fixtures and benchmarks.
//! - [`decap_frames`]: GUE frames for the decapsulator fixtures.
//! - [`decap_netns`]: fresh namespaces with sockets and a neighbour for them.
//! - [`harness`]: a freshly loaded datapath with map setters and counter readers.
//! - [`lab`]: the one-armed DSR lab (client, router, lb, backends) and its load.
//! - [`netns`]: network-namespace and veth guards; locating `lb`.
//! - [`fuzz`]: the datapath fuzzer (`cargo xtask fuzz`).
//! - [`gue_frames`]: expected GUE frames of the balancer.

pub mod agent_process;
pub mod browser;
pub mod configs;
pub mod decap_frames;
pub mod decap_netns;
pub mod frames;
pub mod fuzz;
pub mod gue_frames;
pub mod harness;
pub mod lab;
pub mod netns;
