//! Descriptor limits: the agent raises its own `RLIMIT_NOFILE` soft limit to
//! the hard limit at start, and the metrics listener sizes its connection cap
//! from what it got, so that idle HTTP clients can never take every descriptor
//! the agent needs (config reloads, health probes, map reads).

/// Fewest concurrent metrics connections allowed, whatever the limit.
const MIN_CONNECTIONS: usize = 4;
/// Most concurrent metrics connections allowed, whatever the limit.
const MAX_CONNECTIONS: usize = 256;

/// The current `RLIMIT_NOFILE` (soft, hard), or `None` if it cannot be read.
pub fn nofile_limit() -> Option<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (rc == 0).then_some((limit.rlim_cur, limit.rlim_max))
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (always allowed without
/// privileges). Returns the soft limit in force afterwards, or the error of
/// `setrlimit`.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    let (soft, hard) = nofile_limit().ok_or_else(std::io::Error::last_os_error)?;
    if soft >= hard {
        return Ok(soft);
    }
    let limit = libc::rlimit {
        rlim_cur: hard,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(hard)
}

/// Concurrent connections the metrics listener accepts with a soft descriptor
/// limit of `soft_limit`: a quarter of it, between 4 and 256 (pure).
pub fn connection_cap(soft_limit: u64) -> usize {
    usize::try_from(soft_limit / 4)
        .unwrap_or(MAX_CONNECTIONS)
        .clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_is_a_quarter_of_the_limit_within_bounds() {
        assert_eq!(connection_cap(1024), 256);
        assert_eq!(connection_cap(64), 16);
        assert_eq!(connection_cap(8), 4);
        assert_eq!(connection_cap(1 << 20), 256);
        assert_eq!(connection_cap(u64::MAX), 256);
    }
}
