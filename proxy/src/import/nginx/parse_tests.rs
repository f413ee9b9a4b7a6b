//! Unit tests of the nginx parser: the grammar, includes, and malformed input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn parse(text: &str) -> Result<Vec<Directive>, ParseError> {
    parse_str(text, Path::new("/etc/nginx/nginx.conf"))
}

fn err(text: &str) -> String {
    parse(text).expect_err("should fail").to_string()
}

#[test]
fn blocks_quotes_comments_and_positions() {
    let t = "http {\n  # a comment; with { braces\n  server {\n    listen 80 default_server;\n    add_header X-A \"a b;c\" always; # trailing\n    return 200 'it\\'s';\n  }\n}\n";
    let list = parse(t).unwrap();
    assert_eq!(list.len(), 1);
    let server = &list[0].children()[0];
    assert_eq!(server.name, "server");
    let listen = &server.children()[0];
    assert_eq!(listen.args, ["80", "default_server"]);
    assert_eq!(listen.pos.to_string(), "/etc/nginx/nginx.conf:4:5");
    assert_eq!(server.children()[1].args, ["X-A", "a b;c", "always"]);
    assert_eq!(server.children()[2].args, ["200", "it's"]);
}

#[test]
fn variables_with_braces_stay_in_the_word() {
    let list = parse("return 301 https://${host}$request_uri;").unwrap();
    assert_eq!(list[0].args, ["301", "https://${host}$request_uri"]);
    let list = parse("location ~ ^/a\\{2\\}$ { }").unwrap();
    assert_eq!(list[0].args, ["~", "^/a\\{2\\}$"]);
}

#[test]
fn malformed_input_is_a_positioned_error() {
    assert_eq!(
        err("server {\n  listen 80;\n"),
        "/etc/nginx/nginx.conf:1:1: unexpected end of file: the block of \"server\" is not closed by \"}\""
    );
    assert_eq!(
        err("listen 80"),
        "/etc/nginx/nginx.conf:1:1: unexpected end of file: directive \"listen\" has no \";\" or block"
    );
    assert_eq!(err("}\n"), "/etc/nginx/nginx.conf:1:1: unexpected \"}\"");
    assert_eq!(
        err("server { listen 80 }"),
        "/etc/nginx/nginx.conf:1:20: unexpected \"}\": directive \"listen\" has no \";\""
    );
    assert_eq!(
        err("a \"open;\n"),
        "/etc/nginx/nginx.conf:1:3: unterminated string: no closing \""
    );
    assert_eq!(err(";"), "/etc/nginx/nginx.conf:1:1: unexpected \";\"");
    assert_eq!(err("{"), "/etc/nginx/nginx.conf:1:1: unexpected \"{\"");
    assert_eq!(
        err("a \"x\"y;"),
        "/etc/nginx/nginx.conf:1:6: unexpected 'y' after a quoted string"
    );
    assert_eq!(
        err("a ${x;"),
        "/etc/nginx/nginx.conf:1:3: unterminated \"${\" variable"
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    let samples = [
        "\\",
        "\"\\",
        "'",
        "${",
        "a\\",
        "{{{{",
        "}}}}",
        "a { b { c; } ",
        "#",
        "\u{0}\u{ffff};",
    ];
    for s in samples {
        let _ = parse(s);
    }
    // Every prefix of a real config parses or fails cleanly.
    let real = "http { upstream b { server 127.0.0.1:1 weight=2; } server { location / { proxy_pass http://b; } } }";
    for n in 0..real.len() {
        let _ = parse(&real[..n]);
    }
}

#[test]
fn include_globs_relative_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sites")).unwrap();
    std::fs::write(
        dir.path().join("sites/b.conf"),
        "server { server_name b; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sites/a.conf"),
        "server { server_name a; }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("sites/a.conf.bak"), "broken {").unwrap();
    std::fs::write(
        dir.path().join("nginx.conf"),
        "http {\n include sites/*.conf;\n}\n",
    )
    .unwrap();
    let list = parse_file(&dir.path().join("nginx.conf")).unwrap();
    let servers = list[0].children();
    assert_eq!(servers.len(), 2);
    assert_eq!(servers[0].children()[0].args, ["a"]);
    assert!(
        servers[1].pos.to_string().ends_with("sites/b.conf:1:1"),
        "{}",
        servers[1].pos
    );
    // A missing include is an error at the include.
    std::fs::write(dir.path().join("bad.conf"), "\n  include nope.conf;\n").unwrap();
    let e = parse_file(&dir.path().join("bad.conf"))
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with("bad.conf:2:3: include nope.conf: no such file"),
        "{e}"
    );
    // A loop is refused, not followed forever.
    std::fs::write(dir.path().join("loop.conf"), "include loop.conf;\n").unwrap();
    let e = parse_file(&dir.path().join("loop.conf"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nested deeper than 16"), "{e}");
}

#[test]
fn globs() {
    assert!(glob_match("*.conf", "a.conf"));
    assert!(!glob_match("*.conf", "a.conf.bak"));
    assert!(glob_match("*", "x"));
    assert!(glob_match("a?c", "abc"));
}
