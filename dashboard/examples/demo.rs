//! Serves the dashboard over the seeded demo source: `cargo run -p probenet-dashboard --example demo -- [PORT]
//! [CHECKS] [TOKEN]` (a token turns token auth on; the status page stays public).

use std::sync::Arc;

use probenet_dashboard::demo::{DemoOptions, DemoSource};
use probenet_dashboard::{Auth, DashboardOptions, router};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port: u16 = args.first().map(|port| port.parse()).transpose()?.unwrap_or(8080);
    let checks: usize = args.get(1).map(|count| count.parse()).transpose()?.unwrap_or(40);
    let auth = args.get(2).map(|token| Auth::Token(token.clone()));
    let source = Arc::new(DemoSource::new(DemoOptions { checks, ..DemoOptions::default() }));
    let app = router(source, DashboardOptions { auth, ..DashboardOptions::default() })?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("dashboard on http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
