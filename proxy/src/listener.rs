//! The listeners' front door: plain TCP accepted by pingora; here the per-client connection
//! cap is taken (before any TLS work, so a flood cannot make vigie do handshakes) and, on the
//! HTTPS listener, the TLS handshake is done.
//!
//! The cap is the smallest `max_connections` of the `[limits.*]` zones, per client address
//! (the TCP peer: no header exists yet); trusted proxies and zone-exempt ranges are not
//! capped, since a CDN carries many clients on its connections. A refused connection is
//! closed at once.
//!
//! TLS: pingora's own TLS listener cannot offer `acme-tls/1` beside `h2` and `http/1.1`, so
//! the handshake is done here (`Acceptor::from_server_config`), with a deadline that covers
//! the whole handshake (pingora's covers only TCP). A connection that negotiated
//! `acme-tls/1` has been answered by the handshake (the challenge certificate) and is closed;
//! any other is handed to the HTTP proxy app, which serves h2 or HTTP/1.1 by its ALPN.
//!
//! In a cluster, the CA's TLS-ALPN-01 validation may reach an instance that did not open
//! the challenge. rustls asks the certificate resolver synchronously, so the ClientHello is
//! read here first (and put back for the handshake, which reads it again): when it offers
//! `acme-tls/1`, the resolver fetches the published answer from the store before the
//! handshake goes on ([`vigie_acme::CertResolver::fetch_challenge`]). Only an instance with
//! a `[cluster]` does this; the deadline covers it. A ClientHello without the bytes
//! `acme-tls/1` is not parsed ([`hello`]).
//!
//! HTTP/1.x connections (no ALPN `h2`, no h2c preface) go through the header guard
//! ([`crate::header_guard`]): `Front` runs pingora's keep-alive loop itself so that it can
//! re-arm the guard's deadline before each request.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use std::sync::atomic::Ordering;

use pingora::apps::{HttpServerApp, ServerApp};
use pingora::listeners::tls::Acceptor;
use pingora::protocols::http::ServerSession;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{Stream, ALPN};
use pingora::server::ShutdownWatch;
use vigie_acme::resolver::ACME_TLS_ALPN;
use vigie_acme::CertResolver;

use crate::header_guard::Guarded;
use crate::limits::{ConnectionCounter, ConnectionSlot};
use crate::metrics::Metrics;
use crate::snapshot::SnapshotHandle;
use hello::acme_tls_hello;

mod hello;

/// Longest time a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a keep-alive connection may wait for its next request (pingora's default, which
/// vigie keeps).
const KEEPALIVE_IDLE: u64 = 60;

/// The connection cap and, optionally, TLS in front of an HTTP app (see the module docs).
pub struct Front<A> {
    acceptor: Option<Acceptor>,
    app: Arc<A>,
    snapshots: SnapshotHandle,
    connections: Arc<ConnectionCounter>,
    metrics: Arc<Metrics>,
    challenges: Option<Arc<CertResolver>>,
}

impl<A> Front<A> {
    /// Hand connections to `app`, terminating TLS with `tls` when given.
    pub fn new(
        tls: Option<Arc<rustls::ServerConfig>>,
        app: A,
        snapshots: SnapshotHandle,
        connections: Arc<ConnectionCounter>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Front {
            acceptor: tls.map(Acceptor::from_server_config),
            app: Arc::new(app),
            snapshots,
            connections,
            metrics,
            challenges: None,
        }
    }

    /// Answer, through `resolver`, the TLS-ALPN-01 challenges other instances of a cluster
    /// opened (nothing happens unless the resolver shares challenges).
    pub fn with_cluster_challenges(mut self, resolver: Arc<CertResolver>) -> Self {
        self.challenges = Some(resolver);
        self
    }

    /// A slot for the peer of `stream` under the current cap; `Err` when it is refused.
    fn admit(&self, stream: &Stream) -> Result<Option<ConnectionSlot>, std::net::IpAddr> {
        let snap = self.snapshots.load();
        let Some(cap) = snap.connection_cap else {
            return Ok(None);
        };
        let Some(ip) = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()))
        else {
            return Ok(None);
        };
        if snap.connection_cap_exempt(ip) {
            return Ok(None);
        }
        self.connections.try_acquire(ip, cap).map(Some).ok_or(ip)
    }
}

