//! Per-server observations for the status page, beyond health: response latency as bucket
//! counts (so quantiles can be read without keeping samples), error counts, and what the
//! active health check last said (when the server's health last changed, why the last check
//! failed).
//!
//! Cost on the request path: one relaxed atomic add into a latency bucket per upstream
//! response (plus one more for a 5xx), on the server's own state, which the request already
//! holds through its in-flight guard: no lookup, no lock, no allocation. The health notes
//! are written only by the health-check task.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use pingora::lb::health_check::{HealthCheck, HttpHealthCheck};
use pingora::lb::Backend;

use super::ServerState;

/// Upper bounds of the latency buckets, in microseconds (a last bucket holds the rest).
pub const LATENCY_BOUNDS_US: [u64; 16] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000, 30_000_000,
];

/// Number of latency buckets: one per bound, and one above the last.
pub const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_US.len() + 1;

/// Counts of responses per latency bucket (not cumulative).
pub type LatencyCounts = [u64; LATENCY_BUCKETS];

/// What the active health check last said about a server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthNote {
    /// When the server last turned healthy or unhealthy (`None`: not since the group was
    /// built).
    pub changed_at: Option<SystemTime>,
    /// Why the last check failed, when it did.
    pub last_error: Option<String>,
}

/// Counters of one server (see the module docs).
#[derive(Debug, Default)]
pub struct ServerStats {
    latency: [AtomicU64; LATENCY_BUCKETS],
    responses_5xx: AtomicU64,
    failures: AtomicU64,
    health: Mutex<HealthNote>,
}

impl ServerStats {
    /// One upstream response header arrived `elapsed` after the server was chosen.
    pub fn response(&self, elapsed: Duration, status: u16) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let i = LATENCY_BOUNDS_US.partition_point(|b| *b < us);
        self.latency[i].fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            self.responses_5xx.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A connection to the server failed or timed out, or the exchange broke after it.
    pub fn failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Responses per latency bucket so far.
    pub fn latency_counts(&self) -> LatencyCounts {
        std::array::from_fn(|i| self.latency[i].load(Ordering::Relaxed))
    }

    /// Responses so far.
    pub fn responses(&self) -> u64 {
        self.latency.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// 5xx responses so far.
    pub fn responses_5xx(&self) -> u64 {
        self.responses_5xx.load(Ordering::Relaxed)
    }

    /// Connection failures, timeouts and broken exchanges so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// What the active health check last said.
    pub fn health(&self) -> HealthNote {
        self.health.lock().map(|h| h.clone()).unwrap_or_default()
    }

    fn note_check(&self, error: Option<String>) {
        if let Ok(mut h) = self.health.lock() {
            h.last_error = error;
        }
    }

    fn note_change(&self) {
        if let Ok(mut h) = self.health.lock() {
            h.changed_at = Some(SystemTime::now());
        }
    }
}

/// The `q` quantile (0..=1) of `counts`, in milliseconds, interpolated linearly inside its
/// bucket (as Prometheus's `histogram_quantile` does); `None` without any response. A
/// quantile in the last, open bucket reads as its lower bound.
pub fn quantile_ms(counts: &LatencyCounts, q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut seen = 0u64;
    for (i, n) in counts.iter().enumerate() {
        if *n == 0 {
            continue;
        }
        if (seen + n) as f64 >= rank {
            let lower = if i == 0 { 0 } else { LATENCY_BOUNDS_US[i - 1] };
            let Some(upper) = LATENCY_BOUNDS_US.get(i) else {
                return Some(lower as f64 / 1000.0);
            };
            let within = ((rank - seen as f64) / *n as f64).clamp(0.0, 1.0);
            return Some((lower as f64 + within * (upper - lower) as f64) / 1000.0);
        }
        seen += n;
    }
    Some(LATENCY_BOUNDS_US[LATENCY_BOUNDS_US.len() - 1] as f64 / 1000.0)
}

/// pingora's HTTP health check, noting each result and each change of health on the
/// server's [`ServerStats`].
pub(super) struct ObservedCheck {
    pub(super) inner: HttpHealthCheck,
    pub(super) servers: HashMap<SocketAddr, Arc<ServerState>>,
}

impl ObservedCheck {
    fn stats(&self, target: &Backend) -> Option<&ServerStats> {
        target
            .as_inet()
            .and_then(|a| self.servers.get(a))
            .map(|s| &s.stats)
    }
}

/// Longest failure reason kept, in bytes.
const MAX_REASON: usize = 300;

#[async_trait]
impl HealthCheck for ObservedCheck {
    async fn check(&self, target: &Backend) -> pingora::Result<()> {
        let result = self.inner.check(target).await;
        if let Some(stats) = self.stats(target) {
            stats.note_check(result.as_ref().err().map(|e| {
                let mut reason = e.to_string().trim().to_string();
                if reason.len() > MAX_REASON {
                    let mut cut = MAX_REASON;
                    while !reason.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    reason.truncate(cut);
                }
                reason
            }));
        }
        result
    }

    async fn health_status_change(&self, target: &Backend, healthy: bool) {
        if let Some(stats) = self.stats(target) {
            stats.note_change();
        }
        self.inner.health_status_change(target, healthy).await;
    }

    fn backend_summary(&self, target: &Backend) -> String {
        self.inner.backend_summary(target)
    }

    fn health_threshold(&self, success: bool) -> usize {
        self.inner.health_threshold(success)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn responses_land_in_their_bucket() {
        let s = ServerStats::default();
        s.response(Duration::from_micros(100), 200);
        s.response(Duration::from_micros(250), 200);
        s.response(Duration::from_millis(3), 502);
        s.response(Duration::from_secs(60), 200);
        let c = s.latency_counts();
        assert_eq!(c[0], 2, "{c:?}");
        assert_eq!(c[4], 1, "{c:?}");
        assert_eq!(c[LATENCY_BUCKETS - 1], 1, "{c:?}");
        assert_eq!(s.responses(), 4);
        assert_eq!(s.responses_5xx(), 1);
    }

    #[test]
    fn quantiles_interpolate_inside_buckets() {
        let mut c = [0u64; LATENCY_BUCKETS];
        assert_eq!(quantile_ms(&c, 0.5), None);
        // 100 responses between 1 and 2.5 ms.
        c[3] = 100;
        assert_eq!(quantile_ms(&c, 0.5), Some(1.75));
        assert_eq!(quantile_ms(&c, 1.0), Some(2.5));
        // 99 fast ones and one in the open last bucket.
        let mut c = [0u64; LATENCY_BUCKETS];
        c[0] = 99;
        c[LATENCY_BUCKETS - 1] = 1;
        let p50 = quantile_ms(&c, 0.5).unwrap();
        assert!((p50 - 0.25 * 50.0 / 99.0).abs() < 1e-9, "{p50}");
        assert_eq!(quantile_ms(&c, 0.99), Some(0.25));
        assert_eq!(quantile_ms(&c, 1.0), Some(30_000.0));
    }
}
