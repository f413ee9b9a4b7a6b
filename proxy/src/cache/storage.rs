//! A cache zone's storage: a bounded memory tier, and an optional bounded disk tier that
//! survives restarts.
//!
//! Entries are keyed by pingora's combined key hash (primary key + variance). An entry is
//! stored whole when its body is complete; a half-written entry is never visible (readers of
//! a key being fetched wait on the cache lock instead).
//!
//! Bounds: pingora's LRU eviction manager, given to `HttpCache::enable`, bounds the zone's
//! *outer* tier (memory when there is no disk, else disk) and asks this storage to purge what
//! it evicts. With a disk tier, memory holds a hot subset bounded by a second LRU of the same
//! kind that this storage drives itself. Each disk entry is one file written to a temporary
//! name and renamed, so a crash leaves either the old entry, the new one, or a stray
//! temporary file that the next start removes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use parking_lot::RwLock;
use pingora::cache::eviction::lru::Manager as Lru;
use pingora::cache::eviction::{CacheEntryKey, EvictionManager};
use pingora::cache::key::{CacheHashKey, CompactCacheKey};
use pingora::cache::storage::{
    HandleHit, HandleMiss, HitHandler, MissFinishType, MissHandler, PurgeOutcome, PurgeTarget,
    PurgeType,
};
use pingora::cache::trace::SpanHandle;
use pingora::cache::{CacheKey, CacheMeta, Storage};
use pingora::http::ResponseHeader;
use pingora::{Error, ErrorType, OrErr, Result};

/// Shards of each LRU (pingora's eviction manager is sharded to keep locks short).
pub(crate) const LRU_SHARDS: usize = 16;
/// The LRU type the zone uses for its bounds.
pub(crate) type ZoneLru = Lru<LRU_SHARDS>;

const MAGIC: &[u8; 8] = b"VIGIEC1\n";
const HEADER_LEN: usize = 8 + 16 + 1 + 16 + 4 + 4 + 4 + 8;

/// One stored response.
#[derive(Debug)]
struct Entry {
    url: Arc<str>,
    compact: CompactCacheKey,
    /// pingora's serialized meta (internal part, compressed header): what the disk keeps.
    meta: (Vec<u8>, Vec<u8>),
    /// The response header, decoded once: a hit clones it instead of decompressing and
    /// parsing the stored one (about 16k instructions, a sixth of a 1 KiB hit).
    header: ResponseHeader,
    body: Bytes,
    /// What the entry holds in memory, as the bounds count it (see [`Entry::new`]); computed
    /// once, since every memory hit reports it to the LRU.
    weight: usize,
}

impl Entry {
    /// An entry of `meta` (serialized) whose header is `header`. Its weight counts the body,
    /// the serialized meta, the URL, and the decoded header (its fields in two maps, name and
    /// value, with their overhead).
    fn new(
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

    fn weight(&self) -> usize {
        self.weight
    }

    /// The entry's meta, for pingora: the internal part decoded from its bytes, the header a
    /// copy of the decoded one.
    fn cache_meta(&self) -> Result<CacheMeta> {
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
    static PLACEHOLDER: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
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

/// What the disk tier knows of an entry without reading it.
#[derive(Debug, Clone)]
struct DiskItem {
    url: Arc<str>,
    compact: CompactCacheKey,
    size: u64,
}

struct Disk {
    dir: PathBuf,
    index: RwLock<HashMap<String, DiskItem>>,
    lru: &'static ZoneLru,
}

/// Counters a zone keeps for `/metrics`.
#[derive(Debug, Default)]
pub struct ZoneCounters {
    /// Entries dropped to stay within a bound (memory or disk).
    pub evictions: AtomicU64,
    /// Bytes held in memory.
    pub memory_bytes: AtomicU64,
    /// Bytes held on disk.
    pub disk_bytes: AtomicU64,
}

/// A zone's storage. Lives for the whole process (pingora wants `&'static` storage).
pub struct ZoneStorage {
    memory: RwLock<HashMap<String, Arc<Entry>>>,
    /// Memory-tier LRU when a disk tier exists (else pingora's manager bounds memory).
    memory_lru: Option<&'static ZoneLru>,
    disk: Option<Disk>,
    /// Counters for metrics.
    pub counters: ZoneCounters,
}

impl std::fmt::Debug for ZoneStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneStorage")
            .field("entries", &self.entries())
            .finish()
    }
}

fn io_err(context: &'static str) -> impl FnOnce(std::io::Error) -> Box<Error> {
    move |e| Error::because(ErrorType::InternalError, context, e)
}

impl ZoneStorage {
    /// A memory-only zone: `outer` (memory-bounded) is the manager given to pingora.
    pub fn memory_only() -> Self {
        ZoneStorage {
            memory: RwLock::new(HashMap::new()),
            memory_lru: None,
            disk: None,
            counters: ZoneCounters::default(),
        }
    }

