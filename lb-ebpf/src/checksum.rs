//! Internet checksum arithmetic (RFC 1071, incremental update per RFC 1624).
//!
//! Values are the raw native-endian loads of network-order words: the
//! one's-complement sum is byte-order independent, so a checksum folded from raw
//! loads is stored back raw.

/// Folds a 64-bit accumulated sum to 16 bits with end-around carries.
#[inline(always)]
pub fn fold(mut sum: u64) -> u16 {
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// Incrementally updates checksum `check` when a 16-bit word changes from `old` to `new`.
#[inline(always)]
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    // HC' = ~(~HC + ~m + m')
    !fold(u64::from(!check) + u64::from(!old) + u64::from(new))
}

/// Checksum of a 20-byte IPv4 header given as its ten raw 16-bit words (checksum word zero).
#[inline(always)]
pub fn ipv4_header(words: &[u16; 10]) -> u16 {
    let mut sum = 0u64;
    let mut i = 0;
    while i < 10 {
        sum += u64::from(words[i]);
        i += 1;
    }
    !fold(sum)
}

/// One's-complement sum of a byte slice as raw native-endian 16-bit words (host helper).
pub fn sum_bytes(bytes: &[u8]) -> u64 {
    let mut sum = 0u64;
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        sum += u64::from(u16::from_ne_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 791 example header from Wikipedia: checksum 0xb861.
    const HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    #[test]
    fn ipv4_header_checksum_matches_known_value() {
        let mut words = [0u16; 10];
        for (i, w) in words.iter_mut().enumerate() {
            *w = u16::from_ne_bytes([HDR[2 * i], HDR[2 * i + 1]]);
        }
        assert_eq!(ipv4_header(&words).to_ne_bytes(), [0xb8, 0x61]);
        assert_eq!(!fold(sum_bytes(&HDR)), u16::from_ne_bytes([0xb8, 0x61]));
    }

    #[test]
    fn incremental_update_equals_recompute() {
        let mut hdr = HDR;
        let check = !fold(sum_bytes(&hdr));
        let old = u16::from_ne_bytes([hdr[8], hdr[9]]);
        hdr[8] = 0x3f; // TTL 64 -> 63
        let new = u16::from_ne_bytes([hdr[8], hdr[9]]);
        assert_eq!(update16(check, old, new), !fold(sum_bytes(&hdr)));
    }

    #[test]
    fn fold_handles_carries() {
        assert_eq!(fold(0x1_ffff), 0x1);
        assert_eq!(fold(0xffff_ffff_ffff), 0xffff);
    }
}