impl<A: HttpServerApp + Send + Sync + 'static> Front<A> {
    /// Serve the connection to its end: keep-alive stays inside, so the connection's slot
    /// (and its TLS session) last until it closes and nothing goes back to the listener.
    /// HTTP/1.x goes through the header guard, request by request; HTTP/2 (ALPN `h2`, or the
    /// h2c preface on plain connections) goes to the app as it is.
    async fn serve(self: &Arc<Self>, stream: Stream, shutdown: &ShutdownWatch) {
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            self.app.process_new(stream, shutdown).await;
            return;
        }
        let tls = stream.get_ssl_digest().is_some();
        let mut guarded = Guarded::new(stream, self.snapshots.clone());
        let h2c = self.app.server_options().is_some_and(|o| o.h2c);
        if !tls && h2c && guarded.starts_with_h2_preface().await {
            guarded.disarm();
            self.app.process_new(Box::new(guarded), shutdown).await;
            return;
        }
        self.serve_http1(guarded, shutdown).await;
    }

    /// pingora's HTTP/1.x keep-alive loop (`ServerApp for HttpServerApp`), with the header
    /// guard re-armed before each request. Between requests the connection waits here, for
    /// the first bytes of the next one, before pingora gets it: pingora's request future
    /// (about 14 KB) and header buffer are only allocated once a request is arriving, so an
    /// idle keep-alive connection holds little more than its socket (and TLS state).
    async fn serve_http1(self: &Arc<Self>, guarded: Guarded, shutdown: &ShutdownWatch) {
        let rearm = guarded.rearm_handle();
        // Sessions are made in blocks that end before the await: only pingora's (boxed)
        // request future lives across it, not a moved-from session in this one's state.
        let request = {
            let mut session = ServerSession::new_http1(Box::new(guarded));
            // Pipelined requests (RFC 9112 §9.3.2) are answered in order: without this,
            // pingora answers a request followed by the next one's bytes with 400 and closes,
            // after the first was already forwarded. The setting carries over on reuse.
            session.set_pipelining_enabled(true);
            session.set_keepalive((!*shutdown.borrow()).then_some(KEEPALIVE_IDLE));
            let limit = self
                .app
                .server_options()
                .and_then(|o| o.keepalive_request_limit);
            session.set_keepalive_reuses_remaining(limit);
            self.app.process_new_http(session, shutdown)
        };
        let mut result = request.await;
        while let Some((stream, settings)) = result.map(|r| r.consume()) {
            rearm.store(true, Ordering::Release);
            let Ok(mut guarded) = stream.into_any().downcast::<Guarded>() else {
                tracing::error!("a reused HTTP/1 connection is not the guarded one");
                return;
            };
            let idle = Duration::from_secs(KEEPALIVE_IDLE);
            if settings.as_ref().is_some_and(has_pipelined_prefix) {
                // The next request already began in what pingora read past the last one: it
                // is pingora's to parse, within its own limits, and the guard (which saw
                // those bytes go by as the last request's) stands aside for it.
                guarded.pass_pipelined();
            } else if *shutdown.borrow() || !guarded.wait_for_request(idle, shutdown).await {
                return;
            }
            let request = {
                let mut session = ServerSession::new_http1(guarded);
                if let Some(settings) = settings {
                    settings.apply_to_session(&mut session);
                }
                self.app.process_new_http(session, shutdown)
            };
            result = request.await;
        }
    }

    async fn handshake(&self, acceptor: &Acceptor, stream: Stream) -> Option<Stream> {
        // The listener hands over its TCP stream boxed; the handshake wants the concrete type.
        let Ok(tcp) = stream.into_any().downcast::<L4Stream>() else {
            tracing::error!("TLS listener got a stream that is not TCP");
            return None;
        };
        let handshake = async {
            let mut tcp = tcp;
            if let Some(resolver) = self.challenges.as_ref().filter(|r| r.shares_challenges()) {
                if let Some(sni) = acme_tls_hello(&mut tcp).await {
                    resolver.fetch_challenge(&sni).await;
                }
            }
            acceptor.tls_handshake(*tcp).await
        };
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                self.metrics.tls_handshake("failed");
                tracing::debug!(error = %e, "TLS handshake failed");
                return None;
            }
            Err(_) => {
                self.metrics.tls_handshake("timeout");
                tracing::debug!("TLS handshake timed out");
                return None;
            }
        };
        if let Some(ALPN::Custom(p)) = pingora::protocols::Ssl::selected_alpn_proto(&tls) {
            if p.protocol() == ACME_TLS_ALPN {
                // TLS-ALPN-01: the validation happened in the handshake.
                self.metrics.tls_handshake("acme");
                return None;
            }
        }
        self.metrics.tls_handshake("ok");
        Some(Box::new(tls))
    }
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> ServerApp for Front<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let _open = self.metrics.connection_opened();
        let _slot = match self.admit(&stream) {
            Ok(slot) => slot,
            Err(ip) => {
                self.metrics.connection_refused();
                tracing::debug!(client = %ip, "connection refused: per-client connection cap");
                return None;
            }
        };
        // Each stage in its own allocation: this future lives as long as the connection, and
        // inline it would be as large as the largest stage (the TLS handshake's), idle or not.
        let stream = match &self.acceptor {
            Some(acceptor) => Box::pin(self.handshake(acceptor, stream)).await?,
            None => stream,
        };
        Box::pin(self.serve(stream, shutdown)).await;
        None
    }

    async fn cleanup(&self) {
        self.app.cleanup().await;
    }
}

/// Whether pingora kept bytes of a pipelined next request for the reused connection. pingora
/// 0.9.1 has no getter for them; its `Debug` of the settings names the field, which is read
/// here (the e2e pipelining cases fail if that ever stops holding).
fn has_pipelined_prefix(settings: &pingora::apps::HttpPersistentSettings) -> bool {
    format!("{settings:?}").contains("pipelined_prefix: Some")
}
