//! A real `redis-server` for tests: one per test on a free loopback port, without
//! persistence, ready once it answers PING; killed on drop (or by [`Redis::kill`]), and
//! started again on the same port by [`Redis::restart`].

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_until};

/// A running `redis-server`.
pub struct Redis {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// `redis://127.0.0.1:PORT/`.
    pub url: String,
}

impl Redis {
    /// Start one and wait until it answers PING.
    pub async fn start() -> Redis {
        let port = free_port();
        let mut r = Redis {
            child: None,
            port,
            url: format!("redis://127.0.0.1:{port}/"),
        };
        r.spawn().await;
        r
    }

    async fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn redis-server (is the redis-server package installed? `make deps`)");
        self.child = Some(child);
        let client = redis::Client::open(self.url.as_str()).unwrap();
        wait_until(Duration::from_secs(10), "redis-server PING", || async {
            match client.get_multiplexed_async_connection().await {
                Ok(mut c) => redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok(),
                Err(_) => false,
            }
        })
        .await;
    }

    /// SIGKILL it and start it again on the same port; returns once it answers PING.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A connection for the test's own reads.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// `GET key`.
    pub async fn get(&self, key: &str) -> Option<String> {
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut self.conn().await)
            .await
            .unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
