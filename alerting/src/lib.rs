//! Alert rules over results from many regions, their state machine, SLO burn rates and notifiers.
//!
//! Not built yet: see the alerting issue.
