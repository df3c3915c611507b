//! Shared helpers of the privileged tests.

pub mod frames;
