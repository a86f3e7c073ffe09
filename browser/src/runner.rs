//! The browser runner: a thread that owns Chromium, one browser shared by every journey and restarted when it
//! dies, a limit on concurrent journeys, and a fresh browser context (a page in it) per run, disposed after it.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chromiumoxide_cdp::cdp::browser_protocol::browser::BrowserContextId;
use chromiumoxide_cdp::cdp::browser_protocol::page::{
    AddScriptToEvaluateOnNewDocumentParams, EventJavascriptDialogOpening, HandleJavaScriptDialogParams,
};
use chromiumoxide_cdp::cdp::browser_protocol::target::{CreateBrowserContextParams, DisposeBrowserContextParams};
use probenet_checks::browser::BrowserCheck;
use probenet_checks::outcome::{Outcome, Reason};
use probenet_checks::run::{BrowserRunner, RunContext};
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, oneshot, watch};
use tokio::time::{Instant, timeout_at};

use crate::chromium::{self, Chromium};
use crate::driver::Driver;
use crate::journey::{self, Budget};
use crate::observer::Observer;
use crate::page::Page;
use crate::report;
use probenet_checks::browser::BrowserInfo;

/// The environment variable setting how many journeys run at once in a process.
pub const ENV_CONCURRENCY: &str = "PROBENET_BROWSER_CONCURRENCY";
/// Journeys at once by default: one per core of a small 2-core prober.
pub const DEFAULT_CONCURRENCY: usize = 2;
/// The most journeys at once.
pub const MAX_CONCURRENCY: usize = 64;

/// How long closing a run's browser context may take before the browser is replaced.
const DISPOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening a page may take before the browser is deemed stuck.
const STUCK: Duration = Duration::from_secs(5);
/// How long a replaced browser may keep serving the runs that still use it.
const RETIRE_GRACE: Duration = Duration::from_secs(120);

/// How a runner finds Chromium and how many journeys it runs at once.
#[derive(Debug, Clone)]
pub struct Options {
    /// The Chromium binary; `None` finds it at each start: `PROBENET_CHROMIUM`, else `chromium`,
    /// `chromium-browser` or `google-chrome` on `PATH`.
    pub chromium: Option<PathBuf>,
    /// How many journeys run at once; more wait for a slot (within their timeout).
    pub concurrency: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self { chromium: None, concurrency: DEFAULT_CONCURRENCY }
    }
}

impl Options {
    /// The defaults, with `PROBENET_BROWSER_CONCURRENCY` (1 to 64) when set.
    pub fn from_env() -> Self {
        let mut options = Self::default();
        if let Some(text) = std::env::var_os(ENV_CONCURRENCY) {
            let text = text.to_string_lossy();
            match text.trim().parse::<usize>() {
                Ok(count) if (1..=MAX_CONCURRENCY).contains(&count) => options.concurrency = count,
                _ => eprintln!(
                    "probenet: ignoring {ENV_CONCURRENCY}={text:?}: not a number from 1 to {MAX_CONCURRENCY}; \
                     using {DEFAULT_CONCURRENCY}"
                ),
            }
        }
        options
    }
}

/// Runs browser checks in one shared headless Chromium, started at the first journey, each run in its own
/// browser context. Clones share the browser. Stopped (Chromium closed and reaped) by [`ChromiumRunner::shutdown`]
/// or when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct ChromiumRunner {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    options: Options,
    permits: Arc<Semaphore>,
    shared: Arc<Shared>,
    host: Host,
}

/// The browser and what the runner's thread does with it.
#[derive(Debug)]
struct Shared {
    /// The configured binary, if any.
    chromium: Option<PathBuf>,
    /// The shared browser; locked while one starts, so only one starts.
    slot: tokio::sync::Mutex<Option<Arc<Chromium>>>,
    /// Browsers being replaced, stopped once unused.
    retiring: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Turns true at shutdown.
    stopping: watch::Sender<bool>,
}

/// The thread that runs Chromium's connections and processes: they outlive the runtime of any one caller.
#[derive(Debug)]
struct Host {
    handle: Result<Handle, String>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ChromiumRunner {
    /// A runner with these options. Chromium starts at the first journey, not here.
    pub fn new(mut options: Options) -> Self {
        options.concurrency = options.concurrency.clamp(1, MAX_CONCURRENCY);
        let concurrency = options.concurrency;
        let shared = Arc::new(Shared {
            chromium: options.chromium.clone(),
            slot: tokio::sync::Mutex::default(),
            retiring: Mutex::default(),
            stopping: watch::channel(false).0,
        });
        let host = Host::start(shared.clone());
        Self { inner: Arc::new(Inner { options, permits: Arc::new(Semaphore::new(concurrency)), shared, host }) }
    }

    /// Starts the shared browser now rather than at the first journey (a prober may do it at start-up).
    pub async fn start(&self) -> Result<(), String> {
        self.inner.browser().await.map(drop)
    }

    /// Closes Chromium and waits until its process is reaped; later runs fail with reason
    /// `browser_unavailable`. Blocks for up to a few seconds; call it outside async code when possible.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }

    /// The process id of the current browser, if one runs.
    pub fn browser_pid(&self) -> Option<u32> {
        let slot = self.inner.shared.slot.try_lock().ok()?;
        slot.as_ref().filter(|chromium| chromium.alive()).and_then(|chromium| chromium.pid)
    }

    /// How many journeys run at once.
    pub fn concurrency(&self) -> usize {
        self.inner.options.concurrency
    }
}

impl BrowserRunner for ChromiumRunner {
    fn run<'a>(
        &'a self,
        check: &'a BrowserCheck,
        cx: &'a RunContext,
    ) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'a>> {
        Box::pin(self.inner.run(check, cx))
    }
}

