//! Frames for the datapath fuzzer: well-formed seeds of every kind the load
//! balancer meets (TCP/UDP/ICMP over IPv4/IPv6 to VIPs and to other hosts,
//! ICMP errors quoting VIP flows, fragments, IPv4 options, IPv6 extension
//! headers, VLAN tags, jumbo frames, other protocols and ethertypes), and
//! mutations of them (truncations, bit flips, lying IHL / total length /
//! payload length / data offset, trailing bytes). Deterministic for a seed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{IcmpEchoHeader, Icmpv4Type, Icmpv6Type};

use crate::frames::{
    CLIENT_MAC, LB_MAC, Tcp, V4, ethernet, frag_needed, icmp_v4, icmp_v6, ip_packet, ipv6_header,
    packet_too_big, tcp_v4, tcp_v6, udp_v4, udp_v6,
};

use super::setup::{CLIENTS4, CLIENTS6, OTHER4, OTHER6, VIP4, VIP4_EMPTY, VIP4_WILD, VIP6};

/// A small deterministic generator (splitmix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Smallest frame: BPF_PROG_TEST_RUN refuses an XDP frame without a whole
/// Ethernet header (no link delivers one).
pub const MIN_FRAME: usize = 14;

/// Largest frame generated: a jumbo frame that still fits the linear buffer
/// BPF_PROG_TEST_RUN gives an XDP program (one page minus head/tailroom).
pub const MAX_FRAME: usize = 3000;

fn payload(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.below(10) {
        0..=5 => rng.below(64),
        6..=7 => rng.below(1500),
        // Above the 1500-byte MTU once encapsulated: "too big" answers.
        _ => 1400 + rng.below(MAX_FRAME - 1400 - 80),
    };
    rng.bytes(len)
}

fn port(rng: &mut Rng, service: u16) -> u16 {
    if rng.chance(80) {
        service
    } else {
        1 + rng.below(65535) as u16
    }
}

fn dst4(rng: &mut Rng) -> Ipv4Addr {
    *rng.pick(&[VIP4, VIP4, VIP4, VIP4_WILD, VIP4_EMPTY, OTHER4])
}

fn dst6(rng: &mut Rng) -> Ipv6Addr {
    *rng.pick(&[VIP6, VIP6, VIP6, OTHER6])
}

fn v4_options(rng: &mut Rng) -> V4 {
    let mut opt = V4 {
        df: rng.chance(50),
        dscp: rng.below(64) as u8,
        ecn: rng.below(4) as u8,
        id: rng.next_u64() as u16,
        ..V4::default()
    };
    if rng.chance(15) {
        // Options: NOPs and an end-of-list, up to 40 bytes.
        let words = 1 + rng.below(10);
        let mut o = vec![1u8; words * 4];
        o[words * 4 - 1] = 0;
        opt.options = o;
    }
    if rng.chance(10) {
        opt.mf = rng.chance(50);
        opt.frag_offset = if opt.mf && rng.chance(50) {
            0
        } else {
            1 + rng.below(8000) as u16
        };
        if !opt.mf && opt.frag_offset == 0 {
            opt.mf = true;
        }
    }
    opt
}

/// An IPv6 frame with one extension header (hop-by-hop, routing,
/// destination options or fragment) in front of a TCP or UDP segment.
fn v6_with_extension(rng: &mut Rng) -> Vec<u8> {
    let src = *rng.pick(&CLIENTS6);
    let dst = dst6(rng);
    let (l4_proto, l4) = if rng.chance(50) {
        let f = tcp_v6(src, 40000, dst, 80, Tcp::Ack, b"x");
        (6u8, ip_packet(&f)[40..].to_vec())
    } else {
        let f = udp_v6(src, 40000, dst, 53, b"q");
        (17u8, ip_packet(&f)[40..].to_vec())
    };
    let ext_type = *rng.pick(&[0u8, 43, 60, 44]);
    let ext = if ext_type == 44 {
        // Fragment header: offset/M flag random.
        let off_m = (rng.below(8192) as u16) << 3 | rng.below(2) as u16;
        let mut e = vec![l4_proto, 0];
        e.extend_from_slice(&off_m.to_be_bytes());
        e.extend_from_slice(&(rng.next_u64() as u32).to_be_bytes());
        e
    } else {
        // 8 bytes: next header, length 0, PadN filling the rest.
        vec![l4_proto, 0, 1, 4, 0, 0, 0, 0]
    };
    let ip = ipv6_header(src, dst, ext_type, ext.len() + l4.len());
    let mut p = ip.to_bytes().to_vec();
    p.extend_from_slice(&ext);
    p.extend_from_slice(&l4);
    ethernet(LB_MAC, CLIENT_MAC, 0x86dd, &p)
}

