//! Deployment of the whole stack: the stack file, the install plan, the cost estimate and Kubernetes manifests.
//!
//! `stack` reads and validates the stack file against the checks config it deploys; `plan` turns it into the
//! ordered actions of a local install (or the object list of a Kubernetes one); `cost` estimates runs, series
//! and storage; `kubernetes` builds typed objects and writes them as YAML with a README. `apply` carries out a
//! local plan (`secrets` makes keys and tokens), `supervise` keeps components running without systemd, and
//! `status`, `upgrade` and `uninstall` operate an install.

pub mod apply;
pub mod files;
pub mod http;
pub mod local;
pub mod secrets;
pub mod status;
pub mod supervise;
pub mod uninstall;
pub mod upgrade;
pub mod vmbackup;

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
