//! bosun — a GitOps operator for Docker Swarm.
//!
//! bosun reads a folder (or a git checkout) of desired-state manifests and
//! keeps a live swarm equal to them, the way a Kubernetes controller keeps a
//! cluster equal to its objects. The map of the code is
//! `docs/architecture.md`; in short:
//!
//! - source → load/validate → desired state: [`source`], [`manifest`]
//!   ([`manifest::load`]), [`compose`], [`plan::DesiredState`];
//! - observe → plan → apply → verify: [`swarm`] ([`swarm::observe`],
//!   [`swarm::Client`]), [`plan::plan`](mod@plan), [`apply::apply`](mod@apply),
//!   [`controller`] (one pass: [`controller::run_pass`]; the loop:
//!   [`controller::run`]).
//!
//! Pure (no Docker API, no clock): [`yaml`], [`compose`]'s conversion and
//! [`plan`]; [`manifest`] and [`compose`] read files only through
//! [`source::Confinement`]. IO lives at the edges: [`swarm`], [`apply`],
//! [`controller`], [`source`], [`sandbox`], [`cli`].
//!
//! The entry points a library user needs are re-exported here.

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
pub mod vip;
pub mod yaml;

pub use controller::{PassOptions, PassOutcome, RunConfig, Shutdown, run_pass};
pub use manifest::{Desired, Diagnostics, ObjectRef, load, load_confined};
pub use plan::{DesiredState, Plan};
pub use source::Confinement;
pub use swarm::{Api, Client, Snapshot};
