//! A headless Chromium (Debian's) for end-to-end tests of web pages: one profile per browser, console errors,
//! exceptions and error log entries recorded per page, screenshots saved as test artifacts.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::log::{EventEntryAdded, LogEntryLevel};
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::cdp::js_protocol::runtime::{ConsoleApiCalledType, EventConsoleApiCalled, EventExceptionThrown};
use chromiumoxide::page::{Page, ScreenshotParams};
use futures::StreamExt as _;

/// Debian's Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Where tests save screenshots: `$CARGO_TARGET_DIR/test-artifacts/dashboard` (or the workspace's `target/`).
pub fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("test-artifacts").join("dashboard");
    std::fs::create_dir_all(&dir).expect("create the artifacts directory");
    dir
}

/// Held by each browser test so that they run one at a time (two cores, one Chromium at a time).
pub static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A headless Chromium with its own profile; killed when dropped.
#[allow(missing_debug_implementations)]
pub struct Chromium {
    pub browser: Browser,
    handler: tokio::task::JoinHandle<()>,
    _profile: tempfile::TempDir,
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status.lines().find_map(|line| line.strip_prefix("Uid:")).and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

impl Chromium {
    /// Starts Debian's Chromium, headless, with a window of `width` x `height`; fails the test if it is missing.
    pub async fn launch(width: u32, height: u32) -> Self {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: install Debian's `chromium` package (the dashboard's browser tests need it)"
        );
        let profile = tempfile::tempdir().expect("profile directory");
        let mut config = BrowserConfig::builder()
            .chrome_executable(CHROMIUM)
            .user_data_dir(profile.path())
            .window_size(width, height)
            .viewport(None)
            .launch_timeout(Duration::from_secs(20))
            .request_timeout(Duration::from_secs(8))
            .env("LANG", "C.UTF-8")
            .args([
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--force-color-profile=srgb",
            ]);
        if running_as_root() {
            config = config.no_sandbox();
        }
        let config = config.build().expect("browser config");
        let (browser, mut handler) = Browser::launch(config).await.expect("start Chromium");
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        Self { browser, handler, _profile: profile }
    }

    /// A new tab that records console errors, exceptions and error log entries.
    pub async fn page(&self) -> Watched {
        let page = self.browser.new_page("about:blank").await.expect("new page");
        let errors = Arc::new(Mutex::new(Vec::new()));
        let mut console = page.event_listener::<EventConsoleApiCalled>().await.expect("console events");
        let mut exceptions = page.event_listener::<EventExceptionThrown>().await.expect("exception events");
        let mut log = page.event_listener::<EventEntryAdded>().await.expect("log events");
        page.enable_runtime().await.expect("enable Runtime");
        page.enable_log().await.expect("enable Log");
        let sink = errors.clone();
        let task = tokio::spawn(async move {
            loop {
                let line = tokio::select! {
                    Some(event) = console.next() => (event.r#type == ConsoleApiCalledType::Error)
                        .then(|| format!("console.error: {:?}", event.args.iter().map(|arg| arg.value.clone()).collect::<Vec<_>>())),
                    Some(event) = exceptions.next() => Some(format!("exception: {:?}", event.exception_details)),
                    Some(event) = log.next() => (event.entry.level == LogEntryLevel::Error)
                        .then(|| format!("log error: {} ({:?})", event.entry.text, event.entry.url)),
                    else => break,
                };
                if let Some(line) = line {
                    sink.lock().expect("errors").push(line);
                }
            }
        });
        Watched { page, errors, task }
    }

    /// Closes the browser (Chromium is also killed when the value is dropped).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.browser.close()).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.browser.wait()).await;
        self.handler.abort();
    }
}

/// A page and the errors it logged.
#[allow(missing_debug_implementations)]
pub struct Watched {
    pub page: Page,
    pub errors: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Watched {
    /// Opens `url` and waits (at most 15 s) until the page has drawn its data (`data-ready` on the body).
    pub async fn open(&self, url: &str) {
        self.page.goto(url).await.unwrap_or_else(|error| panic!("open {url}: {error}"));
        self.wait_ready(url).await;
        let state: String = self.eval("document.readyState").await;
        assert_eq!(state, "complete", "{url} has not finished loading");
    }

    /// Evaluates an expression; `None` if it cannot be (the page is navigating, say).
    pub async fn try_eval<T: serde::de::DeserializeOwned>(&self, expression: &str) -> Option<T> {
        let evaluation = tokio::time::timeout(Duration::from_secs(2), self.page.evaluate(expression)).await;
        evaluation.ok()?.ok()?.into_value().ok()
    }

    /// Waits for `data-ready`, failing on `data-error`.
    pub async fn wait_ready(&self, what: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while tokio::time::Instant::now() < deadline {
            let state: String = self
                .try_eval("document.body.dataset.error ? 'error:' + document.getElementById('main').textContent : (document.body.dataset.ready || '')")
                .await
                .unwrap_or_default();
            assert!(!state.starts_with("error:"), "{what} failed to load: {state}");
            if !state.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{what} did not become ready within 15 s");
    }

    /// Evaluates an expression and decodes its value.
    pub async fn eval<T: serde::de::DeserializeOwned>(&self, expression: &str) -> T {
        let result =
            self.page.evaluate(expression).await.unwrap_or_else(|error| panic!("evaluate {expression}: {error}"));
        result.into_value().unwrap_or_else(|error| panic!("decode the value of {expression}: {error}"))
    }

    /// Saves a full-page PNG screenshot as `name.png` in the artifacts directory.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let params = ScreenshotParams::builder().format(CaptureScreenshotFormat::Png).full_page(true).build();
        let png = self.page.screenshot(params).await.expect("screenshot");
        let path = artifacts_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("save the screenshot");
        path
    }

    /// Saves a PNG screenshot of what the window shows (not the whole page) as `name.png`.
    pub async fn screenshot_viewport(&self, name: &str) -> PathBuf {
        let params = ScreenshotParams::builder().format(CaptureScreenshotFormat::Png).build();
        let png = self.page.screenshot(params).await.expect("screenshot");
        let path = artifacts_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("save the screenshot");
        path
    }

    /// The errors logged so far.
    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().expect("errors").clone()
    }
}
