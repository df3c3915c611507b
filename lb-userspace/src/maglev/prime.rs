//! Primality of the table size.

/// True when `n` is prime (deterministic trial division by 6k ± 1, at most
/// ~11k divisions for any `u32`).
pub fn is_prime(n: u32) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n.is_multiple_of(2) || n.is_multiple_of(3) {
        return false;
    }
    let n = u64::from(n);
    let mut d = 5u64;
    while d * d <= n {
        if n % d == 0 || n % (d + 2) == 0 {
            return false;
        }
        d += 6;
    }
    true
}

/// True when a table of size `m` is too small for `n_backends` backends to
/// keep the weighted shares within about 1% (the rule of thumb M >= 100 x N);
/// callers warn, they do not refuse.
pub fn needs_larger_table(m: u32, n_backends: usize) -> bool {
    u64::from(m) < 100u64.saturating_mul(n_backends as u64)
}
