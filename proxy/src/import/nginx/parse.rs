//! A parser for nginx's configuration grammar, as `nginx -T` sees it.
//!
//! Tokens are bare words, `"double"` or `'single'` quoted strings (with `\` escapes), `{`,
//! `}` and `;`; `#` starts a comment to the end of the line; `${var}` inside a word is part
//! of the word. Every directive keeps its position (`file:line:col`). `include` is followed
//! while parsing (a `*` glob in the last path component, relative to the including file's
//! directory when relative), so the tree holds no `include` directive. Malformed input gives
//! a [`ParseError`] with a position, never a panic.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a directive starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    /// The file, as given or as found by `include`.
    pub file: Arc<PathBuf>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// One directive: `name arg…;` or `name arg… { block }`.
#[derive(Debug, Clone)]
pub struct Directive {
    /// The directive's name (`proxy_pass`).
    pub name: String,
    /// Its arguments, unquoted.
    pub args: Vec<String>,
    /// The block's directives, for `server { … }` and the like.
    pub block: Option<Vec<Directive>>,
    /// Where the name starts.
    pub pos: Pos,
}

impl Directive {
    /// The directives of the block (empty for a simple directive).
    pub fn children(&self) -> &[Directive] {
        self.block.as_deref().unwrap_or(&[])
    }
}

/// A syntax error, or an include that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Where it happened.
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pos, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Includes nested deeper than this are refused (a file including itself).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Reads and parses `path`, following its includes.
pub fn parse_file(path: &Path) -> Result<Vec<Directive>, ParseError> {
    let file = Arc::new(path.to_path_buf());
    let start = Pos {
        file: file.clone(),
        line: 1,
        col: 1,
    };
    let text = std::fs::read_to_string(path).map_err(|e| ParseError {
        pos: start,
        message: format!("cannot read the file: {e}"),
    })?;
    parse_text(&text, file, 0)
}

/// Parses `text` as the contents of `file` (includes are resolved next to it).
pub fn parse_str(text: &str, file: &Path) -> Result<Vec<Directive>, ParseError> {
    parse_text(text, Arc::new(file.to_path_buf()), 0)
}

fn parse_text(text: &str, file: Arc<PathBuf>, depth: usize) -> Result<Vec<Directive>, ParseError> {
    let tokens = tokenize(text, &file)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        file,
        depth,
    };
    let list = parser.block()?;
    if let Some(t) = parser.tokens.get(parser.at) {
        return Err(ParseError {
            pos: t.pos.clone(),
            message: "unexpected \"}\"".into(),
        });
    }
    Ok(list)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Word(String),
    Open,
    Close,
    Semi,
}

#[derive(Debug)]
struct Token {
    kind: Kind,
    pos: Pos,
}

fn tokenize(text: &str, file: &Arc<PathBuf>) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    let mut out = Vec::new();
    let pos = |line, col| Pos {
        file: file.clone(),
        line,
        col,
    };
    // Advances over chars[i], keeping line and column.
    macro_rules! bump {
        () => {{
            if chars[i] == '\n' {
                line += 1;
                col = 1;
            } else {
                col += 1;
            }
            i += 1;
        }};
    }
    while i < chars.len() {
        let c = chars[i];
        let here = pos(line, col);
        match c {
            c if c.is_whitespace() => bump!(),
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    bump!();
                }
            }
            '{' | '}' | ';' => {
                let kind = match c {
                    '{' => Kind::Open,
                    '}' => Kind::Close,
                    _ => Kind::Semi,
                };
                out.push(Token { kind, pos: here });
                bump!();
            }
            '"' | '\'' => {
                bump!();
                let mut word = String::new();
                loop {
                    let Some(&d) = chars.get(i) else {
                        return Err(ParseError {
                            pos: here,
                            message: format!("unterminated string: no closing {c}"),
                        });
                    };
                    if d == c {
                        bump!();
                        break;
                    }
                    if d == '\\' && i + 1 < chars.len() {
                        bump!();
                        let e = chars[i];
                        // nginx keeps the backslash except before the quote and itself.
                        if e != c && e != '\\' {
                            word.push('\\');
                        }
                        word.push(e);
                        bump!();
                        continue;
                    }
                    word.push(d);
                    bump!();
                }
                if let Some(&n) = chars.get(i) {
                    if !(n.is_whitespace() || n == ';' || n == '{' || n == '}') {
                        return Err(ParseError {
                            pos: pos(line, col),
                            message: format!("unexpected {n:?} after a quoted string"),
                        });
                    }
                }
                out.push(Token {
                    kind: Kind::Word(word),
                    pos: here,
                });
            }
            _ => {
                let mut word = String::new();
                while let Some(&d) = chars.get(i) {
                    if d.is_whitespace() || d == ';' || d == '}' {
                        break;
                    }
                    if d == '{' {
                        // `${var}` is part of a word; any other `{` opens a block.
                        if word.ends_with('$') {
                            while let Some(&e) = chars.get(i) {
                                word.push(e);
                                bump!();
                                if e == '}' {
                                    break;
                                }
                                if e == '\n' || e == ';' {
                                    return Err(ParseError {
                                        pos: here,
                                        message: "unterminated \"${\" variable".into(),
                                    });
                                }
                            }
                            continue;
                        }
                        break;
                    }
                    if d == '\\' && i + 1 < chars.len() {
                        bump!();
                        word.push('\\');
                    }
                    word.push(chars[i]);
                    bump!();
                }
                out.push(Token {
                    kind: Kind::Word(word),
                    pos: here,
                });
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    file: Arc<PathBuf>,
    depth: usize,
}

