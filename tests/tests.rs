//! All integration tests build into one binary (see Cargo.toml `autotests = false`).

mod compose_corpus;
mod conformance;
mod e2e;
mod examples;
mod plan;
mod reconcile;
mod sandbox;
mod schema;
mod support;
mod swarm;
mod validate;
