//! `[tls]` (protocol policy, default certificate) and `[acme]` (account and challenge).

use toml::Spanned;

use super::acme::DEFAULT_ACME_DIRECTORY;
use super::values::parse_host_pattern;
use super::Validator;
use crate::model::{Acme, ChallengeKind, HostPattern, Site, TlsPolicy, TlsVersion};
use crate::raw::{RawAcme, RawTls};

impl Validator<'_> {
    pub(super) fn acme(&mut self, a: &RawAcme) -> Acme {
        let email = a.email.as_ref().and_then(|e| {
            self.check(e, |e| {
                if e.contains('@') && !e.starts_with('@') && !e.ends_with('@') {
                    Ok(e.to_owned())
                } else {
                    Err(format!(
                        "invalid email \"{e}\": expected an address like \"ops@example.com\""
                    ))
                }
            })
        });
        let challenge = a
            .challenge
            .as_ref()
            .and_then(|c| {
                self.check(c, |c| match c {
                    "http-01" => Ok(ChallengeKind::Http01),
                    "tls-alpn-01" => Ok(ChallengeKind::TlsAlpn01),
                    "dns-01" => Ok(ChallengeKind::Dns01),
                    other => Err(format!(
                        "invalid challenge \"{other}\": expected \"http-01\", \"tls-alpn-01\" \
                         or \"dns-01\""
                    )),
                })
            })
            .unwrap_or(ChallengeKind::Http01);
        let dns_hook = a.dns_hook.as_ref().map(|h| self.path(h, "dns_hook"));
        if challenge == ChallengeKind::Dns01 && dns_hook.is_none() {
            if let Some(c) = &a.challenge {
                self.error(
                    c.span().start,
                    "challenge \"dns-01\" has no dns_hook: expected dns_hook = \
                     \"/path/to/hook\" in [acme], \
                     a command called as `HOOK present|cleanup NAME VALUE`",
                );
            }
        }
        let mut cas = self.acme_cas(a).into_iter();
        let first = cas.next().unwrap_or_else(|| default_acme().cas().remove(0));
        Acme {
            email,
            directory: first.directory,
            challenge,
            ca_roots: first.ca_roots,
            eab: first.eab,
            dns_hook,
            profile: a
                .profile
                .as_ref()
                .and_then(|p| self.check(p, parse_profile)),
            fallback: cas.collect(),
        }
    }

    pub(super) fn tls(&mut self, raw: Option<&Spanned<RawTls>>, sites: &[Site]) -> TlsPolicy {
        let mut policy = TlsPolicy {
            min_version: TlsVersion::V1_2,
            default_name: None,
        };
        let Some(raw) = raw else { return policy };
        let t = raw.get_ref();
        if let Some(v) = &t.min_version {
            policy.min_version = self
                .check(v, |v| match v {
                    "1.2" => Ok(TlsVersion::V1_2),
                    "1.3" => Ok(TlsVersion::V1_3),
                    other => Err(format!(
                        "invalid min_version \"{other}\": expected \"1.2\" or \"1.3\""
                    )),
                })
                .unwrap_or(TlsVersion::V1_2);
        }
        if let Some(name) = &t.default_name {
            let tls_names: Vec<&str> = sites
                .iter()
                .filter(|s| s.tls.is_some())
                .flat_map(|s| &s.names)
                .filter_map(|n| match n {
                    HostPattern::Exact(n) => Some(n.as_str()),
                    HostPattern::Wildcard(_) => None,
                })
                .collect();
            let wanted = parse_host_pattern(name.get_ref());
            match wanted {
                Ok(HostPattern::Exact(n)) if tls_names.contains(&n.as_str()) => {
                    policy.default_name = Some(n)
                }
                _ => {
                    let expected = if tls_names.is_empty() {
                        "no site has tls".to_owned()
                    } else {
                        format!("expected one of {}", tls_names.join(", "))
                    };
                    self.error(
                        name.span().start,
                        format!(
                            "default_name \"{}\" is not an exact name of a site with tls: \
                             {expected}",
                            name.get_ref()
                        ),
                    );
                }
            }
        }
        policy
    }
}

pub(super) fn default_acme() -> Acme {
    Acme {
        email: None,
        directory: DEFAULT_ACME_DIRECTORY.to_owned(),
        challenge: ChallengeKind::Http01,
        ca_roots: None,
        eab: None,
        dns_hook: None,
        profile: None,
        fallback: Vec::new(),
    }
}

pub(super) fn challenge_name(c: ChallengeKind) -> &'static str {
    match c {
        ChallengeKind::Http01 => "http-01",
        ChallengeKind::TlsAlpn01 => "tls-alpn-01",
        ChallengeKind::Dns01 => "dns-01",
    }
}

/// An ACME profile name: a non-empty token (the CA's directory says which exist; that is
/// checked against the directory when ordering).
pub(super) fn parse_profile(v: &str) -> Result<String, String> {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(v.to_owned())
    } else {
        Err(format!(
            "invalid profile \"{v}\": expected a profile name the CA's directory advertises, \
             like \"shortlived\" or \"classic\""
        ))
    }
}
