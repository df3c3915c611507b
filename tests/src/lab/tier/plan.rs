//! The tier's address and naming plan (pure), on top of the lab's plan
//! (`addr.rs`): node *n* (1-based) sits on link `110 + n`, i.e.
//! `198.18.(110+n).0/24` and `2001:2:0:X::/64` (X = 110+n written in hex,
//! as the lab writes every link number), `.1` on the router;
//! the client has [`CLIENT_SOURCES`] addresses on its link.
//!
//! | piece | address |
//! |---|---|
//! | node n uplink `l0` | 198.18.(110+n).2, 2001:2:0:X::2 with X = 110+n in hex (6f, 70, ...) |
//! | router side `r-n<n>` | 198.18.(110+n).1, 2001:2:0:X::1 |
//! | client sources | 198.18.1.2 .. 198.18.1.9, 2001:2:0:1::2 .. ::9 |

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::lab::addr::{LinkAddrs, client_link};

/// Link number of node 1 minus one.
const NODE_LINK_BASE: u8 = 110;
/// The most nodes a tier can have (links 111..=119).
pub const MAX_NODES: u8 = 9;
/// How many source addresses the client has (per family).
pub const CLIENT_SOURCES: u8 = 8;
/// The router's AS.
pub const ROUTER_AS: u32 = 65000;
/// The AS of every lb node.
pub const NODE_AS: u32 = 65001;
/// The route protocol number lb tags its announcements with (`announce.protocol`).
pub const ANNOUNCE_PROTO: u8 = 250;

/// Node `n`'s link to the router.
pub fn node_link(n: u8) -> LinkAddrs {
    assert!((1..=MAX_NODES).contains(&n), "node {n} out of the plan");
    LinkAddrs {
        link: NODE_LINK_BASE + n,
    }
}

/// Node `n`'s name (`n1`...), also its namespace suffix.
pub fn node_name(n: u8) -> String {
    format!("n{n}")
}

/// The router's interface toward node `n`.
pub fn router_iface(n: u8) -> String {
    format!("r-n{n}")
}

/// The client's source addresses of one family (its own address first).
pub fn client_sources(v6: bool) -> Vec<IpAddr> {
    let link = client_link();
    (0..CLIENT_SOURCES)
        .map(|i| -> IpAddr {
            let host = 2 + i;
            if v6 {
                let base = link.host_v6().segments();
                Ipv6Addr::new(base[0], base[1], base[2], base[3], 0, 0, 0, u16::from(host)).into()
            } else {
                let o = link.host_v4().octets();
                Ipv4Addr::new(o[0], o[1], o[2], host).into()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_and_sources_follow_the_plan() {
        assert_eq!(node_link(1).host_v4().to_string(), "198.18.111.2");
        assert_eq!(node_link(4).router_v6().to_string(), "2001:2:0:72::1");
        assert_eq!(router_iface(3), "r-n3");
        let v4 = client_sources(false);
        assert_eq!(v4.len(), 8);
        assert_eq!(v4[0].to_string(), "198.18.1.2");
        assert_eq!(v4[7].to_string(), "198.18.1.9");
        assert_eq!(client_sources(true)[1].to_string(), "2001:2:0:1::3");
    }
}
