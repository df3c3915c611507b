//! Typed access to the fields of a YAML mapping, collecting problems instead
//! of stopping at the first one.

use serde_yaml::{Mapping, Value};

use super::Problem;
use super::lines::{Block, LineMap};

/// Collects problems while a document is walked.
pub(crate) struct Ctx<'t> {
    /// Where things are in the text.
    pub(crate) lines: LineMap<'t>,
    /// Every problem so far.
    pub(crate) problems: Vec<Problem>,
}

impl Ctx<'_> {
    /// Records a problem.
    pub(crate) fn report(
        &mut self,
        line: Option<usize>,
        location: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem {
            line,
            location: location.into(),
            message: message.into(),
        });
    }
}

/// A YAML mapping being read: its value, where it is, and its name for messages.
pub(crate) struct MapView<'v> {
    map: &'v Mapping,
    block: Option<Block>,
    /// Line of the mapping itself (fallback for keys not found in the text).
    pub(crate) line: Option<usize>,
    /// Location prefix, e.g. `services[web]` (empty at top level).
    pub(crate) location: String,
}

/// Short description of a value's type for messages.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {:?}", shortened(s)),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(t) => format!("tagged value {}", t.tag),
    }
}

/// `s`, or its first 60 characters and its length when longer (a huge value
/// is not copied into every message).
pub(crate) fn shortened(s: &str) -> String {
    const SHOWN: usize = 60;
    match s.char_indices().nth(SHOWN) {
        None => s.to_string(),
        Some((end, _)) => format!("{}... ({} bytes)", &s[..end], s.len()),
    }
}

/// Joins a location prefix and a key.
pub(crate) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

impl<'v> MapView<'v> {
    /// Views `value` (at `line`, its keys in `block`) as a mapping allowing only
    /// `allowed` keys; reports a wrong type or unknown keys. `None` when `value`
    /// is not a mapping.
    pub(crate) fn new(
        ctx: &mut Ctx<'_>,
        value: &'v Value,
        block: Option<Block>,
        line: Option<usize>,
        location: String,
        allowed: &[&str],
    ) -> Option<Self> {
        let Value::Mapping(map) = value else {
            let what = if location.is_empty() {
                "the document"
            } else {
                "this"
            };
            ctx.report(
                line,
                display_location(&location),
                format!("{what} must be a mapping of keys, got {}", describe(value)),
            );
            return None;
        };
        let view = MapView {
            map,
            block,
            line,
            location,
        };
        for key in map.keys() {
            match key {
                Value::String(k) if allowed.contains(&k.as_str()) => {}
                Value::String(k) => {
                    let line = view.key_line(ctx, k);
                    ctx.report(
                        line,
                        display_location(&view.location),
                        format!(
                            "unknown key {k:?} (expected one of: {})",
                            allowed.join(", ")
                        ),
                    );
                }
                other => ctx.report(
                    view.line,
                    display_location(&view.location),
                    format!("keys must be strings, got {}", describe(other)),
                ),
            }
        }
        Some(view)
    }

    /// The value of `key`; `None` when absent or null.
    pub(crate) fn get(&self, key: &str) -> Option<&'v Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// Line of `key` (or of the mapping when not found).
    pub(crate) fn key_line(&self, ctx: &Ctx<'_>, key: &str) -> Option<usize> {
        self.block
            .and_then(|b| ctx.lines.key(b, key))
            .map(|(line, _)| line)
            .or(self.line)
    }

    /// Block of `key`'s value, when block style.
    pub(crate) fn key_block(&self, ctx: &Ctx<'_>, key: &str) -> Option<Block> {
        self.block
            .and_then(|b| ctx.lines.key(b, key))
            .map(|(_, block)| block)
    }

    /// Reports a problem about `key`.
    pub(crate) fn report(&self, ctx: &mut Ctx<'_>, key: &str, message: impl Into<String>) {
        let line = self.key_line(ctx, key);
        ctx.report(line, join(&self.location, key), message);
    }

    /// Reports a problem about the mapping itself, at the line of `key`.
    pub(crate) fn report_on_line_of(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        message: impl Into<String>,
    ) {
        let line = self.key_line(ctx, key);
        ctx.report(line, display_location(&self.location), message);
    }

