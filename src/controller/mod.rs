//! The long-running controller (`bosun run`).
//!
//! - [`pass`]: one reconcile pass as a library function (also what
//!   `bosun reconcile --once` runs);
//! - [`lease`]: the single-writer lease that several instances against one
//!   swarm use to agree on who applies.

pub mod lease;
pub mod pass;
pub mod scheduler;

pub use pass::{PassOptions, PassOutcome, run_pass};
