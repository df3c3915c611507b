//! Creating the chunks of a fresh connection table (`lb_common::flow_table`):
//! one inner array of one `FlowChunk` per slot of `CONNTRACK`, all stored with
//! one `BPF_MAP_UPDATE_BATCH`.
//!
//! The kernel waits for an RCU grace period after every map-in-map write
//! syscall (about 10 ms here): one update per chunk would take 12 s for the
//! default table's 1,093 chunks; one batch waits once.

use std::os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, OwnedFd};

use aya::Ebpf;
use aya::maps::Map;

use super::{KernelError, sys};

/// Creates every chunk the connection table of the loaded datapath `ebpf`
/// lacks (a fresh table has none; an adopted one has all). Returns how many
/// it created.
pub fn fill(ebpf: &Ebpf) -> Result<u32, KernelError> {
    let map = lb_common::MAP_CONNTRACK;
    let Some(Map::ArrayOfMaps(outer)) = ebpf.map(map) else {
        return Err(KernelError::MissingMap { map });
    };
    let chunks = outer.info()?.max_entries();
    fill_fd(outer.fd().as_fd(), chunks)
}

/// [`fill`] for the outer array `outer` of `chunks` entries.
pub fn fill_fd(outer: BorrowedFd<'_>, chunks: u32) -> Result<u32, KernelError> {
    let map = lb_common::MAP_CONNTRACK;
    let call = |op: &'static str| move |source| KernelError::MapCall { map, op, source };
    let mut keys = Vec::new();
    let mut inner: Vec<OwnedFd> = Vec::new();
    for index in 0..chunks {
        if sys::lookup_u32(outer, index)
            .map_err(call("lookup"))?
            .is_some()
        {
            continue;
        }
        let value_size = lb_common::FLOW_CHUNK_BYTES as u32;
        inner
            .push(sys::create_array("lb_flows", value_size, 1, 0).map_err(call("create a chunk"))?);
        keys.push(index);
    }
    let fds: Vec<u32> = inner.iter().map(|fd| fd.as_raw_fd() as u32).collect();
    let mut done = 0;
    while done < keys.len() {
        let stored = sys::update_batch_u32(outer, &keys[done..], &fds[done..])
            .map_err(call("batch update"))?;
        if stored == 0 {
            return Err(KernelError::MapCall {
                map,
                op: "batch update",
                source: std::io::Error::other(format!("stored {done} of {} chunks", keys.len())),
            });
        }
        done += stored;
    }
    Ok(keys.len() as u32)
}
