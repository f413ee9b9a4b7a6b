//! The cache key on arbitrary request targets and header values: never panics, is the same
//! for the same request, and two requests whose targets differ never share a key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pingora::http::RequestHeader;
use vigie::fuzzing::cache_key;

const CONFIG: &str = r#"
[upstreams.a]
servers = ["127.0.0.1:1"]
[cache.z]
memory = "1MiB"
[[sites]]
names = ["example.com"]
[[sites.routes]]
path = "/"
upstream = "a"
cache = { zone = "z", key = ["header:X-Tenant", "cookie:lang", "query:v"] }
"#;

fn request(target: &[u8], tenant: &[u8], cookie: &[u8]) -> Option<RequestHeader> {
    let mut req = RequestHeader::build("GET", target, None).ok()?;
    req.insert_header("x-tenant", tenant).ok()?;
    req.insert_header("cookie", cookie).ok()?;
    Some(req)
}

fuzz_target!(|data: &[u8]| {
    let Ok(config) = vigie_config::parse(CONFIG, "fuzz.toml") else {
        return;
    };
    let Some(rc) = config.sites[0].routes[0].cache.as_ref() else {
        return;
    };
    let mut parts = data.splitn(4, |&b| b == 0);
    let (Some(t1), Some(t2), Some(tenant), Some(cookie)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let (Some(r1), Some(r2)) = (request(t1, tenant, cookie), request(t2, tenant, cookie)) else {
        return;
    };
    let k1 = cache_key(&r1, true, "example.com", rc);
    assert_eq!(k1.primary_key(), cache_key(&r1, true, "example.com", rc).primary_key());
    let k2 = cache_key(&r2, true, "example.com", rc);
    let pq = |r: &RequestHeader| r.uri.path_and_query().map(|p| p.as_str().to_owned());
    if pq(&r1) != pq(&r2) {
        assert_ne!(k1.primary_key(), k2.primary_key(), "{:?} and {:?}", r1.uri, r2.uri);
    }
    assert_ne!(
        k1.primary_key(),
        cache_key(&r1, false, "example.com", rc).primary_key(),
        "the scheme is in the key"
    );
});
