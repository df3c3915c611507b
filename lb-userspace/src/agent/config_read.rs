//! Reading the config off the agent's loop: the read, the checks of
//! [`config::input`] and validation run on their own thread, and the loop
//! waits at most [`CONFIG_READ_TIMEOUT`] for them, so signals, health events
//! and next hops keep being handled whatever the file is.

use std::path::Path;
use std::time::Duration;

use crate::config::{self, Config, ConfigError};

/// How long the agent waits for the config to be read and checked. A regular
/// file within the size cap takes milliseconds; past this the read is
/// abandoned (its thread ends on its own) and the last good state stays.
pub const CONFIG_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// [`config::load`] on its own thread, waiting at most `timeout`.
pub async fn load_within(path: &Path, timeout: Duration) -> Result<Config, ConfigError> {
    run_within(path, timeout, config::load).await
}

/// `load(path)` on its own thread, waiting at most `timeout`.
async fn run_within(
    path: &Path,
    timeout: Duration,
    load: impl FnOnce(&Path) -> Result<Config, ConfigError> + Send + 'static,
) -> Result<Config, ConfigError> {
    let (done, result) = tokio::sync::oneshot::channel();
    let owned = path.to_path_buf();
    std::thread::Builder::new()
        .name("lb-config-read".into())
        .spawn(move || {
            // The receiver is gone only when the agent gave up waiting.
            let _ignored = done.send(load(&owned));
        })
        .map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
    match tokio::time::timeout(timeout, result).await {
        Ok(Ok(loaded)) => loaded,
        Ok(Err(_)) => Err(ConfigError::Read {
            path: path.display().to_string(),
            source: std::io::Error::other("the config reader thread ended without a result"),
        }),
        Err(_) => Err(ConfigError::TimedOut {
            path: path.display().to_string(),
            seconds: timeout.as_secs(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read that never finishes: the agent stops waiting at the timeout.
    #[test]
    fn a_read_that_hangs_times_out() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let (release, hang) = std::sync::mpsc::channel::<()>();
        let stuck = move |_: &Path| {
            let _ignored = hang.recv();
            Err(ConfigError::Invalid(Vec::new()))
        };
        let e = runtime
            .block_on(run_within(
                Path::new("/hangs.yaml"),
                Duration::from_millis(100),
                stuck,
            ))
            .unwrap_err();
        assert!(matches!(e, ConfigError::TimedOut { .. }), "{e}");
        assert!(e.to_string().contains("/hangs.yaml"), "{e}");
        drop(release);
    }

    #[test]
    fn a_fifo_is_refused_off_the_loop() {
        let dir = std::env::temp_dir().join(format!("lb-config-read-{}", std::process::id()));
        let _ignored = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("lb.yaml");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let e = runtime
            .block_on(load_within(&fifo, CONFIG_READ_TIMEOUT))
            .unwrap_err();
        assert!(matches!(e, ConfigError::NotRegularFile { .. }), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
