extern crate std;

use super::*;
use lb_common::gue::{GUE_PROTO_IPV4, GUE_PROTO_IPV6};

fn v4(a: [u8; 4]) -> u32 {
    u32::from_ne_bytes(a)
}

#[test]
fn udp_header_has_ports_length_and_a_zero_checksum() {
    let mut out = [0xffu8; 8];
    assert!(emit_udp(
        &Packet::from_slice(&mut out),
        0,
        50000,
        6080u16.to_be(),
        72
    ));
    assert_eq!(out, [0xc3, 0x50, 0x17, 0xc0, 0, 72, 0, 0]);
    assert!(!emit_udp(&Packet::from_slice(&mut out[..7]), 0, 1, 2, 8));
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
        assert!(emit_gue(&Packet::from_slice(&mut out), 4, proto, &hint));
        let mut expected = [0xaau8; 32];
        let len = lb_common::gue::emit_gue(&mut expected[4..], proto, reference_hint).unwrap();
        assert_eq!(len, hint.gue_len());
        assert_eq!(out, expected, "{hint:?}");
        let parsed = lb_common::gue::parse_gue(&out[4..4 + len]).unwrap();
        assert_eq!(parsed.hint, reference_hint);
        assert_eq!(parsed.header_len, len);
        let short = &mut out[..4 + len - 1];
        assert!(!emit_gue(&Packet::from_slice(short), 4, proto, &hint));
    }
}
