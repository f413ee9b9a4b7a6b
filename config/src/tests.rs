//! Tests of parsing and validation as a whole.

use super::*;

const EXAMPLE: &str = include_str!("../../dist/examples/stack.toml");

fn errors(text: &str) -> Vec<String> {
    match parse(text, "test.toml") {
        Ok(_) => Vec::new(),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn the_example_stack_is_valid() {
    {
        let c = parse(EXAMPLE, "stack.toml").unwrap();
        assert_eq!(
            c.summary(),
            "2 sites, 4 routes, 3 upstreams (5 servers), 1 limit zone, 1 cache zone, listeners: \
             http 0.0.0.0:80 [::]:80, https 0.0.0.0:443 [::]:443, admin 127.0.0.1:9145"
        );
        let site = &c.sites[0];
        assert_eq!(
            site.names,
            [
                HostPattern::Exact("example.com".into()),
                HostPattern::Exact("www.example.com".into())
            ]
        );
        assert_eq!(site.tls, Some(SiteTls::Acme));
        let paths: Vec<&str> = site.routes.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["/api/cv", "/api/", "/"]);
        let cv = &site.routes[0];
        assert_eq!(cv.max_body, Some(20 * 1024 * 1024));
        assert_eq!(cv.limit.as_deref(), Some("per_ip"));
        assert_eq!(
            cv.cache,
            Some(RouteCache {
                zone: "api".into(),
                valid: vec![(200, std::time::Duration::from_secs(300))],
                key: vec![],
                bypass: vec![],
                stale_while_revalidate: std::time::Duration::ZERO,
                stale_if_error: std::time::Duration::ZERO,
                store_set_cookie: false,
                store_authorized: false,
                status_header: Some(http::HeaderName::from_static("x-cache-status")),
            })
        );
        assert_eq!(cv.response_headers.set.len(), 6);
        assert_eq!(cv.response_headers.set[0].0, "strict-transport-security");
        assert_eq!(c.limits["per_ip"].rate.count, 100);
        assert_eq!(
            c.limits["per_ip"].rate.per,
            std::time::Duration::from_secs(60)
        );
        assert_eq!(c.caches["api"].memory, 64 << 20);
        assert_eq!(c.upstreams["backend"].balance, Balance::LeastConn);
        assert_eq!(c.sites[1].routes[0].max_body, None);
        // Every not-yet-implemented feature the reference uses is flagged, with a position.
        let warned: Vec<(usize, usize)> = c.warnings.iter().map(|w| (w.line, w.col)).collect();
        assert!(!warned.contains(&(19, 1)), "{warned:?}"); // [acme] is active
        assert!(!c
            .warnings
            .iter()
            .any(|w| w.message.contains("rate limiting")));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.caches["api"].max_object, 8 << 20);
        assert_eq!(c.caches["api"].lock_timeout.as_secs(), 5);
    }
}

#[test]
fn load_reports_unreadable_files() {
    let e = load(std::path::Path::new("/nonexistent/vigie.toml")).unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/vigie.toml: cannot read: "),
        "{e}"
    );
    let path = std::env::temp_dir().join(format!("vigie-config-test-{}.toml", std::process::id()));
    std::fs::write(&path, "[server]\nthreads = 0\n").unwrap();
    let e = load(&path).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:2:11: invalid threads 0: expected an integer from 1 to 1024",
            path.display()
        )
    );
}

#[test]
fn warnings_point_at_keys() {
    let c = parse(
        r#"
[server]
http = ["0.0.0.0:80"]
[log]
access = "/var/log/vigie/access.log"
format = "json"
"#,
        "t",
    )
    .unwrap();
    assert_eq!(
        c.log.access,
        Some(LogTarget::File("/var/log/vigie/access.log".into()))
    );
    assert_eq!(c.log.access_format, AccessFormat::Json);
    assert_eq!(
        c.warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        Vec::<String>::new()
    );
    let c = parse("[log]\naccess = \"off\"\n", "t").unwrap();
    assert!(c.warnings.is_empty());
    assert_eq!(c.log.access, None);
}

#[test]
fn type_errors_read_as_config_words() {
    assert_eq!(
        errors("[server]\nhttp = 80\n"),
        ["test.toml:2:8: invalid type: integer `80`, expected a string or a list of strings"]
    );
    assert_eq!(
        errors("[[sites]]\nnames = [\"a\"]\ntls = 1\n"),
        [
            r#"test.toml:3:7: invalid type: integer `1`, expected "acme", "internal" or a table { cert = "...", key = "..." }"#
        ]
    );
    assert_eq!(
        errors("[upstreams.u]\nservers = [{ addr = \"127.0.0.1:1\", wieght = 2 }]\n"),
        ["test.toml:2:36: unknown key `wieght` (did you mean `weight`?), expected `addr` or `weight`"]
    );
    assert_eq!(
        errors("sites = 3\n"),
        ["test.toml:1:9: invalid type: integer `3`, expected an array"]
    );
}

mod acme_cas;
mod at_once;
mod bad;
mod cluster;
mod defaults;
mod details;
mod rules;
mod values;
