//! When a certificate is due, and how long to wait after a failure.
//!
//! Renewal time:
//! - the CA's ARI window (RFC 9773) when its directory has `renewalInfo`: a random point
//!   inside the window, picked again only when the window changes; the window is fetched
//!   again when the CA's `Retry-After` says (bounded to [1 s, 24 h]);
//! - otherwise the lifetime rule: at half of the lifetime for certificates of 10 days or
//!   less, when a third remains for longer ones, minus up to 1/30 of the lifetime of
//!   jitter (stable per serial, so a restart computes the same time).
//!
//! After a failed order: exponential back-off from the first retry delay, doubled per
//! failure, with ±25 % jitter, never past the ceiling; a `Retry-After` from the CA pushes the
//! next attempt later (never earlier), up to 24 h.
//!
//! Neither may let the certificate being served expire while the CA could be back: while it
//! is valid, the next attempt is at most halfway to its expiry (never sooner than 1 s), so
//! attempts get closer as the end nears — a bounded number, about log2 of the remaining life
//! in seconds — and a short certificate (a 6-day one, or Pebble's seconds) is not outlived by
//! a back-off sized for 90-day ones.

use std::time::{Duration, SystemTime};

use instant_acme::{Account, CertificateIdentifier};

use crate::pem::CertInfo;

use super::*;

/// Certificates of this lifetime or less renew at half of it; longer ones when a third remains.
const SHORT_LIFETIME: Duration = Duration::from_secs(10 * 24 * 3600);
/// The longest wait vigie accepts from a `Retry-After` (ARI re-fetch or error answer).
const RETRY_AFTER_CEILING: Duration = Duration::from_secs(24 * 3600);

/// How a renewal time was chosen (shown by `vigie cert list`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) enum Source {
    /// The lifetime rule (no ARI, or ARI not reachable yet).
    #[default]
    Lifetime,
    /// A random point in the CA's suggested window.
    Ari {
        /// Window start.
        start: SystemTime,
        /// Window end.
        end: SystemTime,
    },
}

/// The schedule of one managed certificate.
#[derive(Debug, Clone, Default)]
pub(super) struct Schedule {
    /// How `renew_at` was chosen.
    pub(super) source: Source,
    /// When to ask the CA's ARI endpoint again (`None`: the CA has no ARI).
    pub(super) ari_recheck: Option<SystemTime>,
}

/// Renewal time by the lifetime rule.
pub(super) fn lifetime_renewal(info: &CertInfo) -> SystemTime {
    let life = info.lifetime();
    let margin = if life <= SHORT_LIFETIME {
        life / 2
    } else {
        life / 3
    };
    let jitter_span = life / 30;
    let seed = info
        .serial
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    let jitter = if jitter_span.is_zero() {
        Duration::ZERO
    } else {
        Duration::from_millis(seed % (jitter_span.as_millis() as u64).max(1))
    };
    info.not_after - margin - jitter
}

/// The lifetime rule in words, for `vigie cert list`.
pub(super) fn lifetime_rule(info: &CertInfo) -> &'static str {
    if info.lifetime() <= SHORT_LIFETIME {
        "half of the lifetime (10 days or less)"
    } else {
        "a third of the lifetime left"
    }
}

/// Delay before the next attempt after `failures` consecutive failures (≥ 1).
pub(super) fn backoff(base: Duration, cap: Duration, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    let delay = base.saturating_mul(1u32 << exp).min(cap);
    delay.mul_f64(0.75 + 0.5 * rand::random::<f64>()).min(cap)
}

/// The next attempt after a failure: the back-off, or later if the CA asked for it.
pub(super) fn retry_time(
    now: SystemTime,
    backoff: Duration,
    retry_after: Option<SystemTime>,
) -> SystemTime {
    let ours = now + backoff;
    match retry_after {
        Some(theirs) => ours.max(theirs.min(now + RETRY_AFTER_CEILING)),
        None => ours,
    }
}

/// The shortest wait [`before_expiry`] leaves between attempts.
const EXPIRY_FLOOR: Duration = Duration::from_secs(1);

/// `at`, or earlier if waiting until `at` would let the served certificate (valid until
/// `not_after`) expire: at most halfway from `now` to its expiry, and not sooner than
/// [`EXPIRY_FLOOR`]. Without a valid certificate `at` stands (the back-off paces the orders).
pub(super) fn before_expiry(
    now: SystemTime,
    at: SystemTime,
    not_after: Option<SystemTime>,
) -> SystemTime {
    let Some(left) = not_after.and_then(|end| end.duration_since(now).ok()) else {
        return at;
    };
    at.min(now + (left / 2).max(EXPIRY_FLOOR))
}

/// The ARI identifier of a certificate (for `renewalInfo` and `replaces`).
pub(super) fn ari_id(
    leaf: &rustls::pki_types::CertificateDer<'static>,
) -> Option<CertificateIdentifier<'static>> {
    CertificateIdentifier::try_from(leaf)
        .ok()
        .map(CertificateIdentifier::into_owned)
}

