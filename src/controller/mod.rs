//! The long-running controller (`bosun run`).
//!
//! - [`lease`]: the single-writer lease that several instances against one
//!   swarm use to agree on who applies;
//! - [`status`]: what the controller knows about its progress (`/status`);
//! - [`metrics`]: the Prometheus registry (`/metrics`).

pub mod lease;
pub mod metrics;
pub mod status;
