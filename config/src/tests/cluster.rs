//! `[cluster]`: defaults, and each mistake with its one message and position.

use std::path::PathBuf;
use std::time::Duration;

use super::errors;
use crate::{parse, Cluster, RedisFailure, SecretSource};

fn cluster(text: &str) -> Option<Cluster> {
    parse(text, "test.toml").unwrap().cluster
}

#[test]
fn without_cluster_nothing_is_shared() {
    assert_eq!(cluster("[server]\nhttp = [\"127.0.0.1:80\"]\n"), None);
}

#[test]
fn defaults_and_every_key() {
    let c = cluster(
        r#"
[cluster]
redis = "redis://10.0.0.5:6379/2"
encryption_key_file = "/etc/vigie/cluster.key"
"#,
    )
    .unwrap();
    assert_eq!(
        c,
        Cluster {
            redis: "redis://10.0.0.5:6379/2".into(),
            password: None,
            key_prefix: "vigie:".into(),
            node_id: None,
            encryption_key_file: PathBuf::from("/etc/vigie/cluster.key"),
            lock_lease: Duration::from_secs(30),
            poll: Duration::from_secs(30),
            redis_timeout: Duration::from_millis(100),
            limits_on_redis_failure: RedisFailure::FailOpen,
        }
    );
    let c = cluster(
        r#"
[cluster]
redis = "rediss://vigie@[::1]:6380"
password_env = "VIGIE_REDIS_PASSWORD"
key_prefix = "edge-prod:"
node_id = "edge-1.par"
encryption_key_file = "/k"
lock_lease = "5s"
poll = "2s"
redis_timeout = "250ms"
limits_on_redis_failure = "fail_closed"
"#,
    )
    .unwrap();
    assert_eq!(
        c.password,
        Some(SecretSource::Env("VIGIE_REDIS_PASSWORD".into()))
    );
    assert_eq!(c.key_prefix, "edge-prod:");
    assert_eq!(c.node_id.as_deref(), Some("edge-1.par"));
    assert_eq!(c.lock_lease, Duration::from_secs(5));
    assert_eq!(c.poll, Duration::from_secs(2));
    assert_eq!(c.redis_timeout, Duration::from_millis(250));
    assert_eq!(c.limits_on_redis_failure, RedisFailure::FailClosed);
    let c = cluster(
        "[cluster]\nredis = \"redis://h\"\npassword_file = \"/p\"\nencryption_key_file = \"/k\"\n",
    )
    .unwrap();
    assert_eq!(c.password, Some(SecretSource::File("/p".into())));
}

