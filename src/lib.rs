//! bosun — a GitOps operator for Docker Swarm.
//!
//! bosun reads a folder (or a git checkout) of desired-state manifests and
//! keeps a live swarm equal to them, the way a Kubernetes controller keeps a
//! cluster equal to its objects. Pure logic (`manifest`) never touches the
//! Docker API; IO lives at the edges (`sandbox`, `cli`).

pub mod apply;
pub mod cli;
pub mod compose;
pub mod controller;
pub mod error;
pub mod manifest;
pub mod plan;
pub mod sandbox;
pub mod source;
pub mod swarm;
pub mod yaml;