impl Host {
    fn start(shared: Arc<Shared>) -> Self {
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("probenet-chromium".to_owned()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = handle_tx.send(Err(format!("cannot start the browser thread's runtime: {error}")));
                    return;
                }
            };
            let _ = handle_tx.send(Ok(runtime.handle().clone()));
            runtime.block_on(async move {
                let _ = stop_rx.await;
                let current = shared.slot.lock().await.take();
                if let Some(chromium) = current {
                    chromium.stop().await;
                }
                let tasks: Vec<_> = lock(&shared.retiring).drain(..).collect();
                for task in tasks {
                    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
                }
            });
        });
        let (handle, thread) = match thread {
            Ok(thread) => {
                let handle = handle_rx.recv().unwrap_or_else(|_| Err("the browser thread did not start".to_owned()));
                (handle, Some(thread))
            }
            Err(error) => (Err(format!("cannot start the browser thread: {error}")), None),
        };
        Self { handle, stop: Mutex::new(Some(stop_tx)), thread: Mutex::new(thread) }
    }
}

impl Inner {
    fn shutdown(&self) {
        self.permits.close();
        self.shared.stopping.send_replace(true);
        if let Some(stop) = lock(&self.host.stop).take() {
            let _ = stop.send(());
        }
        if let Some(thread) = lock(&self.host.thread).take() {
            let _ = thread.join();
        }
    }

    async fn run(&self, check: &BrowserCheck, cx: &RunContext) -> Outcome {
        let budget = Budget::new(cx.timeout());
        let stopped = || Outcome::failed(Reason::BrowserUnavailable, "the browser runner is stopped");
        let host = match &self.host.handle {
            Ok(handle) => handle.clone(),
            Err(message) => return Outcome::failed(Reason::BrowserUnavailable, message.clone()),
        };
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => return stopped(),
            Err(TryAcquireError::NoPermits) => {
                let waited = cx.timed("queue", timeout_at(budget.steps, self.permits.clone().acquire_owned())).await;
                match waited {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_)) => return stopped(),
                    Err(_) => {
                        let message = format!(
                            "all {} browser slots stayed busy for the check's timeout of {}",
                            self.options.concurrency,
                            probenet_checks::duration::format(budget.timeout)
                        );
                        return Outcome::failed(Reason::Timeout, message);
                    }
                }
            }
        };
        let started = Instant::now();
        let (chromium, launched) = match timeout_at(budget.steps, self.browser()).await {
            Ok(Ok(found)) => found,
            Ok(Err(message)) => return Outcome::failed(Reason::BrowserUnavailable, message),
            Err(_) => return Outcome::failed(Reason::Timeout, "Chromium did not start within the check's timeout"),
        };
        if launched {
            cx.phase("launch", started.elapsed());
            cx.log(format!("started {} (pid {})", chromium.version, chromium.pid.unwrap_or_default()));
            if let Some(why) = &chromium.sandbox_error {
                cx.log(format!("Chromium's sandbox is not usable here, so it runs without (--no-sandbox): {why}"));
            } else if !chromium.sandbox {
                cx.log("Chromium runs without its sandbox (--no-sandbox): probenet runs as root");
            }
        }
        let setup = Instant::now();
        let opened = timeout_at(budget.steps, cx.timed("setup", Session::open(chromium.clone(), host, permit))).await;
        let (session, mut observer) = match opened {
            Ok(Ok(opened)) => opened,
            Ok(Err(message)) => {
                let reason = if chromium.alive() { Reason::Protocol } else { Reason::BrowserUnavailable };
                return Outcome::failed(reason, format!("cannot open a page: {message}"));
            }
            Err(_) => {
                // A browser that cannot open a page in seconds is stuck: the next run starts a new one. (A
                // shorter wait may just be a run whose timeout went into starting the browser.)
                if setup.elapsed() >= STUCK {
                    chromium.mark_unhealthy();
                }
                return Outcome::failed(Reason::Timeout, "the browser did not open a page within the check's timeout");
            }
        };
        let driver = Driver { page: &session.page, chromium: &chromium };
        let journey = journey::run(check, cx, &driver, &mut observer, budget).await;
        let info = BrowserInfo { version: chromium.version.clone(), launched, sandbox: chromium.sandbox };
        report::outcome(&check.expect, journey, &observer.seen, &info)
    }

    /// The shared browser, started (or restarted, when it died) if needed; true when this call started it.
    /// The start runs on the browser's thread: when the caller gives up (its check timed out), the browser
    /// still starts, for the next run.
    async fn browser(&self) -> Result<(Arc<Chromium>, bool), String> {
        let host = self.host.handle.as_ref().map_err(Clone::clone)?;
        let found = host.spawn(self.shared.clone().ensure()).await;
        found.map_err(|error| format!("the browser thread failed: {error}"))?
    }
}

