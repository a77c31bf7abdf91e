//! All integration tests build into one binary (see Cargo.toml `autotests = false`).

mod compose_corpus;
mod examples;
mod plan;
mod schema;
mod validate;
