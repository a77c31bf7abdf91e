//! Reads confined to the source root.
//!
//! A manifest folder is untrusted input: a git repository with many
//! committers, a folder a CI job writes. Every file bosun reads because a
//! manifest or a compose file names it (the manifest files themselves,
//! compose files, env files, config and secret contents, VRRP password
//! files) ends up in the swarm, so a `file: /etc/shadow`, a
//! `../../elsewhere/key` or a committed symlink to an SSH key would publish
//! a host file to every node. Argo CD had this hole (CVE-2022-24348) and
//! confines every read to the repository root; so does bosun.
//!
//! A path is inside when, after following every symlink and `..`
//! ([`std::fs::canonicalize`]), it lies below the canonical root or below
//! one of the folders the operator allowed (`--allow-path`). Validation
//! checks every named file, so a revision with one escape is refused as a
//! whole; readers check again right before they read, and read the
//! resolved path, so a file swapped for a symlink in between is caught too.
//! Every reader goes through [`Confinement::check`]: a new reader has one
//! place to call.

use std::io;
use std::path::{Path, PathBuf};

/// Where bosun may read: below `root` or below any of `allowed`, all
/// canonical.
///
/// The default confinement allows nothing (a [`Desired`] built by hand
/// reads no file).
///
/// [`Desired`]: crate::manifest::Desired
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confinement {
    root: PathBuf,
    allowed: Vec<PathBuf>,
}

/// A path bosun will not read.
#[derive(Debug, thiserror::Error)]
pub enum Escape {
    /// The path resolves outside the root and every allowed folder.
    #[error(
        "resolves to {}, outside the source root {} (bosun reads only files inside it; allow more with --allow-path)",
        resolved.display(),
        root.display()
    )]
    Outside { resolved: PathBuf, root: PathBuf },
    /// The path does not resolve (missing, a dangling symlink, no access)
    /// and would lie inside if it did.
    #[error(transparent)]
    Unresolved { source: io::Error },
}

impl Confinement {
    /// Reads confined to `root`. The root is made absolute and canonical;
    /// one that does not resolve is kept as given, so that nothing resolves
    /// inside it.
    #[must_use]
    pub fn new(root: impl AsRef<Path>) -> Self {
        Confinement {
            root: canonical_dir(root.as_ref()),
            allowed: Vec::new(),
        }
    }

    /// Also allow reads below each of `dirs` (canonicalized like the root;
    /// empty entries are skipped).
    #[must_use]
    pub fn allow<P: AsRef<Path>>(mut self, dirs: impl IntoIterator<Item = P>) -> Self {
        self.allowed.extend(
            dirs.into_iter()
                .filter(|d| !d.as_ref().as_os_str().is_empty())
                .map(|d| canonical_dir(d.as_ref())),
        );
        self
    }

    /// The canonical source root.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folders allowed besides the root, canonical.
    #[must_use]
    pub fn allowed(&self) -> &[PathBuf] {
        &self.allowed
    }

    /// Resolve `path` (symlinks and `..` followed) and return the resolved
    /// path when it lies inside; read that path, not `path`.
    ///
    /// A missing path is [`Escape::Outside`] too when its nearest existing
    /// parent resolves outside: whether a file exists outside the root is
    /// none of a manifest's business.
    pub fn check(&self, path: &Path) -> Result<PathBuf, Escape> {
        match std::fs::canonicalize(path) {
            Ok(resolved) if self.contains(&resolved) => Ok(resolved),
            Ok(resolved) => Err(self.outside(resolved)),
            Err(source) => match nearest_existing(path) {
                Some(guess) if !self.contains(&guess) => Err(self.outside(guess)),
                _ => Err(Escape::Unresolved { source }),
            },
        }
    }

    fn contains(&self, resolved: &Path) -> bool {
        std::iter::once(&self.root)
            .chain(&self.allowed)
            .any(|dir| !dir.as_os_str().is_empty() && resolved.starts_with(dir))
    }

