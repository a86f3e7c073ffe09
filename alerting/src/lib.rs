//! Alert rules over results from many regions, their state machine, SLO burn rates and notifiers.

pub mod notification;
pub mod notify;

pub use notification::{DeliveryError, Notification, Notifier, Status};
