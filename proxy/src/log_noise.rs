//! What pingora logs as an error but is only a client leaving early.
//!
//! pingora logs `H2 handshake error …` at ERROR whenever an HTTP/2 client closes its
//! connection before the handshake completed — a browser that opened a spare connection and
//! never used it, a scanner, a reload of the page. That is the client's choice, not a fault
//! of vigie's: those records are dropped from the diagnostic log (every other H2 handshake
//! error, such as a protocol violation, is kept). The filter reads only the error and warning
//! records that pingora forwards, so it costs nothing on the request path.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata};
use tracing_subscriber::layer::{Context, Filter};

/// Whether a log message says that a client went away before an HTTP/2 handshake finished.
pub fn is_client_gone(message: &str) -> bool {
    const GONE: [&str; 6] = [
        "Broken pipe",
        "Connection reset",
        "unexpected end of file",
        "os error 32",
        "os error 104",
        "connection closed",
    ];
    message.starts_with("H2 handshake error") && GONE.iter().any(|g| message.contains(g))
}

/// A per-layer filter that drops the records [`is_client_gone`] recognises.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientGone;

impl<S> Filter<S> for ClientGone {
    fn enabled(&self, _meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &Event<'_>, _cx: &Context<'_, S>) -> bool {
        if *event.metadata().level() > Level::WARN {
            return true;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        !is_client_gone(&message.0)
    }
}

/// Collects an event's `message` field.
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_client_gone;

    #[test]
    fn client_gone_and_real_errors() {
        assert!(is_client_gone(
            "H2 handshake error connection error: Broken pipe (os error 32)"
        ));
        assert!(is_client_gone(
            "H2 handshake error Connection reset by peer (os error 104)"
        ));
        assert!(is_client_gone("H2 handshake error unexpected end of file"));
        assert!(is_client_gone(
            "H2 handshake error  HandshakeError context: while h2 handshaking with client \
             cause: connection closed before reading preface"
        ));
        assert!(!is_client_gone(
            "H2 handshake error connection error detected: frame with invalid size"
        ));
        assert!(!is_client_gone("upstream: Broken pipe (os error 32)"));
    }
}
