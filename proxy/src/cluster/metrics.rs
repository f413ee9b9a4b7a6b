//! The cluster's metrics, registered in the process's registry only when `[cluster]` is
//! configured (an instance alone shows none of them):
//! - `vigie_cluster_redis_up`: 1 while the Redis link answers, 0 while its breaker is open;
//! - `vigie_cluster_redis_rtt_seconds`: round trip of each operation and probe that answered;
//! - `vigie_cluster_limiter_fallback_total{action}`: limited requests Redis did not decide,
//!   by what decided instead (`local`: this instance's limiter, `refused`: fail_closed).

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};

use crate::metrics::Metrics;

/// Round-trip buckets, seconds: 50 µs (loopback) to 1 s.
const RTT_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Handles on the cluster's metrics (cheap to clone: each is shared).
#[derive(Clone)]
pub struct ClusterMetrics {
    /// `vigie_cluster_redis_up`.
    pub redis_up: IntGauge,
    /// `vigie_cluster_redis_rtt_seconds`.
    pub redis_rtt: Histogram,
    /// `vigie_cluster_limiter_fallback_total{action="local"}`.
    pub fallback_local: IntCounter,
    /// `vigie_cluster_limiter_fallback_total{action="refused"}`.
    pub fallback_refused: IntCounter,
}

impl ClusterMetrics {
    /// Register the cluster's metrics in `metrics`' registry (once per process).
    pub fn register(metrics: &Metrics) -> ClusterMetrics {
        let r = metrics.registry();
        let redis_up = IntGauge::new(
            "vigie_cluster_redis_up",
            "1 while the cluster's Redis answers, 0 while rate limits do without it.",
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        let redis_rtt = Histogram::with_opts(
            HistogramOpts::new(
                "vigie_cluster_redis_rtt_seconds",
                "Round trip of the rate limiter's calls and the probes to the cluster's Redis.",
            )
            .buckets(RTT_BUCKETS.to_vec()),
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        let fallback = IntCounterVec::new(
            Opts::new(
                "vigie_cluster_limiter_fallback_total",
                "Rate-limited requests decided without Redis, by what decided (local, refused).",
            ),
            &["action"],
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        let _ = r.register(Box::new(redis_up.clone()));
        let _ = r.register(Box::new(redis_rtt.clone()));
        let _ = r.register(Box::new(fallback.clone()));
        ClusterMetrics {
            redis_up,
            redis_rtt,
            fallback_local: fallback.with_label_values(&["local"]),
            fallback_refused: fallback.with_label_values(&["refused"]),
        }
    }
}
