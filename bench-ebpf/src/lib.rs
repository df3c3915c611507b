//! Nothing here: the programs are the `bench-ebpf` binary (built for bpfel by `lb-bench`'s build script).
#![no_std]
#![deny(clippy::undocumented_unsafe_blocks)]
