//! Shared helpers of the privileged tests.

pub mod frames;
pub mod netns;
