//! pingora's storage and cache-lock traits, implemented once for every zone.
//!
//! pingora takes its storage and cache lock as `&'static` references. Rather than leak a
//! storage per zone (and so per reload that opens one), pingora gets two zero-sized statics,
//! [`STORAGE`] and [`LOCK`], that forward each call to the zone of the request: the cache key
//! built in `cache_key_callback` carries a [`Target`] (the zone's store and lock, as `Arc`s)
//! in its extensions, and every call pingora makes for a request hands that key back. A zone
//! thus lives while a snapshot or a request holds it, and its memory goes when both are done.
//!
//! pingora gets no eviction manager either: the store bounds its tiers itself
//! ([`super::store`]). So pingora never purges by a bare key (its `purge`/`expire` calls come
//! only from its eviction and from PURGE requests, which vigie does not route to pingora;
//! vigie purges through its admin API, on the zone itself): those calls are refused.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::cache::key::CompactCacheKey;
use pingora::cache::lock::{CacheKeyLock, CacheLock, LockStatus, Locked, WritePermit};
use pingora::cache::storage::{
    HandleHit, HandleMiss, HitHandler, MissFinishType, MissHandler, PurgeOutcome, PurgeTarget,
    PurgeType,
};
use pingora::cache::trace::SpanHandle;
use pingora::cache::{CacheKey, CacheMeta, Storage};
use pingora::http::ResponseHeader;
use pingora::{Error, ErrorType, OkOrErr, OrErr, Result};

use super::codec::{hash_of, url_of, Entry};
use super::store::ZoneStore;

/// The storage pingora is given for every zone.
pub(super) static STORAGE: ZoneStorage = ZoneStorage;
/// The cache lock pingora is given for every zone.
pub(super) static LOCK: ZoneLock = ZoneLock;

/// What a cache key carries to reach its zone.
#[derive(Clone)]
pub(super) struct Target {
    pub(super) store: Arc<ZoneStore>,
    pub(super) lock: Arc<CacheLock>,
}

fn target(key: &CacheKey) -> Result<&Target> {
    key.extensions
        .get::<Target>()
        .or_err(ErrorType::InternalError, "a cache key without its zone")
}

/// Forwards pingora's storage calls to the zone a key carries.
pub(super) struct ZoneStorage;

#[async_trait]
impl Storage for ZoneStorage {
    async fn lookup(
        &'static self,
        key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        let Some(entry) = target(key)?.store.find(&hash_of(key)).await? else {
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
            store: target(key)?.store.clone(),
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
        _purge_type: PurgeType,
        _trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        Error::e_explain(
            ErrorType::InternalError,
            format!("vigie purges on the zone, not by a bare key ({target})"),
        )
    }

    async fn update_meta(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<bool> {
        let store = &target(key)?.store;
        let hash = hash_of(key);
        let Some(old) = store.find(&hash).await? else {
            return Ok(false);
        };
        store.store(hash, Arc::new(old.with_meta(meta)?)).await?;
        Ok(true)
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync + 'static) {
        self
    }
}

/// A process-wide lock for a key that carries no zone (none should): pingora needs a lock
/// to hand back.
static FALLBACK_LOCK: LazyLock<CacheLock> =
    LazyLock::new(|| CacheLock::new(Duration::from_secs(5)));

/// Forwards pingora's cache-lock calls to the lock of the zone a key carries.
pub(super) struct ZoneLock;

impl ZoneLock {
    fn of(key: &CacheKey) -> &CacheLock {
        match key.extensions.get::<Target>() {
            Some(t) => &t.lock,
            None => &FALLBACK_LOCK,
        }
    }
}

impl CacheKeyLock for ZoneLock {
    fn lock(&self, key: &CacheKey, stale_writer: bool) -> Locked {
        Self::of(key).lock(key, stale_writer)
    }

    fn release(&self, key: &CacheKey, permit: WritePermit, reason: LockStatus) {
        Self::of(key).release(key, permit, reason);
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
    store: Arc<ZoneStore>,
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
            store,
            hash,
            url,
            compact,
            meta,
            header,
            body,
        } = *self;
        let entry = Arc::new(Entry::new(url, compact, meta, header, body.freeze()));
        let weight = entry.weight();
        store
            .store(hash, entry)
            .await
            .or_err(ErrorType::InternalError, "storing a cache entry")?;
        Ok(MissFinishType::Created(weight))
    }
}
