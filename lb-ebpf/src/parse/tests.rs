//! Host tests of [`super::parse`] on real byte arrays.

use super::*;

extern crate std;
use std::vec::Vec;

const MAC: [u8; 12] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];

fn eth(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = MAC.to_vec();
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// IPv4 header (checksum left zero: the parser does not verify it) + payload.
fn ipv4(protocol: u8, options: &[u8], frag_off: u16, payload: &[u8]) -> Vec<u8> {
    let ihl = (20 + options.len()) / 4;
    let tot = (20 + options.len() + payload.len()) as u16;
    let mut h = std::vec![0x40 | ihl as u8, 0];
    h.extend_from_slice(&tot.to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&frag_off.to_be_bytes());
    h.extend_from_slice(&[64, protocol, 0, 0, 198, 18, 0, 1, 198, 18, 100, 1]);
    h.extend_from_slice(options);
    h.extend_from_slice(payload);
    h
}

fn ipv6(next_hdr: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = std::vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next_hdr, 64]);
    h.extend_from_slice(&[0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    h.extend_from_slice(&[0x20, 0x01, 0, 2, 0, 0, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    h.extend_from_slice(payload);
    h
}

fn tcp(flags: u8) -> Vec<u8> {
    let mut t = std::vec![0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags];
    t.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    t
}

fn udp(len: u16) -> Vec<u8> {
    let mut u = std::vec![0x30, 0x39, 0, 53];
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0, 1, 2, 3, 4]);
    u
}

fn run(frame: &[u8]) -> Parsed {
    let mut frame = frame.to_vec();
    parse(&Packet::from_slice(&mut frame))
}

/// A copy of a frame in its own mapping, ending exactly where an inaccessible
/// guard page begins: a read of even one byte past the frame faults (the test
/// process dies), instead of landing on the rest of a larger buffer.
struct GuardedFrame {
    map: *mut libc::c_void,
    map_len: usize,
    frame: *mut u8,
    len: usize,
}

impl GuardedFrame {
    fn new(bytes: &[u8]) -> Self {
        // SAFETY: sysconf has no preconditions.
        let page =
            usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).expect("page size");
        let data_pages = bytes.len().div_ceil(page).max(1);
        let map_len = (data_pages + 1) * page;
        // SAFETY: a fresh anonymous private mapping; no existing memory is affected.
        let map = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(map, libc::MAP_FAILED, "mmap of a guarded frame");
        // SAFETY: `map` is our mapping of `map_len` bytes; the guard page is its last page.
        let guard = unsafe { map.cast::<u8>().add(data_pages * page) };
        // SAFETY: `guard` is page-aligned and the page lies inside our mapping.
        let rc = unsafe { libc::mprotect(guard.cast(), page, libc::PROT_NONE) };
        assert_eq!(rc, 0, "mprotect of the guard page");
        // SAFETY: `bytes.len() <= data_pages * page`, so the frame fits just before the guard.
        let frame = unsafe { guard.sub(bytes.len()) };
        // SAFETY: `frame..guard` is writable memory of our mapping, disjoint from `bytes`.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), frame, bytes.len()) };
        Self {
            map,
            map_len,
            frame,
            len: bytes.len(),
        }
    }

    fn packet(&mut self) -> Packet<'_> {
        // SAFETY: `len` bytes at `frame` lie in our read-write mapping, which
        // lives as long as `self`, borrowed mutably here.
        Packet::from_slice(unsafe { core::slice::from_raw_parts_mut(self.frame, self.len) })
    }

    /// One past the frame's last byte: the first byte of the guard page.
    fn end(&self) -> usize {
        self.frame as usize + self.len
    }
}

impl Drop for GuardedFrame {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `new`, used by nothing else.
        unsafe { libc::munmap(self.map, self.map_len) };
    }
}

/// Parses `frame` copied right before a guard page (see [`GuardedFrame`]).
fn run_guarded(frame: &[u8]) -> Parsed {
    parse(&GuardedFrame::new(frame).packet())
}

#[test]
fn guarded_frame_faults_one_byte_past_its_end() {
    let g = GuardedFrame::new(&[1, 2, 3]);
    let end = g.end();
    // SAFETY: the frame's last byte lies in our readable mapping.
    let last = unsafe { core::ptr::read_volatile((end - 1) as *const u8) };
    assert_eq!(last, 3);
    // A child process reads the first byte past the frame: it must die of SIGSEGV.
    // SAFETY: the child only performs one load and exits, touching no locks.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        // SAFETY: deliberately reads the guard page; this faults, which is the point.
        unsafe {
            core::ptr::read_volatile(end as *const u8);
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSEGV,
        "reading past a guarded frame did not fault (wait status {status:#x})"
    );
}

