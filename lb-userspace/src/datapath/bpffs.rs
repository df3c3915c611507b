//! The bpffs pin root: make sure it is a bpffs that outlives this process.

use std::path::Path;

use super::DatapathError;

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// True when `path` is the root of (or inside) a mounted bpffs.
pub fn is_bpffs(path: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs writes into the zeroed struct we pass.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid NUL-terminated path.
    let r = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    r == 0 && st.f_type as i64 == BPF_FS_MAGIC
}

fn same_mount_namespace_as_init() -> bool {
    match (
        std::fs::read_link("/proc/self/ns/mnt"),
        std::fs::read_link("/proc/1/ns/mnt"),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => true,
    }
}

/// Makes `root` a bpffs mount point when it is not one already.
///
/// Under `ip netns exec` this process lives in a private mount namespace whose
/// mounts vanish with it (and every pin with them), so the bpffs is first
/// mounted in the host's mount namespace (through `nsenter -t 1 -m`), from
/// where it propagates into ours; only if that fails is it mounted locally,
/// with a warning.
pub fn ensure_bpffs(root: &Path) -> Result<(), DatapathError> {
    if is_bpffs(root) {
        return Ok(());
    }
    if !same_mount_namespace_as_init() {
        let shown = root.display().to_string();
        let ok = std::process::Command::new("nsenter")
            .args(["-t", "1", "-m", "--", "sh", "-c"])
            .arg(format!(
                "mkdir -p '{shown}' && (mountpoint -q '{shown}' || mount -t bpf bpf '{shown}')"
            ))
            .status()
            .is_ok_and(|s| s.success());
        if ok && is_bpffs(root) {
            tracing::info!(root = %shown, "mounted bpffs in the host mount namespace");
            return Ok(());
        }
        tracing::warn!(
            root = %shown,
            "running in a private mount namespace: a bpffs mounted here vanishes with this \
             process (and the pins with it); mount it in the host namespace first"
        );
    }
    std::fs::create_dir_all(root).map_err(|e| DatapathError::io(root, e))?;
    let c = std::ffi::CString::new(root.as_os_str().as_encoded_bytes())
        .map_err(|_| DatapathError::Other(format!("bad path {}", root.display())))?;
    // SAFETY: all pointers are valid NUL-terminated strings.
    let r = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            c.as_ptr(),
            c"bpf".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(DatapathError::io(root, std::io::Error::last_os_error()));
    }
    tracing::info!(root = %root.display(), "mounted bpffs");
    Ok(())
}

/// Removes every pin in `dir` and the directory itself (missing is fine).
pub fn remove_pin_dir(dir: &Path) -> Result<(), DatapathError> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries.flatten() {
                let p = e.path();
                std::fs::remove_file(&p).map_err(|e| DatapathError::io(&p, e))?;
            }
            std::fs::remove_dir(dir).map_err(|e| DatapathError::io(dir, e))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DatapathError::io(dir, e)),
    }
}