    /// Reports a problem about the mapping itself.
    pub(crate) fn report_here(&self, ctx: &mut Ctx<'_>, message: impl Into<String>) {
        ctx.report(self.line, display_location(&self.location), message);
    }

    /// Reports a missing required key.
    pub(crate) fn missing(&self, ctx: &mut Ctx<'_>, key: &str) {
        self.report_here(ctx, format!("missing required key {key:?}"));
    }

    /// An unsigned integer field no larger than `max`.
    pub(crate) fn uint(&self, ctx: &mut Ctx<'_>, key: &str, max: u64) -> Field<u64> {
        let Some(value) = self.get(key) else {
            return Field::Absent;
        };
        match value.as_u64() {
            Some(n) if n <= max => Field::Value(n),
            Some(n) => {
                self.report(ctx, key, format!("{key} {n} out of range 0..={max}"));
                Field::Invalid
            }
            None => {
                let message = match value.as_i64() {
                    Some(n) => format!("{key} {n} out of range 0..={max}"),
                    None => format!("{key} must be a whole number, got {}", describe(value)),
                };
                self.report(ctx, key, message);
                Field::Invalid
            }
        }
    }

    /// A number field (integer or decimal).
    pub(crate) fn float(&self, ctx: &mut Ctx<'_>, key: &str) -> Field<f64> {
        let Some(value) = self.get(key) else {
            return Field::Absent;
        };
        match value.as_f64() {
            Some(x) => Field::Value(x),
            None => {
                self.report(
                    ctx,
                    key,
                    format!("{key} must be a number, got {}", describe(value)),
                );
                Field::Invalid
            }
        }
    }

    /// A boolean field.
    pub(crate) fn boolean(&self, ctx: &mut Ctx<'_>, key: &str) -> Field<bool> {
        let Some(value) = self.get(key) else {
            return Field::Absent;
        };
        match value.as_bool() {
            Some(b) => Field::Value(b),
            None => {
                self.report(
                    ctx,
                    key,
                    format!("{key} must be true or false, got {}", describe(value)),
                );
                Field::Invalid
            }
        }
    }

    /// A string field.
    pub(crate) fn string(&self, ctx: &mut Ctx<'_>, key: &str) -> Field<&'v str> {
        let Some(value) = self.get(key) else {
            return Field::Absent;
        };
        match value.as_str() {
            Some(s) => Field::Value(s),
            None => {
                self.report(
                    ctx,
                    key,
                    format!("{key} must be a string, got {}", describe(value)),
                );
                Field::Invalid
            }
        }
    }

    /// A scalar rendered as text (strings as-is, numbers/bools printed), for
    /// fields such as addresses that users may leave unquoted.
    pub(crate) fn scalar_text(&self, ctx: &mut Ctx<'_>, key: &str) -> Field<String> {
        let Some(value) = self.get(key) else {
            return Field::Absent;
        };
        match value {
            Value::String(s) => Field::Value(s.clone()),
            Value::Number(n) => Field::Value(n.to_string()),
            Value::Bool(b) => Field::Value(b.to_string()),
            other => {
                self.report(
                    ctx,
                    key,
                    format!("{key} must be a single value, got {}", describe(other)),
                );
                Field::Invalid
            }
        }
    }
}

/// The location shown for a mapping: its path, or `(top level)`.
pub(crate) fn display_location(location: &str) -> String {
    if location.is_empty() {
        "(top level)".into()
    } else {
        location.into()
    }
}

/// A field read from a mapping.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Field<T> {
    /// Not present (or null).
    Absent,
    /// Present but wrong (already reported).
    Invalid,
    /// Present and well-typed.
    Value(T),
}

impl<T> Field<T> {
    /// The value, or `default` when absent; `None` when invalid.
    pub(crate) fn or_default(self, default: T) -> Option<T> {
        match self {
            Field::Absent => Some(default),
            Field::Invalid => None,
            Field::Value(v) => Some(v),
        }
    }

    /// The value; reports a missing required key when absent.
    pub(crate) fn required(self, ctx: &mut Ctx<'_>, view: &MapView<'_>, key: &str) -> Option<T> {
        match self {
            Field::Absent => {
                view.missing(ctx, key);
                None
            }
            Field::Invalid => None,
            Field::Value(v) => Some(v),
        }
    }
}