#[test]
fn ipv4_tcp_syn_is_parsed() {
    let f = eth(0x0800, &ipv4(6, &[], 0x4000, &tcp(0x02)));
    let p = run(&f);
    assert_eq!(p.kind, Kind::Tcp);
    assert_eq!(p.family, FAMILY_V4);
    assert_eq!(p.src[0].to_ne_bytes(), [198, 18, 0, 1]);
    assert_eq!(p.dst[0].to_ne_bytes(), [198, 18, 100, 1]);
    assert_eq!(u16::from_be(p.src_port), 12345);
    assert_eq!(u16::from_be(p.dst_port), 80);
    assert_eq!(p.tcp_flags, 0x02);
    assert_eq!(p.l4_off, 34);
    assert_eq!(p.ip_len, 40);
}

#[test]
fn ipv4_options_are_skipped_for_every_valid_ihl() {
    for words in 0..=10usize {
        let opts = std::vec![1u8; words * 4]; // NOPs
        let f = eth(0x0800, &ipv4(6, &opts, 0, &tcp(0x10)));
        let p = run(&f);
        assert_eq!(p.kind, Kind::Tcp, "ihl {}", 5 + words);
        assert_eq!(p.l4_off, 34 + words * 4);
        assert_eq!(u16::from_be(p.dst_port), 80);
    }
}

#[test]
fn ipv4_truncation_at_every_byte_never_reads_out_of_bounds() {
    let f = eth(0x0800, &ipv4(6, &[], 0, &tcp(0x10)));
    for cut in 0..f.len() {
        let p = run_guarded(&f[..cut]);
        let want = if cut < 34 {
            Kind::NotIp
        } else {
            Kind::Malformed
        };
        assert_eq!(p.kind, want, "cut at {cut}");
    }
    assert_eq!(run(&f).kind, Kind::Tcp);
}

#[test]
fn ipv6_truncation_at_every_byte_never_reads_out_of_bounds() {
    let f = eth(0x86dd, &ipv6(17, &udp(10)));
    for cut in 0..f.len() {
        let p = run_guarded(&f[..cut]);
        let want = if cut < 54 {
            Kind::NotIp
        } else {
            Kind::Malformed
        };
        assert_eq!(p.kind, want, "cut at {cut}");
    }
    assert_eq!(run(&f).kind, Kind::Udp);
}

#[test]
fn lying_ipv4_lengths_are_malformed() {
    // IHL below 5.
    let mut ip = ipv4(6, &[], 0, &tcp(0x10));
    ip[0] = 0x44;
    assert_eq!(run(&eth(0x0800, &ip)).kind, Kind::Malformed);
    // IHL beyond total length.
    let mut ip = ipv4(6, &[], 0, &tcp(0x10));
    ip[0] = 0x4f;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    assert_eq!(run(&eth(0x0800, &ip)).kind, Kind::Malformed);
    // Total length beyond the frame.
    let mut ip = ipv4(6, &[], 0, &tcp(0x10));
    ip[2..4].copy_from_slice(&41u16.to_be_bytes());
    assert_eq!(run(&eth(0x0800, &ip)).kind, Kind::Malformed);
    // Total length shorter than the TCP header.
    let mut ip = ipv4(6, &[], 0, &tcp(0x10));
    ip[2..4].copy_from_slice(&39u16.to_be_bytes());
    assert_eq!(run(&eth(0x0800, &ip)).kind, Kind::Malformed);
    // Wrong version.
    let mut ip = ipv4(6, &[], 0, &tcp(0x10));
    ip[0] = 0x65;
    assert_eq!(run(&eth(0x0800, &ip)).kind, Kind::Malformed);
    // Trailing Ethernet padding is fine.
    let mut f = eth(0x0800, &ipv4(6, &[], 0, &tcp(0x10)));
    f.extend_from_slice(&[0; 6]);
    assert_eq!(run(&f).kind, Kind::Tcp);
}

#[test]
fn lying_l4_lengths_are_malformed() {
    let mut t = tcp(0x10);
    t[12] = 0x40; // data offset 4 words
    assert_eq!(
        run(&eth(0x0800, &ipv4(6, &[], 0, &t))).kind,
        Kind::Malformed
    );
    let mut t = tcp(0x10);
    t[12] = 0x60; // data offset 24 bytes > 20 available
    assert_eq!(
        run(&eth(0x0800, &ipv4(6, &[], 0, &t))).kind,
        Kind::Malformed
    );
    assert_eq!(
        run(&eth(0x0800, &ipv4(17, &[], 0, &udp(7)))).kind,
        Kind::Malformed
    );
    assert_eq!(
        run(&eth(0x0800, &ipv4(17, &[], 0, &udp(13)))).kind,
        Kind::Malformed
    );
    assert_eq!(
        run(&eth(0x0800, &ipv4(17, &[], 0, &udp(12)))).kind,
        Kind::Udp
    );
    let mut ip = ipv6(6, &tcp(0x02));
    ip[4..6].copy_from_slice(&21u16.to_be_bytes());
    assert_eq!(run(&eth(0x86dd, &ip)).kind, Kind::Malformed);
    let mut ip = ipv6(6, &tcp(0x02));
    ip[4..6].copy_from_slice(&0u16.to_be_bytes());
    assert_eq!(run(&eth(0x86dd, &ip)).kind, Kind::Malformed);
}

