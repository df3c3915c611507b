//! The bpffs pin root: make sure it is a bpffs that outlives this process,
//! owned by root and writable by nobody else (mounted `mode=0700`).

use std::path::{Path, PathBuf};

use super::KernelError;
use crate::private_dir;

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

/// Our parent's pid when it lives in another mount namespace than we do (as
/// under `ip netns exec`, which unshares the mount namespace and execs us).
fn parent_in_other_mount_namespace() -> Option<u32> {
    let ppid = std::os::unix::process::parent_id();
    let ours = std::fs::read_link("/proc/self/ns/mnt").ok()?;
    let theirs = std::fs::read_link(format!("/proc/{ppid}/ns/mnt")).ok()?;
    (ours != theirs).then_some(ppid)
}

/// The pin root as seen through our parent's mount namespace.
fn via_parent(ppid: u32, root: &Path) -> PathBuf {
    let rel = root.strip_prefix("/").unwrap_or(root);
    PathBuf::from(format!("/proc/{ppid}/root")).join(rel)
}

/// Resolves the pin root to a bpffs path that outlives this process, mounting
/// a bpffs when `mount` is set and none is there.
///
/// Under `ip netns exec` this process lives in a private mount namespace whose
/// mounts vanish with it (and every pin with them); mount propagation may be
/// off too. So when `root` is not a bpffs here and our parent (the process
/// that ran `ip netns exec`) lives in another mount namespace, the bpffs is
/// mounted *there* (`nsenter -t PPID -m`) and used through
/// `/proc/PPID/root/<root>`; pins made through that path live in the parent's
/// namespace and survive us. Otherwise the bpffs is mounted here.
pub fn resolve_root(root: &Path, mount: bool) -> Result<PathBuf, KernelError> {
    if is_bpffs(root) {
        return Ok(root.to_path_buf());
    }
    if let Some(ppid) = parent_in_other_mount_namespace() {
        let there = via_parent(ppid, root);
        if !is_bpffs(&there) && mount && mount_in_parent(ppid, root) {
            tracing::info!(root = %root.display(), "mounted bpffs in the parent's mount namespace");
        }
        if is_bpffs(&there) {
            tracing::info!(
                root = %root.display(), via = %there.display(),
                "private mount namespace: using the pin root of the parent's namespace"
            );
            return Ok(there);
        }
        if mount {
            tracing::warn!(
                root = %root.display(),
                "private mount namespace: a bpffs mounted here vanishes with this process \
                 (and the pins with it); mount it before `ip netns exec`"
            );
        }
    }
    if !mount {
        return Ok(root.to_path_buf());
    }
    mount_here(root)?;
    Ok(root.to_path_buf())
}

/// Makes `root` a bpffs mount point when it is not one already (see
/// [`resolve_root`]) and makes it private to root (see [`secure_root`]).
pub fn ensure_bpffs(root: &Path) -> Result<PathBuf, KernelError> {
    let root = resolve_root(root, true)?;
    private_dir::tighten(&root)?;
    Ok(root)
}

/// The pin root for a command that changes pins without mounting (`lb stop`,
/// `lb decap --detach`): resolved like [`resolve_root`], then, when it exists,
/// checked to be a real directory owned by root and made not writable by
/// others (a bpffs mounted without `mode=` is 1777), so nothing another user
/// planted below it can be followed.
pub fn secure_root(root: &Path) -> Result<PathBuf, KernelError> {
    let root = resolve_root(root, false)?;
    if std::fs::symlink_metadata(&root).is_ok() {
        private_dir::tighten(&root)?;
    }
    Ok(root)
}

/// `mkdir -p ROOT; mountpoint -q ROOT || mount -t bpf -o mode=0700 bpf ROOT`
/// in the mount namespace of `ppid`, each an argument vector (no shell: the
/// path is never parsed as a command line). True when a bpffs was mounted.
fn mount_in_parent(ppid: u32, root: &Path) -> bool {
    let nsenter = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new("nsenter")
            .args(["-t", &ppid.to_string(), "-m", "--"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let r = root.as_os_str();
    let mode = format!("mode={:o}", private_dir::PRIVATE_MODE);
    nsenter(&["mkdir".as_ref(), "-p".as_ref(), "--".as_ref(), r])
        && !nsenter(&["mountpoint".as_ref(), "-q".as_ref(), "--".as_ref(), r])
        && nsenter(&[
            "mount".as_ref(),
            "-t".as_ref(),
            "bpf".as_ref(),
            "-o".as_ref(),
            mode.as_ref(),
            "--".as_ref(),
            "bpf".as_ref(),
            r,
        ])
}

fn mount_here(root: &Path) -> Result<(), KernelError> {
    std::fs::create_dir_all(root)
        .map_err(|e| KernelError::io(root, "creating the directory", e))?;
    let c = std::ffi::CString::new(root.as_os_str().as_encoded_bytes()).map_err(|_| {
        KernelError::NulInPath {
            path: root.display().to_string(),
        }
    })?;
    // SAFETY: all pointers are valid NUL-terminated strings.
    let r = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            c.as_ptr(),
            c"bpf".as_ptr(),
            0,
            c"mode=0700".as_ptr().cast(),
        )
    };
    if r != 0 {
        return Err(KernelError::io(
            root,
            "mounting bpffs",
            std::io::Error::last_os_error(),
        ));
    }
    tracing::info!(root = %root.display(), "mounted bpffs");
    Ok(())
}

/// Removes every pin in `dir` and the directory itself (missing is fine); a
/// symbolic link or a directory not private to root is refused, never followed.
pub fn remove_pin_dir(dir: &Path) -> Result<(), KernelError> {
    Ok(private_dir::remove_entries_and_dir(dir)?)
}
