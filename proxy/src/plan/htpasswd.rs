//! htpasswd files for `basic_auth`: read when the plan is compiled (never on the request
//! path), checked per request.
//!
//! Formats: bcrypt (`$2y$`, `$2b$`, `$2a$`: `htpasswd -B`), Apache's MD5 (`$apr1$`: what
//! `htpasswd` writes by default) and `{SHA}` (`htpasswd -s`). Other lines (`crypt(3)` DES,
//! SHA-256/512 crypt, plain text) are refused when the file is read, with their line number.
//!
//! Timing: digests are compared in constant time; an unknown user is checked against the
//! first user's hash and refused, so the answer takes as long as for a known user with a
//! wrong password, and the time tells nothing about which names exist.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use md5::{Digest, Md5};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// Why an htpasswd file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HtpasswdError {
    /// The file could not be read.
    #[error("{line}:{col}: cannot read the htpasswd file {path}: {source}")]
    Read {
        /// Where `htpasswd` is in the configuration.
        line: usize,
        /// Its column.
        col: usize,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `user:hash` in a supported format.
    #[error(
        "{path}:{line}: {reason}: expected user:hash with a bcrypt ($2y$), Apache MD5 ($apr1$) \
         or {{SHA}} hash (htpasswd -B, the default, or -s)"
    )]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line in the file.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// No user at all: nobody could ever log in, surely a mistake.
    #[error("{0}: the htpasswd file has no users")]
    Empty(PathBuf),
}

#[derive(Debug)]
enum Hash {
    Bcrypt(String),
    Apr1 { salt: String, hash: String },
    Sha1([u8; 20]),
}

/// The users of an htpasswd file and their hashes.
#[derive(Debug)]
pub struct Htpasswd {
    users: HashMap<String, Hash>,
    /// The first user's name: unknown users are checked against their hash.
    decoy: String,
    /// The file, for logs.
    pub path: PathBuf,
}

impl Htpasswd {
    /// Read and parse `path`; `(line, col)` is where the configuration names it.
    pub fn load(path: &Path, (line, col): (usize, usize)) -> Result<Htpasswd, HtpasswdError> {
        let text = std::fs::read_to_string(path).map_err(|source| HtpasswdError::Read {
            line,
            col,
            path: path.to_path_buf(),
            source,
        })?;
        Htpasswd::parse(&text, path)
    }

    /// Parse the text of an htpasswd file (`#` comments and blank lines skipped).
    pub fn parse(text: &str, path: &Path) -> Result<Htpasswd, HtpasswdError> {
        let mut users = HashMap::new();
        let mut decoy = None;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let bad = |reason: &str| HtpasswdError::Line {
                path: path.to_path_buf(),
                line: n + 1,
                reason: reason.to_owned(),
            };
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| bad("no ':' on this line"))?;
            if user.is_empty() {
                return Err(bad("empty user name"));
            }
            let hash = parse_hash(hash).map_err(|r| bad(&r))?;
            decoy.get_or_insert_with(|| user.to_owned());
            users.insert(user.to_owned(), hash);
        }
        let decoy = decoy.ok_or_else(|| HtpasswdError::Empty(path.to_path_buf()))?;
        Ok(Htpasswd {
            users,
            decoy,
            path: path.to_path_buf(),
        })
    }

    /// Whether `user` with `password` is let in. Slow on purpose for bcrypt: call it off the
    /// async threads. An unknown user costs what a known one costs.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        match self.users.get(user) {
            Some(hash) => check(hash, password),
            None => {
                if let Some(hash) = self.users.get(&self.decoy) {
                    std::hint::black_box(check(hash, password));
                }
                false
            }
        }
    }
}

