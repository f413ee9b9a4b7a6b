//! Compiling a route's nginx features (its matcher, rewrites and Basic authentication) and
//! an upstream group's TLS settings: regexes are compiled and files read here, once per
//! plan, so the request path only runs what it is handed. Pure: nothing is written.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use pingora::protocols::tls::CaType;
use pingora::utils::tls::{parse_x509, CertKey, WrappedX509};
use regex::{Regex, RegexBuilder};
use vigie_config::{PathMatch, RewriteFlag, Route, UpstreamTls};

use super::htpasswd::Htpasswd;
use super::routing::Matcher;
use super::PlanError;

/// One compiled `rewrite` rule.
#[derive(Debug, Clone)]
pub struct RewritePlan {
    /// The expression on the normalised path.
    pub from: Regex,
    /// The replacement (`$1`... and an optional `?query`).
    pub to: String,
    /// What a match does.
    pub flag: RewriteFlag,
}

/// `basic_auth` ready for requests: the challenge to send and the users.
#[derive(Debug)]
pub struct AuthPlan {
    /// The `WWW-Authenticate` value: `Basic realm="..."`.
    pub challenge: http::HeaderValue,
    /// The users of the htpasswd file.
    pub users: Arc<Htpasswd>,
}

/// What a TLS upstream's connections use, files read.
#[derive(Debug)]
pub struct PeerTls {
    /// The settings.
    pub settings: UpstreamTls,
    /// The CA certificates of `ca`, when set (else the system roots).
    pub ca: Option<Arc<CaType>>,
    /// The client certificate and key, when set.
    pub client: Option<Arc<CertKey>>,
}

fn regex(source: &str, case_insensitive: bool, route: &str) -> Result<Regex, PlanError> {
    RegexBuilder::new(source)
        .case_insensitive(case_insensitive)
        .build()
        .map_err(|e| PlanError::Regex {
            route: route.to_owned(),
            reason: e.to_string(),
        })
}

/// The route's matcher, its regex compiled.
pub fn matcher(r: &Route) -> Result<Matcher, PlanError> {
    Ok(match r.matching {
        PathMatch::Prefix {
            no_regex,
            whole_segments,
        } => Matcher::Prefix {
            no_regex,
            whole_segments,
        },
        PathMatch::Exact => Matcher::Exact,
        PathMatch::Regex { case_insensitive } => {
            Matcher::Regex(regex(&r.path, case_insensitive, &r.path)?)
        }
    })
}

/// The route's rewrites, compiled.
pub fn rewrites(r: &Route) -> Result<Vec<RewritePlan>, PlanError> {
    r.rewrites
        .iter()
        .map(|w| {
            Ok(RewritePlan {
                from: regex(&w.from, false, &r.path)?,
                to: w.to.clone(),
                flag: w.flag,
            })
        })
        .collect()
}

/// The route's Basic authentication; each htpasswd file is read once per plan (`files`).
pub fn basic_auth(
    r: &Route,
    files: &mut HashMap<PathBuf, Arc<Htpasswd>>,
) -> Result<Option<Arc<AuthPlan>>, PlanError> {
    let Some(auth) = &r.basic_auth else {
        return Ok(None);
    };
    let users = match files.get(&auth.htpasswd) {
        Some(u) => u.clone(),
        None => {
            let u = Arc::new(Htpasswd::load(&auth.htpasswd, (auth.at.line, auth.at.col))?);
            files.insert(auth.htpasswd.clone(), u.clone());
            u
        }
    };
    let challenge = http::HeaderValue::from_str(&format!("Basic realm=\"{}\"", auth.realm))
        .map_err(|_| PlanError::Realm(auth.realm.clone()))?;
    Ok(Some(Arc::new(AuthPlan { challenge, users })))
}

/// An upstream group's TLS material: the CA file and the client certificate read and checked
/// (pingora panics on certificates it cannot parse, so nothing unparsed reaches it).
pub fn peer_tls(name: &str, tls: &UpstreamTls) -> Result<PeerTls, PlanError> {
    let err = |reason: String| PlanError::UpstreamTls {
        upstream: name.to_owned(),
        line: tls.at.line,
        col: tls.at.col,
        reason,
    };
    let read = |path: &PathBuf, what: &str| {
        std::fs::read(path)
            .map_err(|e| err(format!("cannot read the {what} {}: {e}", path.display())))
    };
    let certs = |path: &PathBuf, what: &str| -> Result<Vec<Vec<u8>>, PlanError> {
        let pem = read(path, what)?;
        let ders = vigie_acme::pem::certs_from_pem(&pem, what).map_err(|e| err(e.to_string()))?;
        if ders.is_empty() {
            return Err(err(format!(
                "the {what} {} holds no certificate",
                path.display()
            )));
        }
        ders.iter()
            .map(|d| {
                vigie_acme::pem::info(d, what).map_err(|e| err(e.to_string()))?;
                Ok(d.to_vec())
            })
            .collect()
    };
    let ca = match &tls.ca {
        Some(path) => {
            let list: Vec<WrappedX509> = certs(path, "ca file")?
                .into_iter()
                .map(|der| WrappedX509::new(der, parse_x509))
                .collect();
            Some(Arc::from(list.into_boxed_slice()))
        }
        None => None,
    };
    let client = match &tls.client_cert {
        Some((cert, key)) => {
            let chain = certs(cert, "client_cert")?;
            let pem = read(key, "client_key")?;
            let key = vigie_acme::pem::key_from_pem(&pem, "client_key")
                .map_err(|e| err(e.to_string()))?;
            let der = key.secret_der().to_vec();
            // What pingora does with the key at each connection; refused here, not there.
            rustls::pki_types::PrivateKeyDer::try_from(der.clone())
                .map_err(|e| err(format!("unusable client_key: {e}")))?;
            Some(Arc::new(CertKey::new(chain, der)))
        }
        None => None,
    };
    Ok(PeerTls {
        settings: tls.clone(),
        ca,
        client,
    })
}
