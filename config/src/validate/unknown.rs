//! Unknown keys do not hide the rest of the file.
//!
//! Every raw table denies unknown keys, and serde stops at the first one. To report them all,
//! together with the validation errors of everything else, [`deserialize`] records the
//! unknown key, blanks its entry out of a copy of the text (a `key = value`, an inline-table
//! member with its comma, or a whole `[table]` with its subtables) and deserializes again.
//! Blanking replaces every byte but line breaks with a space, so every other value keeps its
//! byte offset, and so its line and column in the original text.
//!
//! Each unknown key gets a "did you mean" when a known key of its table is close to it.

use std::ops::Range;

use toml_edit::{ImDocument, Item, Key, Table, Value};

use crate::raw::RawConfig;

/// At most this many unknown keys are recovered from; past it, the file is not worth more.
const MAX_UNKNOWN: usize = 64;

/// An unknown key: where it is and what to say about it.
pub(super) struct UnknownKey {
    /// Byte offset of the key in the text.
    pub(super) at: usize,
    /// `unknown key `htp` (did you mean `http`?), expected one of ...`.
    pub(super) message: String,
}

/// The raw configuration with every unknown key left out, and those keys, in the order
/// found. `Err(Some(e))`: the first error that is not an unknown key (a syntax or type error).
/// `Err(None)`: an unknown key could not be left out (its shape is not one this module knows;
/// never seen) or there are too many; every unknown key found is in the list.
pub(super) fn deserialize(
    text: &str,
) -> (Result<RawConfig, Option<toml::de::Error>>, Vec<UnknownKey>) {
    let mut unknown = Vec::new();
    let mut current = text.to_owned();
    loop {
        let e = match toml::from_str::<RawConfig>(&current) {
            Ok(raw) => return (Ok(raw), unknown),
            Err(e) => e,
        };
        let (Some((key, expected)), Some(at)) = (unknown_key(e.message()), e.span()) else {
            return (Err(Some(e)), unknown);
        };
        let at = at.start;
        unknown.push(UnknownKey {
            at,
            message: message(&key, &expected, e.message()),
        });
        let next = entry_ranges(&current, at)
            .map(|ranges| blank(&current, &ranges))
            .filter(|t| ImDocument::parse(t.as_str()).is_ok());
        match next {
            Some(next) if unknown.len() < MAX_UNKNOWN => current = next,
            _ => return (Err(None), unknown),
        }
    }
}

/// The key and the known keys of serde's "unknown field `k`, expected one of `a`, `b`".
fn unknown_key(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((key.to_owned(), expected))
}

/// toml's message for the key, in this file format's words, with a suggestion when one of
/// the known keys is close.
fn message(key: &str, expected: &[String], toml_message: &str) -> String {
    let first_line = toml_message.lines().next().unwrap_or_default().trim();
    let rest = first_line
        .strip_prefix(&format!("unknown field `{key}`"))
        .unwrap_or_default();
    match suggestion(key, expected) {
        Some(s) => format!("unknown key `{key}` (did you mean `{s}`?){rest}"),
        None => format!("unknown key `{key}`{rest}"),
    }
}

