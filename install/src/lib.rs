//! Deployment of the whole stack: the stack file, the install plan, the cost estimate and Kubernetes manifests.
//!
//! `stack` reads and validates the stack file against the checks config it deploys; `plan` turns it into the
//! ordered actions of a local install (or the object list of a Kubernetes one); `cost` estimates runs, series
//! and storage; `kubernetes` builds typed objects and writes them as YAML with a README.

mod located;

pub mod files;
pub mod local;

pub mod cost;
pub mod kubernetes;
pub mod layout;
pub mod plan;
pub mod stack;
pub mod yaml_out;

pub use cost::Cost;
pub use layout::Layout;
pub use plan::{Action, Plan};
pub use stack::{Loaded, Stack, load};
