//! Test support: serving the dashboard on loopback, and a headless Chromium that records console errors.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use probenet_dashboard::{DashboardOptions, Source, router};
#[allow(unused_imports)]
pub use probenet_testkit::chromium::*;

/// A dashboard served on 127.0.0.1; the server task ends when this is dropped.
pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// The URL of a path (with the base path included by the caller).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves the dashboard over `source` on a free loopback port.
pub async fn serve(source: Arc<dyn Source>, options: DashboardOptions) -> Server {
    let app = router(source, options).expect("valid options");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server { addr, task }
}
