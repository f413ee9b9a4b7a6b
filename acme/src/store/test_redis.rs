//! A real `redis-server` for unit tests: one per test, on a free loopback port, no
//! persistence, killed on drop. Ready once it answers PING.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct TestRedis {
    child: Child,
    pub(crate) url: String,
}

impl TestRedis {
    pub(crate) async fn start() -> TestRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (is the redis-server package installed? `make deps`)");
        let url = format!("redis://127.0.0.1:{port}/");
        let client = redis::Client::open(url.as_str()).unwrap();
        let start = Instant::now();
        loop {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await {
                if redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
                {
                    break;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server not ready"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        TestRedis { child, url }
    }

    pub(crate) async fn conn(&self) -> redis::aio::ConnectionManager {
        redis::aio::ConnectionManager::new(redis::Client::open(self.url.as_str()).unwrap())
            .await
            .unwrap()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
