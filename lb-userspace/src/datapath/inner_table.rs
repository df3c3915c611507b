//! Creating and filling an inner Maglev table in two syscalls.
//!
//! aya 0.14 writes arrays one element per syscall: 65,537 syscalls per table,
//! most of a scale event's latency. Here the table is created with
//! `BPF_MAP_CREATE` and filled with a single `BPF_MAP_UPDATE_BATCH`, then handed
//! to aya as [`MapData`] for `ArrayOfMaps::set`.

use std::io;
use std::os::fd::{FromRawFd as _, OwnedFd};

use aya::maps::MapData;
use lb_common::BPF_F_INNER_MAP;

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
const BPF_MAP_TYPE_ARRAY: u32 = 2;

/// `union bpf_attr` for BPF_MAP_CREATE (the fields we set, zero-padded).
#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
    rest: [u32; 16],
}

/// `union bpf_attr`'s `batch` member.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a properly laid-out, zero-padded bpf_attr of its size.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// A new inner table (`BPF_F_INNER_MAP` array of `u32`) holding `slots`.
pub fn create_filled(slots: &[u32]) -> io::Result<MapData> {
    if slots.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty Maglev table",
        ));
    }
    let mut name = [0u8; 16];
    name[..9].copy_from_slice(b"lb_maglev");
    let mut create = MapCreateAttr {
        map_type: BPF_MAP_TYPE_ARRAY,
        key_size: 4,
        value_size: 4,
        max_entries: slots.len() as u32,
        map_flags: BPF_F_INNER_MAP,
        map_name: name,
        ..Default::default()
    };
    let fd = bpf(BPF_MAP_CREATE, &mut create)?;
    // SAFETY: BPF_MAP_CREATE returned a new file descriptor that we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let keys: Vec<u32> = (0..slots.len() as u32).collect();
    let mut batch = BatchAttr {
        keys: keys.as_ptr() as u64,
        values: slots.as_ptr() as u64,
        count: slots.len() as u32,
        map_fd: std::os::fd::AsRawFd::as_raw_fd(&fd) as u32,
        ..Default::default()
    };
    bpf(BPF_MAP_UPDATE_BATCH, &mut batch)?;
    if batch.count as usize != slots.len() {
        return Err(io::Error::other(format!(
            "batch update wrote {} of {} slots",
            batch.count,
            slots.len()
        )));
    }
    MapData::from_fd(fd).map_err(io::Error::other)
}
