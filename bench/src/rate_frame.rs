//! The packet-rate generator's template frame and what the sink should see
//! (pure).

use std::net::Ipv4Addr;

/// Length of every generated frame (`bench-ebpf`'s generator frame).
pub const FRAME_LEN: usize = bench_ebpf::GEN_LEN;

pub use bench_ebpf::{EncapForward, Forward, GenTemplate};

/// A 64-byte UDP/IPv4 frame `dst_mac <- src_mac`, from `src` (the generator
/// overwrites its last two octets and the port) to `dst:port`; IPv4 checksum
/// left zero (the generator computes it), UDP checksum 0 (none).
pub fn udp_template(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    port: u16,
) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (FRAME_LEN - 14) as u16;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[22] = 64; // TTL
    f[23] = 17; // UDP
    f[26..30].copy_from_slice(&src.octets());
    f[30..34].copy_from_slice(&dst.octets());
    f[34..36].copy_from_slice(&1024u16.to_be_bytes());
    f[36..38].copy_from_slice(&port.to_be_bytes());
    f[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
    f
}

/// What the sink counts (indices of `SINK_COUNTS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkKind {
    /// IPv4-in-IPv4 (lb's encapsulated packets).
    Ipip = 1,
    /// UDP to the VIP (forwarded or routed unchanged).
    UdpToVip = 2,
    /// Anything else IPv4 (e.g. DNAT'ed to a backend).
    Other = 3,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The IPv4 header checksum of a frame (what the generator writes).
    fn ipv4_checksum(frame: &[u8; FRAME_LEN]) -> u16 {
        let mut sum = 0u32;
        for i in (14..34).step_by(2) {
            if i != 24 {
                sum += u32::from(u16::from_be_bytes([frame[i], frame[i + 1]]));
            }
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn template_is_a_valid_udp_frame_once_checksummed() {
        let mut f = udp_template(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            Ipv4Addr::new(198, 19, 0, 0),
            Ipv4Addr::new(198, 18, 100, 1),
            7777,
        );
        let c = ipv4_checksum(&f);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        let parsed = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = parsed.net else {
            panic!("not IPv4")
        };
        assert_eq!(ip.header().destination(), [198, 18, 100, 1]);
        assert_eq!(ip.header().total_len(), 50);
        assert!(ip.header().to_header().calc_header_checksum() == c);
        let Some(etherparse::TransportSlice::Udp(udp)) = parsed.transport else {
            panic!("not UDP")
        };
        assert_eq!(udp.destination_port(), 7777);
        assert_eq!(udp.length(), 30);
    }

    /// Runs `program` of `bench` (an encapsulating forwarder, loaded) once
    /// through BPF_PROG_TEST_RUN on a UDP frame from client `client`, with
    /// `ENCAP_FORWARD` naming 198.18.3.99 as its backend, and checks what
    /// every encapsulating forwarder must write: a valid IPIP frame from the
    /// configured source, the original frame intact inside, redirected.
    /// Returns the outer destination.
    fn encap_forward_once(bench: &mut aya::Ebpf, program: &str, client: Ipv4Addr) -> [u8; 4] {
        use aya::{
            TestRun as _,
            maps::Array,
            programs::{TestRunOptions, Xdp},
        };
        const XDP_REDIRECT: u32 = 4;

        let (dst_mac, src_mac) = ([2, 0, 0, 0, 0, 0x11], [2, 0, 0, 0, 0, 0x22]);
        Array::<_, EncapForward>::try_from(bench.map_mut("ENCAP_FORWARD").unwrap())
            .unwrap()
            .set(
                0,
                EncapForward {
                    ifindex: 1,
                    dst: dst_mac,
                    src: src_mac,
                    outer_src: [198, 18, 210, 2],
                    outer_dst: [198, 18, 3, 99],
                },
                0,
            )
            .unwrap();
        let mut inner = udp_template(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            client,
            Ipv4Addr::new(198, 18, 100, 1),
            7777,
        );
        let c = ipv4_checksum(&inner);
        inner[24..26].copy_from_slice(&c.to_be_bytes());
        let prog: &Xdp = bench.program(program).unwrap().try_into().unwrap();
        let mut out = vec![0u8; 256];
        let r = prog
            .test_run(TestRunOptions {
                data_in: Some(&inner),
                data_out: Some(&mut out),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(r.return_value, XDP_REDIRECT);
        let out = &out[..FRAME_LEN + 20];
        assert_eq!(out[..6], dst_mac);
        assert_eq!(out[6..12], src_mac);
        let parsed = etherparse::SlicedPacket::from_ethernet(out).unwrap();
        let Some(etherparse::NetSlice::Ipv4(outer)) = parsed.net else {
            panic!("not IPv4")
        };
        let h = outer.header().to_header();
        assert_eq!(h.protocol, etherparse::IpNumber::IPV4);
        assert_eq!(h.source, [198, 18, 210, 2]);
        assert_eq!(h.total_len, (FRAME_LEN - 14 + 20) as u16);
        assert!(h.dont_fragment);
        assert_eq!(h.time_to_live, 64);
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        // The inner IPv4 packet follows unchanged.
        assert_eq!(out[34..], inner[14..]);
        h.destination
    }

    /// `bench_encap_forward` (the rate section's encapsulating baseline): a
    /// valid IPIP frame to the configured backend, redirected (root).
    #[test]
    fn encap_forward_writes_a_valid_ipip_frame_and_redirects() {
        use aya::{EbpfLoader, programs::Xdp};

        let mut bench = EbpfLoader::new()
            .load(crate::per_packet::BENCH_OBJECT)
            .unwrap();
        let prog: &mut Xdp = bench
            .program_mut("bench_encap_forward")
            .unwrap()
            .try_into()
            .unwrap();
        prog.load().unwrap();
        let dst = encap_forward_once(
            &mut bench,
            "bench_encap_forward",
            Ipv4Addr::new(198, 19, 0, 7),
        );
        assert_eq!(dst, [198, 18, 3, 99]);
    }

    /// `bench_one_line_forward` (the rate section's one-line floor): the same
    /// valid IPIP frame, to the backend its flow's line names, not to
    /// `ENCAP_FORWARD`'s: the line is read (root).
    #[test]
    fn one_line_forward_encapsulates_to_the_backend_of_its_line() {
        use crate::one_line::{FORWARD_PROGRAM, OneLine};

        let mut floor = OneLine::load(8, FORWARD_PROGRAM).unwrap();
        let reals: Vec<[u8; 4]> = (1..=4).map(|id| [198, 18, 3, id]).collect();
        let mut seen = std::collections::BTreeSet::new();
        for host in 1..=16 {
            let dst = encap_forward_once(
                &mut floor.ebpf,
                FORWARD_PROGRAM,
                Ipv4Addr::new(198, 19, 0, host),
            );
            assert!(reals.contains(&dst), "outer destination {dst:?}");
            seen.insert(dst);
        }
        // The flow picks the line: 16 clients do not all share one.
        assert!(seen.len() >= 2, "every client on {seen:?}");
    }
}
