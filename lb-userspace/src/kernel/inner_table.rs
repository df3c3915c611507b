//! Creating and filling an inner Maglev table without per-slot syscalls.
//!
//! aya 0.14 writes arrays one element per syscall: 65,537 syscalls per table,
//! most of a scale event's latency. Here the table is created with
//! `BPF_MAP_CREATE` as an mmapable array, filled with one `memcpy` through a
//! shared mapping (no reader sees it before it is put into the outer map),
//! then handed to aya as [`MapData`] for `ArrayOfMaps::set`.

use std::io;
use std::os::fd::OwnedFd;

use aya::maps::MapData;
use lb_common::MAGLEV_INNER_FLAGS;

use super::sys;

/// A new inner table (array of `u32` with [`MAGLEV_INNER_FLAGS`]) holding `slots`.
pub fn create_filled(slots: &[u32]) -> io::Result<MapData> {
    if slots.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty Maglev table",
        ));
    }
    let fd = sys::create_u32_array("lb_maglev", slots.len() as u32, MAGLEV_INNER_FLAGS)?;
    fill_through_mmap(&fd, slots)?;
    MapData::from_fd(fd).map_err(io::Error::other)
}

/// Copies `slots` into the mmapable array `fd` (created with `slots.len()`
/// entries). Array elements are 8-byte aligned in the kernel (`round_up(
/// value_size, 8)`), so each `u32` slot sits in the low half of a `u64`.
fn fill_through_mmap(fd: &OwnedFd, slots: &[u32]) -> io::Result<()> {
    let elements: Vec<u64> = slots
        .iter()
        .map(|&id| u64::from_ne_bytes(widen(id)))
        .collect();
    let bytes = std::mem::size_of_val(elements.as_slice());
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    let len = bytes.div_ceil(page) * page;
    // SAFETY: a fresh shared mapping of the map's value area, which is at least
    // `len` bytes (the kernel rounds an mmapable array up to whole pages).
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            std::os::fd::AsRawFd::as_raw_fd(fd),
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `addr` maps `len >= bytes` writable bytes that nothing else uses
    // yet; the source and destination do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(elements.as_ptr().cast::<u8>(), addr.cast::<u8>(), bytes);
        libc::munmap(addr, len);
    }
    Ok(())
}

/// The 8 bytes of one array element holding `id` (value first, zero padding).
fn widen(id: u32) -> [u8; 8] {
    let mut e = [0u8; 8];
    e[..4].copy_from_slice(&id.to_ne_bytes());
    e
}

/// Stores every `(index, table)` into the outer array-of-maps `outer_fd` with
/// one `BPF_MAP_UPDATE_BATCH`. The kernel waits for one RCU grace period per
/// map-in-map write syscall (so that no program still uses a replaced inner
/// map when it returns): one batch waits once for all the tables.
pub fn put_all(outer_fd: std::os::fd::BorrowedFd<'_>, tables: &[(u32, MapData)]) -> io::Result<()> {
    use std::os::fd::{AsFd as _, AsRawFd as _};
    if tables.is_empty() {
        return Ok(());
    }
    let keys: Vec<u32> = tables.iter().map(|(index, _)| *index).collect();
    let fds: Vec<u32> = tables
        .iter()
        .map(|(_, t)| t.fd().as_fd().as_raw_fd() as u32)
        .collect();
    let stored = sys::update_batch_u32(outer_fd, &keys, &fds)?;
    if stored != keys.len() {
        return Err(io::Error::other(format!(
            "batch update stored {stored} of {} tables",
            keys.len()
        )));
    }
    Ok(())
}
