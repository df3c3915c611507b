//! The lab's address plan (pure): one /24 and one /64 per link, `.1` / `::1` on
//! the router side, `.2` / `::2` on the far side.
//!
//! | link             | IPv4            | IPv6             |
//! |------------------|-----------------|------------------|
//! | client c0        | 198.18.1.2/24   | 2001:2:0:1::2/64 |
//! | load balancer l0 | 198.18.2.2/24   | 2001:2:0:2::2/64 |
//! | backend N s0     | 198.18.(N+2).2  | 2001:2:0:(N+2)::2|
//! | VIPs             | 198.18.100.1/32 | 2001:2:0:100::1/128 |

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The IPv4 VIP the router sends to the load balancer.
pub const VIP4: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);
/// The IPv6 VIP the router sends to the load balancer.
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0x100, 0, 0, 0, 1);
/// The TCP service port.
pub const TCP_PORT: u16 = 80;
/// The UDP service port.
pub const UDP_PORT: u16 = 5353;

/// Link number of the client link.
const CLIENT_LINK: u8 = 1;
/// Link number of the load balancer link.
const LB_LINK: u8 = 2;

/// The two addresses (router side, far side) of link `n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkAddrs {
    /// The link's number (third IPv4 octet, fourth IPv6 group).
    pub link: u8,
}

impl LinkAddrs {
    /// Router-side IPv4 address.
    pub fn router_v4(self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.link, 1)
    }
    /// Far-side IPv4 address.
    pub fn host_v4(self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.link, 2)
    }
    /// Router-side IPv6 address.
    pub fn router_v6(self) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 2, 0, u16::from(self.link), 0, 0, 0, 1)
    }
    /// Far-side IPv6 address.
    pub fn host_v6(self) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 2, 0, u16::from(self.link), 0, 0, 0, 2)
    }
    /// Far-side address of the given family.
    pub fn host(self, v6: bool) -> IpAddr {
        if v6 {
            self.host_v6().into()
        } else {
            self.host_v4().into()
        }
    }
}

/// The client's link.
pub fn client_link() -> LinkAddrs {
    LinkAddrs { link: CLIENT_LINK }
}

/// The load balancer's link.
pub fn lb_link() -> LinkAddrs {
    LinkAddrs { link: LB_LINK }
}

/// Backend `index` (1-based) link: 198.18.(index+2).0/24.
pub fn backend_link(index: u8) -> LinkAddrs {
    assert!(
        (1..=97).contains(&index),
        "backend index {index} out of the plan"
    );
    LinkAddrs { link: index + 2 }
}

/// The VIP of the given family.
pub fn vip(v6: bool) -> IpAddr {
    if v6 { VIP6.into() } else { VIP4.into() }
}

/// The TCP service address of the given family.
pub fn tcp_service(v6: bool) -> SocketAddr {
    SocketAddr::new(vip(v6), TCP_PORT)
}

/// The UDP service address of the given family.
pub fn udp_service(v6: bool) -> SocketAddr {
    SocketAddr::new(vip(v6), UDP_PORT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_matches_the_lab_config() {
        assert_eq!(backend_link(1).host_v4(), Ipv4Addr::new(198, 18, 3, 2));
        assert_eq!(backend_link(4).host_v4(), Ipv4Addr::new(198, 18, 6, 2));
        assert_eq!(backend_link(3).host_v6().to_string(), "2001:2:0:5::2");
        assert_eq!(lb_link().router_v6().to_string(), "2001:2:0:2::1");
        assert_eq!(VIP6.to_string(), "2001:2:0:100::1");
    }
}
