//! `lb decap` end to end over a veth pair: real GUE datagrams from the peer
//! namespace, stripped to a UDP server on the VIP, and a hinted TCP segment
//! with no connection forwarded back to the peer (the "previous owner") as GUE
//! without hint; `--gue-port` and `--stats` as a user runs them.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Output;
use std::time::Duration;

use lb_tests::agent_process::lb_bin;
use lb_tests::decap_frames::gue_header;
use lb_tests::frames::{Tcp, V4, ip_packet, tcp_v4, udp_v4};
use lb_tests::netns::{NetNsPair, TestBpffs, in_netns, ip};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);
const LB_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 200, 1);
const PEER_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 200, 2);
const GUE_PORT: u16 = 7000;

fn lb_decap(net: &NetNsPair, fs: &TestBpffs, extra: &[&str]) -> Output {
    net.exec_in_lb(lb_bin().to_str().unwrap())
        .args(["decap", "--iface", &net.lb_if, "--skb", "--pin-root"])
        .arg(&fs.root)
        .args(extra)
        .output()
        .unwrap()
}

fn udp_in(ns: &str, addr: SocketAddr) -> UdpSocket {
    in_netns(ns, move || {
        let s = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    })
}

#[test]
fn decap_strips_real_gue_and_forwards_a_second_chance() {
    let net = NetNsPair::new("gue");
    let fs = TestBpffs::new("gue");
    ip(&["-n", &net.lb, "addr", "add", "198.18.100.1/32", "dev", "lo"]);
    let sysctl = |key: &str| {
        let out = net
            .exec_in_lb("sysctl")
            .args(["-qw", &format!("{key}=1")])
            .output()
            .unwrap();
        assert!(out.status.success(), "sysctl {key}");
    };
    sysctl(&format!("net.ipv4.conf.{}.forwarding", net.lb_if));

    let five: Vec<String> = (0..5)
        .flat_map(|i| ["--gue-port".to_string(), (7000 + i).to_string()])
        .collect();
    let refused = lb_decap(
        &net,
        &fs,
        &five.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("at most 4 GUE ports"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let out = lb_decap(&net, &fs, &["--gue-port", &GUE_PORT.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The peer's neighbour entry, for the forward's FIB lookup.
    let link = std::process::Command::new("ip")
        .args(["-n", &net.peer, "-br", "link", "show", "dev", &net.peer_if])
        .output()
        .unwrap();
    let link = String::from_utf8_lossy(&link.stdout).to_string();
    let mac = link
        .split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("no MAC in {link:?}"));
    ip(&[
        "-n",
        &net.lb,
        "neigh",
        "replace",
        &PEER_ADDR.to_string(),
        "lladdr",
        mac,
        "dev",
        &net.lb_if,
        "nud",
        "permanent",
    ]);

    let server = udp_in(&net.lb, SocketAddr::from((VIP, 5353)));
    let peer = udp_in(&net.peer, SocketAddr::from((PEER_ADDR, GUE_PORT)));
    let lb_gue = SocketAddr::from((LB_ADDR, GUE_PORT));

    // GUE without hint around UDP peer -> VIP: stripped, delivered to the server.
    let inner = udp_v4(PEER_ADDR, 4000, VIP, 5353, b"hello");
    let mut datagram = gue_header(ip_packet(&inner), None);
    datagram.extend_from_slice(ip_packet(&inner));
    peer.send_to(&datagram, lb_gue).unwrap();
    let mut buf = [0u8; 1500];
    let (n, from) = server
        .recv_from(&mut buf)
        .expect("inner datagram at the VIP");
    assert_eq!(&buf[..n], b"hello");
    assert_eq!(from, SocketAddr::from((PEER_ADDR, 4000)));

    // GUE with a hint naming the peer around a TCP ACK nobody on the lb side
    // knows: forwarded to the peer as GUE without hint, same inner packet.
    let client = Ipv4Addr::new(198, 18, 0, 10);
    let ack = tcp_v4(client, 40000, VIP, 80, Tcp::Ack, b"data", &V4::default());
    let mut datagram = gue_header(ip_packet(&ack), Some(PEER_ADDR.into()));
    datagram.extend_from_slice(ip_packet(&ack));
    peer.send_to(&datagram, lb_gue).unwrap();
    let (n, from) = peer.recv_from(&mut buf).expect("forwarded GUE at the peer");
    assert_eq!(from.ip(), std::net::IpAddr::from(LB_ADDR));
    let mut want = gue_header(ip_packet(&ack), None);
    want.extend_from_slice(ip_packet(&ack));
    assert_eq!(&buf[..n], &want[..]);

    let stats = lb_decap(&net, &fs, &["--stats"]);
    assert!(stats.status.success());
    let text = String::from_utf8_lossy(&stats.stdout);
    for line in ["gue_v4 1", "second_chance_forwarded 1", "gue_malformed 0"] {
        assert!(text.lines().any(|l| l == line), "{line:?} in:\n{text}");
    }
    assert_eq!(text.lines().count(), lb_common::DecapCounter::ALL.len());
    // The same counters for node_exporter's textfile collector: the same
    // values, and a file promtool accepts.
    let prom = lb_decap(&net, &fs, &["--stats", "--format", "prometheus"]);
    assert!(prom.status.success());
    let prom = String::from_utf8_lossy(&prom.stdout).into_owned();
    for (counter, value) in [
        ("gue_v4", 1),
        ("second_chance_forwarded", 1),
        ("gue_malformed", 0),
    ] {
        let line = format!(
            "lb_decap_events_total{{iface=\"{}\",counter=\"{counter}\"}} {value}",
            net.lb_if
        );
        assert!(prom.lines().any(|l| l == line), "{line:?} in:\n{prom}");
    }
    promtool_check_metrics(&prom);
    let detached = lb_decap(&net, &fs, &["--detach"]);
    assert!(detached.status.success());
}

/// Fails unless `promtool check metrics` (Debian package prometheus) accepts
/// `text` without a lint.
fn promtool_check_metrics(text: &str) {
    use std::io::Write as _;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus)");
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
