//! One stored response ([`Entry`]) and its file form.
//!
//! A cache file is: magic, primary hash, variance flag and hash, four lengths, then the URL,
//! the two parts of pingora's serialized meta and the body. A file whose lengths do not add
//! up to its size is broken (a torn write) and never decoded. Entry names are pingora's
//! combined key hash in lower-case hex ([`hash_of`]), 32 characters.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use pingora::cache::key::{CacheHashKey, CompactCacheKey};
use pingora::cache::{CacheKey, CacheMeta};
use pingora::http::ResponseHeader;
use pingora::Result;

const MAGIC: &[u8; 8] = b"VIGIEC1\n";
const HEADER_LEN: usize = 8 + 16 + 1 + 16 + 4 + 4 + 4 + 8;
/// Length of an entry name: 16 bytes of hash in hex.
pub(super) const NAME_LEN: usize = 32;

/// One stored response.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) url: Arc<str>,
    pub(super) compact: CompactCacheKey,
    /// pingora's serialized meta (internal part, compressed header): what the disk keeps.
    pub(super) meta: (Vec<u8>, Vec<u8>),
    /// The response header, decoded once: a hit clones it instead of decompressing and
    /// parsing the stored one (about 16k instructions, a sixth of a 1 KiB hit).
    header: ResponseHeader,
    pub(super) body: Bytes,
    /// What the entry holds in memory, as the bounds count it (see [`Entry::new`]); computed
    /// once, since every memory hit reports it to the LRU.
    weight: usize,
}

impl Entry {
    /// An entry of `meta` (serialized) whose header is `header`. Its weight counts the body,
    /// the serialized meta, the URL, and the decoded header (its fields in two maps, name and
    /// value, with their overhead).
    pub(super) fn new(
        url: Arc<str>,
        compact: CompactCacheKey,
        meta: (Vec<u8>, Vec<u8>),
        header: ResponseHeader,
        body: Bytes,
    ) -> Entry {
        let decoded: usize = header
            .headers
            .iter()
            .map(|(n, v)| 2 * (n.as_str().len() + v.len() + 64))
            .sum();
        let weight = body.len() + meta.0.len() + meta.1.len() + url.len() + decoded + 256;
        Entry {
            url,
            compact,
            meta,
            header,
            body,
            weight,
        }
    }

    /// This entry with a new meta (a revalidation), the same body.
    pub(super) fn with_meta(&self, meta: &CacheMeta) -> Result<Entry> {
        Ok(Entry::new(
            self.url.clone(),
            self.compact.clone(),
            meta.serialize()?,
            meta.response_header_copy(),
            self.body.clone(),
        ))
    }

    pub(super) fn weight(&self) -> usize {
        self.weight
    }

    /// The entry's meta, for pingora: the internal part decoded from its bytes, the header a
    /// copy of the decoded one.
    pub(super) fn cache_meta(&self) -> Result<CacheMeta> {
        let mut meta = match placeholder_header() {
            Some(placeholder) => CacheMeta::deserialize(&self.meta.0, placeholder)?,
            None => return CacheMeta::deserialize(&self.meta.0, &self.meta.1),
        };
        *meta.response_header_mut() = self.header.clone();
        Ok(meta)
    }
}

/// A serialized minimal response header: decoding it costs next to nothing, and the decoded
/// meta then gets the entry's own header.
fn placeholder_header() -> Option<&'static [u8]> {
    static PLACEHOLDER: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    PLACEHOLDER
        .get_or_init(|| {
            let header = ResponseHeader::build(200, Some(0)).ok()?;
            let epoch = SystemTime::UNIX_EPOCH;
            let (_, bytes) = CacheMeta::new(epoch, epoch, 0, 0, header)
                .serialize()
                .ok()?;
            Some(bytes)
        })
        .as_deref()
}

