//! Errors with a position in the configuration file.

use std::fmt;

/// One problem found in a configuration file, with its position.
///
/// Displayed as `{origin}:{line}:{col}: {message}`, or `{origin}: {message}` when the problem
/// has no position (line 0, e.g. the file cannot be read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file name used in messages.
    pub origin: String,
    /// 1-based line, or 0 when the error concerns the whole file.
    pub line: usize,
    /// 1-based column (in characters), or 0 when the error concerns the whole file.
    pub col: usize,
    /// What is wrong, then what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.origin, self.line, self.col, self.message
            )
        }
    }
}

/// Every problem found in a configuration file, in file order. Never empty when returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ConfigErrors {
    /// How many errors there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (never the case for an error returned by `parse`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The errors, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

/// Turns a byte offset in `text` into a 1-based (line, column); the column counts characters.
/// An offset past the end points just after the last character; one inside a character
/// points at that character.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let t = "ab\ncdé\nf";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 1), (1, 2));
        assert_eq!(line_col(t, 2), (1, 3));
        assert_eq!(line_col(t, 3), (2, 1));
        assert_eq!(line_col(t, 5), (2, 3));
        // Inside the two-byte é: points at it.
        assert_eq!(line_col(t, 6), (2, 3));
        assert_eq!(line_col(t, 8), (3, 1));
        assert_eq!(line_col(t, 100), (3, 2));
    }

    #[test]
    fn display_with_and_without_position() {
        let e = ConfigError {
            origin: "a.toml".into(),
            line: 3,
            col: 7,
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "a.toml:3:7: bad");
        let io = ConfigError {
            origin: "a.toml".into(),
            line: 0,
            col: 0,
            message: "cannot read: gone".into(),
        };
        assert_eq!(io.to_string(), "a.toml: cannot read: gone");
        assert_eq!(
            ConfigErrors(vec![e, io]).to_string(),
            "a.toml:3:7: bad\na.toml: cannot read: gone"
        );
    }
}
