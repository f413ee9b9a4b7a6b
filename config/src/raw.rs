//! A serde mirror of the TOML file, before validation.
//!
//! Every table denies unknown keys. Values whose validation errors need a position are
//! [`Spanned`]; keys that accept two shapes use [`StrOr`].

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::Deserialize;
use toml::Spanned;

/// A string with its position.
pub(crate) type Str = Spanned<String>;
/// A list of strings, each with its position.
pub(crate) type StrList = Vec<Spanned<String>>;
/// An integer with its position (range-checked during validation, for better messages).
pub(crate) type Int = Spanned<i64>;
/// A size: `"20MiB"`, or a bare integer of bytes.
pub(crate) type Size = Spanned<StrOr<i64>>;
/// A table of string keys and string values, each with its position.
pub(crate) type StrMap = BTreeMap<Spanned<String>, Spanned<String>>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawConfig {
    pub(crate) server: Option<RawServer>,
    pub(crate) tls: Option<Spanned<RawTls>>,
    pub(crate) acme: Option<RawAcme>,
    pub(crate) cluster: Option<Spanned<RawCluster>>,
    pub(crate) client_ip: Option<RawClientIp>,
    #[serde(default)]
    pub(crate) limits: BTreeMap<Str, Spanned<RawLimit>>,
    #[serde(default)]
    pub(crate) cache: BTreeMap<Str, Spanned<RawCache>>,
    #[serde(default)]
    pub(crate) headers: BTreeMap<Str, Spanned<StrMap>>,
    #[serde(default)]
    pub(crate) upstreams: BTreeMap<Str, Spanned<RawUpstream>>,
    #[serde(default)]
    pub(crate) sites: Vec<Spanned<RawSite>>,
    pub(crate) log: Option<RawLog>,
    pub(crate) error_pages: Option<RawErrorPages>,
}

/// `[server]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawServer {
    pub(crate) http: Option<Spanned<StrOr<StrList>>>,
    pub(crate) https: Option<Spanned<StrOr<StrList>>>,
    pub(crate) admin: Option<Spanned<StrOr<bool>>>,
    pub(crate) state_dir: Option<Str>,
    pub(crate) threads: Option<Int>,
    pub(crate) unknown_host: Option<Int>,
    pub(crate) grace_period: Option<Str>,
    pub(crate) admin_token: Option<Str>,
    pub(crate) header_timeout: Option<Str>,
    pub(crate) body_timeout: Option<Str>,
    pub(crate) max_header_bytes: Option<Size>,
    pub(crate) max_uri_bytes: Option<Size>,
    pub(crate) request_buffer: Option<Size>,
}

/// `[tls]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawTls {
    pub(crate) min_version: Option<Str>,
    pub(crate) default_name: Option<Str>,
}

/// `[acme]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawAcme {
    pub(crate) email: Option<Str>,
    pub(crate) directory: Option<Str>,
    pub(crate) challenge: Option<Str>,
    pub(crate) ca_roots: Option<Str>,
    pub(crate) eab: Option<Spanned<RawEab>>,
    pub(crate) dns_hook: Option<Str>,
    pub(crate) profile: Option<Str>,
    /// `[[acme.ca]]`: the CAs in order of preference (instead of `directory`).
    pub(crate) ca: Option<Spanned<Vec<Spanned<RawAcmeCa>>>>,
}

/// `[cluster]`: several instances sharing certificates through Redis.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawCluster {
    pub(crate) redis: Str,
    pub(crate) password: Option<Str>,
    pub(crate) password_file: Option<Str>,
    pub(crate) password_env: Option<Str>,
    pub(crate) key_prefix: Option<Str>,
    pub(crate) node_id: Option<Str>,
    pub(crate) encryption_key_file: Option<Str>,
    pub(crate) lock_lease: Option<Str>,
    pub(crate) poll: Option<Str>,
    pub(crate) redis_timeout: Option<Str>,
    pub(crate) limits_on_redis_failure: Option<Str>,
}

/// `[[acme.ca]]`: one CA of the fallback list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawAcmeCa {
    pub(crate) directory: Option<Str>,
    pub(crate) ca_roots: Option<Str>,
    pub(crate) eab: Option<Spanned<RawEab>>,
}

