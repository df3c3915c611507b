//! The packet-rate topology: three namespaces joined by two veth pairs.
//!
//! ```text
//! gen  [g] ──veth── [i] DUT [o] ──veth── [s]  sink
//! 198.18.210.1   .210.2   198.18.211.1   .211.2
//! ```
//! The generator transmits out of `g` (live-frame test runs, XDP_TX); the
//! program or kernel path under test runs on `i` (native XDP; a plain XDP_PASS
//! program for the kernel cases, because native XDP frames sent into a veth
//! are only received when the peer runs an XDP program); it forwards out of
//! `o`; the sink counts on `s`. The DUT routes everything via the sink, whose
//! MAC is a permanent neighbour entry.
//!
//! Names: namespaces `lblab<pid>-rate<n>-{gen,dut,sink}` (the lab's naming, so
//! a run killed before its `Drop` is swept by the next run); interfaces carry
//! the pid in hex, so their NAPI threads (`napi/<if>-<id>`) are told apart from
//! those of a parallel run.

use std::net::Ipv4Addr;
use std::sync::Arc;

use anyhow::{Context, Result};
use lb_tests::lab::{
    cmd,
    netns::{self, NetNs},
};

/// The DUT's address toward the generator.
pub const DUT_IN_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 210, 2);
/// The sink's address (the DUT's next hop for everything).
pub const SINK_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 211, 2);

/// One interface: namespace, name, index and MAC.
#[derive(Clone, Debug)]
pub struct Iface {
    /// Its namespace.
    pub ns: Arc<NetNs>,
    /// Its name (inside `ns`).
    pub name: String,
    /// Its ifindex (inside `ns`).
    pub ifindex: u32,
    /// Its MAC address.
    pub mac: [u8; 6],
}

/// The three namespaces and four interfaces; everything is deleted on drop.
pub struct RateNet {
    /// Generator side of the first pair (in the generator namespace).
    pub gen_if: Iface,
    /// DUT side of the first pair: where the program under test runs.
    pub dut_in: Iface,
    /// DUT side of the second pair: toward the sink.
    pub dut_out: Iface,
    /// Sink side of the second pair: where packets are counted.
    pub sink_if: Iface,
    _namespaces: Namespaces,
}

/// Namespaces deleted (with every process inside) on drop.
#[derive(Default)]
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = netns::delete_by_name(name);
        }
    }
}

impl RateNet {
    /// Builds the topology (leftovers of killed runs are removed first).
    pub fn new() -> Result<RateNet> {
        netns::remove_leftovers();
        let prefix = format!("{}-", netns::unique_name("rate"));
        let mut namespaces = Namespaces::default();
        let mut create = |role: &str| -> Result<Arc<NetNs>> {
            let name = format!("{prefix}{role}");
            namespaces.0.push(name.clone());
            Ok(NetNs::create(&name)?)
        };
        let gen_ns = create("gen")?;
        let dut = create("dut")?;
        let sink = create("sink")?;
        let tag = format!("{:x}", std::process::id());
        let (g, i, o, s) = (
            format!("rg{tag}"),
            format!("ri{tag}"),
            format!("ro{tag}"),
            format!("rs{tag}"),
        );
        for (a_ns, a, b_ns, b) in [(&gen_ns, &g, &dut, &i), (&dut, &o, &sink, &s)] {
            cmd::ip_in(
                a_ns.name(),
                &[
                    "link",
                    "add",
                    a,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    b,
                    "netns",
                    b_ns.name(),
                ],
            )?;
        }
        let settings: Vec<String> = [
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        cmd::sysctl_in(dut.name(), &settings)?;
        for (ns, ifname, addr) in [
            (&gen_ns, &g, "198.18.210.1/24"),
            (&dut, &i, "198.18.210.2/24"),
            (&dut, &o, "198.18.211.1/24"),
            (&sink, &s, "198.18.211.2/24"),
        ] {
            cmd::ip_in(ns.name(), &["addr", "add", addr, "dev", ifname])?;
            cmd::ip_in(ns.name(), &["link", "set", ifname, "up"])?;
        }
        let net = RateNet {
            gen_if: iface(&gen_ns, &g)?,
            dut_in: iface(&dut, &i)?,
            dut_out: iface(&dut, &o)?,
            sink_if: iface(&sink, &s)?,
            _namespaces: namespaces,
        };
        let sink_mac = mac_text(net.sink_if.mac);
        cmd::ip_in(
            dut.name(),
            &[
                "neigh",
                "replace",
                &SINK_ADDR.to_string(),
                "lladdr",
                &sink_mac,
                "dev",
                &o,
                "nud",
                "permanent",
            ],
        )?;
        cmd::ip_in(
            dut.name(),
            &["route", "add", "default", "via", &SINK_ADDR.to_string()],
        )?;
        Ok(net)
    }

    /// The DUT's namespace.
    pub fn dut(&self) -> &Arc<NetNs> {
        &self.dut_in.ns
    }
}

/// Reads an interface's index and MAC (`ip -j link show`).
fn iface(ns: &Arc<NetNs>, name: &str) -> Result<Iface> {
    let out = cmd::exec_in(ns.name(), "ip", &["-j", "link", "show", "dev", name])?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let link = &v[0];
    let ifindex = link["ifindex"]
        .as_u64()
        .with_context(|| format!("no ifindex for {name}: {v}"))? as u32;
    let mac = parse_mac(link["address"].as_str().unwrap_or_default())
        .with_context(|| format!("no MAC for {name}: {v}"))?;
    Ok(Iface {
        ns: Arc::clone(ns),
        name: name.to_owned(),
        ifindex,
        mac,
    })
}

/// `aa:bb:cc:dd:ee:ff` -> bytes ([`lb_common::MacAddr::parse`]).
pub fn parse_mac(text: &str) -> Result<[u8; 6]> {
    lb_common::MacAddr::parse(text)
        .map(lb_common::MacAddr::octets)
        .with_context(|| format!("not a MAC address: {text:?}"))
}

/// Bytes -> `aa:bb:cc:dd:ee:ff`.
pub fn mac_text(mac: [u8; 6]) -> String {
    lb_common::MacAddr(mac).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_round_trip() {
        let mac = [0xaa, 0x0b, 0, 1, 0xff, 0x10];
        assert_eq!(parse_mac(&mac_text(mac)).unwrap(), mac);
        assert!(parse_mac("aa:bb").is_err());
        assert!(parse_mac("aa:bb:cc:dd:ee:zz").is_err());
    }
}
