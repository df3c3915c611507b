//! The SETTINGS value, computed (the plan writes it with
//! [`super::MapOp::PutSettings`]): encapsulation sources default to the
//! interface's own addresses; the config overrides them (a per-flow source
//! prefix wins over a single source) and gives the gateway MAC and the GUE
//! port.

use std::net::{Ipv4Addr, Ipv6Addr};

use lb_common::{SETTINGS_HAS_GATEWAY, SETTINGS_HAS_SOURCE_V4, SETTINGS_HAS_SOURCE_V6, Settings};

use lb_common::address_words;

use crate::config::EncapConfig;

/// What SETTINGS needs to know about the interface the program is attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// Its index.
    pub ifindex: u32,
    /// Its MTU.
    pub mtu: u32,
    /// Its MAC.
    pub mac: [u8; 6],
    /// Its first global IPv4 address.
    pub v4: Option<Ipv4Addr>,
    /// Its first global IPv6 address.
    pub v6: Option<Ipv6Addr>,
}

/// The SETTINGS value for `link` and the config's `encap`.
pub fn settings(link: &Link, encap: &EncapConfig) -> Settings {
    let mut s = Settings {
        ifindex: link.ifindex,
        mtu: link.mtu,
        interface_mac: link.mac,
        ..Default::default()
    };
    if let Some(v4) = encap.source_v4.or(link.v4) {
        s.source_v4 = address_words(v4.into()).0[0];
        s.flags |= SETTINGS_HAS_SOURCE_V4;
    }
    if let Some(v6) = encap.source_v6.or(link.v6) {
        s.source_v6 = address_words(v6.into()).0;
        s.flags |= SETTINGS_HAS_SOURCE_V6;
    }
    if let Some(mac) = encap.gateway_mac {
        s.gateway_mac = mac;
        s.flags |= SETTINGS_HAS_GATEWAY;
    }
    s.gue_port = encap
        .gue_port
        .unwrap_or(lb_common::gue::DEFAULT_GUE_PORT)
        .to_be();
    if let Some(prefix) = encap.source_prefix_v4 {
        s.source_v4 = address_words(prefix.base.into()).0[0];
        s.source_host_mask_v4 = prefix.host_mask();
        s.flags |= SETTINGS_HAS_SOURCE_V4 | lb_common::SETTINGS_SOURCE_PREFIX_V4;
    }
    if let Some(prefix) = encap.source_prefix_v6 {
        s.source_v6 = address_words(prefix.base.into()).0;
        s.source_host_mask_v6 = prefix.host_mask();
        s.flags |= SETTINGS_HAS_SOURCE_V6 | lb_common::SETTINGS_SOURCE_PREFIX_V6;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_overrides_the_interface_addresses() {
        let link = Link {
            ifindex: 7,
            mtu: 1500,
            mac: [2, 0, 0, 0, 0, 1],
            v4: Some(Ipv4Addr::new(198, 18, 0, 1)),
            v6: None,
        };
        let own = settings(&link, &EncapConfig::default());
        assert_eq!(own.flags, SETTINGS_HAS_SOURCE_V4);
        assert_eq!(own.source_v4.to_ne_bytes(), [198, 18, 0, 1]);
        assert_eq!(
            (own.ifindex, own.mtu, own.interface_mac),
            (7, 1500, link.mac)
        );
        let encap = EncapConfig {
            source_v4: Some(Ipv4Addr::new(198, 18, 0, 9)),
            gateway_mac: Some([2, 0, 0, 0, 0, 2]),
            ..EncapConfig::default()
        };
        let set = settings(&link, &encap);
        assert_eq!(set.source_v4.to_ne_bytes(), [198, 18, 0, 9]);
        assert_eq!(set.flags, SETTINGS_HAS_SOURCE_V4 | SETTINGS_HAS_GATEWAY);
    }
}
