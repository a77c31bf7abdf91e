//! The long-running controller (`bosun run`).
//!
//! - [`pass`]: one reconcile pass as a library function (also what
//!   `bosun reconcile --once` runs);
//! - [`scheduler`]: when passes run (coalescing, resync, backoff, shutdown);
//! - [`runner`]: the loop itself ([`run`]), wiring sources, Docker
//!   [`events`], the lease and the HTTP server to the scheduler;
//! - [`rollouts`]: stack rollouts watched beside the loop (a pass of
//!   `bosun run` never waits for one);
//! - [`lease`]: the single-writer lease that several instances against one
//!   swarm use to agree on who applies;
//! - [`status`]: what the controller knows about its progress (`/status`);
//! - [`metrics`]: the Prometheus registry (`/metrics`);
//! - [`http`]: the endpoints that serve them, and push webhooks.

pub mod events;
pub mod http;
pub mod lease;
pub mod metrics;
pub mod pass;
pub mod rollouts;
pub mod runner;
pub mod scheduler;
pub mod status;

pub use pass::{PassOptions, PassOutcome, run_pass};
pub use runner::{RunConfig, Shutdown, Source, run};
