//! Manifest kinds, loading and validation.
