//! Directories under the pin root and the state directory that only root may
//! change. A local user who could write there could plant a symbolic link
//! (and have root's `lb stop` empty the directory it points to) or a file
//! where a pin goes (and keep `lb run` from starting). So every directory lb
//! uses there is created mode 0700, and an existing one is used only when it
//! is a real directory (never a symbolic link: checked with `lstat`, opened
//! with `O_NOFOLLOW`), owned by root (or the caller), and not writable by
//! group or others. Anything else is refused with an error naming the path.

use std::ffi::CString;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Mode of the directories lb creates (and of the bpffs it mounts).
pub const PRIVATE_MODE: u32 = 0o700;
/// Group/other write bits: none may be set on a private directory.
const SHARED_BITS: u32 = 0o022;
/// The sticky bit, dropped together with them (it only matters to a
/// directory others can write to; a bpffs root always has it).
const STICKY: u32 = 0o1000;

/// Why a directory cannot be trusted (or created, or emptied).
#[derive(Debug, thiserror::Error)]
pub enum PrivateDirError {
    /// A system call failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A symbolic link where a directory of lb's goes.
    #[error(
        "{path} is a symbolic link (owned by uid {uid}); refusing to follow it \
         (remove it, and make sure only root can write to {parent})"
    )]
    Symlink {
        /// The link.
        path: PathBuf,
        /// Its owner.
        uid: u32,
        /// The directory it was planted in.
        parent: PathBuf,
    },
    /// Something else than a directory.
    #[error("{path} is not a directory (owned by uid {uid}); refusing to use it")]
    NotDirectory {
        /// The path.
        path: PathBuf,
        /// Its owner.
        uid: u32,
    },
    /// Owned by another user.
    #[error("{path} is owned by uid {uid}, not root; refusing to use it (remove it)")]
    ForeignOwner {
        /// The directory.
        path: PathBuf,
        /// Its owner.
        uid: u32,
    },
    /// Writable by group or others.
    #[error(
        "{path} is writable by other users (mode {mode:04o}); refusing to use it \
         (chmod go-w it, or remove it)"
    )]
    SharedWritable {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PrivateDirError + '_ {
    move |source| PrivateDirError::Io {
        path: path.into(),
        source,
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// True when `uid` may own lb's directories: root, or the caller itself.
fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == euid()
}

/// `lstat` of `path`: `None` when it does not exist.
fn lstat(path: &Path) -> Result<Option<std::fs::Metadata>, PrivateDirError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

/// Refuses a symbolic link or a non-directory at `path`.
fn real_directory(path: &Path, m: &std::fs::Metadata) -> Result<(), PrivateDirError> {
    if m.file_type().is_symlink() {
        return Err(PrivateDirError::Symlink {
            path: path.into(),
            uid: m.uid(),
            parent: path.parent().unwrap_or(Path::new("/")).into(),
        });
    }
    if !m.is_dir() {
        return Err(PrivateDirError::NotDirectory {
            path: path.into(),
            uid: m.uid(),
        });
    }
    if !trusted_owner(m.uid()) {
        return Err(PrivateDirError::ForeignOwner {
            path: path.into(),
            uid: m.uid(),
        });
    }
    Ok(())
}

/// Checks an existing directory of lb's; `Ok(false)` when it does not exist.
pub fn check(path: &Path) -> Result<bool, PrivateDirError> {
    let Some(m) = lstat(path)? else {
        return Ok(false);
    };
    real_directory(path, &m)?;
    let mode = m.mode() & 0o7777;
    if mode & SHARED_BITS != 0 {
        return Err(PrivateDirError::SharedWritable {
            path: path.into(),
            mode,
        });
    }
    Ok(true)
}

/// Creates `path` (mode 0700; its parent must exist and be checked by the
/// caller) or checks the existing one.
pub fn ensure(path: &Path) -> Result<(), PrivateDirError> {
    match std::fs::DirBuilder::new().mode(PRIVATE_MODE).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(path)(e)),
    }
    check(path).map(|_| ())
}

/// Creates `path` and its missing parents (parents get the usual 0755 under
/// umask 022), then makes sure the leaf is a private directory.
pub fn ensure_all(path: &Path) -> Result<(), PrivateDirError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    ensure(path)
}

/// Makes a root directory of lb's private: it must be a real directory owned
/// by root (or the caller); group/other write bits (and then the sticky bit)
/// are removed, with a warning (a bpffs mounted without `mode=` is 1777).
pub fn tighten(path: &Path) -> Result<(), PrivateDirError> {
    let Some(m) = lstat(path)? else {
        return Err(io(path)(std::io::ErrorKind::NotFound.into()));
    };
    real_directory(path, &m)?;
    let mode = m.mode() & 0o7777;
    if mode & SHARED_BITS != 0 {
        let tight = mode & !(SHARED_BITS | STICKY);
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(tight)).map_err(io(path))?;
        tracing::warn!(
            "{} was writable by other users (mode {mode:04o}); now {tight:04o}",
            path.display()
        );
    }
    Ok(())
}

/// Opens the directory `path` without following a symbolic link.
fn open_nofollow(path: &Path) -> Result<OwnedFd, PrivateDirError> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io(path)(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    // SAFETY: c is a valid NUL-terminated path.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io(path)(std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh descriptor we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Removes every entry of the private directory `dir` (files and pins only:
/// removed relative to a descriptor opened with `O_NOFOLLOW`, so a symbolic
/// link is removed itself, never followed), then `dir`. Missing is fine.
pub fn remove_entries_and_dir(dir: &Path) -> Result<(), PrivateDirError> {
    if !check(dir)? {
        return Ok(());
    }
    let fd = open_nofollow(dir)?;
    let listed = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    for entry in std::fs::read_dir(&listed).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = CString::new(entry.file_name().as_bytes()).expect("no NUL in a file name");
        // SAFETY: fd is an open directory, name a valid NUL-terminated name.
        if unsafe { libc::unlinkat(fd.as_raw_fd(), name.as_ptr(), 0) } != 0 {
            return Err(io(&dir.join(entry.file_name()))(
                std::io::Error::last_os_error(),
            ));
        }
    }
    std::fs::remove_dir(dir).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lb-private-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_created_directory_is_private_and_a_symlink_is_refused() {
        let base = scratch("link");
        let dir = base.join("mine");
        ensure(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().mode() & 0o7777;
        assert_eq!(mode, PRIVATE_MODE);
        std::fs::write(dir.join("pin"), b"x").unwrap();
        let victim = base.join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join("precious"), b"x").unwrap();
        let planted = base.join("planted");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let e = remove_entries_and_dir(&planted).unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        assert!(
            ensure(&planted)
                .unwrap_err()
                .to_string()
                .contains("symbolic link")
        );
        assert!(victim.join("precious").exists());
        remove_entries_and_dir(&dir).unwrap();
        assert!(!dir.exists());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_directory_writable_by_others_is_refused_or_tightened() {
        let base = scratch("mode");
        let dir = base.join("shared");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let e = check(&dir).unwrap_err();
        assert!(
            e.to_string()
                .contains("writable by other users (mode 1777)"),
            "{e}"
        );
        tighten(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o7777, 0o755);
        assert!(check(&dir).unwrap());
        assert!(!check(&base.join("absent")).unwrap());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