/// The file form of an entry.
pub(super) fn encode(e: &Entry) -> Bytes {
    let mut b = BytesMut::with_capacity(HEADER_LEN + e.weight());
    b.put_slice(MAGIC);
    b.put_slice(&e.compact.primary);
    match &e.compact.variance {
        Some(v) => {
            b.put_u8(1);
            b.put_slice(v.as_ref());
        }
        None => {
            b.put_u8(0);
            b.put_slice(&[0; 16]);
        }
    }
    let len32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    b.put_u32(len32(e.url.len()));
    b.put_u32(len32(e.meta.0.len()));
    b.put_u32(len32(e.meta.1.len()));
    b.put_u64(e.body.len() as u64);
    b.put_slice(e.url.as_bytes());
    b.put_slice(&e.meta.0);
    b.put_slice(&e.meta.1);
    b.put_slice(&e.body);
    b.freeze()
}

struct Head {
    compact: CompactCacheKey,
    url_len: usize,
    meta0: usize,
    meta1: usize,
    body: usize,
}

impl Head {
    /// The size of the whole file this head announces.
    fn total(&self) -> Option<u64> {
        let fixed = HEADER_LEN
            .checked_add(self.url_len)?
            .checked_add(self.meta0)?
            .checked_add(self.meta1)?;
        u64::try_from(fixed)
            .ok()?
            .checked_add(u64::try_from(self.body).ok()?)
    }
}

fn parse_head(mut b: &[u8]) -> Option<Head> {
    if b.len() < HEADER_LEN || &b[..8] != MAGIC {
        return None;
    }
    b.advance(8);
    let mut primary = [0u8; 16];
    b.copy_to_slice(&mut primary);
    let has_variance = b.get_u8() == 1;
    let mut variance = [0u8; 16];
    b.copy_to_slice(&mut variance);
    let url_len = b.get_u32() as usize;
    let meta0 = b.get_u32() as usize;
    let meta1 = b.get_u32() as usize;
    let body = usize::try_from(b.get_u64()).ok()?;
    Some(Head {
        compact: CompactCacheKey {
            primary,
            variance: has_variance.then(|| Box::new(variance)),
            user_tag: "".into(),
        },
        url_len,
        meta0,
        meta1,
        body,
    })
}

/// The entry in a whole file, `None` when it is not one (broken or truncated).
pub(super) fn decode(mut bytes: Bytes) -> Option<Entry> {
    let h = parse_head(&bytes)?;
    if bytes.len() as u64 != h.total()? {
        return None;
    }
    bytes.advance(HEADER_LEN);
    let url = std::str::from_utf8(&bytes.split_to(h.url_len)).ok()?.into();
    let meta0 = bytes.split_to(h.meta0).to_vec();
    let meta1 = bytes.split_to(h.meta1).to_vec();
    let header = CacheMeta::deserialize(&meta0, &meta1)
        .ok()?
        .response_header_copy();
    Some(Entry::new(url, h.compact, (meta0, meta1), header, bytes))
}

/// What the disk tier keeps of an entry without reading it.
#[derive(Debug, Clone)]
pub(super) struct Summary {
    pub(super) url: Arc<str>,
    pub(super) compact: CompactCacheKey,
    /// Size of the file.
    pub(super) size: u64,
}

/// The summary of a cache file, reading only its head and URL.
pub(super) fn read_summary(path: &Path) -> std::io::Result<Summary> {
    use std::io::Read;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not a vigie cache file");
    let mut f = std::fs::File::open(path)?;
    let size = f.metadata()?.len();
    let mut head = [0u8; HEADER_LEN];
    f.read_exact(&mut head)?;
    let h = parse_head(&head).ok_or_else(bad)?;
    if h.total() != Some(size) {
        return Err(bad());
    }
    let mut url = vec![0u8; h.url_len];
    f.read_exact(&mut url)?;
    let url = String::from_utf8(url).map_err(|_| bad())?;
    Ok(Summary {
        url: url.into(),
        compact: h.compact,
        size,
    })
}

