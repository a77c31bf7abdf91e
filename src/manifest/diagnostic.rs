//! Diagnostics: what is wrong (or doubtful) in a set of manifests, and where.
//!
//! One line per diagnostic, in the format editors and CI logs understand:
//!
//! ```text
//! cluster/vip.yaml:12:5: error: VipPolicy/ingress: spec.virtualRouterId: must be between 1 and 255, got 256
//! ```

use std::fmt;

use crate::yaml::{Path, Pos};

/// How bad a diagnostic is. Warnings never make a set invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One finding, with everything needed to point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The file as the user names it (the folder given on the command line
    /// joined with the path below it, or a path as written in a manifest).
    pub file: String,
    /// Where in the file, when the finding has a place (missing directories
    /// and unreadable files have none).
    pub pos: Option<Pos>,
    /// The object concerned, as `Kind/name`, when known.
    pub object: Option<String>,
    /// The field path inside the object (`spec.ipam.config[0].subnet`).
    pub path: Option<Path>,
    pub message: String,
}

impl Diagnostic {
    /// An error in `file` with no position yet.
    #[must_use]
    pub fn error(file: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: file.into(),
            pos: None,
            object: None,
            path: None,
            message: message.into(),
        }
    }

    /// A warning in `file` with no position yet.
    #[must_use]
    pub fn warning(file: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, message)
        }
    }

    /// This diagnostic at `pos`.
    #[must_use]
    pub fn at(mut self, pos: Pos) -> Self {
        self.pos = Some(pos);
        self
    }

    /// This diagnostic about `object` (`Kind/name`).
    #[must_use]
    pub fn object(mut self, object: impl Into<String>) -> Self {
        self.object = Some(object.into());
        self
    }

    /// This diagnostic about the field at `path`.
    #[must_use]
    pub fn path(mut self, path: Path) -> Self {
        self.path = (!path.is_empty()).then_some(path);
        self
    }

    /// Whether this is an error (not a warning).
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    fn sort_key(&self) -> (&str, Option<Pos>) {
        (&self.file, self.pos)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(pos) = self.pos {
            write!(f, ":{}:{}", pos.line, pos.column)?;
        }
        write!(f, ": {}: ", self.severity)?;
        if let Some(object) = &self.object {
            write!(f, "{object}: ")?;
        }
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every finding of one load, errors and warnings, sorted by file and position.
///
/// Returned as the error of [`load`](super::load) when at least one finding is
/// an error; displays one diagnostic per line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// The findings that are errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }

    /// The findings that are warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| !d.is_error())
    }

    /// Whether any finding is an error.
    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    /// Sort by file, then position (stable: equal places keep detection order)
    /// and drop exact duplicates.
    pub(crate) fn sort(&mut self) {
        self.0.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        self.0.dedup();
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
