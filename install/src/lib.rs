//! Deployment of the whole stack (local and Kubernetes), its certificates, tokens and upgrades.
//!
//! Not built yet: see the installer issue.
