//! `encapsulation.source_prefix_v4` / `source_prefix_v6`: the prefix that
//! per-flow outer source addresses are drawn from.

use std::net::IpAddr;

use super::fields::{Ctx, Field, MapView, shortened};

/// Reads `key` as a prefix `address/len` of the family whose addresses have
/// `bits` bits (32 or 128). `Some(None)` when absent, `None` (reported) when
/// malformed, of the other family, without host bits, or with host bits set.
pub(crate) fn read(
    ctx: &mut Ctx<'_>,
    view: &MapView<'_>,
    key: &str,
    bits: u8,
) -> Option<Option<(IpAddr, u8)>> {
    let text = match view.scalar_text(ctx, key) {
        Field::Absent => return Some(None),
        Field::Invalid => return None,
        Field::Value(text) => text,
    };
    match parse(&text, bits) {
        Ok(prefix) => Some(Some(prefix)),
        Err(message) => {
            view.report(ctx, key, format!("{key} {:?}: {message}", shortened(&text)));
            None
        }
    }
}

/// Parses `address/len` for a family of `bits`-bit addresses.
pub(crate) fn parse(text: &str, bits: u8) -> Result<(IpAddr, u8), String> {
    let family = if bits == 32 { "IPv4" } else { "IPv6" };
    let Some((address, len)) = text.split_once('/') else {
        return Err(format!(
            "expected an {family} prefix such as {}",
            example(bits)
        ));
    };
    let address: IpAddr = address
        .parse()
        .map_err(|_| format!("invalid {family} address {:?}", shortened(address)))?;
    if address.is_ipv4() != (bits == 32) {
        return Err(format!("not an {family} prefix"));
    }
    let len: u8 = len
        .parse()
        .ok()
        .filter(|&l| l <= bits)
        .ok_or_else(|| format!("prefix length must be 0..={bits}"))?;
    if len == bits {
        return Err(format!(
            "a /{bits} has no host bits to vary per flow (use source_v{} for one address)",
            if bits == 32 { 4 } else { 6 }
        ));
    }
    let host_bits_set = match address {
        IpAddr::V4(a) => u32::from(a) & (u32::MAX >> len) != 0,
        IpAddr::V6(a) => u128::from(a) & (u128::MAX >> len) != 0,
    };
    if host_bits_set {
        return Err(format!(
            "host bits set (the prefix starts at a /{len} boundary)"
        ));
    }
    Ok((address, len))
}

fn example(bits: u8) -> &'static str {
    if bits == 32 {
        "198.18.5.0/24"
    } else {
        "2001:2:0:5::/64"
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn prefixes_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse("198.18.5.0/24", 32).unwrap(),
            ("198.18.5.0".parse().unwrap(), 24)
        );
        assert_eq!(
            parse("2001:2:0:5::/64", 128).unwrap(),
            ("2001:2:0:5::".parse().unwrap(), 64)
        );
        assert!(
            parse("198.18.5.1/24", 32)
                .unwrap_err()
                .contains("host bits set")
        );
        assert!(
            parse("198.18.5.0/32", 32)
                .unwrap_err()
                .contains("no host bits")
        );
        assert!(parse("198.18.5.0/33", 32).unwrap_err().contains("0..=32"));
        assert!(
            parse("198.18.5.0", 32)
                .unwrap_err()
                .contains("expected an IPv4 prefix")
        );
        assert!(
            parse("2001:2::/64", 32)
                .unwrap_err()
                .contains("not an IPv4")
        );
        assert!(
            parse("nope/8", 128)
                .unwrap_err()
                .contains("invalid IPv6 address")
        );
    }
}