/// `eab = { kid, hmac_key_file | hmac_key_env | hmac_key }`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with `kid` and `hmac_key_file`"
)]
pub(crate) struct RawEab {
    pub(crate) kid: Option<Str>,
    pub(crate) hmac_key: Option<Str>,
    pub(crate) hmac_key_file: Option<Str>,
    pub(crate) hmac_key_env: Option<Str>,
}

/// `[client_ip]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawClientIp {
    #[serde(default)]
    pub(crate) trusted_proxies: StrList,
    pub(crate) header: Option<Str>,
}

/// `[limits.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawLimit {
    pub(crate) rate: Str,
    pub(crate) burst: Option<Int>,
    pub(crate) nodelay: Option<Spanned<bool>>,
    pub(crate) delay: Option<Int>,
    pub(crate) max_clients: Option<Int>,
    pub(crate) status: Option<Int>,
    #[serde(default)]
    pub(crate) exempt: StrList,
    pub(crate) ipv6_prefix: Option<Int>,
    pub(crate) max_connections: Option<Int>,
}

/// `[cache.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawCache {
    pub(crate) memory: Size,
    pub(crate) disk: Option<Str>,
    pub(crate) disk_size: Option<Size>,
    pub(crate) max_object: Option<Size>,
    pub(crate) lock_timeout: Option<Str>,
}

/// `[upstreams.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawUpstream {
    pub(crate) servers: Spanned<Vec<Spanned<StrOr<RawServerEntry>>>>,
    pub(crate) balance: Option<Str>,
    pub(crate) hash_on: Option<Str>,
    pub(crate) health: Option<Spanned<RawHealth>>,
    pub(crate) max_fails: Option<Int>,
    pub(crate) fail_timeout: Option<Str>,
    pub(crate) retries: Option<Int>,
    pub(crate) connect_timeout: Option<Str>,
    pub(crate) read_timeout: Option<Str>,
    pub(crate) write_timeout: Option<Str>,
    pub(crate) h2c: Option<bool>,
    pub(crate) tls: Option<Spanned<RawUpstreamTls>>,
}

/// `[upstreams.NAME.tls]`: TLS to the servers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawUpstreamTls {
    pub(crate) server_name: Option<Str>,
    pub(crate) sni: Option<Spanned<bool>>,
    pub(crate) ca: Option<Str>,
    pub(crate) verify: Option<Spanned<bool>>,
    pub(crate) client_cert: Option<Str>,
    pub(crate) client_key: Option<Str>,
    pub(crate) h2: Option<Spanned<bool>>,
}

/// `{ addr = "127.0.0.1:8082", weight = 3 }` in `servers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table with `addr` and `weight`")]
pub(crate) struct RawServerEntry {
    pub(crate) addr: Str,
    pub(crate) weight: Option<Int>,
}

/// `health = { ... }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawHealth {
    pub(crate) path: Option<Str>,
    pub(crate) interval: Option<Str>,
    pub(crate) timeout: Option<Str>,
    pub(crate) rise: Option<Int>,
    pub(crate) fall: Option<Int>,
    pub(crate) host: Option<Str>,
}

/// `[log]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawLog {
    pub(crate) level: Option<Str>,
    pub(crate) access: Option<Str>,
    pub(crate) format: Option<Str>,
    pub(crate) json: Option<Spanned<bool>>,
}

/// `[[sites]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawSite {
    pub(crate) names: Spanned<StrList>,
    pub(crate) tls: Option<Spanned<StrOr<RawTlsFiles>>>,
    pub(crate) max_body: Option<Size>,
    pub(crate) limit: Option<Str>,
    pub(crate) headers: Option<Spanned<StrOr<StrList>>>,
    pub(crate) request_headers: Option<RawHeaderOps>,
    pub(crate) response_headers: Option<RawHeaderOps>,
    pub(crate) compress: Option<Spanned<RawCompress>>,
    pub(crate) pass_headers: Option<StrList>,
    pub(crate) redirect_www: Option<Str>,
    pub(crate) trailing_slash: Option<Str>,
    pub(crate) error_pages: Option<RawErrorPages>,
    pub(crate) access: Option<Vec<Spanned<RawAccessRule>>>,
    pub(crate) basic_auth: Option<Spanned<RawBasicAuth>>,
    pub(crate) profile: Option<Str>,
    #[serde(default)]
    pub(crate) routes: Vec<Spanned<RawRoute>>,
}

