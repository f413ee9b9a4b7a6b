//! The cluster-wide order lock of one site, in Redis.
//!
//! - Taken with `SET lock VALUE NX PX lease` inside a Lua script that also `INCR`s the site's
//!   fencing counter, so every holder gets a token one above the previous one; the value is
//!   `NODE FENCE RANDOM`, unique to this holding.
//! - Renewed every third of the lease while held (compare-and-swap: only if the value is
//!   still ours); a holder that dies stops renewing and the lease expires, so another node
//!   takes over.
//! - Released by compare-and-swap too, so a holder whose lease expired can never delete the
//!   next holder's lock.
//! - Writes made under the lock ([`FENCED_SET`]) check the value in the same script: a
//!   holder that lost its lock cannot overwrite what the next one stored.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use redis::aio::ConnectionManager;
use redis::Script;

use super::{Held, LockOutcome};

/// KEYS: lock, fencing counter. ARGV: node, random, lease in ms. Returns `{fence, value}`,
/// fence 0 when another value holds the lock.
pub const ACQUIRE: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur then return {0, cur} end
local fence = redis.call('INCR', KEYS[2])
local v = ARGV[1] .. ' ' .. fence .. ' ' .. ARGV[2]
redis.call('SET', KEYS[1], v, 'NX', 'PX', ARGV[3])
return {fence, v}
";

/// KEYS: lock. ARGV: value, lease in ms. 1 when extended, 0 when the lock is not ours.
pub const EXTEND: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// KEYS: lock. ARGV: value. 1 when deleted, 0 when the lock is not ours.
pub const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// KEYS: lock, target. ARGV: value, data, channel, message. Sets target to data and
/// publishes message only while the lock holds value: 1 when written, 0 otherwise.
pub const FENCED_SET: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
";

/// A held Redis lock, renewed in the background until released or dropped.
pub struct RedisLock {
    conn: ConnectionManager,
    key: String,
    value: String,
    fence: u64,
    lost: Arc<AtomicBool>,
    renew: tokio::task::JoinHandle<()>,
}

impl Drop for RedisLock {
    fn drop(&mut self) {
        self.renew.abort();
    }
}

impl RedisLock {
    /// Take the lock `key` (fencing counter `fence_key`) for `node`, or say who holds it.
    pub async fn acquire(
        conn: &ConnectionManager,
        key: &str,
        fence_key: &str,
        node: &str,
        lease: Duration,
    ) -> redis::RedisResult<LockOutcome> {
        let random: u64 = rand::thread_rng().gen();
        let lease_ms = lease.as_millis().max(1) as u64;
        let (fence, value): (u64, String) = Script::new(ACQUIRE)
            .key(key)
            .key(fence_key)
            .arg(node)
            .arg(format!("{random:016x}"))
            .arg(lease_ms)
            .invoke_async(&mut conn.clone())
            .await?;
        if fence == 0 {
            let holder = value.split(' ').next().unwrap_or("").to_string();
            return Ok(LockOutcome::HeldBy(holder));
        }
        let lost = Arc::new(AtomicBool::new(false));
        let renew = tokio::spawn(renew(
            conn.clone(),
            key.to_string(),
            value.clone(),
            lease,
            lost.clone(),
        ));
        Ok(LockOutcome::Acquired(Box::new(RedisLock {
            conn: conn.clone(),
            key: key.to_string(),
            value,
            fence,
            lost,
            renew,
        })))
    }

    /// Whether a renewal found the lock taken by someone else.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }
}

async fn renew(
    mut conn: ConnectionManager,
    key: String,
    value: String,
    lease: Duration,
    lost: Arc<AtomicBool>,
) {
    let lease_ms = lease.as_millis().max(1) as u64;
    loop {
        tokio::time::sleep(lease / 3).await;
        let r: redis::RedisResult<i64> = Script::new(EXTEND)
            .key(&key)
            .arg(&value)
            .arg(lease_ms)
            .invoke_async(&mut conn)
            .await;
        match r {
            Ok(1) => {}
            Ok(_) => {
                tracing::warn!(lock = %key, "the order lock was lost (its lease expired); \
                    the certificate of this order will not be stored");
                lost.store(true, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                tracing::warn!(lock = %key, error = %e, "cannot renew the order lock");
            }
        }
    }
}

#[async_trait]
impl Held for RedisLock {
    fn token(&self) -> Option<&str> {
        Some(&self.value)
    }

    fn fence(&self) -> u64 {
        self.fence
    }

    async fn release(self: Box<Self>) {
        self.renew.abort();
        let r: redis::RedisResult<i64> = Script::new(RELEASE)
            .key(&self.key)
            .arg(&self.value)
            .invoke_async(&mut self.conn.clone())
            .await;
        if let Err(e) = r {
            tracing::warn!(lock = %self.key, error = %e,
                "cannot release the order lock: it expires with its lease");
        }
    }
}