impl Parser {
    /// Directives up to a `}` (left for the caller) or the end.
    fn block(&mut self) -> Result<Vec<Directive>, ParseError> {
        let mut list = Vec::new();
        while let Some(t) = self.tokens.get(self.at) {
            let pos = t.pos.clone();
            let name = match &t.kind {
                Kind::Close => return Ok(list),
                Kind::Word(w) => w.clone(),
                Kind::Open => {
                    return Err(ParseError {
                        pos,
                        message: "unexpected \"{\"".into(),
                    });
                }
                Kind::Semi => {
                    return Err(ParseError {
                        pos,
                        message: "unexpected \";\"".into(),
                    });
                }
            };
            self.at += 1;
            let mut args = Vec::new();
            let block = loop {
                let Some(t) = self.tokens.get(self.at) else {
                    return Err(ParseError {
                        pos,
                        message: format!(
                            "unexpected end of file: directive \"{name}\" has no \";\" or block"
                        ),
                    });
                };
                self.at += 1;
                match &t.kind {
                    Kind::Word(w) => args.push(w.clone()),
                    Kind::Semi => break None,
                    Kind::Open => {
                        let inner = self.block()?;
                        match self.tokens.get(self.at) {
                            Some(Token { kind: Kind::Close, .. }) => self.at += 1,
                            _ => {
                                return Err(ParseError {
                                    pos,
                                    message: format!(
                                        "unexpected end of file: the block of \"{name}\" is not closed by \"}}\""
                                    ),
                                })
                            }
                        }
                        break Some(inner);
                    }
                    Kind::Close => {
                        return Err(ParseError {
                            pos: t.pos.clone(),
                            message: format!(
                                "unexpected \"}}\": directive \"{name}\" has no \";\""
                            ),
                        })
                    }
                }
            };
            if name == "include" && block.is_none() {
                list.extend(self.include(&args, &pos)?);
                continue;
            }
            list.push(Directive {
                name,
                args,
                block,
                pos,
            });
        }
        Ok(list)
    }

    fn include(&self, args: &[String], pos: &Pos) -> Result<Vec<Directive>, ParseError> {
        let err = |message: String| ParseError {
            pos: pos.clone(),
            message,
        };
        let [pattern] = args else {
            return Err(err("\"include\" takes exactly one file or glob".into()));
        };
        if self.depth >= MAX_INCLUDE_DEPTH {
            return Err(err(format!(
                "includes nested deeper than {MAX_INCLUDE_DEPTH} (a loop?)"
            )));
        }
        let mut path = PathBuf::from(pattern);
        if path.is_relative() {
            let dir = self.file.parent().unwrap_or(Path::new("."));
            path = dir.join(path);
        }
        let files = expand(&path).map_err(|e| err(format!("include {pattern}: {e}")))?;
        let mut out = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f)
                .map_err(|e| err(format!("include {}: {e}", f.display())))?;
            out.extend(parse_text(&text, Arc::new(f), self.depth + 1)?);
        }
        Ok(out)
    }
}

/// The files a path with `*` in its last component names, sorted (nginx sorts too); a path
/// without `*` must exist.
fn expand(path: &Path) -> Result<Vec<PathBuf>, String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains('*') && !name.contains('?') {
        if !path.is_file() {
            return Err("no such file".into());
        }
        return Ok(vec![path.to_path_buf()]);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    // Like nginx, a glob that matches nothing (even in a missing directory) is no error.
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| glob_match(&name, &e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    Ok(found)
}

/// `*` (any run) and `?` (one character) matching, the subset nginx configs use.
fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
