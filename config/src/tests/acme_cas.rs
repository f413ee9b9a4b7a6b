//! `[acme]`'s CAs: the single `directory` form, the `[[acme.ca]]` fallback list, and EAB
//! keys read from a file or a variable — each mistake with its one message and position.

use super::errors;
use crate::*;

fn acme(text: &str) -> Acme {
    parse(text, "t")
        .unwrap_or_else(|e| panic!("{e}"))
        .acme
        .unwrap()
}

#[test]
fn the_single_directory_form_is_one_ca() {
    let a = acme(
        r#"
[acme]
directory = "https://ca.example/dir"
ca_roots = "/etc/vigie/ca.pem"
"#,
    );
    assert_eq!(a.directory, "https://ca.example/dir");
    assert!(a.fallback.is_empty());
    let cas = a.cas();
    assert_eq!(cas.len(), 1);
    assert_eq!(
        cas[0].ca_roots.as_deref(),
        Some("/etc/vigie/ca.pem".as_ref())
    );
}

#[test]
fn the_list_form_keeps_the_order_and_each_ca_its_own_settings() {
    let c = parse(
        r#"
[acme]
email = "ops@example.com"

[[acme.ca]]
directory = "https://acme-v02.api.letsencrypt.org/directory"

[[acme.ca]]
directory = "https://acme.zerossl.com/v2/DV90"
eab = { kid = "kid-1", hmac_key_file = "/etc/vigie/zerossl.key" }

[[acme.ca]]
directory = "https://private.example/dir"
ca_roots = "/etc/vigie/private.pem"
eab = { kid = "kid-2", hmac_key_env = "PRIVATE_EAB_KEY" }
"#,
        "t",
    )
    .unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let a = c.acme.unwrap();
    let cas = a.cas();
    let dirs: Vec<&str> = cas.iter().map(|c| c.directory.as_str()).collect();
    assert_eq!(
        dirs,
        [
            "https://acme-v02.api.letsencrypt.org/directory",
            "https://acme.zerossl.com/v2/DV90",
            "https://private.example/dir"
        ]
    );
    assert_eq!(a.directory, dirs[0]);
    assert_eq!(cas[0].eab, None);
    assert_eq!(
        cas[1].eab,
        Some(Eab {
            kid: "kid-1".into(),
            hmac_key: EabKey::File("/etc/vigie/zerossl.key".into())
        })
    );
    assert_eq!(
        cas[2].eab.as_ref().map(|e| &e.hmac_key),
        Some(&EabKey::Env("PRIVATE_EAB_KEY".into()))
    );
    assert_eq!(
        cas[2].ca_roots.as_deref(),
        Some("/etc/vigie/private.pem".as_ref())
    );
    // A per-CA view keeps the rest of [acme].
    let view = a.with_ca(&cas[1]);
    assert_eq!(view.directory, dirs[1]);
    assert_eq!(view.email.as_deref(), Some("ops@example.com"));
}

#[test]
fn an_inline_hmac_key_still_works_with_a_warning() {
    let c = parse(
        "[acme]\neab = { kid = \"k\", hmac_key = \"zWNDZM6eQGHWpSRTPal5eIUY\" }\n",
        "t",
    )
    .unwrap();
    let a = c.acme.unwrap();
    assert_eq!(
        a.eab.unwrap().hmac_key,
        EabKey::Inline("zWNDZM6eQGHWpSRTPal5eIUY".into())
    );
    let w: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        w,
        ["2:20: the eab hmac_key is written in the configuration file: prefer hmac_key_file (a file only vigie reads) or hmac_key_env"]
    );
}

