//! `bosun validate DIR`: load and check every manifest under a folder.
//!
//! Exit codes: 0 valid (warnings are printed but do not fail), 2 invalid.
//! Diagnostics go to stderr, one per line (`file:line:col: error: Kind/name:
//! field.path: message`); the summary of a valid folder goes to stdout.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Error, Exit};
use crate::manifest;
use crate::source::Confinement;

/// Arguments of `bosun validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder of manifests (searched recursively; hidden folders skipped).
    pub dir: PathBuf,
}

/// Run `bosun validate`; files are read inside the folder and below `allow`.
pub fn run(args: &Args, allow: &[PathBuf]) -> super::Result {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let confine = Confinement::new(&args.dir).allow(allow);
    match manifest::load_confined(&args.dir, &env, &confine) {
        Ok(desired) => {
            for warning in &desired.warnings {
                crate::errln!("{warning}")?;
            }
            let warnings = match desired.warnings.len() {
                0 => String::new(),
                1 => ", 1 warning".into(),
                n => format!(", {n} warnings"),
            };
            crate::outln!("valid: {}{warnings}", desired.summary())?;
            Ok(Exit::Success)
        }
        Err(diagnostics) => {
            let errors = diagnostics.errors().count();
            let warnings = diagnostics.warnings().count();
            Err(Error::Invalid(format!(
                "{diagnostics}\ninvalid: {errors} error{}, {warnings} warning{}",
                if errors == 1 { "" } else { "s" },
                if warnings == 1 { "" } else { "s" }
            )))
        }
    }
}
