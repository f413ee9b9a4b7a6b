//! A real browser: Debian's headless chromium, driven over the DevTools protocol with
//! `chromiumoxide` (tokio-native; it launches the given executable and never downloads one).
//!
//! Each [`Chromium`] has a fresh profile directory and is killed when dropped.

use std::path::Path;
use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::Page;
use futures_util::StreamExt;

/// Where the tests expect chromium (Debian's `chromium` package; `make deps` installs it).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// A running headless chromium with one page.
pub struct Chromium {
    browser: Browser,
    handler: tokio::task::JoinHandle<()>,
    /// The page.
    pub page: Page,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Launch chromium with a fresh profile, a `width` x `height` viewport and a blank page.
    /// Panics with a clear message when `/usr/bin/chromium` is missing.
    pub async fn launch(width: u32, height: u32) -> Chromium {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: this test drives a real browser; install Debian's \
             `chromium` package (`make deps` does)"
        );
        let profile = tempfile::tempdir().expect("profile dir");
        let config = BrowserConfig::builder()
            .chrome_executable(CHROMIUM)
            .disable_default_args()
            .no_sandbox()
            .user_data_dir(profile.path())
            .window_size(width, height)
            .viewport(None)
            .args([
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
            ])
            .launch_timeout(Duration::from_secs(30))
            .build()
            .expect("browser config");
        let (browser, mut events) = Browser::launch(config)
            .await
            .unwrap_or_else(|e| panic!("cannot launch {CHROMIUM}: {e}"));
        let handler = tokio::spawn(async move { while events.next().await.is_some() {} });
        let page = browser.new_page("about:blank").await.expect("new page");
        let c = Chromium {
            browser,
            handler,
            page,
            _profile: profile,
        };
        c.viewport(width, height).await;
        c
    }

    /// Set the viewport to `width` x `height` CSS pixels.
    pub async fn viewport(&self, width: u32, height: u32) {
        self.page
            .execute(SetDeviceMetricsOverrideParams::new(
                width,
                height,
                1.0,
                width < 700,
            ))
            .await
            .expect("set the viewport");
    }

    /// Navigate to `url`.
    pub async fn goto(&self, url: &str) {
        self.page
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("navigate to {url}: {e}"));
    }

    /// Evaluate `js` in the page; its value as JSON (`null` when undefined).
    pub async fn eval(&self, js: &str) -> serde_json::Value {
        self.page
            .evaluate(js)
            .await
            .unwrap_or_else(|e| panic!("evaluate {js}: {e}"))
            .value()
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    }

    /// Evaluate `js` (a string expression) until `cond` holds on its value, at most `limit`;
    /// returns the last value. Panics with `what` and that value on timeout.
    pub async fn wait_for(
        &self,
        limit: Duration,
        what: &str,
        js: &str,
        cond: impl Fn(&str) -> bool,
    ) -> String {
        let start = Instant::now();
        loop {
            let v = self.eval(js).await;
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            if cond(&text) {
                return text;
            }
            assert!(
                start.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}; the page shows: {text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A PNG screenshot of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.capture(false).await
    }

    /// A PNG screenshot of the whole page, as tall as it is.
    pub async fn screenshot_page(&self) -> Vec<u8> {
        self.capture(true).await
    }

    async fn capture(&self, full_page: bool) -> Vec<u8> {
        self.page
            .screenshot(
                ScreenshotParams::builder()
                    .format(CaptureScreenshotFormat::Png)
                    .full_page(full_page)
                    .build(),
            )
            .await
            .expect("screenshot")
    }
}

impl Chromium {
    /// Close the browser and wait for its process to exit.
    pub async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        self.handler.abort();
    }
}

/// Decode a PNG: (width, height, number of distinct colours).
pub fn png_colours(png_bytes: &[u8]) -> (u32, u32, usize) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("PNG size")];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    let bytes = &buf[..info.buffer_size()];
    let step = info.color_type.samples() * usize::from(info.bit_depth as u8).div_ceil(8);
    let colours: std::collections::HashSet<&[u8]> = bytes.chunks(step.max(1)).collect();
    (info.width, info.height, colours.len())
}
