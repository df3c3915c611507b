//! The lb datapath's packet logic, as a `no_std` library.
//!
//! The XDP programs in `main.rs` are thin: they call into this library, which
//! host unit tests exercise on real byte arrays.
#![no_std]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod checksum;
pub mod keys;
pub mod parse;
pub mod wire;

pub use parse::{Kind, Parsed, destination, parse, plain_service_port};
pub use wire::packet::Packet;
