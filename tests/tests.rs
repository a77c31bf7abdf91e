//! All integration tests build into one binary (see Cargo.toml `autotests = false`).

mod compose_corpus;
mod confine;
mod conformance;
mod deploy;
mod e2e;
mod errors;
mod examples;
mod http;
mod inswarm;
mod lease;
mod pipe;
mod plan;
mod precheck;
mod reconcile;
mod run;
mod sandbox;
mod schema;
mod source;
mod support;
mod swarm;
mod validate;
