//! Helpers shared by integration tests.

pub mod bosun;
pub mod cases;
pub mod e2e;
pub mod engine;
pub mod snapshot;
pub mod stack;