impl Manager {
    /// Ask the CA's ARI endpoint about `m` and update its schedule. A CA without ARI gives
    /// the lifetime rule for good; an unreachable one keeps the current time and asks again
    /// after the first retry delay.
    pub(super) async fn refresh_schedule(&self, account: &Account, m: &mut Managed) {
        let now = SystemTime::now();
        let Some(id) = m.ck.cert.first().and_then(ari_id) else {
            m.schedule.ari_recheck = None;
            return;
        };
        match account.renewal_info(&id).await {
            Ok((ri, delay)) => {
                let start: SystemTime = ri.suggested_window.start.into();
                let end: SystemTime = ri.suggested_window.end.into();
                let changed = m.schedule.source != Source::Ari { start, end };
                if changed {
                    let span = end.duration_since(start).unwrap_or_default();
                    m.renew_at = start + span.mul_f64(rand::random::<f64>());
                    m.schedule.source = Source::Ari { start, end };
                    tracing::info!(serial = %m.info.serial, window_start = ?start, window_end = ?end,
                        renew_at = ?m.renew_at, "renewal time picked inside the CA's ARI window");
                }
                let delay = delay.clamp(Duration::from_secs(1), RETRY_AFTER_CEILING);
                m.schedule.ari_recheck = Some(now + delay);
            }
            Err(instant_acme::Error::Unsupported(_)) => {
                m.schedule.ari_recheck = None;
            }
            Err(e) => {
                tracing::warn!(serial = %m.info.serial, error = %e,
                    "cannot fetch the CA's renewal information; keeping the current schedule");
                m.schedule.ari_recheck = Some(now + self.retry_base);
            }
        }
    }

    /// Why `m` is waiting, in words.
    pub(super) fn schedule_words(m: &Managed) -> String {
        let at = httpdate::fmt_http_date(m.renew_at);
        match &m.schedule.source {
            Source::Ari { start, end } => format!(
                "renewal at {at}, inside the CA's ARI window {} .. {}",
                httpdate::fmt_http_date(*start),
                httpdate::fmt_http_date(*end)
            ),
            Source::Lifetime => format!("renewal at {at}, at {}", lifetime_rule(&m.info)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cert(life: Duration) -> CertInfo {
        let not_before = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        CertInfo {
            names: vec!["a.example".into()],
            issuer: "test".into(),
            serial: "01:02".into(),
            not_before,
            not_after: not_before + life,
        }
    }

    #[test]
    fn short_certificates_renew_at_half_and_long_ones_with_a_third_left() {
        let day = Duration::from_secs(86400);
        for (life, margin) in [
            (6 * day, 3 * day),
            (10 * day, 5 * day),
            (45 * day, 15 * day),
            (90 * day, 30 * day),
        ] {
            let c = cert(life);
            let at = lifetime_renewal(&c);
            let left = c.not_after.duration_since(at).unwrap();
            assert!(
                left >= margin && left <= margin + life / 30,
                "{life:?}: {left:?}"
            );
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_under_the_ceiling() {
        let (base, cap) = (Duration::from_secs(60), Duration::from_secs(3600));
        for failures in 1..30 {
            let d = backoff(base, cap, failures);
            let nominal = base.saturating_mul(1 << (failures - 1).min(20)).min(cap);
            assert!(d <= cap, "{failures}: {d:?}");
            assert!(d >= nominal.mul_f64(0.75), "{failures}: {d:?}");
        }
    }

    #[test]
    fn retry_after_only_ever_delays() {
        let now = SystemTime::now();
        let b = Duration::from_secs(60);
        assert_eq!(retry_time(now, b, None), now + b);
        assert_eq!(
            retry_time(now, b, Some(now + Duration::from_secs(5))),
            now + b
        );
        let later = now + Duration::from_secs(600);
        assert_eq!(retry_time(now, b, Some(later)), later);
        let far = now + Duration::from_secs(100 * 86400);
        assert_eq!(retry_time(now, b, Some(far)), now + RETRY_AFTER_CEILING);
    }

    #[test]
    fn no_wait_lets_the_served_certificate_expire() {
        let now = SystemTime::now();
        let s = Duration::from_secs;
        let hour = now + s(3600);
        // Nothing served, or already expired: the back-off or Retry-After stands.
        assert_eq!(before_expiry(now, hour, None), hour);
        assert_eq!(before_expiry(now, hour, Some(now - s(1))), hour);
        // Far from expiry: untouched.
        assert_eq!(before_expiry(now, hour, Some(now + s(86400))), hour);
        // 10 s left: halfway there, then closer, never under a second apart.
        assert_eq!(before_expiry(now, hour, Some(now + s(10))), now + s(5));
        assert_eq!(
            before_expiry(now, hour, Some(now + Duration::from_millis(600))),
            now + EXPIRY_FLOOR
        );
        // A shorter wait than that is kept.
        assert_eq!(
            before_expiry(now, now + s(2), Some(now + s(10))),
            now + s(2)
        );
        // From 10 s left, attempts until expiry are few (halving to the floor).
        let (mut t, end, mut attempts) = (now, now + s(10), 0);
        while t < end {
            t = before_expiry(t, t + s(3600), Some(end));
            attempts += 1;
        }
        assert!(attempts <= 5, "{attempts}");
    }
}
