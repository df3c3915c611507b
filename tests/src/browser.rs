//! A real browser for tests: Debian's headless Chromium started inside a
//! network namespace and driven through the DevTools protocol over a pipe
//! (`--remote-debugging-pipe`: JSON messages separated by NUL on descriptors 3
//! and 4), so no WebSocket client is needed. Dropping the [`Browser`] kills
//! Chromium's whole process group and removes its profile directory.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::fd::{AsRawFd, FromRawFd as _, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long one DevTools command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// Errors driving the browser.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// Chromium could not be started.
    #[error("cannot start chromium (is the Debian package installed?): {0}")]
    Spawn(#[source] std::io::Error),
    /// A pipe to Chromium failed.
    #[error("DevTools pipe: {0}")]
    Pipe(#[source] std::io::Error),
    /// Chromium answered a command with an error, or not at all.
    #[error("DevTools {method}: {message}")]
    Command {
        /// The DevTools method.
        method: String,
        /// What went wrong.
        message: String,
    },
}

/// A headless Chromium driven over the DevTools pipe.
#[derive(Debug)]
pub struct Browser {
    child: Child,
    to_browser: File,
    from_browser: Receiver<Value>,
    next_id: u64,
    profile: PathBuf,
}

/// One page (tab) of a [`Browser`].
#[derive(Debug, Clone)]
pub struct Page {
    session: String,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), BrowserError> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(BrowserError::Pipe(std::io::Error::last_os_error()));
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl Browser {
    /// Starts Chromium in namespace `ns` with a fresh profile under `scratch`,
    /// its own log in `scratch/chromium.log`.
    pub fn start(ns: &str, scratch: &Path) -> Result<Browser, BrowserError> {
        let profile = scratch.join("chromium-profile");
        let _ignored = std::fs::remove_dir_all(&profile);
        let log = File::create(scratch.join("chromium.log")).map_err(BrowserError::Spawn)?;
        let log_err = log.try_clone().map_err(BrowserError::Spawn)?;
        // Chromium reads commands on fd 3 and writes answers on fd 4.
        let (cmd_read, cmd_write) = pipe()?;
        let (out_read, out_write) = pipe()?;
        let (cmd_fd, out_fd) = (cmd_read.as_raw_fd(), out_write.as_raw_fd());
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", ns, "chromium"])
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0);
        // SAFETY: only async-signal-safe calls (dup2) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                for (from, to) in [(cmd_fd, 3), (out_fd, 4)] {
                    if libc::dup2(from, to) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(BrowserError::Spawn)?;
        drop((cmd_read, out_write));
        let (tx, from_browser) = channel();
        let mut reader = BufReader::new(File::from(out_read));
        std::thread::spawn(move || {
            let mut message = Vec::new();
            while reader.read_until(0, &mut message).is_ok_and(|n| n > 0) {
                message.pop_if(|b| *b == 0);
                if let Ok(value) = serde_json::from_slice::<Value>(&message)
                    && tx.send(value).is_err()
                {
                    return;
                }
                message.clear();
            }
        });
        Ok(Browser {
            child,
            to_browser: File::from(cmd_write),
            from_browser,
            next_id: 1,
            profile,
        })
    }

    /// Sends one command (to `session`, or to the browser) and waits for its
    /// result, skipping events.
    fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, BrowserError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).expect("serializes");
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .map_err(BrowserError::Pipe)?;
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let fail = |message: String| BrowserError::Command {
            method: method.to_owned(),
            message,
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let answer = match self.from_browser.recv_timeout(left) {
                Ok(answer) => answer,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(fail(format!("no answer in {COMMAND_TIMEOUT:?}")));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(fail("chromium closed its pipe (exited?)".into()));
                }
            };
            if answer["id"] != json!(id) {
                continue;
            }
            if let Some(error) = answer.get("error") {
                return Err(fail(error.to_string()));
            }
            return Ok(answer["result"].clone());
        }
    }

    /// Opens `url` in a new tab.
    pub fn open(&mut self, url: &str) -> Result<Page, BrowserError> {
        let target = self.call(None, "Target.createTarget", json!({ "url": url }))?;
        let session = self.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        )?;
        let session = session["sessionId"]
            .as_str()
            .ok_or_else(|| BrowserError::Command {
                method: "Target.attachToTarget".into(),
                message: format!("no sessionId in {session}"),
            })?
            .to_owned();
        Ok(Page { session })
    }

    /// Evaluates the JavaScript expression `expression` in `page` and returns
    /// its value (JSON-serializable values only).
    pub fn eval(&mut self, page: &Page, expression: &str) -> Result<Value, BrowserError> {
        let result = self.call(
            Some(&page.session),
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        )?;
        if let Some(exception) = result.get("exceptionDetails") {
            return Err(BrowserError::Command {
                method: "Runtime.evaluate".into(),
                message: format!("{expression}: {exception}"),
            });
        }
        Ok(result["result"]["value"].clone())
    }

    /// A PNG screenshot of `page`.
    pub fn screenshot(&mut self, page: &Page) -> Result<Vec<u8>, BrowserError> {
        let result = self.call(
            Some(&page.session),
            "Page.captureScreenshot",
            json!({ "format": "png" }),
        )?;
        let data = result["data"].as_str().unwrap_or_default();
        Ok(base64_decode(data))
    }
}

/// Decodes standard base64 (the screenshot data); invalid characters are skipped.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Chromium forks helpers into its process group: end them all.
        let pgid = self.child.id() as i32;
        // SAFETY: killpg on the process group of our own child.
        unsafe { libc::killpg(pgid, libc::SIGKILL) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn decodes_base64() {
        assert_eq!(base64_decode("iVBORw0KGgo="), b"\x89PNG\r\n\x1a\n");
        assert_eq!(base64_decode("aGk="), b"hi");
    }
}