fn parse_hash(hash: &str) -> Result<Hash, String> {
    if ["$2y$", "$2b$", "$2a$"].iter().any(|p| hash.starts_with(p)) {
        // Checked here so that a broken entry is found at load, not at login.
        hash.parse::<bcrypt::HashParts>()
            .map_err(|e| format!("malformed bcrypt hash ({e})"))?;
        return Ok(Hash::Bcrypt(hash.to_owned()));
    }
    if let Some(rest) = hash.strip_prefix("$apr1$") {
        let (salt, digest) = rest
            .split_once('$')
            .filter(|(s, d)| !s.is_empty() && s.len() <= 8 && d.len() == 22)
            .ok_or("malformed $apr1$ hash")?;
        return Ok(Hash::Apr1 {
            salt: salt.to_owned(),
            hash: digest.to_owned(),
        });
    }
    if let Some(b64) = hash.strip_prefix("{SHA}") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| "malformed {SHA} hash")?;
        let digest: [u8; 20] = bytes.try_into().map_err(|_| "malformed {SHA} hash")?;
        return Ok(Hash::Sha1(digest));
    }
    Err("unsupported hash format".to_owned())
}

fn check(hash: &Hash, password: &str) -> bool {
    match hash {
        Hash::Bcrypt(h) => bcrypt::verify(password, h).unwrap_or(false),
        Hash::Apr1 { salt, hash } => {
            let got = apr1(password.as_bytes(), salt.as_bytes());
            bool::from(got.as_bytes().ct_eq(hash.as_bytes()))
        }
        Hash::Sha1(want) => {
            let got = Sha1::digest(password.as_bytes());
            bool::from(got.as_slice().ct_eq(want))
        }
    }
}

const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Apache's `$apr1$` MD5-crypt digest (the 22 characters after the salt).
fn apr1(pw: &[u8], salt: &[u8]) -> String {
    let mut alt = Md5::new();
    alt.update(pw);
    alt.update(salt);
    alt.update(pw);
    let alt = alt.finalize();

    let mut ctx = Md5::new();
    ctx.update(pw);
    ctx.update(b"$apr1$");
    ctx.update(salt);
    let mut left = pw.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alt[..n]);
        left -= n;
    }
    let mut i = pw.len();
    while i != 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&pw[..1]);
        }
        i >>= 1;
    }
    let mut fin = ctx.finalize();
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(pw);
        } else {
            c.update(fin);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(pw);
        }
        if round & 1 == 1 {
            c.update(fin);
        } else {
            c.update(pw);
        }
        fin = c.finalize();
    }
    let f = fin.as_slice();
    let mut out = String::with_capacity(22);
    let mut put = |v: u32, n: usize| {
        let mut v = v;
        for _ in 0..n {
            out.push(char::from(ITOA64[(v & 0x3f) as usize]));
            v >>= 6;
        }
    };
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        put(
            u32::from(f[a]) << 16 | u32::from(f[b]) << 8 | u32::from(f[c]),
            4,
        );
    }
    put(u32::from(f[11]), 2);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn apr1_matches_openssl() {
        // `openssl passwd -apr1 -salt abcdefgh password`
        assert_eq!(apr1(b"password", b"abcdefgh"), "FBwExRW4dCc8aL.OvjpIE1");
        assert_eq!(
            apr1("p@ss wörd".as_bytes(), b"xy"),
            "7UDkHEb6bPRyjb1pKo90E."
        );
    }

    #[test]
    fn formats_and_refusals() {
        let bc = bcrypt::hash("s3cret", 4).unwrap();
        let text = format!(
            "# admins\nann:{bc}\nbob:$apr1$abcdefgh$FBwExRW4dCc8aL.OvjpIE1\n\
             cy:{{SHA}}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"
        );
        let h = Htpasswd::parse(&text, Path::new("users")).unwrap();
        assert!(h.verify("ann", "s3cret"));
        assert!(!h.verify("ann", "s3cre"));
        assert!(h.verify("bob", "password"));
        assert!(!h.verify("bob", "Password"));
        assert!(h.verify("cy", "password"));
        assert!(!h.verify("nobody", "s3cret"));
        let err = Htpasswd::parse("ann:plain\n", Path::new("users")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("users:1: unsupported hash format"),
            "{err}"
        );
        let err = Htpasswd::parse("\n# x\nann\n", Path::new("u")).unwrap_err();
        assert!(err.to_string().starts_with("u:3: no ':'"), "{err}");
        assert!(matches!(
            Htpasswd::parse("", Path::new("u")),
            Err(HtpasswdError::Empty(_))
        ));
    }
}
