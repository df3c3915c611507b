//! Every raw `bpf(2)` call of the project, for what aya 0.14 does not expose:
//! open a pinned object by path, force-detach a link, create an mmapable
//! array, batch-update, look up, delete in an array-of-maps, open a map by
//! id, and a live-frames `BPF_PROG_TEST_RUN` (the bench's generator). Each
//! `union bpf_attr` member is a `#[repr(C)]` struct whose layout is checked
//! at compile time against `include/uapi/linux/bpf.h`; the one `unsafe`
//! system call is in `bpf`.
//!
//! Also the link facts only `/proc/self/fdinfo` tells (ifindex, program id),
//! and `CLOCK_MONOTONIC` (the clock of the datapath's deadlines).

use std::ffi::CString;
use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_OBJ_GET: libc::c_long = 7;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_MAP_GET_FD_BY_ID: libc::c_long = 14;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
const BPF_LINK_DETACH: libc::c_long = 34;

/// `BPF_MAP_TYPE_ARRAY`.
pub const BPF_MAP_TYPE_ARRAY: u32 = 2;
/// `BPF_F_TEST_XDP_LIVE_FRAMES`: test-run frames are really transmitted.
pub const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;

/// `union bpf_attr` for `BPF_OBJ_GET` (zero-padded).
#[repr(C)]
#[derive(Default)]
struct ObjGetAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
    path_fd: i32,
    _pad: [u32; 13],
}
const _: () = assert!(offset_of!(ObjGetAttr, file_flags) == 12 && size_of::<ObjGetAttr>() == 72);

/// `union bpf_attr` for `BPF_LINK_DETACH` (zero-padded).
#[repr(C)]
#[derive(Default)]
struct LinkDetachAttr {
    link_fd: u32,
    _pad: [u32; 15],
}
const _: () = assert!(size_of::<LinkDetachAttr>() == 64);

/// `union bpf_attr` for `BPF_MAP_CREATE` (the fields set, zero-padded).
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
const _: () = assert!(offset_of!(MapCreateAttr, map_name) == 28);

/// `union bpf_attr`'s element member (`BPF_MAP_LOOKUP_ELEM`, `_DELETE_ELEM`).
#[repr(C)]
#[derive(Default)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}
const _: () = assert!(offset_of!(ElemAttr, key) == 8 && size_of::<ElemAttr>() == 32);

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
const _: () = assert!(offset_of!(BatchAttr, count) == 32 && size_of::<BatchAttr>() == 56);

/// `union bpf_attr` for `BPF_MAP_GET_FD_BY_ID`.
#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    map_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// The `test` member of `union bpf_attr` (`BPF_PROG_TEST_RUN`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TestRunAttr {
    /// Program fd.
    pub prog_fd: u32,
    /// Out: the last return value.
    pub retval: u32,
    /// Length of `data_in`.
    pub data_size_in: u32,
    /// Length of `data_out` (none with live frames).
    pub data_size_out: u32,
    /// Frame pointer.
    pub data_in: u64,
    /// Output buffer pointer (none with live frames).
    pub data_out: u64,
    /// Number of runs.
    pub repeat: u32,
    /// Out: mean duration per run, ns.
    pub duration: u32,
    /// Length of `ctx_in`.
    pub ctx_size_in: u32,
    /// Length of `ctx_out` (none with live frames).
    pub ctx_size_out: u32,
    /// Context pointer (`struct xdp_md`).
    pub ctx_in: u64,
    /// Context output pointer (none with live frames).
    pub ctx_out: u64,
    /// `BPF_F_TEST_*` flags.
    pub flags: u32,
    /// CPU (unused here).
    pub cpu: u32,
    /// Frames per kernel batch (live frames).
    pub batch_size: u32,
    /// Zero (the struct's alignment padding).
    pub pad: u32,
}
const _: () = assert!(
    size_of::<TestRunAttr>() == 80
        && offset_of!(TestRunAttr, data_in) == 16
        && offset_of!(TestRunAttr, repeat) == 32
        && offset_of!(TestRunAttr, ctx_in) == 48
        && offset_of!(TestRunAttr, flags) == 64
        && offset_of!(TestRunAttr, batch_size) == 72
);

impl TestRunAttr {
    /// A live-frames run of `prog_fd` over `frame` with context `ctx`,
    /// `repeat` frames in batches of `batch`. The pointers borrow `frame`
    /// and `ctx`: use the result while both live.
    pub fn live(prog_fd: u32, frame: &[u8], ctx: &[u8], repeat: u32, batch: u32) -> Self {
        Self {
            prog_fd,
            data_size_in: frame.len() as u32,
            data_in: frame.as_ptr() as u64,
            repeat,
            ctx_size_in: ctx.len() as u32,
            ctx_in: ctx.as_ptr() as u64,
            flags: BPF_F_TEST_XDP_LIVE_FRAMES,
            batch_size: batch,
            ..Self::default()
        }
    }
}

/// One `bpf(cmd, attr, size_of(attr))`; the return value when not negative.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: every `T` passed is one of the `#[repr(C)]` bpf_attr members
    // above, fully initialised and zero-padded to the size passed (layouts
    // checked at compile time); the pointers they hold are to live buffers
    // of the sizes the command reads or writes, which outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Takes ownership of the file descriptor a `bpf(2)` command returned.
