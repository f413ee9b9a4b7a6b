//! The HTTPS listener: plain TCP accepted by pingora, the TLS handshake done here.
//!
//! pingora's own TLS listener cannot offer `acme-tls/1` beside `h2` and `http/1.1`, so this
//! app does the rustls handshake itself (`Acceptor::from_server_config`), with a deadline
//! that covers the whole handshake (pingora's covers only TCP). A connection that negotiated
//! `acme-tls/1` has been answered by the handshake (the challenge certificate) and is closed;
//! any other is handed to the HTTP proxy app, which serves h2 or HTTP/1.1 by its ALPN.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::listeners::tls::Acceptor;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{Stream, ALPN};
use pingora::server::ShutdownWatch;
use vigie_acme::resolver::ACME_TLS_ALPN;

/// Longest time a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS in front of an HTTP app (see the module docs).
pub struct TlsFront<A> {
    acceptor: Acceptor,
    app: Arc<A>,
}

impl<A> TlsFront<A> {
    /// Terminate TLS with `config`, then hand connections to `app`.
    pub fn new(config: Arc<rustls::ServerConfig>, app: A) -> Self {
        TlsFront {
            acceptor: Acceptor::from_server_config(config),
            app: Arc::new(app),
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for TlsFront<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // The listener hands over its TCP stream boxed; the handshake wants the concrete type.
        let Ok(tcp) = stream.into_any().downcast::<L4Stream>() else {
            tracing::error!("TLS listener got a stream that is not TCP");
            return None;
        };
        let handshake = self.acceptor.tls_handshake(*tcp);
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                return None;
            }
            Err(_) => {
                tracing::debug!("TLS handshake timed out");
                return None;
            }
        };
        if let Some(ALPN::Custom(p)) = pingora::protocols::Ssl::selected_alpn_proto(&tls) {
            if p.protocol() == ACME_TLS_ALPN {
                // TLS-ALPN-01: the validation happened in the handshake.
                return None;
            }
        }
        // Keep-alive stays inside: a reused stream is already TLS and must not be handed back
        // to the listener, which would handshake it again.
        let mut next: Option<Stream> = Some(Box::new(tls));
        while let Some(s) = next {
            next = self.app.process_new(s, shutdown).await;
            if *shutdown.borrow() {
                return None;
            }
        }
        None
    }

    async fn cleanup(&self) {
        self.app.cleanup().await;
    }
}