    /// A zone with a disk tier in `dir`, bounded by `disk_lru` (the manager given to
    /// pingora), and a memory tier bounded by `memory_lru`. Existing entries in `dir` are
    /// indexed (and trimmed to the bound); broken or temporary files are removed.
    pub fn with_disk(
        dir: &Path,
        memory_lru: &'static ZoneLru,
        disk_lru: &'static ZoneLru,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let storage = ZoneStorage {
            memory: RwLock::new(HashMap::new()),
            memory_lru: Some(memory_lru),
            disk: Some(Disk {
                dir: dir.to_path_buf(),
                index: RwLock::new(HashMap::new()),
                lru: disk_lru,
            }),
            counters: ZoneCounters::default(),
        };
        storage.scan()?;
        Ok(storage)
    }

    /// Index the files of the disk tier.
    fn scan(&self) -> std::io::Result<()> {
        let Some(disk) = &self.disk else {
            return Ok(());
        };
        for dirent in std::fs::read_dir(&disk.dir)? {
            let path = dirent?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let is_entry = name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit());
            if !is_entry && name.ends_with(".tmp") && !stale_tmp(&path) {
                // Being written right now by a running vigie (this may be `vigie check`).
                continue;
            }
            let item = if is_entry {
                read_head(&path).ok()
            } else {
                None
            };
            let Some(item) = item else {
                tracing::warn!(file = %path.display(), "removing a broken cache file");
                let _ = std::fs::remove_file(&path);
                continue;
            };
            let size = usize::try_from(item.size).unwrap_or(usize::MAX);
            let key = CacheEntryKey::key_only(item.compact.clone());
            let evicted = disk.lru.admit(key, size, SystemTime::now());
            self.counters
                .disk_bytes
                .fetch_add(item.size, Ordering::Relaxed);
            disk.index.write().insert(name.to_owned(), item);
            for e in evicted {
                self.remove(&hash_of(e.key()), false);
            }
        }
        Ok(())
    }

    /// Number of entries and bytes per tier: (memory entries, disk entries).
    pub fn entries(&self) -> (usize, usize) {
        let disk = self.disk.as_ref().map_or(0, |d| d.index.read().len());
        (self.memory.read().len(), disk)
    }

    /// Remove one entry from memory, and from disk unless `memory_only`. Whether it existed.
    fn remove(&self, hash: &str, memory_only: bool) -> bool {
        let mut found = false;
        if let Some(e) = self.memory.write().remove(hash) {
            self.counters
                .memory_bytes
                .fetch_sub(e.weight() as u64, Ordering::Relaxed);
            if let Some(lru) = self.memory_lru {
                lru.remove((&CacheEntryKey::key_only(e.compact.clone())).into());
            }
            found = true;
        }
        if memory_only {
            return found;
        }
        if let Some(disk) = &self.disk {
            if let Some(item) = disk.index.write().remove(hash) {
                self.counters
                    .disk_bytes
                    .fetch_sub(item.size, Ordering::Relaxed);
                let _ = std::fs::remove_file(disk.dir.join(hash));
                found = true;
            }
        }
        found
    }

    /// Put an entry in the memory tier, evicting from memory what its LRU says.
    fn put_memory(&self, hash: String, entry: Arc<Entry>) {
        let weight = entry.weight();
        let compact = entry.compact.clone();
        let old = self.memory.write().insert(hash, entry);
        if let Some(old) = old {
            self.counters
                .memory_bytes
                .fetch_sub(old.weight() as u64, Ordering::Relaxed);
        }
        self.counters
            .memory_bytes
            .fetch_add(weight as u64, Ordering::Relaxed);
        if let Some(lru) = self.memory_lru {
            let evicted = lru.admit(CacheEntryKey::key_only(compact), weight, SystemTime::now());
            for e in evicted {
                self.counters.evictions.fetch_add(1, Ordering::Relaxed);
                self.remove(&hash_of(e.key()), true);
            }
        }
    }

    /// Remove every entry whose URL is `url`, or starts with it when `prefix`. How many.
    pub fn purge_urls(&self, url: &str, prefix: bool, outer: &ZoneLru) -> usize {
        // Keys with extra parts are "URL\npart=value...": an exact purge takes them all.
        let matches = |u: &str| match u.strip_prefix(url) {
            Some(rest) => prefix || rest.is_empty() || rest.starts_with('\n'),
            None => false,
        };
        let mut hashes: Vec<(String, CompactCacheKey)> = self
            .memory
            .read()
            .iter()
            .filter(|(_, e)| matches(&e.url))
            .map(|(h, e)| (h.clone(), e.compact.clone()))
            .collect();
        if let Some(disk) = &self.disk {
            hashes.extend(
                disk.index
                    .read()
                    .iter()
                    .filter(|(_, i)| matches(&i.url))
                    .map(|(h, i)| (h.clone(), i.compact.clone())),
            );
        }
        hashes.sort_by(|a, b| a.0.cmp(&b.0));
        hashes.dedup_by(|a, b| a.0 == b.0);
        for (hash, compact) in &hashes {
            self.remove(hash, false);
            outer.remove((&CacheEntryKey::key_only(compact.clone())).into());
        }
        hashes.len()
    }

    async fn read_disk(&'static self, hash: &str) -> Result<Option<Arc<Entry>>> {
        let Some(disk) = &self.disk else {
            return Ok(None);
        };
        if !disk.index.read().contains_key(hash) {
            return Ok(None);
        }
        let path = disk.dir.join(hash);
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => Bytes::from(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.remove(hash, false);
                return Ok(None);
            }
            Err(e) => return Err(io_err("reading a cache file")(e)),
        };
        match decode(bytes) {
            Some(entry) => Ok(Some(Arc::new(entry))),
            None => {
                tracing::warn!(file = %path.display(), "removing a broken cache file");
                self.remove(hash, false);
                Ok(None)
            }
        }
    }

    async fn write_disk(&'static self, hash: &str, entry: &Entry) -> Result<()> {
        let Some(disk) = &self.disk else {
            return Ok(());
        };
        let bytes = encode(entry);
        let size = bytes.len() as u64;
        let path = disk.dir.join(hash);
        let tmp = disk.dir.join(format!("{hash}.{}.tmp", std::process::id()));
        tokio::fs::write(&tmp, &bytes)
            .await
            .map_err(io_err("writing a cache file"))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(io_err("renaming a cache file"))?;
        let item = DiskItem {
            url: entry.url.clone(),
            compact: entry.compact.clone(),
            size,
        };
        if let Some(old) = disk.index.write().insert(hash.to_owned(), item) {
            self.counters
                .disk_bytes
                .fetch_sub(old.size, Ordering::Relaxed);
        }
        self.counters.disk_bytes.fetch_add(size, Ordering::Relaxed);
        Ok(())
    }

    async fn find(&'static self, hash: &str) -> Result<Option<Arc<Entry>>> {
        let found = self.memory.read().get(hash).cloned();
        if let Some(e) = found {
            if let Some(lru) = self.memory_lru {
                let key = CacheEntryKey::key_only(e.compact.clone());
                lru.access(&key, e.weight(), SystemTime::now());
            }
            return Ok(Some(e));
        }
        let Some(e) = self.read_disk(hash).await? else {
            return Ok(None);
        };
        self.put_memory(hash.to_owned(), e.clone());
        Ok(Some(e))
    }
}

