//! `lb drain`'s marker: a file beside the agent's state file
//! (`<state_dir>/<iface>.drain`) saying `drain TOKEN` or `undrain TOKEN`. The
//! agent reads it on every announcement step and watches it, so a drain takes
//! effect at once, and records the token it acted on in its state (so that
//! `lb drain` knows its request, not an older state, was applied); a missing
//! or unreadable marker means "not drained by command".

use std::path::{Path, PathBuf};

/// Content of a marker that drains the node.
const DRAIN: &str = "drain";
/// Content of a marker that lifts the drain.
const UNDRAIN: &str = "undrain";

/// The marker file that goes with state file `state_file`.
pub fn marker_path(state_file: &Path) -> PathBuf {
    state_file.with_extension("drain")
}

/// The marker of `state_file`: (drain asked?, its token); `(false, None)`
/// without a readable marker.
pub fn read(state_file: &Path) -> (bool, Option<String>) {
    let Ok(text) = std::fs::read_to_string(marker_path(state_file)) else {
        return (false, None);
    };
    let mut words = text.split_whitespace();
    let drain = words.next() == Some(DRAIN);
    (drain, words.next().map(str::to_string))
}

/// Writes the marker (temporary file renamed over it, so a watcher sees one
/// complete write): `drain TOKEN` or `undrain TOKEN`; returns the token.
pub fn write(state_file: &Path, drain: bool) -> std::io::Result<String> {
    let path = marker_path(state_file);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let token = format!("{nanos}-{}", std::process::id());
    let tmp = path.with_extension("drain.tmp");
    let word = if drain { DRAIN } else { UNDRAIN };
    std::fs::write(&tmp, format!("{word} {token}\n"))?;
    std::fs::rename(&tmp, &path)?;
    Ok(token)
}

/// Removes the marker (with the state, on `lb stop`); absent is fine.
pub fn remove(state_file: &Path) {
    let _ignored = std::fs::remove_file(marker_path(state_file));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trips() {
        let dir = std::env::temp_dir().join(format!("lb-drain-test-{}", std::process::id()));
        let state = dir.join("eth0.100.json");
        assert_eq!(marker_path(&state), dir.join("eth0.100.drain"));
        assert_eq!(read(&state), (false, None));
        let t1 = write(&state, true).unwrap();
        assert_eq!(read(&state), (true, Some(t1.clone())));
        let t2 = write(&state, false).unwrap();
        assert_ne!(t1, t2);
        assert_eq!(read(&state), (false, Some(t2)));
        remove(&state);
        assert!(!marker_path(&state).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
