//! Where desired state comes from: a folder on disk or a git checkout.
//!
//! A source answers two questions for the controller: *has something
//! changed?* (a trigger, a hint to run a pass soon) and *what exactly am I
//! applying?* (a revision string that status reports). Triggers are hints,
//! not the truth: the controller re-reads the whole folder on every pass and
//! also resyncs periodically, so a missed or extra trigger costs a pass, never
//! correctness.
//!
//! - [`dir`]: a folder watched recursively (inotify via `notify`), bursts of
//!   editor writes coalesced into one trigger; the revision is a content hash.
//! - [`git`]: a repository fetched with the `git` CLI (like Argo CD) and
//!   checked out detached at the resolved commit; the revision is the SHA.
//! - [`confine`]: every file a manifest names is read only when it resolves
//!   inside the source root (or a folder the operator allowed).
//! - [`webhook`]: verification of push webhooks (GitHub, GitLab, Gitea) that
//!   let a git source sync at once instead of at its next poll.

pub mod confine;
pub mod dir;
pub mod git;
pub mod webhook;

pub use confine::{Confinement, Escape};
pub use dir::DirSource;
pub use git::GitSource;