/// One `access` rule: `{ allow = "10.0.0.0/8" }` or `{ deny = "all" }`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table { allow = \"CIDR\" } or { deny = \"CIDR\" }"
)]
pub(crate) struct RawAccessRule {
    pub(crate) allow: Option<Str>,
    pub(crate) deny: Option<Str>,
}

/// `basic_auth = { realm, htpasswd }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table with `realm` and `htpasswd`")]
pub(crate) struct RawBasicAuth {
    pub(crate) realm: Option<Str>,
    pub(crate) htpasswd: Str,
}

/// One `rewrite` rule: `{ from, to, flag }`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with `from`, `to` and `flag`"
)]
pub(crate) struct RawRewrite {
    pub(crate) from: Str,
    pub(crate) to: Str,
    pub(crate) flag: Option<Str>,
}

/// `error_pages = { "404" = { ... }, ... }`, top-level or on a site: status -> page.
pub(crate) type RawErrorPages = BTreeMap<Str, Spanned<RawErrorPage>>;

/// One custom error page: `{ file = "/path" }` or `{ body = "...", content_type = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table { file = \"/path\" } or { body = \"...\", content_type = \"...\" }"
)]
pub(crate) struct RawErrorPage {
    pub(crate) file: Option<Str>,
    pub(crate) body: Option<Str>,
    pub(crate) content_type: Option<Str>,
}

/// `compress = true | false | { level, brotli_level, min_size, types }`.
#[derive(Debug)]
pub(crate) enum RawCompress {
    /// On with defaults, or off.
    Bool(bool),
    /// On with settings.
    Table(RawCompressTable),
}

impl<'de> Deserialize<'de> for RawCompress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawCompress;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or a table { level, brotli_level, min_size, types }")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawCompress, E> {
                Ok(RawCompress::Bool(v))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<RawCompress, A::Error> {
                // Deserialize through the same deserializer, so positions are kept.
                RawCompressTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawCompress::Table)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// The table form of `compress`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table { level, brotli_level, min_size, types }"
)]
pub(crate) struct RawCompressTable {
    pub(crate) level: Option<Int>,
    pub(crate) brotli_level: Option<Int>,
    pub(crate) min_size: Option<Size>,
    pub(crate) types: Option<StrList>,
}

/// `tls = { cert = "...", key = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table with `cert` and `key`")]
pub(crate) struct RawTlsFiles {
    pub(crate) cert: Str,
    pub(crate) key: Str,
}

/// `request_headers = { set = {...}, remove = [...] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table with `set` and `remove`")]
pub(crate) struct RawHeaderOps {
    #[serde(default)]
    pub(crate) set: StrMap,
    #[serde(default)]
    pub(crate) remove: StrList,
}

/// `[[sites.routes]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawRoute {
    pub(crate) path: Option<Str>,
    pub(crate) starts_with: Option<Str>,
    pub(crate) exact: Option<Str>,
    pub(crate) regex: Option<Str>,
    pub(crate) case_insensitive: Option<Spanned<bool>>,
    pub(crate) no_regex: Option<Spanned<bool>>,
    pub(crate) access: Option<Vec<Spanned<RawAccessRule>>>,
    pub(crate) basic_auth: Option<Spanned<RawBasicAuth>>,
    pub(crate) rewrite: Option<Vec<Spanned<RawRewrite>>>,
    pub(crate) upstream: Option<Str>,
    pub(crate) strip_prefix: Option<Spanned<bool>>,
    pub(crate) redirect: Option<Spanned<RawRedirect>>,
    pub(crate) respond: Option<Spanned<RawRespond>>,
    #[serde(rename = "static")]
    pub(crate) static_files: Option<Spanned<RawStatic>>,
    pub(crate) cache: Option<Spanned<RawRouteCache>>,
    pub(crate) max_body: Option<Size>,
    pub(crate) request_buffer: Option<Size>,
    pub(crate) limit: Option<Str>,
    pub(crate) headers: Option<Spanned<StrOr<StrList>>>,
    pub(crate) request_headers: Option<RawHeaderOps>,
    pub(crate) response_headers: Option<RawHeaderOps>,
    pub(crate) compress: Option<Spanned<RawCompress>>,
    pub(crate) pass_headers: Option<StrList>,
}

/// `redirect = { to, status }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table with `to` and `status`")]
pub(crate) struct RawRedirect {
    pub(crate) to: Str,
    pub(crate) status: Option<Int>,
}

