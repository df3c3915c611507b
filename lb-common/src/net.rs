//! Network constants (address families, IP protocol numbers) and the MAC
//! address type that both the datapath and the agent use, defined once.

/// Address family tag stored in map keys and values: IPv4.
pub const FAMILY_V4: u8 = 4;
/// Address family tag stored in map keys and values: IPv6.
pub const FAMILY_V6: u8 = 6;

/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// IP protocol number of IPv4-in-IP encapsulation (IPIP).
pub const PROTO_IPIP: u8 = 4;
/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// IP protocol number (next header) of IPv6-in-IP encapsulation.
pub const PROTO_IPV6: u8 = 41;
/// IPv6 next header of the fragment extension header.
pub const PROTO_IPV6_FRAGMENT: u8 = 44;
/// IP protocol number of ICMPv6.
pub const PROTO_ICMPV6: u8 = 58;

// The datapath cannot use libc; the agent side checks the values against it.
#[cfg(feature = "user")]
const _: () = assert!(
    PROTO_ICMP as i32 == libc::IPPROTO_ICMP
        && PROTO_IPIP as i32 == libc::IPPROTO_IPIP
        && PROTO_TCP as i32 == libc::IPPROTO_TCP
        && PROTO_UDP as i32 == libc::IPPROTO_UDP
        && PROTO_IPV6 as i32 == libc::IPPROTO_IPV6
        && PROTO_IPV6_FRAGMENT as i32 == libc::IPPROTO_FRAGMENT
        && PROTO_ICMPV6 as i32 == libc::IPPROTO_ICMPV6
);

/// `AF_INET`, the address family of `bpf_fib_lookup` parameters for IPv4.
pub const AF_INET: u8 = 2;
/// `AF_INET6`, the address family of `bpf_fib_lookup` parameters for IPv6.
pub const AF_INET6: u8 = 10;

// The datapath cannot use libc; the agent side checks the values against it.
#[cfg(feature = "user")]
const _: () = assert!(AF_INET as i32 == libc::AF_INET && AF_INET6 as i32 == libc::AF_INET6);

/// An Ethernet (MAC) address.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Parses six two-digit hexadecimal bytes separated by `:` or `-`
    /// (`aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF`); `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let mut mac = [0u8; 6];
        let mut parts = text.split([':', '-']);
        for byte in &mut mac {
            let part = parts.next()?;
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            *byte = u8::from_str_radix(part, 16).ok()?;
        }
        parts.next().is_none().then_some(Self(mac))
    }

    /// The six bytes, in wire order.
    pub const fn octets(self) -> [u8; 6] {
        self.0
    }
}

impl core::fmt::Display for MacAddr {
    /// `aa:bb:cc:dd:ee:ff` (lower case, `:`-separated).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString as _;

    use super::MacAddr;

    #[test]
    fn mac_addresses_parse_in_both_separators_and_print_back() {
        let want = MacAddr([0xaa, 0xbb, 0xcc, 0x0d, 0xee, 0x01]);
        assert_eq!(MacAddr::parse("aa:bb:cc:0d:ee:01"), Some(want));
        assert_eq!(MacAddr::parse("AA-BB-CC-0D-EE-01"), Some(want));
        assert_eq!(want.to_string(), "aa:bb:cc:0d:ee:01");
        assert_eq!(MacAddr::parse(&want.to_string()), Some(want));
    }

    #[test]
    fn malformed_mac_addresses_are_refused() {
        for bad in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:ff:00",
            "aa:bb:cc:dd:ee:f",
            "aa:bb:cc:dd:ee:fff",
            "aa:bb:cc:dd:ee:zz",
            "aa:bb:cc:dd:ee:+f",
            " aa:bb:cc:dd:ee:ff",
            "aa:bb:cc:dd:ee:ff:",
        ] {
            assert_eq!(MacAddr::parse(bad), None, "{bad:?}");
        }
    }
}
