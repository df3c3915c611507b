//! Reading the config file: only regular files, within the size cap, with a
//! line for every problem. Each read runs on its own thread so that a reader
//! that blocks fails the test instead of hanging it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::super::input::MAX_CONFIG_BYTES;
use super::super::{ConfigError, load};
use super::web;

/// A fresh directory for one test.
fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lb-config-{tag}-{}", std::process::id()));
    let _ignored = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `load(path)`, failing the test if it takes longer than 30 s (a reader
/// blocked on a FIFO or reading /dev/zero never returns).
fn load_guarded(path: &Path) -> Result<crate::config::Config, ConfigError> {
    let (done, result) = std::sync::mpsc::channel();
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let _ignored = done.send(load(&path));
    });
    result
        .recv_timeout(Duration::from_secs(30))
        .expect("reading the config blocked")
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let dir = scratch("fifo");
    let fifo = dir.join("lb.yaml");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let e = load_guarded(&fifo).unwrap_err();
    assert!(
        matches!(e, ConfigError::NotRegularFile { what: "a FIFO", .. }),
        "{e}"
    );
    assert!(e.to_string().contains("not a regular file"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_symlink_to_dev_zero_is_refused() {
    let dir = scratch("zero");
    let link = dir.join("lb.yaml");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    let e = load_guarded(&link).unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::NotRegularFile {
                what: "a character device",
                ..
            }
        ),
        "{e}"
    );
    // A symlink to a regular file is fine.
    let real = dir.join("real.yaml");
    std::fs::write(&real, web("")).unwrap();
    let good = dir.join("good.yaml");
    std::os::unix::fs::symlink(&real, &good).unwrap();
    assert_eq!(load_guarded(&good).unwrap().services.len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_directory_is_refused() {
    let dir = scratch("dir");
    let e = load_guarded(&dir).unwrap_err();
    assert!(matches!(e, ConfigError::NotRegularFile { .. }), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_over_the_size_cap_is_refused_unread() {
    let dir = scratch("big");
    let path = dir.join("lb.yaml");
    let f = std::fs::File::create(&path).unwrap();
    // Sparse: costs no disk.
    f.set_len(MAX_CONFIG_BYTES + 1).unwrap();
    let e = load_guarded(&path).unwrap_err();
    assert!(matches!(e, ConfigError::TooLarge { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("more than the limit of 16777216 bytes"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn non_utf8_and_a_second_document_have_lines() {
    let dir = scratch("lines");
    let path = dir.join("lb.yaml");
    let mut bytes = web("").into_bytes();
    bytes.extend_from_slice(b"# caf\xe9\n");
    std::fs::write(&path, &bytes).unwrap();
    match load_guarded(&path).unwrap_err() {
        ConfigError::Invalid(p) => {
            assert_eq!(p[0].line, Some(9), "{p:?}");
            assert!(p[0].message.contains("not UTF-8"), "{p:?}");
        }
        other => panic!("{other}"),
    }
    std::fs::write(&path, format!("{}---\n{}", web(""), web(""))).unwrap();
    match load_guarded(&path).unwrap_err() {
        ConfigError::Invalid(p) => {
            assert_eq!(p[0].line, Some(9), "{p:?}");
            assert!(p[0].message.contains("second YAML document"), "{p:?}");
        }
        other => panic!("{other}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
