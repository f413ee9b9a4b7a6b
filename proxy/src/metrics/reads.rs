//! Reads for the status page: what the registry holds, gathered off the request path.

use prometheus::IntCounterVec;

use super::Metrics;

/// Status classes as `vigie_requests_total` labels them, in the order of
/// [`Metrics::request_totals`]'s arrays.
pub const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];

/// Every series of a counter family: its labels by name and its value.
fn series(c: &IntCounterVec) -> Vec<(std::collections::HashMap<String, String>, u64)> {
    use prometheus::core::Collector;
    let mut out = Vec::new();
    for family in c.collect() {
        for m in family.get_metric() {
            let labels = m
                .get_label()
                .iter()
                .map(|l| (l.name().to_string(), l.value().to_string()))
                .collect();
            out.push((labels, m.get_counter().get_value() as u64));
        }
    }
    out
}

impl Metrics {
    /// Requests answered since start by (site, route), summed over methods, per status
    /// class in [`STATUS_CLASSES`] order.
    pub fn request_totals(&self) -> std::collections::HashMap<(String, String), [u64; 6]> {
        let mut out = std::collections::HashMap::new();
        for (labels, v) in series(&self.requests) {
            let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
            let class = labels.get("status_class").map_or("none", String::as_str);
            let i = STATUS_CLASSES.iter().position(|c| *c == class).unwrap_or(5);
            let entry: &mut [u64; 6] = out.entry((get("site"), get("route"))).or_default();
            entry[i] += v;
        }
        out
    }

    /// Cache decisions since start by (zone, status: `HIT`, `MISS`...).
    pub fn cache_totals(&self) -> Vec<(String, String, u64)> {
        series(&self.cache_requests)
            .into_iter()
            .map(|(l, v)| {
                let get = |k: &str| l.get(k).cloned().unwrap_or_default();
                (get("zone"), get("status"), v)
            })
            .collect()
    }

    /// Client connections open now.
    pub fn connections_open(&self) -> i64 {
        self.connections.get()
    }

    /// Reloads since start: (applied, refused).
    pub fn reload_totals(&self) -> (u64, u64) {
        let get = |r: &str| self.reloads.with_label_values(&[r]).get();
        (get("ok"), get("failed"))
    }
}
