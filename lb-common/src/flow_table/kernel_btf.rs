//! Where the running kernel puts an array map's values: the offset of the
//! value area in `struct bpf_array`, read from the kernel's BTF
//! (`/sys/kernel/btf/vmlinux`). The connection table aligns its buckets with
//! it ([`super::chunk_skew`]).
//!
//! Only what that needs is parsed: the type section's records, to find the
//! struct named `bpf_array` and the offset of its last member (the union of
//! `value`, `ptrs` and `pptrs`).

use std::path::Path;

/// BTF's magic number.
const BTF_MAGIC: u16 = 0xeb9f;
/// `BTF_KIND_STRUCT`.
const KIND_STRUCT: u32 = 4;

/// The offset in bytes of the value area of an array map on the running
/// kernel, if its BTF says.
pub fn array_value_offset() -> Option<u32> {
    value_offset_in(&std::fs::read(Path::new("/sys/kernel/btf/vmlinux")).ok()?)
}

/// The offset of `struct bpf_array`'s last member in the BTF blob `btf`.
pub fn value_offset_in(btf: &[u8]) -> Option<u32> {
    let u16_at = |o: usize| Some(u16::from_ne_bytes(btf.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_ne_bytes(btf.get(o..o + 4)?.try_into().ok()?));
    if u16_at(0)? != BTF_MAGIC {
        return None;
    }
    let hdr_len = u32_at(4)? as usize;
    let (type_off, type_len) = (u32_at(8)? as usize, u32_at(12)? as usize);
    let str_off = u32_at(16)? as usize;
    let types = hdr_len + type_off;
    let strings = hdr_len + str_off;
    let name_is = |off: u32, want: &[u8]| {
        let start = strings + off as usize;
        btf.get(start..start + want.len() + 1)
            .is_some_and(|s| &s[..want.len()] == want && s[want.len()] == 0)
    };
    let mut at = types;
    while at + 12 <= types + type_len {
        let (name_off, info) = (u32_at(at)?, u32_at(at + 4)?);
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        let kind_flag = info >> 31;
        let extra = match kind {
            1 | 14 | 17 => 4,
            3 => 12,
            4 | 5 | 15 | 19 => 12 * vlen,
            6 | 13 => 8 * vlen,
            2 | 7..=12 | 16 | 18 => 0,
            _ => return None,
        };
        if kind == KIND_STRUCT && vlen > 0 && name_is(name_off, b"bpf_array") {
            let last = at + 12 + 12 * (vlen - 1);
            let offset = u32_at(last + 8)?;
            // With kind_flag set, the low 24 bits are the bit offset.
            let bits = if kind_flag == 1 {
                offset & 0xff_ffff
            } else {
                offset
            };
            return Some(bits / 8);
        }
        at += 12 + extra;
    }
    None
}

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use super::*;

    /// A BTF blob of one INT and `struct bpf_array { int a; int b; }` (the
    /// second member at byte 8).
    fn blob() -> Vec<u8> {
        let strings = b"\0int\0bpf_array\0a\0b\0";
        let mut types = Vec::new();
        let mut push = |w: u32| types.extend_from_slice(&w.to_ne_bytes());
        // [1] INT "int", size 4, encoding word.
        push(1);
        push(1 << 24);
        push(4);
        push(32);
        // [2] STRUCT "bpf_array", 2 members, size 16.
        push(5);
        push((4 << 24) | 2);
        push(16);
        push(15);
        push(1);
        push(0);
        push(17);
        push(1);
        push(64);
        let mut out = Vec::new();
        out.extend_from_slice(&BTF_MAGIC.to_ne_bytes());
        out.extend_from_slice(&[1, 0]);
        for w in [
            24,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&w.to_ne_bytes());
        }
        out.extend_from_slice(&types);
        out.extend_from_slice(strings);
        out
    }

    #[test]
    fn finds_the_last_member_of_bpf_array() {
        assert_eq!(value_offset_in(&blob()), Some(8));
    }

    #[test]
    fn a_blob_that_is_not_btf_says_nothing() {
        assert_eq!(value_offset_in(b"not btf at all, not at all"), None);
        let mut b = blob();
        b.truncate(30);
        assert_eq!(value_offset_in(&b), None);
    }

    #[test]
    fn the_running_kernel_says_where_values_start() {
        // Every kernel this project supports has BTF and an 8-aligned header.
        let off = array_value_offset().expect("kernel BTF has struct bpf_array");
        assert_eq!(off % 8, 0);
        assert!((256..1024).contains(&off), "offset {off}");
    }
}
