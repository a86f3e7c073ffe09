//! Alert rules over results from many regions, their state machine, SLO burn rates and notifiers.

pub mod clock;
pub mod engine;
pub mod error;
pub mod export;
pub mod impairment;
mod instance;
pub mod ledger;
pub mod notification;
pub mod notify;
mod quorum;
pub mod rules;
pub mod silence;
pub mod slo;
pub mod state;

pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{AlertView, Engine, Options, Outgoing, REGION_IMPAIRED};
pub use error::AlertError;
pub use impairment::Impairment;
pub use instance::Phase;
pub use notification::{DeliveryError, Notification, Notifier, Status};
pub use rules::Rules;
pub use silence::{Matchers, Silence};
pub use slo::SloView;
pub use state::{AlertState, HistoryEntry, Pending, PostgresState, SqliteState};
