//! `[cluster]`: the shared Redis, where its password comes from, this node's id and the
//! encryption key for secrets at rest. Secrets never sit in the file: an inline `password`
//! or a password inside the URL is refused with the way to do it instead.

use std::time::Duration;

use toml::Spanned;

use super::values::parse_duration;
use super::Validator;
use crate::model::{Cluster, RedisFailure, SecretSource};
use crate::raw::{RawCluster, Str};

const DEFAULT_PREFIX: &str = "vigie:";
const URL_EXPECTED: &str =
    "expected redis://HOST[:PORT][/DB] or rediss://HOST[:PORT][/DB] (TLS), like \"redis://127.0.0.1:6379/0\"";

impl Validator<'_> {
    pub(super) fn cluster(&mut self, raw: &Spanned<RawCluster>) -> Cluster {
        let c = raw.get_ref();
        let redis = self
            .check(&c.redis, parse_redis_url)
            .unwrap_or_else(|| c.redis.get_ref().clone());
        if let Some(p) = &c.password {
            self.error(
                self.key_at(p.span().start),
                "a password in the configuration file is refused: put it in a file \
                 (password_file = \"/etc/vigie/redis.pass\", mode 0600) or an environment \
                 variable (password_env = \"VIGIE_REDIS_PASSWORD\")",
            );
        }
        let password = match (&c.password_file, &c.password_env) {
            (Some(_), Some(env)) => {
                self.error(
                    self.key_at(env.span().start),
                    "password_file and password_env are both set: expected one of them",
                );
                None
            }
            (Some(f), None) => Some(SecretSource::File(self.path(f, "password_file"))),
            (None, Some(env)) => self.check(env, parse_env_name).map(SecretSource::Env),
            (None, None) => None,
        };
        let key_prefix = c
            .key_prefix
            .as_ref()
            .and_then(|p| self.check(p, parse_prefix))
            .unwrap_or_else(|| DEFAULT_PREFIX.to_owned());
        let node_id = c
            .node_id
            .as_ref()
            .and_then(|n| self.check(n, parse_node_id));
        let encryption_key_file = match &c.encryption_key_file {
            Some(f) => self.path(f, "encryption_key_file"),
            None => {
                self.error(
                    raw.span().start,
                    "[cluster] has no encryption_key_file: expected the path of a 32-byte key \
                     shared by every node (private keys are stored encrypted in Redis), made \
                     once with `head -c 32 /dev/urandom > /etc/vigie/cluster.key`",
                );
                Default::default()
            }
        };
        let lock_lease = self.bounded(
            &c.lock_lease,
            "lock_lease",
            Duration::from_secs(30),
            (Duration::from_secs(2), Duration::from_secs(600)),
        );
        let poll = self.bounded(
            &c.poll,
            "poll",
            Duration::from_secs(30),
            (Duration::from_secs(1), Duration::from_secs(3600)),
        );
        let redis_timeout = self.bounded(
            &c.redis_timeout,
            "redis_timeout",
            Duration::from_millis(100),
            (Duration::from_millis(5), Duration::from_secs(10)),
        );
        let limits_on_redis_failure = c
            .limits_on_redis_failure
            .as_ref()
            .and_then(|f| self.check(f, parse_failure))
            .unwrap_or_default();
        Cluster {
            redis,
            password,
            key_prefix,
            node_id,
            encryption_key_file,
            lock_lease,
            poll,
            redis_timeout,
            limits_on_redis_failure,
        }
    }

    /// A duration within `range` (inclusive), `default` when absent or wrong.
    fn bounded(
        &mut self,
        s: &Option<Str>,
        what: &str,
        default: Duration,
        (min, max): (Duration, Duration),
    ) -> Duration {
        let Some(s) = s else { return default };
        match self.check(s, parse_duration) {
            Some(d) if d >= min && d <= max => d,
            Some(_) => {
                self.error(
                    s.span().start,
                    format!(
                        "invalid {what} \"{}\": expected between {} and {}",
                        s.get_ref(),
                        humantime::format_duration(min),
                        humantime::format_duration(max)
                    ),
                );
                default
            }
            None => default,
        }
    }
}

/// `redis://[USER@]HOST[:PORT][/DB]` or `rediss://…`; a password in the URL is refused.
fn parse_redis_url(url: &str) -> Result<String, String> {
    let bad = |why: &str| format!("invalid redis URL \"{url}\": {why}{URL_EXPECTED}");
    let rest = url
        .strip_prefix("redis://")
        .or_else(|| url.strip_prefix("rediss://"))
        .ok_or_else(|| bad(""))?;
    if url.contains(char::is_whitespace) {
        return Err(bad("it contains a space; "));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if user.is_some_and(|u| u.contains(':')) {
        return Err(format!(
            "the redis URL \"{}\" carries a password: remove it and use password_file or \
             password_env",
            redact(url)
        ));
    }
    let (host, port) = split_host_port(host_port).ok_or_else(|| bad(""))?;
    if host.is_empty() {
        return Err(bad("no host; "));
    }
    if let Some(p) = port {
        if p.parse::<u16>().ok().filter(|p| *p != 0).is_none() {
            return Err(bad("bad port; "));
        }
    }
    let db = path.split('?').next().unwrap_or("");
    if !db.is_empty() && db.parse::<u32>().is_err() {
        return Err(bad("the database must be a number; "));
    }
    Ok(url.to_owned())
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    if let Some(v6) = s.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            a => Some((host, Some(a.strip_prefix(':')?))),
        };
    }
    match s.split_once(':') {
        Some((h, p)) => Some((h, Some(p))),
        None => Some((s, None)),
    }
}

/// The URL with whatever sits between `//` and `@` replaced, for messages.
fn redact(url: &str) -> String {
    match (url.find("//"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 2], &url[at..]),
        _ => url.to_owned(),
    }
}

fn parse_failure(v: &str) -> Result<RedisFailure, String> {
    match v {
        "fail_open" => Ok(RedisFailure::FailOpen),
        "fail_closed" => Ok(RedisFailure::FailClosed),
        _ => Err(format!(
            "invalid limits_on_redis_failure \"{v}\": expected \"fail_open\" (each instance's \
             own limiter decides while Redis is unreachable) or \"fail_closed\" (limited routes \
             refuse with the zone's status)"
        )),
    }
}

fn parse_env_name(v: &str) -> Result<String, String> {
    let ok = !v.is_empty()
        && !v.starts_with(|c: char| c.is_ascii_digit())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(v.to_owned())
    } else {
        Err(format!(
            "invalid password_env \"{v}\": expected an environment variable name, like \
             \"VIGIE_REDIS_PASSWORD\""
        ))
    }
}

fn parse_prefix(v: &str) -> Result<String, String> {
    if !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(v.to_owned())
    } else {
        Err(format!(
            "invalid key_prefix \"{v}\": expected 1 to 64 visible ASCII characters, like \
             \"vigie:\" or \"edge-prod:\""
        ))
    }
}

pub(super) fn parse_node_id(v: &str) -> Result<String, String> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(v.to_owned())
    } else {
        Err(format!(
            "invalid node_id \"{v}\": expected 1 to 64 letters, digits, '.', '-' or '_', like \
             \"edge-1\""
        ))
    }
}
