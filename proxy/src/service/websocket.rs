//! WebSocket tunnels, proxied by vigie itself rather than by pingora's HTTP/1 path.
//!
//! pingora 0.9.1 tears an upgraded connection down right after the `101` when it reads the
//! upstream's `101` before it has handled the upgrade request's own (empty) body end
//! (cloudflare/pingora#946): its two halves meet in a `select!`, and that end, arriving
//! once the connection counts as upgraded, is taken for the end of the tunnel. An origin that
//! answers at once (Grafana Live, Next.js dev servers) loses about one tunnel in a hundred.
//!
//! So a WebSocket upgrade (HTTP/1.1 `Upgrade: websocket`, no request body) on a proxy route
//! is handled here, from `request_filter`, after routing and limits: the same phases pick
//! the server (`upstream_peer`, `fail_to_connect` and its retries) and shape the request
//! (`upstream_request_filter`) and response (`upstream_response_filter`, `response_filter`);
//! then one loop owns both directions, so no ordering between them can end the tunnel. It
//! ends when either side closes (as pingora's and nginx's do), on an error, or after the
//! upstream group's `read_timeout` with no traffic either way (pingora applies it too). A refused upgrade (any status but `101`)
//! is passed to the client as an ordinary response.
//!
//! Upstream groups speaking h2c keep pingora's path: HTTP/2 has no `Upgrade`.

use std::time::Duration;

use bytes::Bytes;
use pingora::prelude::HttpPeer;
use pingora::protocols::http::v1::client::HttpSession as Upstream;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::proxy::{ProxyHttp, Session};
use pingora::{Error, ErrorType, Result};
use tokio::net::TcpStream;
use vigie_config::Action;

use super::{Ctx, Vigie};
use crate::filters::compress;

/// Hop-by-hop request headers, never forwarded as they are (RFC 9110 section 7.6.1).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether vigie tunnels this request itself: a WebSocket upgrade without a body, on a route
/// that proxies to an HTTP/1 upstream group. Runs once the request is routed.
pub(super) fn takes(session: &mut Session, ctx: &Ctx) -> bool {
    let Some(Action::Proxy { upstream, .. }) = ctx.route().map(|r| &r.action) else {
        return false;
    };
    let h1_upstream = ctx
        .snap
        .upstreams
        .get(upstream)
        .is_some_and(|g| !g.config.h2c);
    h1_upstream && is_websocket_upgrade(session) && session.is_body_empty()
}

fn is_websocket_upgrade(session: &Session) -> bool {
    let req = session.req_header();
    session.is_upgrade_req()
        && req
            .headers
            .get_all(http::header::UPGRADE)
            .iter()
            .any(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// The request to send upstream: the client's, HTTP/1.1, hop-by-hop headers (and those the
/// client's `Connection` names) replaced by `Connection: Upgrade` and `Upgrade: websocket`.
fn upstream_request(session: &Session) -> Result<pingora::http::RequestHeader> {
    let mut req = session.req_header().clone();
    req.set_version(http::Version::HTTP_11);
    let named: Vec<String> = req
        .headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        req.remove_header(name);
    }
    req.remove_header("http2-settings");
    req.insert_header(http::header::CONNECTION, "Upgrade")?;
    req.insert_header(http::header::UPGRADE, "websocket")?;
    Ok(req)
}

/// A new TCP connection to `peer`, within its connect timeout.
async fn connect(peer: &HttpPeer) -> Result<Upstream> {
    let Some(addr) = peer._address.as_inet().copied() else {
        return Error::e_explain(ErrorType::InternalError, "upstream is not a TCP address");
    };
    let limit = peer
        .options
        .connection_timeout
        .unwrap_or(Duration::from_secs(10));
    let tcp = match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            let etype = if e.kind() == std::io::ErrorKind::ConnectionRefused {
                ErrorType::ConnectRefused
            } else {
                ErrorType::ConnectError
            };
            return Err(Error::because(etype, format!("connecting to {addr}"), e).into_up());
        }
        Err(_) => {
            let what = format!("connecting to {addr}: no answer within {limit:?}");
            return Err(Error::explain(ErrorType::ConnectTimedout, what).into_up());
        }
    };
    // A tunnel carries small interactive messages: no Nagle delay.
    let _ = tcp.set_nodelay(true);
    let mut upstream = Upstream::new_with_options(Box::new(L4Stream::from(tcp)), peer);
    upstream.read_timeout = peer.options.read_timeout;
    upstream.write_timeout = peer.options.write_timeout;
    Ok(upstream)
}