/// An ICMP error from a router about the reply of a VIP flow (or another
/// host's flow), addressed to a VIP or to another host.
fn icmp_error(rng: &mut Rng, v4: bool) -> Vec<u8> {
    const ROUTER4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
    const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0xfe);
    let cport = 1024 + rng.below(60000) as u16;
    if v4 {
        let client = *rng.pick(&CLIENTS4);
        let vip = dst4(rng);
        let proto = *rng.pick(&[6u8, 17]);
        let sport = if proto == 6 { 80 } else { 53 };
        let reply = if proto == 6 {
            tcp_v4(
                vip,
                sport,
                client,
                cport,
                Tcp::Ack,
                b"response",
                &V4::default(),
            )
        } else {
            udp_v4(vip, sport, client, cport, b"response")
        };
        let quote = 28 + rng.below(ip_packet(&reply).len() - 27);
        let outer = if rng.chance(75) { vip } else { OTHER4 };
        let t = match rng.below(3) {
            0 => frag_needed(576 + rng.below(900) as u16),
            1 => {
                Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Port)
            }
            _ => {
                Icmpv4Type::TimeExceeded(etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit)
            }
        };
        icmp_v4(
            LB_MAC,
            CLIENT_MAC,
            ROUTER4,
            outer,
            63,
            t,
            &ip_packet(&reply)[..quote],
        )
    } else {
        let client = *rng.pick(&CLIENTS6);
        let vip = dst6(rng);
        let reply = if rng.chance(50) {
            tcp_v6(vip, 80, client, cport, Tcp::Ack, b"response")
        } else {
            udp_v6(vip, 53, client, cport, b"response")
        };
        let quote = 48 + rng.below(ip_packet(&reply).len() - 47);
        let outer = if rng.chance(75) { vip } else { OTHER6 };
        let t = if rng.chance(80) {
            packet_too_big(1280 + rng.below(200) as u32)
        } else {
            Icmpv6Type::DestinationUnreachable(etherparse::icmpv6::DestUnreachableCode::Port)
        };
        icmp_v6(
            LB_MAC,
            CLIENT_MAC,
            ROUTER6,
            outer,
            63,
            t,
            &ip_packet(&reply)[..quote],
        )
    }
}

/// One well-formed seed frame of a random kind.
pub fn seed(rng: &mut Rng) -> Vec<u8> {
    let cport = 1024 + rng.below(60000) as u16;
    let flags = if rng.chance(40) { Tcp::Syn } else { Tcp::Ack };
    match rng.below(14) {
        0..=2 => {
            let opt = v4_options(rng);
            let dst = dst4(rng);
            let src = *rng.pick(&CLIENTS4);
            let p = payload(rng);
            tcp_v4(src, cport, dst, port(rng, 80), flags, &p, &opt)
        }
        3 => {
            let src = *rng.pick(&CLIENTS4);
            let dst = dst4(rng);
            let p = payload(rng);
            udp_v4(src, cport, dst, port(rng, 53), &p)
        }
        4..=5 => {
            let src = *rng.pick(&CLIENTS6);
            let dst = dst6(rng);
            let p = payload(rng);
            tcp_v6(src, cport, dst, port(rng, 80), flags, &p)
        }
        6 => {
            let src = *rng.pick(&CLIENTS6);
            let dst = dst6(rng);
            let p = payload(rng);
            udp_v6(src, cport, dst, port(rng, 53), &p)
        }
        7 => {
            let echo = IcmpEchoHeader {
                id: rng.next_u64() as u16,
                seq: rng.next_u64() as u16,
            };
            let n = rng.below(100);
            let p = rng.bytes(n);
            if rng.chance(50) {
                let src = *rng.pick(&CLIENTS4);
                icmp_v4(
                    LB_MAC,
                    CLIENT_MAC,
                    src,
                    dst4(rng),
                    64,
                    Icmpv4Type::EchoRequest(echo),
                    &p,
                )
            } else {
                let src = *rng.pick(&CLIENTS6);
                icmp_v6(
                    LB_MAC,
                    CLIENT_MAC,
                    src,
                    dst6(rng),
                    64,
                    Icmpv6Type::EchoRequest(echo),
                    &p,
                )
            }
        }
        8..=9 => {
            let v4 = rng.chance(50);
            icmp_error(rng, v4)
        }
        10 => v6_with_extension(rng),
        11 => {
            // VLAN-tagged copy of a VIP frame: lb passes it untouched.
            let inner = tcp_v4(
                *rng.pick(&CLIENTS4),
                cport,
                VIP4,
                80,
                flags,
                b"v",
                &V4::default(),
            );
            let mut f = inner[..12].to_vec();
            f.extend_from_slice(&[0x81, 0x00, 0x00, 1 + rng.below(255) as u8]);
            f.extend_from_slice(&inner[12..]);
            f
        }
        12 => {
            // Another IP protocol (GRE, IPIP, SCTP, ...) to a VIP or elsewhere.
            let mut f = tcp_v4(
                *rng.pick(&CLIENTS4),
                cport,
                dst4(rng),
                80,
                flags,
                b"p",
                &V4::default(),
            );
            let proto = *rng.pick(&[4u8, 47, 132, 50, 255]);
            f[14 + 9] = proto;
            fix_ipv4_checksum(&mut f);
            f
        }
        _ => {
            // ARP, LLDP or a random ethertype.
            let any = rng.next_u64() as u16;
            let et = *rng.pick(&[0x0806u16, 0x88cc, 0x8847, any]);
            let len = rng.below(100);
            ethernet(LB_MAC, CLIENT_MAC, et, &rng.bytes(len))
        }
    }
}

