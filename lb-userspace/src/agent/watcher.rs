//! Watches the config file's directory with inotify (so both in-place writes
//! and a temporary file renamed over the config are seen).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;
use std::time::Instant;

use tokio::sync::mpsc;

/// Starts a thread that sends the time of every write-close or rename-to of
/// `file` (by name, in its directory). Ends when the receiver is dropped.
pub fn watch(file: &Path) -> std::io::Result<mpsc::UnboundedReceiver<Instant>> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = file
        .file_name()
        .ok_or_else(|| std::io::Error::other("config path has no file name"))?
        .to_os_string();
    // SAFETY: plain syscall.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let cdir = CString::new(dir.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: fd is an inotify fd, cdir a valid path.
    let wd = unsafe {
        libc::inotify_add_watch(
            fd,
            cdir.as_ptr(),
            libc::IN_CLOSE_WRITE | libc::IN_MOVED_TO | libc::IN_CREATE,
        )
    };
    if wd < 0 {
        let e = std::io::Error::last_os_error();
        // SAFETY: closing our own fd.
        unsafe { libc::close(fd) };
        return Err(e);
    }
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("lb-config-watch".into())
        .spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                // SAFETY: buf is writable for its length.
                let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                if n <= 0 {
                    break;
                }
                let now = Instant::now();
                let mut off = 0usize;
                let mut hit = false;
                let header = size_of::<libc::inotify_event>();
                while off + header <= n as usize {
                    // SAFETY: the kernel wrote a whole event header at `off`.
                    let ev: libc::inotify_event =
                        unsafe { std::ptr::read_unaligned(buf.as_ptr().add(off).cast()) };
                    let name_bytes = &buf[off + header..off + header + ev.len as usize];
                    let end = name_bytes
                        .iter()
                        .position(|&b| b == 0)
                        .unwrap_or(name_bytes.len());
                    if &name_bytes[..end] == name.as_bytes() && ev.mask & libc::IN_CREATE == 0 {
                        hit = true;
                    }
                    off += header + ev.len as usize;
                }
                if hit && tx.send(now).is_err() {
                    break;
                }
            }
            // SAFETY: closing our own fd.
            unsafe { libc::close(fd) };
        })?;
    Ok(rx)
}