impl Vigie {
    /// Proxy the WebSocket upgrade (see the module docs). `Ok(true)`: the request was
    /// answered (tunnelled, or refused by the upstream); errors before the response are
    /// answered by `fail_to_proxy` (502, 503, 504).
    pub(super) async fn websocket(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let mut upstream = loop {
            let peer = self.upstream_peer(session, ctx).await?;
            match connect(&peer).await {
                Ok(upstream) => break upstream,
                Err(e) => {
                    let e = self.fail_to_connect(session, &peer, ctx, e);
                    if !e.retry() {
                        return Err(e);
                    }
                }
            }
        };
        let mut req = upstream_request(session)?;
        self.upstream_request_filter(session, &mut req, ctx).await?;
        upstream
            .write_request_header(Box::new(req))
            .await
            .map_err(|e| e.into_up())?;
        let mut resp = read_final_response(&mut upstream).await?;
        self.upstream_response_filter(session, &mut resp, ctx)
            .await?;
        self.response_filter(session, &mut resp, ctx).await?;
        compress::off(session);
        let head_only = upstream.is_body_done();
        session
            .write_response_header(Box::new(resp), head_only && !upstream.was_upgraded())
            .await?;
        if upstream.was_upgraded() && session.was_upgraded() {
            if let Err(e) = tunnel(session, &mut upstream).await {
                tracing::debug!(error = %e, "WebSocket tunnel ended on an error");
            }
        } else if !head_only {
            forward_body(session, &mut upstream).await?;
        }
        Ok(true)
    }
}

/// The upstream's answer, skipping informational ones other than `101`.
async fn read_final_response(upstream: &mut Upstream) -> Result<pingora::http::ResponseHeader> {
    loop {
        upstream.read_response().await.map_err(|e| e.into_up())?;
        let Some(resp) = upstream.resp_header() else {
            return Error::e_explain(ErrorType::InvalidHTTPHeader, "no response header")
                .map_err(|e| e.into_up());
        };
        if resp.status == 101 || !resp.status.is_informational() {
            return Ok(resp.clone());
        }
    }
}

/// A refused upgrade: the upstream's response body, as it comes.
async fn forward_body(session: &mut Session, upstream: &mut Upstream) -> Result<()> {
    while let Some(chunk) = upstream.read_body_bytes().await.map_err(|e| e.into_up())? {
        session.write_response_body(Some(chunk), false).await?;
    }
    session.write_response_body(None, true).await
}

/// Bytes both ways until either side closes. The upstream may have sent its first message
/// together with the `101`: the session's first read returns it.
async fn tunnel(session: &mut Session, upstream: &mut Upstream) -> Result<()> {
    upstream.maybe_upgrade_body_writer();
    loop {
        tokio::select! {
            from_client = session.read_request_body() => match from_client? {
                Some(data) => {
                    upstream
                        .write_body(&data)
                        .await
                        .map_err(|e| e.into_up())?;
                }
                None => break,
            },
            from_upstream = upstream.read_body_bytes() => match from_upstream.map_err(|e| e.into_up())? {
                Some(data) => session.write_response_body(Some(data), false).await?,
                None => break,
            },
        }
    }
    // Either side is done: flush what is pending and close both.
    let _ = session.write_response_body(Some(Bytes::new()), true).await;
    upstream.shutdown().await;
    Ok(())
}
