//! Builds the XDP object (`lb-ebpf`, for bpfel-unknown-none, with nightly and
//! bpf-linker) so that `lb` can embed it: a host needs only the `lb` binary.
fn main() -> anyhow::Result<()> {
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "lb-ebpf",
            root_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../lb-ebpf"),
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
