//! Builds the baseline XDP programs (`bench-ebpf`) for bpfel, like lb-userspace
//! builds the datapath.
fn main() -> anyhow::Result<()> {
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "bench-ebpf",
            root_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../bench-ebpf"),
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
