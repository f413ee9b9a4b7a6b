//! The ACME manager's metrics: orders and CA fallbacks per site, and in a cluster the
//! sites' order locks. All are read from the manager when `/metrics` is scraped.
//!
//! Lock metrics (per site, this instance's view; sum them over the instances for the
//! cluster's):
//! - `vigie_acme_lock_acquisitions_total`: times this instance took the order lock;
//! - `vigie_acme_lock_held`: 1 while this instance holds it (at most one instance has 1);
//! - `vigie_acme_lock_waits_total`: passes that found another node holding it and waited
//!   for that node's certificate instead of ordering;
//! - `vigie_acme_lock_unavailable_total`: passes that could not ask for it (Redis
//!   unreachable): no order, the served certificate stays;
//! - `vigie_acme_lock_lost_total`: leases that ran out before the certificate was stored
//!   (the certificate is dropped; the next holder orders).

use prometheus::{IntCounterVec, IntGaugeVec, Registry};
use vigie_acme::LockCounts;

use super::{counter, gauge};

/// The ACME metric families.
pub(super) struct AcmeMetrics {
    orders: IntCounterVec,
    fallback: IntCounterVec,
    lock_acquisitions: IntCounterVec,
    lock_held: IntGaugeVec,
    lock_waits: IntCounterVec,
    lock_unavailable: IntCounterVec,
    lock_lost: IntCounterVec,
}

/// What the manager reports, gathered by the admin listener at scrape time.
#[derive(Debug, Default)]
pub struct AcmeFigures {
    /// Per site: orders that succeeded and that failed since start.
    pub orders: Vec<(String, u64, u64)>,
    /// Per pair of directories: sites moved from the first CA to the second.
    pub fallbacks: Vec<(String, String, u64)>,
    /// Per site: what this instance did with the order lock.
    pub locks: Vec<LockCounts>,
}

fn set(c: &IntCounterVec, labels: &[&str], v: u64) {
    let m = c.with_label_values(labels);
    m.reset();
    m.inc_by(v);
}

impl AcmeMetrics {
    /// Register the families in `r`.
    pub(super) fn new(r: &Registry) -> AcmeMetrics {
        AcmeMetrics {
            orders: counter(
                r,
                "vigie_acme_orders_total",
                "ACME orders by result.",
                &["site", "result"],
            ),
            fallback: counter(
                r,
                "vigie_acme_fallback_total",
                "Sites moved from one ACME CA to the next of [[acme.ca]], by directory URL.",
                &["from", "to"],
            ),
            lock_acquisitions: counter(
                r,
                "vigie_acme_lock_acquisitions_total",
                "Times this instance took a site's cluster-wide order lock.",
                &["site"],
            ),
            lock_held: gauge(
                r,
                "vigie_acme_lock_held",
                "1 while this instance holds the site's cluster-wide order lock.",
                &["site"],
            ),
            lock_waits: counter(
                r,
                "vigie_acme_lock_waits_total",
                "Passes that found another node holding the site's order lock and waited for \
                 its certificate.",
                &["site"],
            ),
            lock_unavailable: counter(
                r,
                "vigie_acme_lock_unavailable_total",
                "Passes that could not ask for the site's order lock (the store unreachable): \
                 no order placed.",
                &["site"],
            ),
            lock_lost: counter(
                r,
                "vigie_acme_lock_lost_total",
                "Order locks whose lease ran out before the certificate was stored.",
                &["site"],
            ),
        }
    }

    /// Set every series to the manager's figures.
    pub(super) fn refresh(&self, f: &AcmeFigures) {
        for (site, issued, failures) in &f.orders {
            set(&self.orders, &[site, "ok"], *issued);
            set(&self.orders, &[site, "failed"], *failures);
        }
        for (from, to, n) in &f.fallbacks {
            set(&self.fallback, &[from, to], *n);
        }
        for l in &f.locks {
            let site = [l.site.as_str()];
            set(&self.lock_acquisitions, &site, l.acquired);
            set(&self.lock_waits, &site, l.waited);
            set(&self.lock_unavailable, &site, l.unavailable);
            set(&self.lock_lost, &site, l.lost);
            self.lock_held
                .with_label_values(&site)
                .set(i64::from(l.held));
        }
    }
}
