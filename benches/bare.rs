//! The floor: a bare pingora HTTP proxy with nothing of vigie's (no routing, no header guard,
//! no forwarding headers, no metrics), the same allocator and thread count, in front of one
//! upstream with keep-alive. The load harness runs it beside vigie and nginx so that the
//! results separate what pingora itself costs per request from what vigie adds.
//! Usage: `bench-bare LISTEN_PORT UPSTREAM_PORT THREADS`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Bare(u16);

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(
            ("127.0.0.1", self.0),
            false,
            String::new(),
        )))
    }
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u16>().unwrap());
    let (listen, upstream) = (args.next().unwrap(), args.next().unwrap());
    let threads = args.next().unwrap_or(2);
    let conf = ServerConf {
        threads: threads.into(),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut svc = http_proxy_service(&server.configuration, Bare(upstream));
    svc.add_tcp(&format!("127.0.0.1:{listen}"));
    server.add_service(svc);
    server.run_forever();
}