/// Serialized form: magic, primary hash, variance flag and hash, lengths, then the URL, the
/// two meta parts and the body.
fn encode(e: &Entry) -> Bytes {
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

fn decode(mut bytes: Bytes) -> Option<Entry> {
    let h = parse_head(&bytes)?;
    let total = HEADER_LEN
        .checked_add(h.url_len)?
        .checked_add(h.meta0)?
        .checked_add(h.meta1)?
        .checked_add(h.body)?;
    if bytes.len() != total {
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

/// A temporary file older than a minute: left by a crash, not a write in progress.
fn stale_tmp(path: &Path) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > std::time::Duration::from_secs(60))
}

/// The index data of a cache file, reading only its head and URL.
fn read_head(path: &Path) -> std::io::Result<DiskItem> {
    use std::io::Read;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not a vigie cache file");
    let mut f = std::fs::File::open(path)?;
    let size = f.metadata()?.len();
    let mut head = [0u8; HEADER_LEN];
    f.read_exact(&mut head)?;
    let h = parse_head(&head).ok_or_else(bad)?;
    let total = (HEADER_LEN + h.url_len + h.meta0 + h.meta1) as u64 + h.body as u64;
    if total != size {
        return Err(bad());
    }
    let mut url = vec![0u8; h.url_len];
    f.read_exact(&mut url)?;
    let url = String::from_utf8(url).map_err(|_| bad())?;
    Ok(DiskItem {
        url: url.into(),
        compact: h.compact,
        size,
    })
}

/// The entry name of a key: pingora's combined hash in lower-case hex, as
/// `CacheHashKey::combined` writes it, without going through `fmt` for each byte (this runs
/// on every cache lookup).
fn hash_of(key: &impl CacheHashKey) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bin = key.combined_bin();
    let mut s = String::with_capacity(bin.len() * 2);
    for b in bin {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

fn url_of(key: &CacheKey) -> Arc<str> {
    String::from_utf8_lossy(key.primary_key()).into()
}

#[async_trait]
impl Storage for ZoneStorage {
    async fn lookup(
        &'static self,
        key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        let Some(entry) = self.find(&hash_of(key)).await? else {
            return Ok(None);
        };
        let meta = entry.cache_meta()?;
        let hit = Hit {
            weight: entry.weight(),
            body: entry.body.clone(),
            start: 0,
            end: entry.body.len(),
            done: false,
        };
        Ok(Some((meta, Box::new(hit))))
    }

    async fn get_miss_handler(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<MissHandler> {
        Ok(Box::new(Miss {
            storage: self,
            hash: hash_of(key),
            url: url_of(key),
            compact: key.to_compact(),
            meta: meta.serialize()?,
            header: meta.response_header_copy(),
            body: BytesMut::new(),
        }))
    }

    async fn purge(
        &'static self,
        target: PurgeTarget<'_>,
        purge_type: PurgeType,
        _trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        let hash = hash_of(target.key());
        if self.remove(&hash, false) {
            if matches!(purge_type, PurgeType::Eviction) {
                self.counters.evictions.fetch_add(1, Ordering::Relaxed);
            }
            Ok(PurgeOutcome::Purged(None))
        } else {
            Ok(PurgeOutcome::NotFound)
        }
    }

    async fn update_meta(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<bool> {
        let hash = hash_of(key);
        let Some(old) = self.find(&hash).await? else {
            return Ok(false);
        };
        let entry = Arc::new(Entry::new(
            old.url.clone(),
            old.compact.clone(),
            meta.serialize()?,
            meta.response_header_copy(),
            old.body.clone(),
        ));
        self.write_disk(&hash, &entry).await?;
        self.put_memory(hash, entry);
        Ok(true)
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync + 'static) {
        self
    }
}

/// A hit: the whole body is in memory; ranges seek into it.
struct Hit {
    weight: usize,
    body: Bytes,
    start: usize,
    end: usize,
    done: bool,
}

#[async_trait]
impl HandleHit for Hit {
    async fn read_body(&mut self) -> Result<Option<Bytes>> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        Ok(Some(self.body.slice(self.start..self.end)))
    }

    async fn finish(
        self: Box<Self>,
        _storage: &'static (dyn Storage + Sync),
        _key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<()> {
        Ok(())
    }

    fn can_seek(&self) -> bool {
        true
    }

    fn seek(&mut self, start: usize, end: Option<usize>) -> Result<()> {
        if start >= self.body.len() {
            return Error::e_explain(ErrorType::InternalError, "seek start out of range");
        }
        self.start = start;
        self.end = end.map_or(self.body.len(), |e| e.min(self.body.len()));
        self.done = false;
        Ok(())
    }

    fn get_eviction_weight(&self) -> usize {
        self.weight
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn std::any::Any + Send + Sync) {
        self
    }
}

/// A write in progress: the body is collected and the entry appears whole on `finish`.
struct Miss {
    storage: &'static ZoneStorage,
    hash: String,
    url: Arc<str>,
    compact: CompactCacheKey,
    meta: (Vec<u8>, Vec<u8>),
    header: ResponseHeader,
    body: BytesMut,
}

#[async_trait]
impl HandleMiss for Miss {
    async fn write_body(&mut self, data: Bytes, _eof: bool) -> Result<()> {
        self.body.extend_from_slice(&data);
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<MissFinishType> {
        let Miss {
            storage,
            hash,
            url,
            compact,
            meta,
            header,
            body,
        } = *self;
        let entry = Arc::new(Entry::new(url, compact, meta, header, body.freeze()));
        let weight = entry.weight();
        storage
            .write_disk(&hash, &entry)
            .await
            .or_err(ErrorType::InternalError, "storing a cache entry on disk")?;
        storage.put_memory(hash, entry);
        Ok(MissFinishType::Created(weight))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_pingoras_combined_hash() {
        let plain = CacheKey::new("https://example.test/a?b=c", "");
        assert_eq!(hash_of(&plain), plain.combined());
        let mut varied = CacheKey::new("https://example.test/v", "");
        varied.set_variance_key([7u8; 16]);
        assert_eq!(hash_of(&varied), varied.combined());
        let compact = varied.to_compact();
        assert_eq!(hash_of(&compact), compact.combined());
    }

    fn entry(url: &str, body: &'static [u8]) -> Entry {
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
        for e in [e.clone_for_test(), decode(encode(&e)).unwrap()] {
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

    impl Entry {
        fn clone_for_test(&self) -> Entry {
            Entry::new(
                self.url.clone(),
                self.compact.clone(),
                self.meta.clone(),
                self.header.clone(),
                self.body.clone(),
            )
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