/// The known key closest to `key`, when it is close enough to be a typo of it: at most one
/// edit for short keys, two from six characters, three from nine (a swap counts as one).
pub(crate) fn suggestion<'a>(key: &str, known: &'a [String]) -> Option<&'a str> {
    let key = key.to_ascii_lowercase();
    let allowed = match key.chars().count() {
        0..=5 => 1,
        6..=8 => 2,
        _ => 3,
    };
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&key, k), k))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// `text` with every byte in `ranges` but line breaks replaced by a space.
fn blank(text: &str, ranges: &[Range<usize>]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for r in ranges {
        for b in bytes.get_mut(r.clone()).into_iter().flatten() {
            if *b != b'\n' && *b != b'\r' {
                *b = b' ';
            }
        }
    }
    // Ranges come from the parser's spans, so they hold whole characters: still UTF-8.
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The byte ranges of the entry whose key starts at `at`, or `None` when no key starts there
/// or its shape is not one this module knows how to leave out.
fn entry_ranges(text: &str, at: usize) -> Option<Vec<Range<usize>>> {
    let doc = ImDocument::parse(text).ok()?;
    let mut out = Vec::new();
    find_in_table(text, doc.as_table(), at, &mut out)?.then_some(out)
}

/// Looks for the key at `at` in `table` and below; `Some(true)` with `out` filled when found.
fn find_in_table(
    text: &str,
    table: &Table,
    at: usize,
    out: &mut Vec<Range<usize>>,
) -> Option<bool> {
    for (name, _) in table.iter() {
        let (key, item) = table.get_key_value(name)?;
        if starts_at(key, at) {
            item_ranges(text, key, item, out)?;
            return Some(true);
        }
        let found = match item {
            Item::Table(t) => find_in_table(text, t, at, out)?,
            Item::ArrayOfTables(a) => {
                let mut found = false;
                for t in a.iter() {
                    if find_in_table(text, t, at, out)? {
                        found = true;
                        break;
                    }
                }
                found
            }
            Item::Value(v) => find_in_value(text, v, at, out)?,
            Item::None => false,
        };
        if found {
            return Some(true);
        }
    }
    Some(false)
}

/// Looks for the key at `at` inside a value (inline tables, arrays of them).
fn find_in_value(
    text: &str,
    value: &Value,
    at: usize,
    out: &mut Vec<Range<usize>>,
) -> Option<bool> {
    match value {
        Value::InlineTable(t) => {
            for (name, _) in t.iter() {
                let (key, item) = t.get_key_value(name)?;
                let Item::Value(v) = item else { return None };
                if starts_at(key, at) {
                    if t.is_dotted() || matches!(v, Value::InlineTable(i) if i.is_dotted()) {
                        return None;
                    }
                    out.push(inline_member(text, key.span()?.start, v.span()?.end));
                    return Some(true);
                }
                if find_in_value(text, v, at, out)? {
                    return Some(true);
                }
            }
            Some(false)
        }
        Value::Array(a) => {
            for v in a.iter() {
                if find_in_value(text, v, at, out)? {
                    return Some(true);
                }
            }
            Some(false)
        }
        _ => Some(false),
    }
}

fn starts_at(key: &Key, at: usize) -> bool {
    key.span().is_some_and(|s| s.start == at)
}

/// The ranges of `key = item` in a table written with headers or dotted keys.
fn item_ranges(text: &str, key: &Key, item: &Item, out: &mut Vec<Range<usize>>) -> Option<()> {
    match item {
        Item::None => Some(()),
        Item::Value(v) => {
            // In such a table, a `key = value` (dotted or not) begins its line.
            let start = line_start(text, key.span()?.start);
            out.push(start..v.span()?.end);
            Some(())
        }
        Item::Table(t) => table_ranges(text, t, out),
        Item::ArrayOfTables(a) => {
            for t in a.iter() {
                table_ranges(text, t, out)?;
            }
            Some(())
        }
    }
}

/// A whole table: its header and entries when it has a header, then its subtables.
fn table_ranges(text: &str, table: &Table, out: &mut Vec<Range<usize>>) -> Option<()> {
    let has_header = !table.is_implicit() && !table.is_dotted();
    if has_header {
        out.push(table.span()?);
    }
    for (name, _) in table.iter() {
        let (key, item) = table.get_key_value(name)?;
        match item {
            // Entries of a table with a header are inside its span.
            Item::Value(_) if has_header => {}
            Item::Table(t) if has_header && t.is_dotted() => {}
            _ => item_ranges(text, key, item, out)?,
        }
    }
    Some(())
}

/// Where the line holding `at` begins, after its indentation.
fn line_start(text: &str, at: usize) -> usize {
    let head = text.get(..at).unwrap_or(text);
    let begin = head.rfind('\n').map_or(0, |i| i + 1);
    begin + (head[begin..].len() - head[begin..].trim_start_matches([' ', '\t']).len())
}

/// An inline-table member from its key to its value, with the comma that separates it from
/// the next member, or else from the previous one.
fn inline_member(text: &str, start: usize, end: usize) -> Range<usize> {
    let after = text.get(end..).unwrap_or_default();
    let next = after.trim_start_matches([' ', '\t']);
    if next.starts_with(',') {
        return start..end + (after.len() - next.len()) + 1;
    }
    let before = text.get(..start).unwrap_or_default();
    let before = before.trim_end_matches([' ', '\t']);
    if before.ends_with(',') {
        return before.len() - 1..end;
    }
    start..end
}
