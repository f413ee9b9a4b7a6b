//! The Lua lock scripts and the Redis store against a real `redis-server`.

use std::time::{Duration, Instant};

use redis::{AsyncCommands, Script};

use super::dir::DirStore;
use super::lock::{RedisLock, EXTEND, FENCED_SET, RELEASE};
use super::redis_store::{RedisSettings, RedisStore};
use super::sealed::SealKey;
use super::test_redis::TestRedis;
use super::{LockOutcome, Store, StoreError, StoredCert};

async fn take(conn: &redis::aio::ConnectionManager, node: &str, lease: Duration) -> LockOutcome {
    RedisLock::acquire(conn, "t:lock:s", "t:fence:s", node, lease)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lock_is_exclusive_fenced_renewed_and_released_by_compare_and_swap() {
    let r = TestRedis::start().await;
    let mut c = r.conn().await;
    let LockOutcome::Acquired(a) = take(&c, "node-a", Duration::from_secs(2)).await else {
        panic!("first acquisition")
    };
    assert_eq!(a.fence(), 1);
    let value = a.token().unwrap().to_string();
    assert!(value.starts_with("node-a 1 "), "{value}");
    match take(&c, "node-b", Duration::from_secs(2)).await {
        LockOutcome::HeldBy(n) => assert_eq!(n, "node-a"),
        LockOutcome::Acquired(_) => panic!("two holders"),
    }
    // Someone else's value neither extends nor releases, nor writes under the lock.
    let not_ours = "node-b 1 0000000000000000";
    let n: i64 = Script::new(EXTEND)
        .key("t:lock:s")
        .arg(not_ours)
        .arg(5000)
        .invoke_async(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let n: i64 = Script::new(RELEASE)
        .key("t:lock:s")
        .arg(not_ours)
        .invoke_async(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let fenced = |token: String| {
        let mut c = c.clone();
        async move {
            Script::new(FENCED_SET)
                .key("t:lock:s")
                .key("t:data")
                .arg(token)
                .arg("v")
                .arg("t:chan")
                .arg("s")
                .invoke_async::<i64>(&mut c)
                .await
                .unwrap()
        }
    };
    assert_eq!(fenced(not_ours.into()).await, 0);
    assert_eq!(fenced(value.clone()).await, 1);
    // Held past its lease: the renewal keeps it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(matches!(
        take(&c, "node-b", Duration::from_secs(2)).await,
        LockOutcome::HeldBy(_)
    ));
    a.release().await;
    let LockOutcome::Acquired(b) = take(&c, "node-b", Duration::from_secs(2)).await else {
        panic!("free after release")
    };
    assert_eq!(b.fence(), 2);
    // A holder that dies (dropped without release: no more renewals) loses it at expiry.
    drop(b);
    let start = Instant::now();
    let next = loop {
        if let LockOutcome::Acquired(l) = take(&c, "node-c", Duration::from_secs(2)).await {
            break l;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the lease never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(next.fence(), 3);
    assert_eq!(fenced(value).await, 0, "an old holder's write is refused");
    let fence: u64 = c.get("t:fence:s").await.unwrap();
    assert_eq!(fence, 3);
}

fn store(r: &TestRedis, key: u8, node: &str, dir: &std::path::Path) -> RedisStore {
    RedisStore::new(
        RedisSettings {
            url: r.url.clone(),
            password: None,
            prefix: "p:".into(),
            node: node.into(),
            lease: Duration::from_secs(5),
            poll: Duration::from_secs(5),
        },
        SealKey::from_file_bytes(&[key; 32]).unwrap(),
        DirStore::new(dir),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_keeps_secrets_sealed_and_refuses_another_key() {
    let r = TestRedis::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a = store(&r, 1, "node-a", &dir.path().join("a"));
    a.check().await.unwrap();
    let cert = StoredCert {
        chain_pem: "-----BEGIN CERTIFICATE-----\nchain\n".into(),
        key_pem: "-----BEGIN PRIVATE KEY-----\nsecret\n".into(),
        profile: Some("shortlived".into()),
        ordered_by: None,
        ca: Some("https://ca/dir".into()),
        ordered_at: None,
    };
    let LockOutcome::Acquired(lock) = a.lock("site").await.unwrap() else {
        panic!()
    };
    a.save_cert("site", &cert, lock.as_ref()).await.unwrap();
    a.save_account("https://ca/dir", br#"{"key_pkcs8":"private"}"#)
        .await
        .unwrap();
    let mut c = r.conn().await;
    let raw: String = c.get("p:cert:site").await.unwrap();
    assert!(
        raw.contains("vigie-sealed:v1:") && !raw.contains("secret"),
        "{raw}"
    );
    let raw: String = c.get("p:account:ca_dir").await.unwrap();
    assert!(
        raw.starts_with("vigie-sealed:v1:") && !raw.contains("private"),
        "{raw}"
    );
    // Another node with the same key reads it back, and keeps a local copy.
    let b = store(&r, 1, "node-b", &dir.path().join("b"));
    b.check().await.unwrap();
    let got = b.load_cert("site").await.unwrap().unwrap();
    assert_eq!(got.key_pem, cert.key_pem);
    assert_eq!(got.ordered_by, Some(("node-a".into(), 1)));
    let local = DirStore::new(&dir.path().join("b"))
        .read_cert("site")
        .unwrap()
        .unwrap();
    assert_eq!(local.key_pem, cert.key_pem);
    assert_eq!(
        b.load_account("https://ca/dir").await.unwrap().unwrap(),
        br#"{"key_pkcs8":"private"}"#
    );
    // A node with another key: a clear error at start, and nothing read as "absent".
    let wrong = store(&r, 2, "node-c", &dir.path().join("c"));
    let e = wrong.check().await.unwrap_err();
    assert!(
        matches!(&e, StoreError::Key(m) if m.contains("encryption_key_file holds key")),
        "{e}"
    );
    assert!(matches!(
        wrong.load_cert("site").await,
        Err(StoreError::Key(_))
    ));
    assert!(matches!(
        wrong.load_account("https://ca/dir").await,
        Err(StoreError::Key(_))
    ));
    // HTTP-01 answers published by one are given by another, until withdrawn.
    a.publish_http01("tok", Some("tok.thumb")).await;
    assert_eq!(b.http01("tok").await.as_deref(), Some("tok.thumb"));
    a.publish_http01("tok", None).await;
    assert_eq!(b.http01("tok").await, None);
    // A write under a lock that is no longer held is refused.
    lock.release().await;
    let LockOutcome::Acquired(stale) = a.lock("site").await.unwrap() else {
        panic!()
    };
    let _: () = c.del("p:lock:site").await.unwrap();
    let e = a
        .save_cert("site", &cert, stale.as_ref())
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::LockLost(_)), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_down_is_unavailable_not_absent() {
    let r = TestRedis::start().await;
    let url = r.url.clone();
    drop(r);
    let dir = tempfile::tempdir().unwrap();
    let s = RedisStore::new(
        RedisSettings {
            url,
            password: None,
            prefix: "p:".into(),
            node: "n".into(),
            lease: Duration::from_secs(5),
            poll: Duration::from_secs(5),
        },
        SealKey::from_file_bytes(&[1; 32]).unwrap(),
        DirStore::new(dir.path()),
    )
    .unwrap();
    assert!(matches!(s.check().await, Err(StoreError::Unavailable(_))));
    assert!(matches!(
        s.load_cert("site").await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        s.load_account("d").await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        s.lock("site").await,
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_alpn_01_answer_published_by_one_node_is_answered_by_another_without_its_key() {
    use crate::alpn01::Answer;
    use crate::CertResolver;
    let r = TestRedis::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a = store(&r, 1, "node-a", &dir.path().join("a"));
    let b: crate::SharedStore = std::sync::Arc::new(store(&r, 1, "node-b", &dir.path().join("b")));
    let resolver = CertResolver::new();
    // Without a shared store nothing is looked up.
    assert!(!resolver.fetch_challenge("a.example").await);
    resolver.share_challenges(b.clone());
    assert!(!resolver.fetch_challenge("a.example").await);
    a.publish_alpn01("a.example", Some(&Answer::new("a.example", &[9; 32])))
        .await;
    let raw: String = r.conn().await.get("p:alpn01:a.example").await.unwrap();
    assert!(!raw.contains("PRIVATE"), "only the name and digest: {raw}");
    assert!(resolver.fetch_challenge("A.example").await);
    // A name that is not a host name is never looked up.
    assert!(!resolver.fetch_challenge("a.example\r\nGET").await);
    // Withdrawn: the next handshake gets nothing.
    a.publish_alpn01("a.example", None).await;
    assert!(!resolver.fetch_challenge("a.example").await);
    // The lock holders, read in one round trip.
    let LockOutcome::Acquired(lock) = a.lock("s1").await.unwrap() else {
        panic!()
    };
    let holders = b
        .lock_holders(&["s1".to_string(), "s2".to_string()])
        .await
        .unwrap();
    assert_eq!(holders, vec![Some("node-a".to_string()), None]);
    lock.release().await;
    assert_eq!(b.lock_holders(&["s1".into()]).await.unwrap(), vec![None]);
}