fn owned_fd(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel returned a fresh file descriptor nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Opens a pinned bpf object (map, program or link).
pub fn obj_get(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut attr = ObjGetAttr {
        pathname: c.as_ptr() as u64,
        ..Default::default()
    };
    bpf(BPF_OBJ_GET, &mut attr).map(owned_fd)
}

/// Detaches a link from its hook even while other processes hold it.
pub fn link_detach(link: &OwnedFd) -> io::Result<()> {
    let mut attr = LinkDetachAttr {
        link_fd: link.as_raw_fd() as u32,
        ..Default::default()
    };
    bpf(BPF_LINK_DETACH, &mut attr).map(drop)
}

/// Creates an array of `entries` `u32` values with `flags`, named `name`
/// (at most 15 bytes).
pub fn create_u32_array(name: &str, entries: u32, flags: u32) -> io::Result<OwnedFd> {
    let mut map_name = [0u8; 16];
    let len = name.len().min(15);
    map_name[..len].copy_from_slice(&name.as_bytes()[..len]);
    let mut attr = MapCreateAttr {
        map_type: BPF_MAP_TYPE_ARRAY,
        key_size: 4,
        value_size: 4,
        max_entries: entries,
        map_flags: flags,
        map_name,
        ..Default::default()
    };
    bpf(BPF_MAP_CREATE, &mut attr).map(owned_fd)
}

/// Stores `values[i]` at `keys[i]` in `map` with one `BPF_MAP_UPDATE_BATCH`
/// (`u32` keys and values: an array-of-maps takes inner map fds). Returns
/// how many the kernel stored.
pub fn update_batch_u32(map: BorrowedFd<'_>, keys: &[u32], values: &[u32]) -> io::Result<usize> {
    let count = keys.len().min(values.len());
    let mut attr = BatchAttr {
        keys: keys.as_ptr() as u64,
        values: values.as_ptr() as u64,
        count: count as u32,
        map_fd: map.as_raw_fd() as u32,
        ..Default::default()
    };
    bpf(BPF_MAP_UPDATE_BATCH, &mut attr)?;
    Ok(attr.count as usize)
}

/// The `u32` value at `key` of `map` (an array-of-maps gives the inner
/// map's id); `None` when the slot is empty.
pub fn lookup_u32(map: BorrowedFd<'_>, key: u32) -> io::Result<Option<u32>> {
    let mut value: u32 = 0;
    let mut attr = ElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: &key as *const u32 as u64,
        value: &mut value as *mut u32 as u64,
        ..Default::default()
    };
    match bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) {
        Ok(_) => Ok(Some(value)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Deletes `key` of `map` (aya 0.14 has no delete for an array-of-maps);
/// an absent key is not an error.
pub fn delete_u32(map: BorrowedFd<'_>, key: u32) -> io::Result<()> {
    let mut attr = ElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: &key as *const u32 as u64,
        ..Default::default()
    };
    match bpf(BPF_MAP_DELETE_ELEM, &mut attr) {
        Err(e) if e.raw_os_error() != Some(libc::ENOENT) => Err(e),
        _ => Ok(()),
    }
}

/// Opens the map of id `id`; `None` when it no longer exists.
pub fn map_fd_by_id(id: u32) -> io::Result<Option<OwnedFd>> {
    let mut attr = GetFdByIdAttr {
        map_id: id,
        ..Default::default()
    };
    match bpf(BPF_MAP_GET_FD_BY_ID, &mut attr) {
        Ok(fd) => Ok(Some(owned_fd(fd))),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One `BPF_PROG_TEST_RUN`; `Ok(false)` when a signal ended it (`EINTR`).
/// `attr`'s pointers must be valid for the sizes it gives.
pub fn prog_test_run(attr: &mut TestRunAttr) -> io::Result<bool> {
    match bpf(BPF_PROG_TEST_RUN, attr) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EINTR) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The ifindex an XDP link is attached to (0 once its interface is gone or it
/// was detached), from `/proc/self/fdinfo`.
pub fn xdp_link_ifindex(link: &OwnedFd) -> io::Result<u32> {
    fdinfo_u32(link, "ifindex:")
}

/// The id of the program a link runs, from `/proc/self/fdinfo`.
pub fn link_prog_id(link: &OwnedFd) -> io::Result<u32> {
    fdinfo_u32(link, "prog_id:")
}

/// The number after `key` in `fd`'s `/proc/self/fdinfo` (0 when absent).
fn fdinfo_u32(fd: &OwnedFd, key: &str) -> io::Result<u32> {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

/// `CLOCK_MONOTONIC` now, in nanoseconds: the clock of the datapath's
/// `bpf_ktime_get_ns`, so that deadlines written into maps compare with it.
pub fn monotonic_ns() -> io::Result<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::TestRunAttr;

    #[test]
    fn a_live_run_sets_frames_context_flags_and_batch_only() {
        let frame = [0u8; 64];
        let ctx = [0u8; 24];
        let a = TestRunAttr::live(5, &frame, &ctx, 100, 256);
        assert_eq!((a.prog_fd, a.data_size_in, a.ctx_size_in), (5, 64, 24));
        assert_eq!((a.flags, a.batch_size, a.repeat), (2, 256, 100));
        assert_eq!((a.data_out, a.ctx_out, a.data_size_out), (0, 0, 0));
        assert_eq!(a.data_in, frame.as_ptr() as u64);
    }
}
