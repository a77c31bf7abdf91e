//! All integration tests build into one binary (see Cargo.toml `autotests = false`).

mod examples;
mod schema;
mod swarm;
mod validate;
