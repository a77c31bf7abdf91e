//! The long-running controller (`bosun run`).
//!
//! For now only the single-writer [`lease`] that several instances against
//! one swarm use to agree on who applies.

pub mod lease;