    fn outside(&self, resolved: PathBuf) -> Escape {
        Escape::Outside {
            resolved,
            root: self.root.clone(),
        }
    }
}

/// `dir` absolute and canonical, or absolute and lexically normalized when
/// it does not resolve.
fn canonical_dir(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| {
        std::path::absolute(dir)
            .map(|abs| crate::manifest::normalize(&abs))
            .unwrap_or_default()
    })
}

/// Where a missing `path` would be: its nearest existing ancestor,
/// canonical, joined with the rest (normalized lexically).
fn nearest_existing(path: &Path) -> Option<PathBuf> {
    let path = crate::manifest::normalize(&std::path::absolute(path).ok()?);
    let mut rest = Vec::new();
    let mut at = path.as_path();
    loop {
        if let Ok(base) = std::fs::canonicalize(at) {
            return Some(rest.iter().rev().fold(base, |p: PathBuf, c| p.join(c)));
        }
        rest.push(at.file_name()?.to_os_string());
        at = at.parent()?;
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn tree() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("outside.txt"), "x").unwrap();
        (dir, root)
    }

    #[test]
    fn a_file_below_the_root_resolves_to_its_canonical_path() {
        let (_dir, root) = tree();
        let c = Confinement::new(&root);
        let got = c.check(&root.join("sub/../sub/a.txt")).unwrap();
        assert_eq!(got, root.canonicalize().unwrap().join("sub/a.txt"));
    }

    #[test]
    fn absolute_paths_and_parent_traversal_out_of_the_root_are_outside() {
        let (_dir, root) = tree();
        let c = Confinement::new(&root);
        for p in [
            PathBuf::from("/etc/hostname"),
            root.join("../outside.txt"),
            root.join("sub/../../outside.txt"),
        ] {
            let e = c.check(&p).unwrap_err();
            assert!(matches!(e, Escape::Outside { .. }), "{}: {e}", p.display());
        }
    }

    #[test]
    fn symlinks_are_followed_before_the_comparison() {
        let (dir, root) = tree();
        symlink(dir.path().join("outside.txt"), root.join("out")).unwrap();
        symlink(dir.path(), root.join("up")).unwrap();
        symlink("sub/a.txt", root.join("in")).unwrap();
        let c = Confinement::new(&root);
        assert!(matches!(
            c.check(&root.join("out")),
            Err(Escape::Outside { .. })
        ));
        assert!(matches!(
            c.check(&root.join("up/outside.txt")),
            Err(Escape::Outside { .. })
        ));
        assert!(c.check(&root.join("in")).is_ok());
    }

    #[test]
    fn a_missing_file_outside_is_outside_and_one_inside_is_unresolved() {
        let (_dir, root) = tree();
        let c = Confinement::new(&root);
        assert!(matches!(
            c.check(Path::new("/etc/no-such-file-here")),
            Err(Escape::Outside { .. })
        ));
        assert!(matches!(
            c.check(&root.join("sub/missing")),
            Err(Escape::Unresolved { .. })
        ));
    }

    #[test]
    fn allowed_folders_are_inside_too() {
        let (dir, root) = tree();
        let c = Confinement::new(&root).allow([dir.path()]);
        assert!(c.check(&dir.path().join("outside.txt")).is_ok());
        assert!(c.check(Path::new("/etc/hostname")).is_err());
    }

    #[test]
    fn the_default_confinement_allows_nothing() {
        let (_dir, root) = tree();
        assert!(
            Confinement::default()
                .check(&root.join("sub/a.txt"))
                .is_err()
        );
    }

    #[test]
    fn the_message_names_where_it_resolved_and_the_root() {
        let (_dir, root) = tree();
        let c = Confinement::new(&root);
        let e = c.check(Path::new("/etc/hostname")).unwrap_err().to_string();
        let root = root.canonicalize().unwrap();
        assert_eq!(
            e,
            format!(
                "resolves to /etc/hostname, outside the source root {} (bosun reads only files inside it; allow more with --allow-path)",
                root.display()
            )
        );
    }
}
