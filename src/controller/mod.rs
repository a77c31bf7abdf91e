//! The long-running controller (`bosun run`).
//!
//! - [`lease`]: the single-writer lease that several instances against one
//!   swarm use to agree on who applies;
//! - [`status`]: what the controller knows about its progress (`/status`);
//! - [`metrics`]: the Prometheus registry (`/metrics`);
//! - [`http`]: the endpoints that serve them, and push webhooks.

pub mod http;
pub mod lease;
pub mod metrics;
pub mod status;