#[test]
fn fragments_are_recognised_with_first_fragment_ports() {
    let p = run(&eth(0x0800, &ipv4(6, &[], 0x2000, &tcp(0x10))));
    assert_eq!(p.kind, Kind::Fragment);
    assert_eq!(u16::from_be(p.dst_port), 80);
    let p = run(&eth(0x0800, &ipv4(6, &[], 0x0003, &[0; 16])));
    assert_eq!(p.kind, Kind::Fragment);
    assert_eq!(p.dst_port, 0);
    let mut fh = std::vec![6, 0, 0, 1, 0, 0, 0, 7];
    fh.extend_from_slice(&tcp(0x02));
    let p = run(&eth(0x86dd, &ipv6(44, &fh)));
    assert_eq!(p.kind, Kind::Fragment);
    assert_eq!(p.protocol, 6);
    assert_eq!(u16::from_be(p.dst_port), 80);
    let fh = std::vec![6, 0, 0, 8, 0, 0, 0, 7, 1, 2, 3, 4];
    let p = run(&eth(0x86dd, &ipv6(44, &fh)));
    assert_eq!((p.kind, p.dst_port), (Kind::Fragment, 0));
}

#[test]
fn non_ip_frames_are_not_ip() {
    assert_eq!(run(&eth(0x0806, &[0; 28])).kind, Kind::NotIp);
    let mut vlan = std::vec![0, 10, 0x08, 0x00];
    vlan.extend_from_slice(&ipv4(6, &[], 0, &tcp(0x02)));
    assert_eq!(run(&eth(0x8100, &vlan)).kind, Kind::NotIp);
    assert_eq!(run(&[0u8; 13]).kind, Kind::NotIp);
}

#[test]
fn other_protocols_and_icmp() {
    assert_eq!(
        run(&eth(0x0800, &ipv4(47, &[], 0, &[0; 8]))).kind,
        Kind::Other
    );
    assert_eq!(run(&eth(0x86dd, &ipv6(0, &[0; 8]))).kind, Kind::Other);
    assert_eq!(
        run(&eth(0x0800, &ipv4(1, &[], 0, &[8, 0, 0, 0, 0, 0, 0, 0]))).kind,
        Kind::Icmp
    );
    assert_eq!(
        run(&eth(0x0800, &ipv4(1, &[], 0, &[8, 0, 0, 0]))).kind,
        Kind::Malformed
    );
    assert_eq!(
        run(&eth(0x86dd, &ipv6(58, &[128, 0, 0, 0, 0, 0, 0, 0]))).kind,
        Kind::Icmp
    );
}

#[test]
fn icmp_error_yields_the_client_to_vip_flow() {
    // Embedded packet: VIP 198.18.100.1:80 -> client 198.18.0.1:12345.
    let mut emb = ipv4(6, &[], 0, &[0, 80, 0x30, 0x39, 0, 0, 0, 0]);
    emb[12..16].copy_from_slice(&[198, 18, 100, 1]);
    emb[16..20].copy_from_slice(&[198, 18, 0, 1]);
    let mut icmp = std::vec![3, 4, 0, 0, 0, 0, 5, 0xdc];
    icmp.extend_from_slice(&emb);
    let f = eth(0x0800, &ipv4(1, &[], 0, &icmp));
    let mut whole = f.clone();
    let pkt = Packet::from_slice(&mut whole);
    let p = parse(&pkt);
    assert_eq!(p.kind, Kind::Icmp);
    let flow = embedded_flow(&pkt, &p).unwrap();
    assert_eq!(flow.client[0].to_ne_bytes(), [198, 18, 0, 1]);
    assert_eq!(flow.vip[0].to_ne_bytes(), [198, 18, 100, 1]);
    assert_eq!(
        (
            u16::from_be(flow.client_port),
            u16::from_be(flow.vip_port),
            flow.protocol
        ),
        (12345, 80, 6)
    );
    // Cut inside the embedded ports: no flow.
    let mut cut = GuardedFrame::new(&f[..f.len() - 6]);
    assert!(embedded_flow(&cut.packet(), &p).is_none());
}

