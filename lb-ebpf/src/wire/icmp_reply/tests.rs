//! Host tests of the ICMP replies on byte arrays: every checksum is checked by
//! summing the written bytes, independently of how it was computed.

use super::*;
use crate::{
    checksum::sum_bytes,
    wire::{
        emit_ipv4::{Ipv4Fields, emit_ipv4},
        ethernet::ETH_LEN,
        ipv4::{IPPROTO_ICMP, IPV4_LEN},
        ipv6::IPV6_LEN,
        packet::Packet,
    },
};

extern crate std;
use std::vec::Vec;

const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const LB_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const CLIENT4: [u8; 4] = [198, 18, 0, 1];
const VIP4: [u8; 4] = [198, 18, 100, 1];
const CLIENT6: [u8; 16] = [0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const VIP6: [u8; 16] = [0x20, 0x01, 0, 2, 0, 0, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// Whether `bytes` (with their checksum field) sum to the all-ones word.
fn sums_to_ones(bytes: &[u8]) -> bool {
    fold(sum_bytes(bytes)) == 0xffff
}

/// Writes the Internet checksum of `bytes[range]` (plus `extra`) at `at`.
fn put_checksum(bytes: &mut [u8], from: usize, at: usize, extra: u64) {
    bytes[at..at + 2].copy_from_slice(&[0, 0]);
    let c = !fold(sum_bytes(&bytes[from..]) + extra);
    bytes[at..at + 2].copy_from_slice(&c.to_ne_bytes());
}

fn ethernet(ether_type: u16) -> Vec<u8> {
    let mut f = LB_MAC.to_vec();
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&ether_type.to_be_bytes());
    f
}

/// The ICMPv6 pseudo-header of a message of `len` bytes from `src` to `dst`.
fn pseudo_v6(src: &[u8], dst: &[u8], len: u32) -> Vec<u8> {
    let mut p = src.to_vec();
    p.extend_from_slice(dst);
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, IPPROTO_ICMPV6]);
    p
}

