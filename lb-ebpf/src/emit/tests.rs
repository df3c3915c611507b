extern crate std;

use super::*;
use crate::checksum::sum_bytes;
use lb_common::gue::{GUE_PROTO_IPV4, GUE_PROTO_IPV6};

fn v4(a: [u8; 4]) -> u32 {
    u32::from_ne_bytes(a)
}

#[test]
fn outer_ipv4_is_byte_exact_with_a_valid_checksum() {
    let mut out = [0xeeu8; 24];
    let o = OuterV4 {
        tos: 0xb8,
        frag_off: 0x4000u16.to_be(),
        protocol: 17,
        payload_len: 100,
        src: v4([198, 18, 1, 1]),
        dst: v4([198, 18, 2, 3]),
    };
    assert!(emit_ipv4(&Packet::from_mut_slice(&mut out), 2, &o));
    let h = &out[2..22];
    assert_eq!(
        h[..12],
        [0x45, 0xb8, 0, 120, 0, 0, 0x40, 0, 64, 17, h[10], h[11]]
    );
    assert_eq!(h[12..], [198, 18, 1, 1, 198, 18, 2, 3]);
    assert_eq!(!fold(sum_bytes(h)), 0, "checksum verifies");
    assert_eq!(out[..2], [0xee, 0xee], "nothing written before the offset");
    assert_eq!(out[22..], [0xee, 0xee], "nothing written after the header");
    assert!(
        !emit_ipv4(&Packet::from_mut_slice(&mut out[..21]), 2, &o),
        "does not fit"
    );
}

#[test]
fn outer_ipv6_copies_the_first_word_and_sets_lengths() {
    let mut out = [0u8; 40];
    let first = u32::from_ne_bytes([0x6a, 0xb1, 0x23, 0x45]);
    let src = [1u32.to_be(), 2u32.to_be(), 3u32.to_be(), 4u32.to_be()];
    let dst = [5u32.to_be(), 6u32.to_be(), 7u32.to_be(), 8u32.to_be()];
    assert!(emit_ipv6(
        &Packet::from_mut_slice(&mut out),
        0,
        first,
        300,
        17,
        &src,
        &dst
    ));
    assert_eq!(out[..8], [0x6a, 0xb1, 0x23, 0x45, 1, 44, 17, 64]);
    assert_eq!(out[8..12], [0, 0, 0, 1]);
    assert_eq!(out[36..40], [0, 0, 0, 8]);
    assert!(!emit_ipv6(
        &Packet::from_mut_slice(&mut out[..39]),
        0,
        first,
        1,
        17,
        &src,
        &dst
    ));
}

#[test]
fn udp_header_has_ports_length_and_a_zero_checksum() {
    let mut out = [0xffu8; 8];
    assert!(emit_udp(
        &Packet::from_mut_slice(&mut out),
        0,
        50000,
        6080u16.to_be(),
        72
    ));
    assert_eq!(out, [0xc3, 0x50, 0x17, 0xc0, 0, 72, 0, 0]);
    assert!(!emit_udp(
        &Packet::from_mut_slice(&mut out[..7]),
        0,
        1,
        2,
        8
    ));
}

/// The datapath's GUE header equals the contract's reference encoder.
#[test]
fn gue_header_matches_the_reference_encoder_with_and_without_hint() {
    let v6 = [0x20010002u32.to_be(), 0, 2u32.to_be(), 0x11u32.to_be()];
    let mut v6_bytes = [0u8; 16];
    for (c, w) in v6_bytes.chunks_exact_mut(4).zip(v6) {
        c.copy_from_slice(&w.to_ne_bytes());
    }
    let mut v4_bytes = [0u8; 16];
    v4_bytes[..4].copy_from_slice(&[198, 18, 2, 10]);
    let cases = [
        (GUE_PROTO_IPV4, Hint::None, None),
        (GUE_PROTO_IPV6, Hint::None, None),
        (
            GUE_PROTO_IPV4,
            Hint::V4(v4([198, 18, 2, 10])),
            Some((FAMILY_V4, v4_bytes)),
        ),
        (GUE_PROTO_IPV6, Hint::V6(v6), Some((FAMILY_V6, v6_bytes))),
    ];
    for (proto, hint, reference_hint) in cases {
        let mut out = [0xaau8; 32];
        assert!(emit_gue(&Packet::from_mut_slice(&mut out), 4, proto, &hint));
        let mut expected = [0xaau8; 32];
        let len = lb_common::gue::emit_gue(&mut expected[4..], proto, reference_hint).unwrap();
        assert_eq!(len, hint.gue_len());
        assert_eq!(out, expected, "{hint:?}");
        let parsed = lb_common::gue::parse_gue(&out[4..4 + len]).unwrap();
        assert_eq!(parsed.hint, reference_hint);
        assert_eq!(parsed.header_len, len);
        let short = &mut out[..4 + len - 1];
        assert!(!emit_gue(&Packet::from_mut_slice(short), 4, proto, &hint));
    }
}
