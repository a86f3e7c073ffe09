//! The data the dashboard reads: one trait, implemented over the store and the alert engine.

use crate::model::{
    Alerts, Artifact, CheckDetail, NotifierStatus, Overview, Probers, Range, ReloadProblem, Slo, StatusPage,
};

/// Why a source could not answer (the store is unavailable, a query failed). Shown to the user as is: keep
/// secrets out of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

impl SourceError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// What a method of [`Source`] returns.
pub type SourceResult<T> = Result<T, SourceError>;

/// Everything the dashboard shows. Methods are synchronous and may block (a SQLite query, say): the dashboard
/// calls them on tokio's blocking pool, except [`Source::version`], which must be cheap.
pub trait Source: Send + Sync + 'static {
    /// A counter that changes whenever what the pages show may have changed (a run was stored, an alert fired).
    /// Pages refetch when it changes; it must not block (an atomic load, say).
    fn version(&self) -> u64;

    /// The current time in milliseconds since the epoch: the end of the default time ranges. Tests and demos
    /// return a fixed time.
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    /// Every check against every region.
    fn overview(&self) -> SourceResult<Overview>;

    /// One check over `range`; `None` if there is no such check.
    fn check(&self, name: &str, range: Range) -> SourceResult<Option<CheckDetail>>;

    /// A stored file such as a screenshot, by the path a [`Failure`](crate::model::Failure) names; `None` if
    /// there is none. The path comes from the URL: refuse anything the store did not hand out.
    fn artifact(&self, path: &str) -> SourceResult<Option<Artifact>>;

    /// Firing alerts, their history and the notifiers (as [`Source::notifiers`]).
    fn alerts(&self) -> SourceResult<Alerts>;

    /// Every configured notifier and its last delivery (the alerts page shows them before its script runs).
    fn notifiers(&self) -> SourceResult<Vec<NotifierStatus>> {
        Ok(Vec::new())
    }

    /// The probers of every region.
    fn probers(&self) -> SourceResult<Probers>;

    /// Every service level objective.
    fn slos(&self) -> SourceResult<Vec<Slo>>;

    /// The public status page; `None` if none is configured (its path then answers 404).
    fn status_page(&self) -> SourceResult<Option<StatusPage>>;

    /// The credential asked for now, when the source keeps it up to date (a config reload may change a token);
    /// `None` leaves the one of [`DashboardOptions`](crate::DashboardOptions). Called on every protected request:
    /// it must not block.
    fn auth(&self) -> Option<crate::Auth> {
        None
    }

    /// The last config reload, when it was refused (the running config is then older than the files): the
    /// pages show a banner. `None` when the last reload applied, or there was none. Shown to anyone who may read
    /// the dashboard: keep credentials out of it. It must not block.
    fn reload_problem(&self) -> Option<ReloadProblem> {
        None
    }
}
