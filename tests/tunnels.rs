//! WebSocket tunnels against an origin that answers `101` at once and speaks first: the
//! case pingora 0.9.1 tears down (cloudflare/pingora#946). No retries: every upgrade must
//! carry the origin's first message and then an echo.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::support::Vigie;

/// How many upgrades the test makes, and how many at a time.
const UPGRADES: usize = 500;
const PARALLEL: usize = 10;

/// A WebSocket origin that writes its `101` and a first text frame (`hello`) in one write,
/// right after the request header, then echoes every text frame. It answers from raw bytes
/// (tungstenite's accept key, a hand-made unmasked frame), so nothing waits between the 101
/// and the first message.
struct EagerWsOrigin {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl EagerWsOrigin {
    async fn start() -> EagerWsOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                while conns.try_join_next().is_some() {}
                conns.spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head).to_string();
                    let Some(key) = text.lines().find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("sec-websocket-key")
                            .then(|| value.trim().to_string())
                    }) else {
                        return;
                    };
                    let mut out = format!(
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                         Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                        derive_accept_key(key.as_bytes())
                    )
                    .into_bytes();
                    // FIN + text opcode, unmasked (server to client), 5 bytes: "hello".
                    out.extend_from_slice(&[0x81, 5]);
                    out.extend_from_slice(b"hello");
                    if stream.write_all(&out).await.is_err() {
                        return;
                    }
                    let mut ws = WebSocketStream::from_raw_socket(stream, Role::Server, None).await;
                    while let Some(Ok(msg)) = ws.next().await {
                        if msg.is_text() && ws.send(msg).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        EagerWsOrigin { addr, task }
    }
}

impl Drop for EagerWsOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn config(origin: SocketAddr) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
admin = "{{admin}}"
state_dir = "{{state}}"

[upstreams.live]
servers = ["{origin}"]

[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "live"
"#
    )
}

/// The next message, within 5 s.
async fn next<S>(conn: &mut WebSocketStream<S>) -> Result<Message, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match tokio::time::timeout(Duration::from_secs(5), conn.next()).await {
        Err(_) => Err("nothing within 5s".to_string()),
        Ok(None) => Err("closed".to_string()),
        Ok(Some(Err(e))) => Err(e.to_string()),
        Ok(Some(Ok(m))) => Ok(m),
    }
}

/// One upgrade through vigie: the origin's first message, then one echo.
async fn session(v: &Vigie, n: usize) -> Result<(), String> {
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/api/live/ws", v.http),
    )
    .unwrap();
    req.headers_mut()
        .insert("host", "example.com".parse().unwrap());
    let (mut conn, resp) = tokio_tungstenite::connect_async(req)
        .await
        .map_err(|e| format!("upgrade {n}: {e}"))?;
    if resp.status() != 101 {
        return Err(format!("upgrade {n}: status {}", resp.status()));
    }
    let first = next(&mut conn)
        .await
        .map_err(|e| format!("upgrade {n}, first message: {e}"))?;
    if first != Message::text("hello") {
        return Err(format!("upgrade {n}: first message {first:?}"));
    }
    let text = format!("ping {n}");
    conn.send(Message::text(text.clone()))
        .await
        .map_err(|e| format!("upgrade {n}, send: {e}"))?;
    let echo = next(&mut conn)
        .await
        .map_err(|e| format!("upgrade {n}, echo: {e}"))?;
    if echo != Message::text(text) {
        return Err(format!("upgrade {n}: echo {echo:?}"));
    }
    let _ = conn.close(None).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_upgrade_survives_an_origin_that_speaks_first() {
    let origin = EagerWsOrigin::start().await;
    let v = std::sync::Arc::new(Vigie::start(&config(origin.addr)).await);
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..PARALLEL {
        let v = v.clone();
        workers.spawn(async move {
            let mut errors = Vec::new();
            for i in (w..UPGRADES).step_by(PARALLEL) {
                if let Err(e) = session(&v, i).await {
                    errors.push(e);
                }
            }
            errors
        });
    }
    let mut errors = Vec::new();
    while let Some(r) = workers.join_next().await {
        errors.extend(r.unwrap());
    }
    assert!(
        errors.is_empty(),
        "{} of {UPGRADES} upgrades failed: {:?}\n{}",
        errors.len(),
        &errors[..errors.len().min(10)],
        v.log()
    );
}

/// An upgrade the origin refuses (it answers `403`, not `101`) reaches the client as an
/// ordinary response, body included; an upgrade to a server that is down gets `502`.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_upgrade_is_an_ordinary_response_and_a_dead_upstream_502() {
    let plain = crate::support::Origin::start("plain").await;
    let v = Vigie::start(&config(plain.addr)).await;
    let upgrade = |path: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
    };
    let answer = |addr: String, req: String| async move {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // Read until the body (one line of text) has arrived or the connection closes.
        while !String::from_utf8_lossy(&got).ends_with('\n')
            || !got.windows(4).any(|w| w == b"\r\n\r\n")
        {
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                .await
                .expect("an answer within 5s")
                .unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).to_string()
    };
    let text = answer(v.http.clone(), upgrade("/status/403")).await;
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    assert_eq!(plain.count(), 1);

    let dead = crate::support::free_port();
    let down = Vigie::start(&config(format!("127.0.0.1:{dead}").parse().unwrap())).await;
    let text = answer(down.http.clone(), upgrade("/ws")).await;
    assert!(text.starts_with("HTTP/1.1 502"), "{text}");
}
