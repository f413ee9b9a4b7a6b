//! A small ring buffer of what the status page draws over time, filled by a background task
//! every [`STEP`] (never by requests): per-site request totals by status class, and each
//! upstream server's latency bucket counts.
//!
//! Totals are kept cumulative (as the metrics registry holds them), so a missed or late
//! sample loses no request: the page reads differences between neighbouring samples.
//! Memory is bounded: [`POINTS`] site samples (5 minutes) and [`LATENCY_POINTS`] server
//! samples (the last minute, the window of the latency quantiles).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::upstream::LatencyCounts;

/// Time between two samples.
pub const STEP: Duration = Duration::from_secs(2);
/// Site samples kept: 5 minutes.
pub const POINTS: usize = 151;
/// Server samples kept: the last minute (the latency window).
pub const LATENCY_POINTS: usize = 31;

/// Request totals per status class (see `metrics::reads::STATUS_CLASSES`).
pub type Classes = [u64; 6];

/// A server of a group, as history keys it.
pub type ServerKey = (String, SocketAddr);

#[derive(Debug, Default)]
struct Rings {
    sites: VecDeque<(SystemTime, HashMap<String, Classes>)>,
    servers: VecDeque<(SystemTime, HashMap<ServerKey, LatencyCounts>)>,
}

/// The ring buffers (see the module docs).
#[derive(Debug, Default)]
pub struct History {
    rings: Mutex<Rings>,
}

/// One interval of a site's history: when it ended and the requests answered in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    /// End of the interval.
    pub at: SystemTime,
    /// Its length.
    pub length: Duration,
    /// Requests answered in it, per status class.
    pub classes: Classes,
}

impl History {
    /// Record one sample taken at `at`.
    pub fn record(
        &self,
        at: SystemTime,
        sites: HashMap<String, Classes>,
        servers: HashMap<ServerKey, LatencyCounts>,
    ) {
        let mut r = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        r.sites.push_back((at, sites));
        while r.sites.len() > POINTS {
            r.sites.pop_front();
        }
        r.servers.push_back((at, servers));
        while r.servers.len() > LATENCY_POINTS {
            r.servers.pop_front();
        }
    }

    /// The intervals between neighbouring samples for `site`, oldest first. A site absent
    /// from a sample (not configured yet, or no request yet) counts zero there.
    pub fn site(&self, site: &str) -> Vec<Interval> {
        let r = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        let zero = [0u64; 6];
        r.sites
            .iter()
            .zip(r.sites.iter().skip(1))
            .map(|((t0, a), (t1, b))| {
                let a = a.get(site).unwrap_or(&zero);
                let b = b.get(site).unwrap_or(&zero);
                Interval {
                    at: *t1,
                    length: t1.duration_since(*t0).unwrap_or_default(),
                    classes: std::array::from_fn(|i| b[i].saturating_sub(a[i])),
                }
            })
            .collect()
    }

    /// The oldest server sample kept for `key` and when it was taken: the start of the
    /// latency window. `None` before the first sample.
    pub fn latency_base(&self, key: &ServerKey) -> Option<(SystemTime, LatencyCounts)> {
        let r = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        let (at, servers) = r.servers.front()?;
        Some((*at, servers.get(key).copied().unwrap_or_default()))
    }
}

/// Takes a sample every [`STEP`] until shutdown.
pub struct Sampler {
    page: Arc<super::StatusPage>,
}

impl Sampler {
    /// A sampler filling `page`'s history.
    pub fn new(page: Arc<super::StatusPage>) -> Self {
        Sampler { page }
    }
}

#[async_trait]
impl BackgroundService for Sampler {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            self.page.sample();
            tokio::select! {
                _ = tokio::time::sleep(STEP) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn intervals_are_differences_and_the_ring_is_bounded() {
        let h = History::default();
        for i in 0..(POINTS as u64 + 10) {
            let mut sites = HashMap::new();
            if i >= 5 {
                sites.insert("a".to_string(), [0, i * 3, 0, i, 0, 0]);
            }
            h.record(at(100 + 2 * i), sites, HashMap::new());
        }
        let iv = h.site("a");
        assert_eq!(iv.len(), POINTS - 1);
        assert!(iv.iter().all(|i| i.classes == [0, 3, 0, 1, 0, 0]), "{iv:?}");
        assert_eq!(iv[0].length, Duration::from_secs(2));
        assert_eq!(
            iv.last().map(|i| i.at),
            Some(at(100 + 2 * (POINTS as u64 + 9)))
        );
        assert!(h.site("b").iter().all(|i| i.classes == [0; 6]));
    }

    #[test]
    fn the_latency_base_is_the_oldest_kept_sample() {
        let h = History::default();
        let key: ServerKey = ("app".into(), "127.0.0.1:1".parse().unwrap());
        assert_eq!(h.latency_base(&key), None);
        for i in 0..(LATENCY_POINTS as u64 + 3) {
            let mut counts = LatencyCounts::default();
            counts[0] = i;
            h.record(
                at(i),
                HashMap::new(),
                HashMap::from([(key.clone(), counts)]),
            );
        }
        let (t, counts) = h.latency_base(&key).unwrap();
        assert_eq!(t, at(3));
        assert_eq!(counts[0], 3);
    }
}