/// `respond = { status, body, content_type }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawRespond {
    pub(crate) status: Option<Int>,
    pub(crate) body: Option<String>,
    pub(crate) content_type: Option<Str>,
}

/// `static = { root, index, try_files }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table with `root` and `index`")]
pub(crate) struct RawStatic {
    pub(crate) root: Str,
    pub(crate) index: Option<Str>,
    pub(crate) try_files: Option<Spanned<StrList>>,
}

/// `cache = { zone, valid, ... }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table with `zone` and `valid`")]
pub(crate) struct RawRouteCache {
    pub(crate) zone: Str,
    #[serde(default)]
    pub(crate) valid: StrMap,
    #[serde(default)]
    pub(crate) key: StrList,
    #[serde(default)]
    pub(crate) bypass: StrList,
    pub(crate) stale_while_revalidate: Option<Str>,
    pub(crate) stale_if_error: Option<Str>,
    pub(crate) store_set_cookie: Option<bool>,
    pub(crate) store_authorized: Option<bool>,
    pub(crate) status_header: Option<Spanned<StrOr<HeaderFlag>>>,
}

/// A key that takes either a string or another shape `T` (a list, a table, a boolean or an
/// integer, as [`Shape`] says).
#[derive(Debug)]
pub(crate) enum StrOr<T> {
    /// The string form.
    Str(String),
    /// The other form.
    Other(T),
}

/// Which TOML shape the non-string form of a [`StrOr`] takes, and how to describe both forms.
pub(crate) trait Shape {
    /// The TOML kind accepted besides a string.
    const KIND: Kind;
    /// What the key expects, for type errors ("a string or a list of strings").
    const EXPECTING: &'static str;
}

/// TOML value kinds a [`StrOr`] can accept besides a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    Int,
    List,
    Table,
}

impl Shape for bool {
    const KIND: Kind = Kind::Bool;
    const EXPECTING: &'static str = "an address string or false";
}

/// The boolean form of a key that takes a header name or `false`.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub(crate) struct HeaderFlag(pub(crate) bool);

impl Shape for HeaderFlag {
    const KIND: Kind = Kind::Bool;
    const EXPECTING: &'static str = "a header name or false";
}

impl Shape for i64 {
    const KIND: Kind = Kind::Int;
    const EXPECTING: &'static str = "a size string like \"20MiB\" or an integer of bytes";
}

impl Shape for StrList {
    const KIND: Kind = Kind::List;
    const EXPECTING: &'static str = "a string or a list of strings";
}

impl Shape for RawTlsFiles {
    const KIND: Kind = Kind::Table;
    const EXPECTING: &'static str =
        "\"acme\", \"internal\" or a table { cert = \"...\", key = \"...\" }";
}

impl Shape for RawServerEntry {
    const KIND: Kind = Kind::Table;
    const EXPECTING: &'static str =
        "a server string like \"127.0.0.1:8080\" or a table { addr = \"...\", weight = 1 }";
}

impl<'de, T: Deserialize<'de> + Shape> Deserialize<'de> for StrOr<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrOrVisitor(PhantomData))
    }
}

struct StrOrVisitor<T>(PhantomData<T>);

impl<T: Shape> StrOrVisitor<T> {
    fn check<E: de::Error>(&self, kind: Kind, unexpected: Unexpected<'_>) -> Result<(), E> {
        if T::KIND == kind {
            Ok(())
        } else {
            Err(E::invalid_type(unexpected, &T::EXPECTING))
        }
    }
}

impl<'de, T: Deserialize<'de> + Shape> Visitor<'de> for StrOrVisitor<T> {
    type Value = StrOr<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(StrOr::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(StrOr::Str(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.check(Kind::Bool, Unexpected::Bool(v))?;
        T::deserialize(v.into_deserializer()).map(StrOr::Other)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.check(Kind::Int, Unexpected::Signed(v))?;
        T::deserialize(v.into_deserializer()).map(StrOr::Other)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.check(Kind::Int, Unexpected::Unsigned(v))?;
        T::deserialize(v.into_deserializer()).map(StrOr::Other)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Err(E::invalid_type(Unexpected::Float(v), &self))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.check(Kind::List, Unexpected::Seq)?;
        T::deserialize(SeqAccessDeserializer::new(seq)).map(StrOr::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.check(Kind::Table, Unexpected::Map)?;
        T::deserialize(MapAccessDeserializer::new(map)).map(StrOr::Other)
    }
}