/// [`destination`] reads what [`parse`] reads as the destination, and says
/// `None` exactly where [`parse`] says "not IP".
#[test]
fn destination_agrees_with_parse() {
    let frames = [
        eth(0x0800, &ipv4(6, &[], 0, &tcp(0x02))),
        eth(0x0800, &ipv4(17, &[1, 1, 1, 1], 0x2000, &udp(14))),
        eth(0x86dd, &ipv6(6, &tcp(0x10))),
        eth(0x0806, &[0; 28]),
        eth(0x0800, &[0x45; 19]),
        eth(0x86dd, &[0x60; 39]),
        std::vec![0; 13],
    ];
    for f in frames {
        let mut copy = f.clone();
        let found = destination(&Packet::from_slice(&mut copy));
        let p = run(&f);
        if p.kind == Kind::NotIp {
            assert_eq!(found, None, "{f:?}");
        } else {
            assert_eq!(found, Some((p.dst, p.family)), "{f:?}");
        }
    }
    let mut v4 = eth(0x0800, &ipv4(6, &[], 0, &tcp(0x02)));
    let d = destination(&Packet::from_slice(&mut v4)).unwrap();
    assert_eq!(
        d,
        ([u32::from_ne_bytes([198, 18, 100, 1]), 0, 0, 0], FAMILY_V4)
    );
}

#[test]
fn plain_service_port_agrees_with_parse() {
    let mut lying_tcp = eth(0x0800, &ipv4(6, &[], 0, &tcp(0x10)));
    lying_tcp[14 + 20 + 12] = 0x40; // data offset 4
    let mut lying_v4_len = eth(0x0800, &ipv4(17, &[], 0, &udp(14)));
    lying_v4_len[16..18].copy_from_slice(&200u16.to_be_bytes());
    let mut bad_v6_version = eth(0x86dd, &ipv6(6, &tcp(0x10)));
    bad_v6_version[14] = 0x40;
    let frames = [
        // Plain: the port and protocol are read early.
        eth(0x0800, &ipv4(6, &[], 0, &tcp(0x02))),
        eth(0x0800, &ipv4(17, &[], 0, &udp(14))),
        eth(0x86dd, &ipv6(6, &tcp(0x10))),
        eth(0x86dd, &ipv6(17, &udp(14))),
        lying_tcp,
        lying_v4_len,
        bad_v6_version,
        // Not plain: parsed in full.
        eth(0x0800, &ipv4(6, &[1, 1, 1, 1], 0, &tcp(0x02))),
        eth(0x0800, &ipv4(17, &[], 0x2000, &udp(14))),
        eth(0x0800, &ipv4(17, &[], 0x0001, &udp(14))),
        eth(0x0800, &ipv4(1, &[], 0, &[8, 0, 0, 0, 0, 0, 0, 0])),
        eth(0x86dd, &ipv6(44, &[17, 0, 0, 0, 0, 0, 0, 1])),
        eth(0x0800, &ipv4(6, &[], 0, &[0x30, 0x39, 0])),
        eth(0x86dd, &ipv6(17, &[0x30, 0x39])),
    ];
    let mut plain = 0;
    for f in frames {
        let mut copy = f.clone();
        let pkt = Packet::from_slice(&mut copy);
        let (_, family) = destination(&pkt).unwrap();
        let p = run(&f);
        match plain_service_port(&pkt, family) {
            Some((port, protocol)) => {
                plain += 1;
                assert!(
                    matches!(p.kind, Kind::Tcp | Kind::Udp | Kind::Malformed),
                    "{f:?}: {:?}",
                    p.kind
                );
                if p.kind != Kind::Malformed {
                    assert_eq!((port, protocol), (p.dst_port, p.protocol), "{f:?}");
                }
            }
            None => assert!(
                !matches!(p.kind, Kind::Tcp | Kind::Udp)
                    || p.l4_off != 14 + if family == FAMILY_V4 { 20 } else { 40 },
                "{f:?}: a plain frame not recognised"
            ),
        }
    }
    assert_eq!(plain, 7);
    // Truncated anywhere: never a read past the frame, and no port before
    // the port bytes are there.
    for (frame, ports_end) in [
        (eth(0x0800, &ipv4(6, &[], 0, &tcp(0x10))), 14 + 20 + 4),
        (eth(0x86dd, &ipv6(17, &udp(14))), 14 + 40 + 4),
    ] {
        for cut in 14..frame.len() {
            let mut guarded = GuardedFrame::new(&frame[..cut]);
            let pkt = guarded.packet();
            let family = if frame[12] == 0x08 {
                FAMILY_V4
            } else {
                FAMILY_V6
            };
            let found = plain_service_port(&pkt, family);
            assert_eq!(found.is_some(), cut >= ports_end, "cut at {cut}");
        }
    }
}