#[test]
fn ipv4_echo_request_becomes_a_valid_reply() {
    let mut f = ethernet(0x0800);
    f.extend_from_slice(&[0x45, 0, 0, 36, 0x12, 0x34, 0, 0, 7, IPPROTO_ICMP, 0, 0]);
    f.extend_from_slice(&CLIENT4);
    f.extend_from_slice(&VIP4);
    f.extend_from_slice(&[8, 0, 0, 0, 0xbe, 0xef, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8]);
    put_checksum(&mut f[..ETH_LEN + IPV4_LEN], ETH_LEN, ETH_LEN + 10, 0);
    put_checksum(&mut f, ETH_LEN + IPV4_LEN, ETH_LEN + IPV4_LEN + 2, 0);
    let pkt = Packet::from_slice(&mut f);
    let (eth, ip, icmp) = (
        pkt.view(0).unwrap(),
        pkt.view(ETH_LEN).unwrap(),
        pkt.view(ETH_LEN + IPV4_LEN).unwrap(),
    );
    echo_reply_v4(&eth, &ip, &icmp);
    assert_eq!(f[..6], CLIENT_MAC);
    assert_eq!(f[6..12], LB_MAC);
    let ip = &f[ETH_LEN..ETH_LEN + IPV4_LEN];
    assert_eq!((ip[4], ip[5], ip[8]), (0x12, 0x34, 64));
    assert_eq!((&ip[12..16], &ip[16..20]), (&VIP4[..], &CLIENT4[..]));
    assert!(sums_to_ones(ip), "IPv4 header checksum");
    let icmp = &f[ETH_LEN + IPV4_LEN..];
    assert_eq!(icmp[..2], [ICMP_ECHO_REPLY, 0]);
    assert_eq!(icmp[4..], [0xbe, 0xef, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert!(sums_to_ones(icmp), "ICMP checksum");
}

#[test]
fn ipv6_echo_request_becomes_a_valid_reply() {
    let body = [128, 0, 0, 0, 0xbe, 0xef, 0, 1, 1, 2, 3, 4];
    let mut f = ethernet(0x86dd);
    f.extend_from_slice(&[0x60, 0, 0, 0, 0, body.len() as u8, IPPROTO_ICMPV6, 9]);
    f.extend_from_slice(&CLIENT6);
    f.extend_from_slice(&VIP6);
    f.extend_from_slice(&body);
    let pseudo = sum_bytes(&pseudo_v6(&CLIENT6, &VIP6, body.len() as u32));
    put_checksum(&mut f, ETH_LEN + IPV6_LEN, ETH_LEN + IPV6_LEN + 2, pseudo);
    let pkt = Packet::from_slice(&mut f);
    let (eth, ip, icmp) = (
        pkt.view(0).unwrap(),
        pkt.view(ETH_LEN).unwrap(),
        pkt.view(ETH_LEN + IPV6_LEN).unwrap(),
    );
    echo_reply_v6(&eth, &ip, &icmp);
    assert_eq!((&f[..6], &f[6..12]), (&CLIENT_MAC[..], &LB_MAC[..]));
    assert_eq!(f[ETH_LEN + 7], 64);
    assert_eq!(f[ETH_LEN + 8..ETH_LEN + 24], VIP6);
    assert_eq!(f[ETH_LEN + 24..ETH_LEN + 40], CLIENT6);
    let mut msg = pseudo_v6(&VIP6, &CLIENT6, body.len() as u32);
    msg.extend_from_slice(&f[ETH_LEN + IPV6_LEN..]);
    assert_eq!(f[ETH_LEN + IPV6_LEN], ICMPV6_ECHO_REPLY);
    assert!(sums_to_ones(&msg), "ICMPv6 checksum");
}

#[test]
fn fragmentation_needed_quotes_the_header_with_options() {
    // The offending packet: IPv4 with 4 bytes of options (IHL 6), DF, + 8 bytes.
    let mut offending = std::vec![0x46, 0, 0x05, 0xdc, 0, 0, 0x40, 0, 64, 6, 0xab, 0xcd];
    offending.extend_from_slice(&CLIENT4);
    offending.extend_from_slice(&VIP4);
    offending.extend_from_slice(&[1, 1, 1, 1, 0x30, 0x39, 0, 80, 0, 0, 0, 1]);
    let quote_len = offending.len();
    offending.resize(V4_MAX_QUOTE, 0xee);
    let quote_sum = Packet::from_slice(&mut offending)
        .view::<[u8; V4_MAX_QUOTE]>(0)
        .unwrap()
        .sum_prefix(quote_len)
        .unwrap();
    let icmp = frag_needed(1480, quote_sum);
    let mut reply = [0u8; IPV4_LEN + ICMP_LEN];
    let pkt = Packet::from_slice(&mut reply);
    emit_ipv4(
        &pkt.view(0).unwrap(),
        &Ipv4Fields {
            tos: 0,
            payload_len: (ICMP_LEN + quote_len) as u16,
            frag_off: 0,
            protocol: IPPROTO_ICMP,
            src: u32::from_ne_bytes(VIP4),
            dst: u32::from_ne_bytes(CLIENT4),
        },
    );
    pkt.view(IPV4_LEN).unwrap().set(icmp);
    let mut msg = reply[IPV4_LEN..].to_vec();
    msg.extend_from_slice(&offending[..quote_len]);
    assert_eq!(msg[..2], [ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED]);
    assert_eq!(msg[4..8], [0, 0, 0x05, 0xc8]);
    assert!(sums_to_ones(&msg), "ICMP checksum");
    assert!(sums_to_ones(&reply[..IPV4_LEN]), "IPv4 header checksum");
    assert_eq!(
        u16::from_be_bytes([reply[2], reply[3]]) as usize,
        IPV4_LEN + ICMP_LEN + quote_len
    );
}

#[test]
fn packet_too_big_sums_with_its_pseudo_header() {
    let mut offending = std::vec![0x60, 0, 0, 0, 0x05, 0xc8, 6, 64];
    offending.extend_from_slice(&CLIENT6);
    offending.extend_from_slice(&VIP6);
    offending.extend_from_slice(&[0x30, 0x39, 0, 80, 0, 0, 0, 1]);
    let quote_sum = Packet::from_slice(&mut offending)
        .view::<[u8; V6_QUOTE]>(0)
        .unwrap()
        .sum_prefix(V6_QUOTE)
        .unwrap();
    let words = |b: [u8; 16]| {
        let mut w = [0u32; 4];
        for (i, w) in w.iter_mut().enumerate() {
            *w = u32::from_ne_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
        }
        w
    };
    let (client, vip) = (words(CLIENT6), words(VIP6));
    let mut reply = [0u8; IPV6_LEN + ICMP_LEN];
    let pkt = Packet::from_slice(&mut reply);
    pkt.view(0).unwrap().set(packet_too_big_ipv6(&client, &vip));
    pkt.view(IPV6_LEN)
        .unwrap()
        .set(packet_too_big(1280, quote_sum, &client, &vip));
    assert_eq!(reply[..8], [0x60, 0, 0, 0, 0, 56, IPPROTO_ICMPV6, 64]);
    assert_eq!((&reply[8..24], &reply[24..40]), (&VIP6[..], &CLIENT6[..]));
    let mut msg = pseudo_v6(&VIP6, &CLIENT6, TOO_BIG_V6_LEN as u32);
    msg.extend_from_slice(&reply[IPV6_LEN..]);
    msg.extend_from_slice(&offending);
    assert_eq!(reply[IPV6_LEN..IPV6_LEN + 2], [ICMPV6_PKT_TOOBIG, 0]);
    assert_eq!(reply[IPV6_LEN + 4..], 1280u32.to_be_bytes());
    assert!(sums_to_ones(&msg), "ICMPv6 checksum");
}