/// Recomputes the IPv4 header checksum of an Ethernet + IPv4 frame.
fn fix_ipv4_checksum(f: &mut [u8]) {
    let ihl = usize::from(f[14] & 0x0f) * 4;
    if ihl < 20 || f.len() < 14 + ihl {
        return;
    }
    f[24] = 0;
    f[25] = 0;
    let c = super::check::checksum(&f[14..14 + ihl], 0);
    f[24..26].copy_from_slice(&c.to_be_bytes());
}

/// Applies 1 to 3 random mutations to `f`.
pub fn mutate(rng: &mut Rng, f: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(3) {
        let v4 = f.len() >= 34 && f[12..14] == [0x08, 0x00];
        let v6 = f.len() >= 54 && f[12..14] == [0x86, 0xdd];
        match rng.below(9) {
            0 if f.len() > MIN_FRAME => {
                let cut = MIN_FRAME + rng.below(f.len() - MIN_FRAME);
                f.truncate(cut);
            }
            1 if !f.is_empty() => {
                // Bit flips, mostly in the headers.
                for _ in 0..1 + rng.below(4) {
                    let span = f.len().min(if rng.chance(80) { 80 } else { usize::MAX });
                    let i = rng.below(span);
                    f[i] ^= 1 << rng.below(8);
                }
            }
            2 if v4 => f[14] = (f[14] & 0xf0) | rng.below(16) as u8,
            3 if v4 => {
                let lie = lying_length(rng, f.len() - 14);
                f[16..18].copy_from_slice(&lie.to_be_bytes());
            }
            4 if v6 => {
                let lie = lying_length(rng, f.len() - 54);
                f[18..20].copy_from_slice(&lie.to_be_bytes());
            }
            5 => {
                // A lying TCP data offset (where TCP would start unoptioned).
                let at = if v4 {
                    14 + usize::from(f[14] & 0x0f) * 4 + 12
                } else {
                    54 + 12
                };
                if at < f.len() {
                    f[at] = (f[at] & 0x0f) | (rng.below(16) as u8) << 4;
                }
            }
            6 if f.len() < MAX_FRAME => {
                let n = rng.below(64).min(MAX_FRAME - f.len());
                f.extend(rng.bytes(n));
            }
            7 if !f.is_empty() => {
                let i = rng.below(f.len().min(64));
                f[i] = *rng.pick(&[0u8, 0xff, 0x7f, 0x80, 0x45, 0x60, 6, 17, 58]);
            }
            8 if v4 && rng.chance(50) => fix_ipv4_checksum(f),
            _ => {}
        }
    }
}

/// A length field that lies: 0, a little short or long, or anything.
fn lying_length(rng: &mut Rng, actual: usize) -> u16 {
    let actual = actual as i64;
    let v = match rng.below(5) {
        0 => 0,
        1 => actual - 1 - rng.below(20) as i64,
        2 => actual + 1 + rng.below(20) as i64,
        3 => 0xffff,
        _ => rng.next_u64() as u16 as i64,
    };
    v.clamp(0, 0xffff) as u16
}

/// Where a frame is addressed, read the way the load balancer reads it: the
/// IPv4 / IPv6 destination of an untagged frame, if it holds one.
pub fn destination(f: &[u8]) -> Option<IpAddr> {
    match f.get(12..14)? {
        [0x08, 0x00] => {
            let d: [u8; 4] = f.get(30..34)?.try_into().ok()?;
            Some(Ipv4Addr::from(d).into())
        }
        [0x86, 0xdd] => {
            let d: [u8; 16] = f.get(38..54)?.try_into().ok()?;
            Some(Ipv6Addr::from(d).into())
        }
        _ => None,
    }
}