/// Each case: a config with one mistake, and the one message it must produce.
const BAD: &[(&str, &str, &str)] = &[
    (
        "both forms",
        r#"
[acme]
directory = "https://a.example/dir"
[[acme.ca]]
directory = "https://b.example/dir"
"#,
        "test.toml:3:1: `directory` and [[acme.ca]] cannot be combined: expected `directory` inside each [[acme.ca]] entry, or no [[acme.ca]] at all",
    ),
    (
        "top-level eab with the list",
        r#"
[acme]
eab = { kid = "k", hmac_key_file = "/k" }
[[acme.ca]]
directory = "https://b.example/dir"
"#,
        "test.toml:3:1: `eab` and [[acme.ca]] cannot be combined: expected `eab` inside each [[acme.ca]] entry, or no [[acme.ca]] at all",
    ),
    (
        "empty list",
        "[acme]\nca = []\n",
        "test.toml:2:1: empty CA list: expected at least one [[acme.ca]] with a directory",
    ),
    (
        "entry without directory",
        r#"
[acme]
[[acme.ca]]
directory = "https://a.example/dir"
[[acme.ca]]
ca_roots = "/etc/ca.pem"
"#,
        r#"test.toml:5:1: [[acme.ca]] has no directory: expected directory = "https://..." (the CA's ACME directory URL)"#,
    ),
    (
        "bad directory in the list",
        r#"
[[acme.ca]]
directory = "acme.example/dir"
"#,
        r#"test.toml:3:13: invalid directory "acme.example/dir": expected an http:// or https:// URL, like "https://acme-v02.api.letsencrypt.org/directory""#,
    ),
    (
        "same CA twice",
        r#"
[[acme.ca]]
directory = "https://a.example/dir"
[[acme.ca]]
directory = "https://a.example/dir"
"#,
        r#"test.toml:5:13: directory "https://a.example/dir" is already CA 1 of [[acme.ca]]: expected each CA once"#,
    ),
    (
        "eab without key",
        r#"
[[acme.ca]]
directory = "https://a.example/dir"
eab = { kid = "k" }
"#,
        r#"test.toml:4:7: eab has no HMAC key: expected hmac_key_file = "/path/to/key" (a file holding the base64url key given by the CA) or hmac_key_env = "VARIABLE""#,
    ),
    (
        "eab without kid",
        r#"
[acme]
eab = { hmac_key_file = "/etc/vigie/eab.key" }
"#,
        r#"test.toml:3:7: eab has no kid: expected kid = "..." (the key identifier given by the CA) next to hmac_key_file"#,
    ),
    (
        "eab with two keys",
        r#"
[acme]
eab = { kid = "k", hmac_key_file = "/k", hmac_key_env = "K" }
"#,
        "test.toml:3:42: eab has both hmac_key_file and hmac_key_env: expected one of hmac_key_file, hmac_key_env or hmac_key",
    ),
    (
        "empty eab key file",
        r#"
[acme]
eab = { kid = "k", hmac_key_file = "" }
"#,
        "test.toml:3:36: empty eab hmac_key_file: expected the value given by the CA",
    ),
    (
        "bad eab variable",
        r#"
[acme]
eab = { kid = "k", hmac_key_env = "$KEY" }
"#,
        r#"test.toml:3:35: invalid hmac_key_env "$KEY": expected the name of an environment variable, like "VIGIE_EAB_KEY""#,
    ),
    (
        "inline key that is not base64url",
        r#"
[acme]
eab = { kid = "k", hmac_key = "not a key!" }
"#,
        "test.toml:3:31: invalid eab hmac_key: expected the base64url key given by the CA (letters, digits, `-` and `_`)",
    ),
    (
        "unknown key in an entry",
        r#"
[[acme.ca]]
directory = "https://a.example/dir"
eab_kid = "k"
"#,
        "test.toml:4:1: unknown key `eab_kid`, expected one of `directory`, `ca_roots`, `eab`",
    ),
];

#[test]
fn each_mistake_gives_its_one_message() {
    let wrong: Vec<String> = BAD
        .iter()
        .filter(|(_, text, expected)| errors(text) != [*expected])
        .map(|(what, text, _)| format!("{what}: {:?}", errors(text)))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}
