//! Synchronous callers of the database: the store interfaces are synchronous (they are called from blocking
//! threads, like SQLite), so a PostgreSQL backend runs its futures on a small runtime of its own and waits for
//! them. Safe to call from any thread, inside another runtime's async context too (it blocks that thread, like
//! any store call: async code calls stores through `spawn_blocking`).

use std::future::Future;
use std::sync::mpsc;

/// A runtime of its own for a backend's database calls.
#[derive(Debug)]
pub struct Blocking {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Blocking {
    /// A runtime with `threads` workers named `name`.
    pub fn new(name: &str, threads: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(name)
            .enable_all()
            .build()?;
        Ok(Self { runtime: Some(runtime) })
    }

    /// The runtime's handle (to build a pool on it, or spawn background tasks).
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime.as_ref().map(tokio::runtime::Runtime::handle).unwrap_or_else(|| unreachable!())
    }

    /// Runs `future` on this runtime and waits for its output.
    pub fn run<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (send, receive) = mpsc::sync_channel(1);
        self.handle().spawn(async move {
            let _ = send.send(future.await);
        });
        match receive.recv() {
            Ok(output) => output,
            // The task panicked: pass the panic on to the caller's thread.
            Err(_) => panic!("a database task panicked"),
        }
    }
}

impl Drop for Blocking {
    fn drop(&mut self) {
        // Dropping a runtime may happen inside another runtime's async context, where a blocking shutdown panics.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