/// The entry name of a key: pingora's combined hash in lower-case hex, as
/// `CacheHashKey::combined` writes it, without going through `fmt` for each byte (this runs
/// on every cache lookup).
pub(super) fn hash_of(key: &impl CacheHashKey) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bin = key.combined_bin();
    let mut s = String::with_capacity(bin.len() * 2);
    for b in bin {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// Whether `name` is an entry name as [`hash_of`] writes it.
pub(super) fn is_entry_name(name: &str) -> bool {
    name.len() == NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The URL part of a key (what purge by URL matches).
pub(super) fn url_of(key: &CacheKey) -> Arc<str> {
    String::from_utf8_lossy(key.primary_key()).into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn entry_names_are_pingoras_combined_hash() {
        let plain = CacheKey::new("https://example.test/a?b=c", "");
        assert_eq!(hash_of(&plain), plain.combined());
        assert!(is_entry_name(&hash_of(&plain)));
        let mut varied = CacheKey::new("https://example.test/v", "");
        varied.set_variance_key([7u8; 16]);
        assert_eq!(hash_of(&varied), varied.combined());
        let compact = varied.to_compact();
        assert_eq!(hash_of(&compact), compact.combined());
        for other in [
            "",
            "notes.txt",
            "0123456789ABCDEF0123456789abcdef",
            "x".repeat(32).as_str(),
        ] {
            assert!(!is_entry_name(other), "{other}");
        }
    }

    pub(crate) fn entry(url: &str, body: &'static [u8]) -> Entry {
        let key = CacheKey::new(url, "");
        let mut header = ResponseHeader::build(200, None).unwrap();
        header.insert_header("Content-Type", "text/plain").unwrap();
        header.append_header("X-Two", "a").unwrap();
        header.append_header("X-Two", "b").unwrap();
        let now = SystemTime::now();
        let stored = now - std::time::Duration::from_secs(3600);
        let meta = CacheMeta::new(
            now + std::time::Duration::from_secs(60),
            stored,
            5,
            7,
            header,
        );
        Entry::new(
            url.into(),
            key.to_compact(),
            meta.serialize().unwrap(),
            meta.response_header_copy(),
            Bytes::from_static(body),
        )
    }

    /// A hit's meta is the stored one: freshness, windows, variance and the whole header
    /// (repeated fields, their order and case), whether the entry came from a miss or from
    /// disk.
    #[test]
    fn a_hit_gets_the_stored_meta() {
        let mut e = entry("https://a.example/m", b"body");
        let mut full = CacheMeta::deserialize(&e.meta.0, &e.meta.1).unwrap();
        full.set_variance_key([3u8; 16]);
        // A revalidation an hour after it was stored: `updated` moves away from `created`.
        full.update_freshness(SystemTime::now() + std::time::Duration::from_secs(90), 5, 7);
        assert!(full.updated() > full.created() + std::time::Duration::from_secs(3000));
        e.meta = full.serialize().unwrap();
        for e in [e.with_meta(&full).unwrap(), decode(encode(&e)).unwrap()] {
            let hit = e.cache_meta().unwrap();
            let want = CacheMeta::deserialize(&e.meta.0, &e.meta.1).unwrap();
            assert_eq!(hit.fresh_until(), want.fresh_until());
            assert_eq!(hit.created(), want.created());
            assert_eq!(hit.updated(), want.updated());
            assert_eq!(hit.stale_while_revalidate_sec(), 5);
            assert_eq!(hit.stale_if_error_sec(), 7);
            assert_eq!(hit.variance(), Some([3u8; 16]));
            let mut a = Vec::new();
            let mut b = Vec::new();
            hit.response_header().header_to_h1_wire(&mut a);
            want.response_header().header_to_h1_wire(&mut b);
            assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
            assert_eq!(hit.response_header().status, want.response_header().status);
        }
    }

    #[test]
    fn files_round_trip_and_reject_truncation() {
        let e = entry("https://a.example/x?y", b"hello");
        let bytes = encode(&e);
        let back = decode(bytes.clone()).unwrap();
        assert_eq!(&*back.url, "https://a.example/x?y");
        assert_eq!(back.compact, e.compact);
        assert_eq!(back.meta, e.meta);
        assert_eq!(back.body, e.body);
        assert!(decode(bytes.slice(..bytes.len() - 1)).is_none());
        assert!(decode(Bytes::from_static(b"garbage")).is_none());
    }
}
