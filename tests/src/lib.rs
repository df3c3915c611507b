//! Shared helpers of the privileged tests.
//!
//! - [`frames`]: test frames for the datapath fixtures and benchmarks.
//! - [`harness`]: a freshly loaded datapath with map setters and counter readers.
//! - [`netns`]: network-namespace and veth guards; locating `lb`.

pub mod frames;
pub mod harness;
pub mod netns;
