//! What the datapath needs to know about an interface.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::KernelError;

/// An interface's identity and addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Name.
    pub name: String,
    /// Index.
    pub ifindex: u32,
    /// MAC address.
    pub mac: [u8; 6],
    /// MTU.
    pub mtu: u32,
    /// First global IPv4 address.
    pub v4: Option<Ipv4Addr>,
    /// First global IPv6 address.
    pub v6: Option<Ipv6Addr>,
    /// Every address.
    pub addresses: Vec<IpAddr>,
}

/// ifindex of `name`, `None` when it does not exist.
pub fn ifindex(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: c is a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// Parses `aa:bb:cc:dd:ee:ff` as `ip -j` prints it (surrounding blanks
/// ignored): [`lb_common::MacAddr::parse`].
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    lb_common::MacAddr::parse(s.trim()).map(lb_common::MacAddr::octets)
}

impl Interface {
    /// What SETTINGS needs of it.
    pub fn link(&self) -> crate::plan::Link {
        crate::plan::Link {
            ifindex: self.ifindex,
            mtu: self.mtu,
            mac: self.mac,
            v4: self.v4,
            v6: self.v6,
        }
    }

    /// Reads the interface (through `ip -j addr show dev NAME`).
    pub fn read(name: &str) -> Result<Self, KernelError> {
        let ifindex =
            ifindex(name).ok_or_else(|| KernelError::NoInterface { name: name.into() })?;
        let out = std::process::Command::new("ip")
            .args(["-j", "addr", "show", "dev", name])
            .output()
            .map_err(|source| KernelError::Syscall {
                call: "running ip",
                source,
            })?;
        let json: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|source| KernelError::IpJson {
                command: format!("ip -j addr show dev {name}"),
                source,
            })?;
        let link = json
            .get(0)
            .ok_or_else(|| KernelError::NoInterface { name: name.into() })?;
        let mac = link["address"]
            .as_str()
            .and_then(parse_mac)
            .unwrap_or_default();
        let mtu = link["mtu"].as_u64().unwrap_or(1500) as u32;
        let mut addresses = Vec::new();
        let mut v4 = None;
        let mut v6 = None;
        for a in link["addr_info"].as_array().into_iter().flatten() {
            let Some(addr) = a["local"].as_str().and_then(|s| s.parse::<IpAddr>().ok()) else {
                continue;
            };
            addresses.push(addr);
            let global = a["scope"].as_str() == Some("global");
            match addr {
                IpAddr::V4(x) if global && v4.is_none() => v4 = Some(x),
                IpAddr::V6(x) if global && v6.is_none() => v6 = Some(x),
                _ => {}
            }
        }
        Ok(Self {
            name: name.into(),
            ifindex,
            mac,
            mtu,
            v4,
            v6,
            addresses,
        })
    }
}
