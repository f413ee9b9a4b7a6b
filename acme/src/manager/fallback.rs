//! CA fallback: with several CAs in `[acme]` (`[[acme.ca]]`), a site whose CA keeps failing
//! moves to the next one.
//!
//! The rule, per site:
//! - an order goes to the site's current CA; every site starts at the first one;
//! - the site moves to the next CA in the list (after the last: back to the first) when its
//!   current CA failed [`SWITCH_AFTER`] orders in a row, or at once when the CA is
//!   unreachable (no answer: connect or TLS error, [`Manager::with_timeout`]'s deadline; or a
//!   5xx answer) or rate-limits the account for longer than [`LONG_WAIT`] (a `rateLimited`
//!   problem without `Retry-After`, or one further away than that);
//! - the next CA is asked in the same pass, so a move costs no back-off; each CA is asked
//!   at most once per pass, and when all failed the site backs off as with a single CA;
//! - after a certificate is issued, the next order (the renewal) starts at the first CA
//!   again: the list is an order of preference, a fallback is not for good;
//! - every move is logged at WARN (site, from, to, why) and counted per (from, to) pair for
//!   `vigie_acme_fallback_total`; the CA that issued a certificate is stored next to it
//!   (`certs/<site>/ca`) and shown by `vigie cert list`.
//!
//! With one CA nothing here changes the behaviour: no move, no count.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::store::Held;
use vigie_config::{Acme, AcmeCa};

use super::*;

/// Consecutive failed orders at a CA after which a site moves to the next one.
pub(super) const SWITCH_AFTER: u32 = 3;
/// A rate limit longer than this moves the site to the next CA at once.
pub(super) const LONG_WAIT: Duration = Duration::from_secs(3600);

/// Where each site is in the CA list.
#[derive(Debug, Default)]
pub(super) struct Positions(HashMap<String, Position>);

#[derive(Debug, Default, Clone, Copy)]
struct Position {
    /// Index in [`Acme::cas`].
    ca: usize,
    /// Consecutive failed orders at that CA.
    failures: u32,
}

/// Moves counted per (from, to) directory pair, read by the metrics without the state lock.
#[derive(Debug, Default)]
pub(super) struct Counts(Mutex<BTreeMap<(String, String), u64>>);

impl Counts {
    fn add(&self, from: &str, to: &str) {
        if let Ok(mut c) = self.0.lock() {
            *c.entry((from.to_string(), to.to_string())).or_default() += 1;
        }
    }
}

/// Why an order's failure moves the site to the next CA at once (`None`: it only counts).
fn switch_now(
    error: &AcmeError,
    unreachable: Option<String>,
    retry_after: Option<SystemTime>,
    now: SystemTime,
) -> Option<String> {
    if let Some(why) = unreachable {
        return Some(format!("unreachable ({why})"));
    }
    if error.is_rate_limited() {
        return match retry_after {
            None => Some("rate limited, without Retry-After".to_string()),
            Some(t) if t > now + LONG_WAIT => {
                Some(format!("rate limited until {}", httpdate::fmt_http_date(t)))
            }
            Some(_) => None,
        };
    }
    None
}

/// With several CAs, which one the site's next order goes to, for `vigie cert list`'s
/// waiting column (empty with one CA).
pub(super) fn next_ca_words(state: &State, acme: &Acme, key: &str) -> String {
    let cas = acme.cas();
    if cas.len() < 2 {
        return String::new();
    }
    let at = state.positions.0.get(key).map_or(0, |p| p.ca % cas.len());
    format!(" at CA {} of {} ({})", at + 1, cas.len(), cas[at].directory)
}