impl Shared {
    /// The shared browser, started if needed. Runs on the browser's thread.
    async fn ensure(self: Arc<Self>) -> Result<(Arc<Chromium>, bool), String> {
        let mut slot = self.slot.lock().await;
        if *self.stopping.borrow() {
            return Err("the browser runner is stopped".to_owned());
        }
        if let Some(current) = slot.as_ref().filter(|chromium| chromium.alive()) {
            return Ok((current.clone(), false));
        }
        if let Some(old) = slot.take() {
            self.retire(old);
        }
        let binary = match &self.chromium {
            Some(path) => match chromium::find_binary(|name| match name {
                chromium::ENV_BINARY => Some(path.clone().into_os_string()),
                _ => std::env::var_os(name),
            }) {
                Ok(binary) => binary,
                Err(_) => return Err(format!("{}: no such executable file", path.display())),
            },
            None => chromium::find_binary(|name| std::env::var_os(name))?,
        };
        let chromium = Arc::new(Chromium::launch(&binary).await?);
        *slot = Some(chromium.clone());
        Ok((chromium, true))
    }

    /// Stops a replaced browser once the runs still using it are done (or at shutdown).
    fn retire(&self, old: Arc<Chromium>) {
        let mut stopping = self.stopping.subscribe();
        let task = tokio::spawn(async move {
            let unused = async {
                let deadline = Instant::now() + RETIRE_GRACE;
                while Arc::strong_count(&old) > 1 && Instant::now() < deadline && !old.has_exited() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            tokio::select! {
                () = unused => {}
                _ = stopping.wait_for(|stopping| *stopping) => {}
            }
            old.stop().await;
        });
        let mut retiring = lock(&self.retiring);
        retiring.retain(|task| !task.is_finished());
        retiring.push(task);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One run's browser context and page. Dropping it closes the context on the browser's thread, then frees the
/// run's concurrency slot.
#[derive(Debug)]
struct Session {
    chromium: Arc<Chromium>,
    host: Handle,
    context: Option<BrowserContextId>,
    page: Page,
    dialogs: Option<tokio::task::JoinHandle<()>>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Session {
    async fn open(
        chromium: Arc<Chromium>,
        host: Handle,
        permit: OwnedSemaphorePermit,
    ) -> Result<(Self, Observer), String> {
        let cdp = &chromium.cdp;
        let context = cdp
            .execute(None, CreateBrowserContextParams::default())
            .await
            .map_err(|error| format!("creating a browser context: {error}"))?
            .browser_context_id;
        let page = match Page::open(cdp, &context).await {
            Ok(page) => page,
            Err(error) => {
                let _ = cdp.execute(None, DisposeBrowserContextParams::new(context)).await;
                return Err(format!("creating a page: {error}"));
            }
        };
        let mut session = Self {
            chromium: chromium.clone(),
            host,
            context: Some(context),
            page,
            dialogs: None,
            permit: Some(permit),
        };
        // Alerts, confirms and `beforeunload` prompts would block the page: accept them.
        let mut dialogs = session.page.subscribe::<EventJavascriptDialogOpening>();
        let page = session.page.clone();
        session.dialogs = Some(session.host.spawn(async move {
            while dialogs.next().await.is_some() {
                let _ = page.execute(HandleJavaScriptDialogParams::new(true)).await;
            }
        }));
        let observer = Observer::attach(&session.page);
        session.page.enable().await.map_err(|error| format!("listening to the page: {error}"))?;
        session
            .page
            .execute(AddScriptToEvaluateOnNewDocumentParams::new(crate::vitals::INIT_SCRIPT))
            .await
            .map_err(|error| format!("adding the measuring script: {error}"))?;
        Ok((session, observer))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(dialogs) = self.dialogs.take() {
            dialogs.abort();
        }
        let chromium = self.chromium.clone();
        let context = self.context.take();
        let permit = self.permit.take();
        self.host.spawn(async move {
            if let Some(context) = context
                && chromium.alive()
            {
                let dispose = chromium.cdp.execute(None, DisposeBrowserContextParams::new(context));
                if !matches!(tokio::time::timeout(DISPOSE_TIMEOUT, dispose).await, Ok(Ok(_))) {
                    chromium.mark_unhealthy();
                }
            }
            drop(permit);
        });
    }
}
