//! Secrets at rest: private keys and ACME account credentials are sealed with
//! ChaCha20-Poly1305 before they leave the process for Redis.
//!
//! A sealed value reads `vigie-sealed:v1:KEYID:BASE64(NONCE || CIPHERTEXT)`:
//! - `v1` is the format version, so another cipher or layout can come later;
//! - `KEYID` is 8 hex digits of a SHA-256 of the key: a value sealed with another key is
//!   recognised as such before decryption is even tried, and the message says which;
//! - the nonce is 12 random bytes, new for every value;
//! - the Redis key name is the associated data, so a value moved under another name fails
//!   to open.

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;

const PREFIX: &str = "vigie-sealed:v1:";
const NONCE_LEN: usize = 12;

/// Why a key file or a sealed value cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The key file is not a 32-byte key.
    #[error("{0}")]
    BadKey(String),
    /// The value was sealed with another key, or was changed.
    #[error("{0}")]
    WrongKey(String),
    /// The value is not in the sealed format.
    #[error("not a sealed value: {0}")]
    Format(String),
}

/// The cluster's encryption key.
#[derive(Clone)]
pub struct SealKey {
    cipher: ChaCha20Poly1305,
    id: String,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealKey").field("id", &self.id).finish()
    }
}

impl SealKey {
    /// A key from a key file's bytes: 32 raw bytes, or 64 hex digits, or the base64 of 32
    /// bytes (surrounding white space ignored in the text forms).
    pub fn from_file_bytes(bytes: &[u8]) -> Result<SealKey, SealError> {
        let key: Vec<u8> = if bytes.len() == 32 {
            bytes.to_vec()
        } else {
            let text = std::str::from_utf8(bytes).unwrap_or("").trim();
            let hex = (text.len() == 64)
                .then(|| {
                    (0..32)
                        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
                        .collect::<Option<Vec<u8>>>()
                })
                .flatten();
            match hex {
                Some(k) => k,
                None => base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .ok()
                    .filter(|k| k.len() == 32)
                    .ok_or_else(|| {
                        SealError::BadKey(format!(
                            "expected 32 bytes (raw, 64 hex digits or base64), found {} bytes \
                             that are none of these; make one with \
                             `head -c 32 /dev/urandom > cluster.key`",
                            bytes.len()
                        ))
                    })?,
            }
        };
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            &[b"vigie cluster key\0".as_slice(), &key].concat(),
        );
        let id = digest.as_ref()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(SealKey {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
            id,
        })
    }

    /// The key's id: 8 hex digits, safe to log.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seal `plain`, bound to `name` (the Redis key it is stored under).
    pub fn seal(&self, name: &str, plain: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plain,
            aad: name.as_bytes(),
        };
        // Encryption fails only for messages past ChaCha20's 256 GiB limit.
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!(
            "{PREFIX}{}:{}",
            self.id,
            base64::engine::general_purpose::STANDARD.encode(out)
        )
    }

    /// Open a value [`seal`](Self::seal)ed under `name`.
    pub fn open(&self, name: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        let rest = sealed
            .strip_prefix(PREFIX)
            .ok_or_else(|| SealError::Format(format!("{name} does not start with {PREFIX}")))?;
        let (id, data) = rest
            .split_once(':')
            .ok_or_else(|| SealError::Format(format!("{name} has no key id")))?;
        if id != self.id {
            return Err(SealError::WrongKey(format!(
                "{name} was encrypted with key {id}, but encryption_key_file holds key {}: \
                 every node must use the same key file",
                self.id
            )));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| SealError::Format(format!("{name}: {e}")))?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Format(format!("{name} is too short")));
        }
        let (nonce, ct) = bytes.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ct,
            aad: name.as_bytes(),
        };
        self.cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| {
                SealError::WrongKey(format!(
                    "{name} cannot be decrypted with key {} (changed, or moved from another \
                     name)",
                    self.id
                ))
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SealKey {
        SealKey::from_file_bytes(&[byte; 32]).unwrap()
    }

    #[test]
    fn sealed_values_open_with_the_same_key_and_name_only() {
        let k = key(7);
        let a = k.seal("vigie:cert:a", b"-----BEGIN PRIVATE KEY-----");
        let b = k.seal("vigie:cert:a", b"-----BEGIN PRIVATE KEY-----");
        assert_ne!(a, b, "a fresh nonce for every value");
        assert!(
            a.starts_with(&format!("vigie-sealed:v1:{}:", k.id())),
            "{a}"
        );
        assert!(!a.contains("PRIVATE"));
        assert_eq!(
            k.open("vigie:cert:a", &a).unwrap(),
            b"-----BEGIN PRIVATE KEY-----"
        );
        let moved = k.open("vigie:cert:b", &a).unwrap_err();
        assert!(matches!(moved, SealError::WrongKey(_)), "{moved}");
        let other = key(8).open("vigie:cert:a", &a).unwrap_err();
        assert_eq!(
            other.to_string(),
            format!(
                "vigie:cert:a was encrypted with key {}, but encryption_key_file holds key {}: \
                 every node must use the same key file",
                k.id(),
                key(8).id()
            )
        );
        // Same id (same key) but a flipped byte: authentication fails.
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(a.rsplit(':').next().unwrap())
            .unwrap();
        raw[20] ^= 1;
        let tampered = format!(
            "vigie-sealed:v1:{}:{}",
            k.id(),
            base64::engine::general_purpose::STANDARD.encode(raw)
        );
        assert!(matches!(
            k.open("vigie:cert:a", &tampered),
            Err(SealError::WrongKey(_))
        ));
        assert!(matches!(k.open("n", "plain"), Err(SealError::Format(_))));
    }

    #[test]
    fn key_files_are_raw_hex_or_base64_and_nothing_else() {
        let raw = [0xabu8; 32];
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        let ids: Vec<String> = [
            raw.to_vec(),
            format!("{hex}\n").into_bytes(),
            b64.into_bytes(),
        ]
        .iter()
        .map(|b| SealKey::from_file_bytes(b).unwrap().id().to_string())
        .collect();
        assert_eq!(ids[0].len(), 8);
        assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
        let short = SealKey::from_file_bytes(b"too short\n").unwrap_err();
        assert!(
            short.to_string().starts_with("expected 32 bytes"),
            "{short}"
        );
    }
}