/// Each case: a `[cluster]` table with one mistake, and the one message it must produce.
const BAD: &[(&str, &str, &str)] = &[
    (
        "not a redis URL",
        "[cluster]\nredis = \"http://h:6379\"\nencryption_key_file = \"/k\"\n",
        r#"test.toml:2:9: invalid redis URL "http://h:6379": expected redis://HOST[:PORT][/DB] or rediss://HOST[:PORT][/DB] (TLS), like "redis://127.0.0.1:6379/0""#,
    ),
    (
        "bad port",
        "[cluster]\nredis = \"redis://h:99999\"\nencryption_key_file = \"/k\"\n",
        r#"test.toml:2:9: invalid redis URL "redis://h:99999": bad port; expected redis://HOST[:PORT][/DB] or rediss://HOST[:PORT][/DB] (TLS), like "redis://127.0.0.1:6379/0""#,
    ),
    (
        "bad database",
        "[cluster]\nredis = \"redis://h/x\"\nencryption_key_file = \"/k\"\n",
        r#"test.toml:2:9: invalid redis URL "redis://h/x": the database must be a number; expected redis://HOST[:PORT][/DB] or rediss://HOST[:PORT][/DB] (TLS), like "redis://127.0.0.1:6379/0""#,
    ),
    (
        "password in the URL",
        "[cluster]\nredis = \"redis://u:s3cret@h\"\nencryption_key_file = \"/k\"\n",
        r#"test.toml:2:9: the redis URL "redis://***@h" carries a password: remove it and use password_file or password_env"#,
    ),
    (
        "inline password",
        "[cluster]\nredis = \"redis://h\"\npassword = \"s3cret\"\nencryption_key_file = \"/k\"\n",
        r#"test.toml:3:1: a password in the configuration file is refused: put it in a file (password_file = "/etc/vigie/redis.pass", mode 0600) or an environment variable (password_env = "VIGIE_REDIS_PASSWORD")"#,
    ),
    (
        "two password sources",
        "[cluster]\nredis = \"redis://h\"\npassword_file = \"/p\"\npassword_env = \"P\"\nencryption_key_file = \"/k\"\n",
        "test.toml:4:1: password_file and password_env are both set: expected one of them",
    ),
    (
        "bad env name",
        "[cluster]\nredis = \"redis://h\"\npassword_env = \"$P\"\nencryption_key_file = \"/k\"\n",
        r#"test.toml:3:16: invalid password_env "$P": expected an environment variable name, like "VIGIE_REDIS_PASSWORD""#,
    ),
    (
        "no encryption key",
        "\n[cluster]\nredis = \"redis://h\"\n",
        "test.toml:2:1: [cluster] has no encryption_key_file: expected the path of a 32-byte key shared by every node (private keys are stored encrypted in Redis), made once with `head -c 32 /dev/urandom > /etc/vigie/cluster.key`",
    ),
    (
        "bad node id",
        "[cluster]\nredis = \"redis://h\"\nnode_id = \"edge 1\"\nencryption_key_file = \"/k\"\n",
        r#"test.toml:3:11: invalid node_id "edge 1": expected 1 to 64 letters, digits, '.', '-' or '_', like "edge-1""#,
    ),
    (
        "bad prefix",
        "[cluster]\nredis = \"redis://h\"\nkey_prefix = \"\"\nencryption_key_file = \"/k\"\n",
        r#"test.toml:3:14: invalid key_prefix "": expected 1 to 64 visible ASCII characters, like "vigie:" or "edge-prod:""#,
    ),
    (
        "lease too short",
        "[cluster]\nredis = \"redis://h\"\nencryption_key_file = \"/k\"\nlock_lease = \"1s\"\n",
        r#"test.toml:4:14: invalid lock_lease "1s": expected between 2s and 10m"#,
    ),
    (
        "unknown failure mode",
        "[cluster]\nredis = \"redis://h\"\nencryption_key_file = \"/k\"\nlimits_on_redis_failure = \"open\"\n",
        r#"test.toml:4:27: invalid limits_on_redis_failure "open": expected "fail_open" (each instance's own limiter decides while Redis is unreachable) or "fail_closed" (limited routes refuse with the zone's status)"#,
    ),
    (
        "timeout too long",
        "[cluster]\nredis = \"redis://h\"\nencryption_key_file = \"/k\"\nredis_timeout = \"30s\"\n",
        r#"test.toml:4:17: invalid redis_timeout "30s": expected between 5ms and 10s"#,
    ),
    (
        "unknown key",
        "[cluster]\nredis = \"redis://h\"\nencryption_key_file = \"/k\"\nnodeid = \"a\"\n",
        "test.toml:4:1: unknown key `nodeid` (did you mean `node_id`?), expected one of `redis`, `password`, `password_file`, `password_env`, `key_prefix`, `node_id`, `encryption_key_file`, `lock_lease`, `poll`, `redis_timeout`, `limits_on_redis_failure`",
    ),
];

#[test]
fn bad_cluster_tables() {
    let mut failed = Vec::new();
    for (name, text, expected) in BAD {
        let got = errors(text);
        if got != [*expected] {
            failed.push(format!(
                "{name}:\n  expected {expected:?}\n  got      {got:?}"
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
