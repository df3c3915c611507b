//! The embedded XDP object.

/// The compiled `lb-ebpf` object (both XDP programs and all maps).
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lb-ebpf"));

#[cfg(test)]
mod tests {
    use object::{Object as _, ObjectSection as _, ObjectSymbol as _, RelocationTarget};

    /// The BPF backend leaves LLVM's memory intrinsics as calls, which
    /// bpf-linker resolves to byte loops run as BPF subprograms (a 64-byte
    /// zeroing is a 64-iteration loop). Neither program may call one: map keys
    /// are built as words (`lb-ebpf/src/keys.rs`), other zeroing and copies go
    /// through `prog/words.rs`.
    #[test]
    fn no_program_calls_a_byte_loop_memset_or_memcpy() {
        let file = object::File::parse(super::EBPF_OBJECT).expect("the embedded object is ELF");
        let mut calls = Vec::new();
        for section in file.sections() {
            for (offset, reloc) in section.relocations() {
                if let RelocationTarget::Symbol(index) = reloc.target() {
                    let name = file
                        .symbol_by_index(index)
                        .and_then(|s| s.name())
                        .unwrap_or("");
                    if ["memset", "memcpy", "memmove", "memcmp", "bcmp"].contains(&name) {
                        calls.push(format!(
                            "{} +{offset:#x}: {name}",
                            section.name().unwrap_or("?")
                        ));
                    }
                }
            }
        }
        assert!(calls.is_empty(), "calls to byte-loop intrinsics: {calls:?}");
    }
}
