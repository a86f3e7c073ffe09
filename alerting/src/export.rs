//! Prometheus alerting rules equivalent to the configured ones.
