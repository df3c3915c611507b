//! The XDP programs' logic: map lookups and packet rewrites around the
//! `lb_ebpf` packet library.

pub mod balance;
pub mod counters;
pub mod decap;
pub mod encap;
pub mod icmp;
pub mod vip;