impl Manager {
    /// Moves to another CA since start: (from directory, to directory, count).
    pub fn fallbacks(&self) -> Vec<(String, String, u64)> {
        self.fallbacks
            .0
            .lock()
            .map(|c| {
                c.iter()
                    .map(|((from, to), n)| (from.clone(), to.clone(), *n))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The same manager with another deadline for each request to a CA (default 30 s).
    pub fn with_timeout(mut self: Arc<Self>, timeout: Duration) -> Arc<Self> {
        if let Some(m) = Arc::get_mut(&mut self) {
            m.timeout = timeout;
        }
        self
    }

    /// `acme` talking to the CA that issued a certificate (`issuer`, a directory URL) when it
    /// is still listed, else to the first CA.
    pub(super) fn issuer_view(acme: &Acme, issuer: Option<&str>) -> Acme {
        match acme
            .cas()
            .into_iter()
            .find(|c| Some(c.directory.as_str()) == issuer)
        {
            Some(ca) => acme.with_ca(&ca),
            None => acme.clone(),
        }
    }

    /// Order `wanted` from the site's current CA, moving down the list as the rule says.
    /// On failure, returns the last error and the `Retry-After` of the last CA asked.
    pub(super) async fn order_fallback(
        &self,
        state: &mut State,
        acme: &Acme,
        wanted: &Wanted,
        key: &str,
        lock: &dyn Held,
    ) -> Result<Managed, (AcmeError, Option<SystemTime>)> {
        let cas: Vec<AcmeCa> = acme.cas();
        let mut at = state.positions.0.get(key).copied().unwrap_or_default();
        at.ca %= cas.len();
        let mut asked = 0;
        loop {
            let ca = &cas[at.ca];
            let view = acme.with_ca(ca);
            self.traffic.take_retry_after();
            self.traffic.take_unreachable();
            if cas.len() > 1 {
                tracing::info!(site = %key, directory = %ca.directory, ca = at.ca + 1,
                    of = cas.len(), "ordering from CA {} of {}", at.ca + 1, cas.len());
            }
            let result = self
                .order(
                    state,
                    &view,
                    &wanted.names,
                    wanted.profile.as_deref(),
                    Some(lock),
                )
                .await;
            let retry_after = self.traffic.take_retry_after();
            let unreachable = self.traffic.take_unreachable();
            let e = match result {
                Ok(m) => {
                    // The next order starts at the first CA again.
                    state.positions.0.remove(key);
                    return Ok(m);
                }
                Err(e) => e,
            };
            asked += 1;
            if cas.len() == 1 {
                return Err((e, retry_after));
            }
            at.failures += 1;
            let why = switch_now(&e, unreachable, retry_after, SystemTime::now()).or_else(|| {
                (at.failures >= SWITCH_AFTER)
                    .then(|| format!("{} failed orders in a row", at.failures))
            });
            let Some(why) = why else {
                state.positions.0.insert(key.to_string(), at);
                return Err((e, retry_after));
            };
            let next = (at.ca + 1) % cas.len();
            tracing::warn!(site = %key, from = %ca.directory, to = %cas[next].directory,
                reason = %why, error = %e, "the CA keeps failing for this site: falling back to the next CA");
            self.fallbacks.add(&ca.directory, &cas[next].directory);
            at = Position {
                ca: next,
                failures: 0,
            };
            state.positions.0.insert(key.to_string(), at);
            if asked >= cas.len() {
                return Err((e, retry_after));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn problem(kind: &str) -> AcmeError {
        let p: instant_acme::Problem = serde_json::from_value(serde_json::json!({
            "type": format!("urn:ietf:params:acme:error:{kind}"),
            "detail": "test",
        }))
        .unwrap();
        AcmeError::Acme(instant_acme::Error::Api(p))
    }

    #[test]
    fn only_an_unreachable_ca_or_a_long_rate_limit_moves_at_once() {
        let now = SystemTime::now();
        let refused = problem("unauthorized");
        assert_eq!(switch_now(&refused, None, None, now), None);
        assert!(
            switch_now(&refused, Some("connect error".into()), None, now)
                .unwrap()
                .starts_with("unreachable (connect error")
        );
        let limited = problem("rateLimited");
        assert!(switch_now(&limited, None, None, now).is_some());
        let soon = now + Duration::from_secs(60);
        assert_eq!(switch_now(&limited, None, Some(soon), now), None);
        let later = now + Duration::from_secs(7200);
        assert!(switch_now(&limited, None, Some(later), now)
            .unwrap()
            .starts_with("rate limited until"));
    }

    #[test]
    fn counts_are_per_pair() {
        let c = Counts::default();
        c.add("a", "b");
        c.add("a", "b");
        c.add("b", "a");
        let got = c.0.lock().unwrap().clone();
        assert_eq!(got[&("a".into(), "b".into())], 2);
        assert_eq!(got[&("b".into(), "a".into())], 1);
    }
}
