//! [`KernelError`]: the errors of the kernel layer, each naming what
//! failed (the map, program, interface or path, and the operation).

use std::path::Path;

/// Errors of the datapath layer.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// A system or file-system call on `path` failed.
    #[error("{path}: {op}: {source}")]
    Io {
        /// The file, directory or pin.
        path: String,
        /// The operation (`creating the directory`, `mounting bpffs`, ...).
        op: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// Loading the object.
    #[error("loading the eBPF object: {0}")]
    Ebpf(#[from] aya::EbpfError),
    /// A map operation.
    #[error("map: {0}")]
    Map(#[from] aya::maps::MapError),
    /// Program load/attach.
    #[error("program: {0}")]
    Program(#[from] aya::programs::ProgramError),
    /// Pinning.
    #[error("pin: {0}")]
    Pin(#[from] aya::pin::PinError),
    /// Link handling.
    #[error("link: {0}")]
    Link(#[from] aya::programs::links::LinkError),
    /// A directory under the pin root that cannot be trusted.
    #[error(transparent)]
    Dir(#[from] crate::private_dir::PrivateDirError),
    /// A raw `bpf(2)` call on a map (one the aya types do not cover) failed.
    #[error("{map} {op}: {source}")]
    MapCall {
        /// The map.
        map: &'static str,
        /// The operation (`lookup`, `delete`, `batch update`, ...).
        op: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// A system call, or starting a command, failed (not on a path).
    #[error("{call}: {source}")]
    Syscall {
        /// The call (`getrandom`, `running ip`).
        call: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The loaded eBPF object lacks a map this layer needs.
    #[error("no map {map} in the eBPF object")]
    MissingMap {
        /// The map's name.
        map: &'static str,
    },
    /// A VIP filter word index past the bitmap (a bug of the caller).
    #[error(
        "VIP filter word {word} is past the bitmap's {} words",
        lb_common::VIP_FILTER_WORDS
    )]
    FilterWord {
        /// The word's index.
        word: u32,
    },
    /// The loaded eBPF object lacks a program this layer needs.
    #[error("no program {program} in the eBPF object")]
    MissingProgram {
        /// The program's name.
        program: &'static str,
    },
    /// A per-CPU value for a map could not be built (one value per possible CPU).
    #[error("building a per-CPU value of {map}: {source}")]
    PerCpuValues {
        /// The per-CPU map written.
        map: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// No network interface of that name (in this network namespace).
    #[error("no interface {name}")]
    NoInterface {
        /// The interface name asked for.
        name: String,
    },
    /// `ip -j ...` printed something that is not the JSON expected.
    #[error("{command}: unreadable JSON: {source}")]
    IpJson {
        /// The command run.
        command: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A path that cannot be passed to a system call (it holds a NUL byte).
    #[error("{path}: a path with a NUL byte cannot be passed to the kernel")]
    NulInPath {
        /// The path.
        path: String,
    },
    /// A map write failed during an apply; every entry written before it was
    /// put back, so the maps hold exactly what they held before the apply.
    #[error(
        "map operation {index} of {total} ({op}) failed: {cause}; rolled back ({restored} entries restored)"
    )]
    RolledBack {
        /// 1-based position of the failing operation.
        index: usize,
        /// Operations in the plan.
        total: usize,
        /// The failing operation.
        op: String,
        /// Why it failed.
        cause: Box<KernelError>,
        /// Entries put back.
        restored: usize,
    },
    /// A map write failed during an apply and putting back what was already
    /// written failed too: the maps hold part of the plan.
    #[error("map operation {index} of {total} ({op}) failed: {cause}; rolling back failed too ({}): the datapath holds part of the new config", failed.join("; "))]
    RollbackFailed {
        /// 1-based position of the failing operation.
        index: usize,
        /// Operations in the plan.
        total: usize,
        /// The failing operation.
        op: String,
        /// Why it failed.
        cause: Box<KernelError>,
        /// Why each failed restore failed.
        failed: Vec<String>,
    },
}

impl KernelError {
    /// Operation `op` on `path` failed.
    pub fn io(path: impl AsRef<Path>, op: &'static str, source: std::io::Error) -> Self {
        Self::Io {
            path: path.as_ref().display().to_string(),
            op,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::KernelError;

    #[test]
    fn messages_name_what_failed() {
        let cases = [
            (
                KernelError::MissingMap {
                    map: lb_common::MAP_VIPS,
                },
                "no map VIPS in the eBPF object",
            ),
            (
                KernelError::MissingProgram {
                    program: lb_common::PROG_LB,
                },
                "no program lb_xdp in the eBPF object",
            ),
            (
                KernelError::PerCpuValues {
                    map: lb_common::MAP_BACKEND_STATS,
                    source: std::io::Error::from_raw_os_error(libc::EINVAL),
                },
                "building a per-CPU value of BACKEND_STATS: Invalid argument",
            ),
            (
                KernelError::MapCall {
                    map: lb_common::MAP_MAGLEV_TABLES,
                    op: "delete",
                    source: std::io::Error::from_raw_os_error(libc::EPERM),
                },
                "MAGLEV_TABLES delete: Operation not permitted",
            ),
            (
                KernelError::io(
                    "/sys/fs/bpf/lb/ns1/eth1/link",
                    "detaching the XDP link",
                    std::io::Error::from_raw_os_error(libc::EPERM),
                ),
                "/sys/fs/bpf/lb/ns1/eth1/link: detaching the XDP link: Operation not permitted",
            ),
            (
                KernelError::NoInterface {
                    name: "veth9".into(),
                },
                "no interface veth9",
            ),
            (
                KernelError::NulInPath {
                    path: "/run/lb/x".into(),
                },
                "/run/lb/x: a path with a NUL byte cannot be passed to the kernel",
            ),
        ];
        for (error, want) in cases {
            assert!(error.to_string().starts_with(want), "{error} vs {want}");
        }
    }
}
