//! Helpers shared by integration tests.

pub mod bosun;
pub mod cases;
pub mod engine;
pub mod snapshot;
pub mod stack;
