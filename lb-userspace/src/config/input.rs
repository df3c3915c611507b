//! What the config reader accepts before any YAML parsing, so that a hostile
//! or broken file costs bounded time and memory: a regular file (a FIFO,
//! device or directory is refused without being read) of at most
//! [`MAX_CONFIG_BYTES`], UTF-8, lines of at most [`MAX_LINE_BYTES`], nesting
//! at most [`MAX_NESTING`] deep, one YAML document. `lb check` and the agent
//! read through here alike.

use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::Path;

use super::{ConfigError, Problem};

/// Largest config file read (16 MiB; a config at the datapath's limits of
/// 1,024 services and 65,536 backends takes about 3 MiB).
pub const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// Longest line (64 KiB).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Deepest nesting of mappings and lists, block and flow style together (the
/// config itself needs 5; the YAML parser slows down quadratically with depth).
pub const MAX_NESTING: usize = 32;

/// Longest service name, in bytes (names appear in logs, `lb stats` and
/// metric labels).
pub const MAX_NAME_BYTES: usize = 255;

/// Longest health-check HTTP path, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;

/// Reads `path`: a regular file (symlinks followed) of at most
/// [`MAX_CONFIG_BYTES`]. The file is opened non-blocking, so a FIFO is refused
/// rather than waited on.
pub fn read_file(path: &Path) -> Result<Vec<u8>, ConfigError> {
    let read_error = |source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(read_error)?;
    let meta = file.metadata().map_err(read_error)?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(ConfigError::NotRegularFile {
            path: path.display().to_string(),
            what,
        });
    }
    let too_large = |size| ConfigError::TooLarge {
        path: path.display().to_string(),
        size,
    };
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // One byte more than allowed tells a file that grew meanwhile.
    File::take(file, MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// `bytes` as UTF-8, or a problem at the line of the first invalid byte.
pub fn decode(bytes: &[u8]) -> Result<&str, Problem> {
    std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        Problem {
            line: Some(line_at(good.len(), good)),
            location: "file".into(),
            message: format!(
                "not UTF-8 (invalid byte 0x{:02x} at column {})",
                bytes[e.valid_up_to()],
                good.len() - good.iter().rposition(|&b| b == b'\n').map_or(0, |n| n + 1) + 1
            ),
        }
    })
}

/// 1-based line of byte `offset` of `text`.
fn line_at(offset: usize, text: &[u8]) -> usize {
    1 + text[..offset].iter().filter(|&&b| b == b'\n').count()
}

/// Checks line lengths, nesting depth and the number of documents before the
/// YAML parser sees `text`.
pub fn check_shape(text: &str) -> Result<(), Problem> {
    let mut scan = Scanner::default();
    for (index, line) in text.split('\n').enumerate() {
        let number = index + 1;
        if line.len() > MAX_LINE_BYTES {
            return Err(Problem {
                line: Some(number),
                location: "file".into(),
                message: format!(
                    "line of {} bytes, longer than the limit of {MAX_LINE_BYTES}",
                    line.len()
                ),
            });
        }
        scan.line(line.strip_suffix('\r').unwrap_or(line))
            .map_err(|message| Problem {
                line: Some(number),
                location: "yaml".into(),
                message,
            })?;
    }
    Ok(())
}

/// Quoted scalar being scanned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quote {
    Single,
    Double,
}

/// Line-by-line state of [`check_shape`]: an approximation of the YAML
/// structure that never under-counts the nesting of a real document.
#[derive(Debug, Default)]
struct Scanner {
    /// Indentation of the enclosing block nodes.
    indents: Vec<usize>,
    /// Open `[`/`{`.
    flow: usize,
    /// Inside a quoted scalar (which may span lines).
    quote: Option<Quote>,
    /// Lines more indented than this belong to a block scalar (`|`, `>`).
    block_scalar: Option<usize>,
    /// A document has begun (content or `---`).
    document: bool,
    /// The document was ended by `...`.
    ended: bool,
}

impl Scanner {
    fn line(&mut self, line: &str) -> Result<(), String> {
        let trimmed = line.trim_start_matches(' ');
        let indent = line.len() - trimmed.len();
        let blank = trimmed.trim().is_empty();
        if let Some(parent) = self.block_scalar {
            if blank || indent > parent {
                return Ok(());
            }
            self.block_scalar = None;
        }
        if self.quote.is_none() && self.flow == 0 {
            if blank || trimmed.starts_with('#') {
                return Ok(());
            }
            if indent == 0 && is_marker(line, "---") {
                if self.document {
                    return Err(
                        "a second YAML document starts here; the config is one document".into(),
                    );
                }
                self.document = true;
                return Ok(());
            }
            if indent == 0 && is_marker(line, "...") {
                self.ended = true;
                return Ok(());
            }
            if indent == 0 && trimmed.starts_with('%') && !self.document {
                return Ok(()); // a directive
            }
            if self.ended {
                return Err(
                    "content after the end of the YAML document (`...`); the config is one document"
                        .into(),
                );
            }
            self.document = true;
            while self.indents.last().is_some_and(|&i| i >= indent) {
                self.indents.pop();
            }
            self.indents.push(indent);
        }
        self.scan_nodes(trimmed, indent)
    }

