//! Best-effort mapping from YAML structure to 1-based line numbers.
//!
//! `serde_yaml::Value` carries no positions, so problems found while walking it
//! are placed by scanning the text: block-style mappings and sequences are
//! followed by indentation. Flow style (`{a: 1}`, `[x, y]`) falls back to the
//! line of the enclosing key.

/// One significant (non-blank, non-comment) line.
#[derive(Clone, Debug)]
struct Line<'t> {
    /// 1-based line number.
    number: usize,
    /// Leading spaces.
    raw_indent: usize,
    /// Column of the text after any leading `- ` sequence markers.
    key_indent: usize,
    /// Text after the indentation (sequence markers included).
    raw: &'t str,
    /// Text after the indentation and any `- ` markers.
    text: &'t str,
}

/// The significant lines of a YAML document.
#[derive(Debug)]
pub(crate) struct LineMap<'t> {
    lines: Vec<Line<'t>>,
}

/// A range of lines holding one block-style node.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Block {
    /// First line index (into `LineMap::lines`), inclusive.
    start: usize,
    /// Last line index, exclusive.
    end: usize,
    /// Column of the keys of this mapping.
    indent: usize,
}

impl<'t> LineMap<'t> {
    /// Scans `text`.
    pub(crate) fn new(text: &'t str) -> Self {
        let lines = text
            .lines()
            .enumerate()
            .filter_map(|(index, line)| {
                let trimmed = line.trim_start_matches(' ');
                if trimmed.trim().is_empty() || trimmed.starts_with('#') || trimmed == "---" {
                    return None;
                }
                let raw_indent = line.len() - trimmed.len();
                let mut text = trimmed;
                while let Some(rest) = text.strip_prefix('-') {
                    if rest.is_empty() || rest.starts_with(' ') {
                        text = rest.trim_start_matches(' ');
                    } else {
                        break;
                    }
                }
                Some(Line {
                    number: index + 1,
                    raw_indent,
                    key_indent: line.len() - text.len(),
                    raw: trimmed,
                    text,
                })
            })
            .collect();
        LineMap { lines }
    }

    /// The whole document as a block.
    pub(crate) fn root(&self) -> Block {
        Block {
            start: 0,
            end: self.lines.len(),
            indent: self.lines.first().map_or(0, |l| l.key_indent),
        }
    }

    /// 1-based line of the first line of `block`, if any.
    pub(crate) fn first_line(&self, block: Block) -> Option<usize> {
        (block.start < block.end).then(|| self.lines[block.start].number)
    }

    /// Finds `key` in the mapping `block`: its line and the block of its value.
    pub(crate) fn key(&self, block: Block, key: &str) -> Option<(usize, Block)> {
        let index = (block.start..block.end).find(|&i| {
            let line = &self.lines[i];
            line.key_indent == block.indent && key_of(line.text) == Some(key)
        })?;
        let line = &self.lines[index];
        let key_indent = line.key_indent;
        let end = (index + 1..block.end)
            .find(|&j| {
                let next = &self.lines[j];
                next.raw_indent < key_indent
                    || (next.raw_indent == key_indent && !next.raw.starts_with('-'))
            })
            .unwrap_or(block.end);
        let start = index + 1;
        let indent = if start < end {
            self.lines[start].key_indent
        } else {
            usize::MAX
        };
        Some((line.number, Block { start, end, indent }))
    }

    /// The items of the block-style sequence `block` (empty for flow style).
    pub(crate) fn items(&self, block: Block) -> Vec<Block> {
        if block.start >= block.end || !self.lines[block.start].raw.starts_with('-') {
            return Vec::new();
        }
        let dash = self.lines[block.start].raw_indent;
        let starts: Vec<usize> = (block.start..block.end)
            .filter(|&i| self.lines[i].raw_indent == dash && self.lines[i].raw.starts_with('-'))
            .collect();
        starts
            .iter()
            .enumerate()
            .map(|(n, &start)| {
                // The item's own keys start after the first `- ` marker.
                let raw = self.lines[start].raw;
                let after = raw[1..].trim_start_matches(' ');
                let indent = dash + (raw.len() - after.len());
                Block {
                    start,
                    end: starts.get(n + 1).copied().unwrap_or(block.end),
                    indent,
                }
            })
            .collect()
    }
}

/// The key of a `key: value` / `key:` line.
fn key_of(text: &str) -> Option<&str> {
    let colon = text.find(':')?;
    let rest = &text[colon + 1..];
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    Some(text[..colon].trim().trim_matches(|c| c == '"' || c == '\''))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# comment
maglev_table_size: 7
services:
  - name: web
    port: 80
    backends:
      - address: 198.18.3.2
      - address: 198.18.4.2
    health_check:
      port: 81
- not: really
";

    #[test]
    fn finds_nested_keys_and_items() {
        let map = LineMap::new(TEXT);
        let root = map.root();
        assert_eq!(map.key(root, "maglev_table_size").map(|k| k.0), Some(2));
        let (line, services) = map.key(root, "services").unwrap();
        assert_eq!(line, 3);
        let items = map.items(services);
        assert_eq!(items.len(), 1);
        assert_eq!(map.first_line(items[0]), Some(4));
        assert_eq!(map.key(items[0], "name").map(|k| k.0), Some(4));
        assert_eq!(map.key(items[0], "port").map(|k| k.0), Some(5));
        let (_, backends) = map.key(items[0], "backends").unwrap();
        let backends = map.items(backends);
        assert_eq!(backends.len(), 2);
        assert_eq!(map.key(backends[1], "address").map(|k| k.0), Some(8));
        let (_, hc) = map.key(items[0], "health_check").unwrap();
        assert_eq!(map.key(hc, "port").map(|k| k.0), Some(10));
    }

    #[test]
    fn compact_sequences() {
        let text = "services:\n- name: a\n  backends:\n  - address: x\n- name: b\n";
        let map = LineMap::new(text);
        let (_, services) = map.key(map.root(), "services").unwrap();
        let items = map.items(services);
        assert_eq!(items.len(), 2);
        let (_, backends) = map.key(items[0], "backends").unwrap();
        let backends = map.items(backends);
        assert_eq!(backends.len(), 1);
        assert_eq!(map.key(backends[0], "address").map(|k| k.0), Some(4));
        assert_eq!(map.key(items[1], "name").map(|k| k.0), Some(5));
    }
}