    /// Scans the text of one line for sequence markers, flow brackets, quotes,
    /// comments and block scalar headers.
    fn scan_nodes(&mut self, text: &str, indent: usize) -> Result<(), String> {
        let bytes = text.as_bytes();
        // Depth added on this line by `- ` markers and `key: ` values.
        let mut inline = 0usize;
        // Whether a node may start here (line start, after `- `, `: `, `? `, or in flow after `[{,`).
        let mut node_start = true;
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            if let Some(q) = self.quote {
                match (q, c) {
                    (Quote::Double, b'\\') => i += 1,
                    (Quote::Double, b'"') => self.quote = None,
                    (Quote::Single, b'\'') if bytes.get(i + 1) == Some(&b'\'') => i += 1,
                    (Quote::Single, b'\'') => self.quote = None,
                    _ => {}
                }
                i += 1;
                node_start = false;
                continue;
            }
            let space_before = i == 0 || matches!(bytes[i - 1], b' ' | b'\t');
            let followed_by_space = matches!(bytes.get(i + 1), None | Some(b' ' | b'\t'));
            match c {
                b'#' if space_before => break,
                b'"' | b'\'' if node_start || (self.flow > 0 && space_before) => {
                    self.quote = Some(if c == b'"' {
                        Quote::Double
                    } else {
                        Quote::Single
                    });
                }
                b'[' | b'{' if node_start || self.flow > 0 => {
                    self.flow += 1;
                    node_start = true;
                    self.depth_check(inline)?;
                }
                b']' | b'}' if self.flow > 0 => self.flow -= 1,
                b',' if self.flow > 0 => node_start = true,
                b'*' if node_start => {
                    // Expanding aliases of aliases grows exponentially
                    // (an "alias bomb"); the config has no use for them.
                    return Err("YAML aliases (`*name`) are not supported in the config".into());
                }
                b'-' | b'?' if self.flow == 0 && node_start && followed_by_space => {
                    inline += 1;
                    self.depth_check(inline)?;
                }
                b':' if followed_by_space => {
                    node_start = true;
                    if self.flow == 0 {
                        inline += 1;
                        self.depth_check(inline)?;
                    }
                }
                b'|' | b'>' if self.flow == 0 && node_start => {
                    // A block scalar: the following more-indented lines are its text.
                    self.block_scalar = Some(indent);
                    break;
                }
                b' ' | b'\t' => {}
                _ => node_start = false,
            }
            i += 1;
        }
        Ok(())
    }

    fn depth_check(&self, inline: usize) -> Result<(), String> {
        let depth = self.indents.len() + inline + self.flow;
        if depth > MAX_NESTING {
            Err(format!(
                "nesting deeper than {MAX_NESTING} levels (mappings and lists inside each other)"
            ))
        } else {
            Ok(())
        }
    }
}

/// True when `line` is the marker `---` or `...` (alone or followed by a space).
fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape_problem(text: &str) -> Problem {
        check_shape(text).expect_err("expected a problem")
    }

    #[test]
    fn ordinary_configs_pass() {
        let text = "# c\nmaglev_table_size: 7\nservices:\n  - name: \"a [x\"\n    vip: 198.18.0.1\n    backends: [{address: 198.18.3.2}, {address: '198.18.3.3'}]\n    health_check:\n      path: /a[b]{c}\n      kind: >\n        http\n          [[[[\n";
        check_shape(text).unwrap();
        check_shape("---\nservices: []\n...\n").unwrap();
    }

    #[test]
    fn deep_flow_nesting_is_refused_with_its_line() {
        let text = format!("services:\n  - {}\n", "[".repeat(1000));
        let p = shape_problem(&text);
        assert_eq!(p.line, Some(2));
        assert!(p.message.contains("nesting deeper than 32"), "{p:?}");
        // The 100,000 `[` (24 s in the YAML parser), one per line.
        let text = format!("services:\n{}", "[\n".repeat(100_000));
        assert_eq!(shape_problem(&text).line, Some(33));
    }

    #[test]
    fn deep_block_nesting_is_refused() {
        let text: String = (0..40)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        assert_eq!(shape_problem(&text).line, Some(32));
        let p = shape_problem(&format!("a: {}x\n", "- ".repeat(40)));
        assert_eq!(p.line, Some(1));
    }

    #[test]
    fn aliases_are_refused() {
        let p = shape_problem("a: &x [1]\nb: [*x, *x]\n");
        assert_eq!(p.line, Some(2));
        assert!(p.message.contains("aliases"), "{p:?}");
        assert_eq!(shape_problem("a: &x {k: 1}\nb:\n  <<: *x\n").line, Some(3));
        check_shape("path: /a*b\nname: \"*x\"\n").unwrap();
    }

    #[test]
    fn a_long_line_is_refused() {
        let text = format!("services:\n  - name: {}\n", "n".repeat(MAX_LINE_BYTES));
        let p = shape_problem(&text);
        assert_eq!(p.line, Some(2));
        assert!(p.message.contains("longer than the limit"), "{p:?}");
    }

    #[test]
    fn a_second_document_has_a_line() {
        assert_eq!(shape_problem("a: 1\n---\nb: 2\n").line, Some(2));
        assert_eq!(shape_problem("---\na: 1\n--- \nb: 2\n").line, Some(3));
        assert_eq!(shape_problem("a: 1\n...\n\nb: 2\n").line, Some(4));
    }

    #[test]
    fn non_utf8_has_a_line_and_column() {
        let p = decode(b"a: 1\nb: x\xff\n").unwrap_err();
        assert_eq!(p.line, Some(2));
        assert!(p.message.contains("0xff at column 5"), "{p:?}");
    }
}
