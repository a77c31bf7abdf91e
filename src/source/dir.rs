//! A folder of manifests, watched recursively.
//!
//! Editors do not write files the simple way: vim renames the original to
//! `name~`, probes the folder with a file called `4913`, writes the new file
//! and deletes the backup, all while updating `.name.swp`; others write a
//! temporary file and rename it over the target, or truncate and write. One
//! "save" is a burst of events on several paths, and a `git pull` or a
//! "save all" is a burst over many files. The controller wants one trigger
//! per burst, after the folder has settled, and none for swap files or for
//! whatever happens under `.git`.
//!
//! Two stages get there. `notify-debouncer-full` merges the raw inotify
//! events per path (rename pairs, create-then-modify) over a short window;
//! then [`DirSource::changed`] coalesces every batch that arrives until the
//! folder has been quiet for the configured debounce window, and yields one
//! [`Trigger`]. Reads (our own, when a pass loads the manifests, or
//! [`DirSource::revision`]) are `Access` events and never trigger.
//!
//! The [`revision`](DirSource::revision) of a folder is a hash of its content,
//! so status can tell which state was applied and two passes over the same
//! bytes are recognisably the same revision.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use futures::Stream;
use notify_debouncer_full::notify::{self, EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer_opt};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

/// The default quiet time after which a burst of changes becomes a trigger.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(500);

/// How deep [`revision`] follows the folder tree (symlinked folders can loop).
const MAX_DEPTH: usize = 64;

/// Errors of the folder source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The folder does not exist or cannot be resolved.
    #[error("cannot open the manifest folder {path}")]
    OpenFailed {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The watch could not be set up (e.g. the inotify watch limit,
    /// `fs.inotify.max_user_watches`, is exhausted).
    #[error("cannot watch {path}")]
    WatchFailed {
        path: PathBuf,
        #[source]
        source: notify_debouncer_full::notify::Error,
    },
    /// A file or folder could not be read while hashing the revision.
    #[error("cannot read {path}")]
    ReadFailed {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Settings of a [`DirSource`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// How long the folder must be quiet before a burst becomes a trigger.
    pub debounce: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            debounce: DEFAULT_DEBOUNCE,
        }
    }
}

impl Config {
    /// Set the debounce window (at least 10 ms is used).
    #[must_use]
    pub fn debounce(mut self, window: Duration) -> Self {
        self.debounce = window;
        self
    }
}

/// "Something under the folder changed": a hint to run a pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trigger {
    /// The changed paths, relative to the folder (for logs; may be partial).
    pub paths: BTreeSet<PathBuf>,
    /// The watcher lost events (queue overflow, watch error): anything may
    /// have changed.
    pub rescan: bool,
}

/// What the watcher thread hands to the async side.
#[derive(Debug)]
enum Signal {
    Changed(Vec<PathBuf>),
    Rescan,
}

/// A folder of manifests, watched for changes.
pub struct DirSource {
    root: PathBuf,
    config: Config,
    rx: mpsc::UnboundedReceiver<Signal>,
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
}

impl std::fmt::Debug for DirSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirSource")
            .field("root", &self.root)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl DirSource {
    /// Start watching `path` (recursively). Changes made before this returns
    /// are not reported: the controller runs a first pass anyway.
    pub fn new(path: impl AsRef<Path>, config: Config) -> Result<Self> {
        let path = path.as_ref();
        let root = fs::canonicalize(path).map_err(|source| Error::OpenFailed {
            path: path.to_path_buf(),
            source,
        })?;
        let window = config.debounce.max(Duration::from_millis(10));
        let (tx, rx) = mpsc::unbounded_channel();
        let handler_root = root.clone();
        let handler = move |result: DebounceEventResult| {
            let signal = match result {
                Ok(events) => {
                    let mut paths = Vec::new();
                    let mut rescan = false;
                    for event in &events {
                        rescan |= event.need_rescan();
                        if matches!(event.kind, EventKind::Access(_)) {
                            continue;
                        }
                        paths.extend(
                            event
                                .paths
                                .iter()
                                .filter(|p| !is_ignored(&handler_root, p))
                                .map(|p| p.strip_prefix(&handler_root).unwrap_or(p).to_path_buf()),
                        );
                    }
                    if rescan {
                        tracing::warn!(dir = %handler_root.display(), "watch lost events; rescanning");
                        Signal::Rescan
                    } else if paths.is_empty() {
                        return;
                    } else {
                        Signal::Changed(paths)
                    }
                }
                Err(errors) => {
                    for e in &errors {
                        tracing::warn!(dir = %handler_root.display(), error = %e, "watch error; rescanning");
                    }
                    Signal::Rescan
                }
            };
            // The receiver is gone only when the source was dropped.
            let _ = tx.send(signal);
        };
        // The debouncer merges per-path events (rename pairs, create +
        // modify) over a fraction of the window; `changed` does the rest.
        // Symlinks are not followed into: one pointing at `/` would watch
        // the host's whole file system (what they point at inside the root
        // is watched where it is).
        let mut debouncer = new_debouncer_opt::<_, RecommendedWatcher, RecommendedCache>(
            (window / 4).max(Duration::from_millis(5)),
            None,
            handler,
            RecommendedCache::new(),
            notify::Config::default().with_follow_symlinks(false),
        )
        .map_err(|source| Error::WatchFailed {
            path: root.clone(),
            source,
        })?;
        debouncer
            .watch(&root, RecursiveMode::Recursive)
            .map_err(|source| Error::WatchFailed {
                path: root.clone(),
                source,
            })?;
        Ok(DirSource {
            root,
            config: Config { debounce: window },
            rx,
            _debouncer: debouncer,
        })
    }

    /// The watched folder (canonical path).
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Wait for the next burst of changes to settle and return it as one
    /// trigger. `None` when the watcher has stopped.
    ///
    /// Cancel-safe between bursts: dropping the future while it waits for
    /// the first change loses nothing. Dropped mid-burst, the changes seen so
    /// far are lost, the rest of the burst still yields a trigger.
    pub async fn changed(&mut self) -> Option<Trigger> {
        let mut trigger = Trigger::default();
        trigger.add(self.rx.recv().await?);
        loop {
            match tokio::time::timeout(self.config.debounce, self.rx.recv()).await {
                Ok(Some(signal)) => trigger.add(signal),
                Ok(None) | Err(_) => return Some(trigger),
            }
        }
    }

    /// The triggers as a stream (see [`changed`](Self::changed)).
    pub fn triggers(&mut self) -> impl Stream<Item = Trigger> + Unpin + '_ {
        Box::pin(futures::stream::unfold(self, |source| async move {
            let trigger = source.changed().await?;
            Some((trigger, source))
        }))
    }

    /// The folder's content revision (see [`revision`]).
    pub fn revision(&self) -> Result<String> {
        revision(&self.root)
    }
}

impl Trigger {
    fn add(&mut self, signal: Signal) {
        match signal {
            Signal::Changed(paths) => self.paths.extend(paths),
            Signal::Rescan => self.rescan = true,
        }
    }
}

/// A hash of every file under `root` that a change would trigger on: the
/// sorted relative paths, each with its length and bytes, through SHA-256;
/// the first 12 hex digits. Hidden folders (`.git`) and editor leftovers
/// (swap, backup, lock files) are left out, as the watch ignores them.
///
/// A symlink that resolves outside the root is not followed: it counts by
/// its target's path, not by what is there (bosun reads no file outside
/// the root, and a link to `/` must not make it walk the host).
pub fn revision(root: &Path) -> Result<String> {
    let canonical = fs::canonicalize(root).map_err(|source| Error::ReadFailed {
        path: root.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    collect(root, &canonical, root, 0, &mut files)?;
    files.sort();
    let mut hash = Sha256::new();
    for (rel, outside) in &files {
        let path = root.join(rel);
        let bytes = match outside {
            Some(target) => format!("-> {}", target.display()).into_bytes(),
            None => fs::read(&path).map_err(|source| Error::ReadFailed { path, source })?,
        };
        let name: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        hash.update(name.join("/").as_bytes());
        hash.update([0]);
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    Ok(short_hex(&hash.finalize()))
}

fn short_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().take(6).fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Files below `dir` as `(path relative to root, Some(link target) for a
/// symlink that resolves outside `canonical`)`.
fn collect(
    root: &Path,
    canonical: &Path,
    dir: &Path,
    depth: usize,
    out: &mut Vec<(PathBuf, Option<PathBuf>)>,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::ReadFailed { path, source }
    };
    for entry in fs::read_dir(dir).map_err(read_err(dir))? {
        let entry = entry.map_err(read_err(dir))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Follows symlinks inside the root; a dangling link is skipped, like
        // a missing file.
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
        let outside = is_link
            && fs::canonicalize(&path).map_or(true, |target| !target.starts_with(canonical));
        if outside {
            if !is_editor_junk(&name)
                && let Ok(rel) = path.strip_prefix(root)
            {
                let target = fs::read_link(&path).map_err(read_err(&path))?;
                out.push((rel.to_path_buf(), Some(target)));
            }
        } else if meta.is_dir() {
            if !name.starts_with('.') {
                collect(root, canonical, &path, depth + 1, out)?;
            }
        } else if !is_editor_junk(&name)
            && let Ok(rel) = path.strip_prefix(root)
        {
            out.push((rel.to_path_buf(), None));
        }
    }
    Ok(())
}

/// Paths whose changes never trigger: anything inside a hidden folder
/// (`.git`, `.idea`), a hidden folder itself, and editor leftovers. Hidden
/// *files* such as `.env` do count.
fn is_ignored(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    let names: Vec<_> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy()),
            _ => None,
        })
        .collect();
    let Some((last, parents)) = names.split_last() else {
        return false;
    };
    if parents.iter().any(|n| n.starts_with('.')) {
        return true;
    }
    if last.starts_with('.') && (matches!(&**last, ".git" | ".hg" | ".svn") || path.is_dir()) {
        return true;
    }
    is_editor_junk(last)
}

/// Swap, backup, probe and lock files of common editors.
fn is_editor_junk(name: &str) -> bool {
    // vim: `.name.swp` (then .swo, .swn, … down to .swa), `.swx` probes.
    let vim_swap = name.rsplit_once('.').is_some_and(|(_, ext)| {
        ext.len() == 3
            && ext.starts_with("sw")
            && ext
                .as_bytes()
                .get(2)
                .is_some_and(|c| (b'a'..=b'p').contains(c) || *c == b'x')
    });
    // vim probes a folder's writability with `4913`, then 5036, 5159, …
    let vim_probe = name
        .parse::<u64>()
        .is_ok_and(|n| n >= 4913 && (n - 4913) % 123 == 0);
    vim_swap
        || vim_probe
        || name.ends_with('~')
        || name.starts_with(".#")
        || (name.starts_with('#') && name.ends_with('#'))
        || name.ends_with("___jb_tmp___")
        || name.ends_with("___jb_old___")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_leftovers_are_junk_and_manifests_are_not() {
        for junk in [
            ".stack.yaml.swp",
            ".stack.yaml.swo",
            ".stack.yaml.swx",
            "4913",
            "5036",
            "stack.yaml~",
            ".#stack.yaml",
            "#stack.yaml#",
            "stack.yaml___jb_tmp___",
        ] {
            assert!(is_editor_junk(junk), "{junk} should be junk");
        }
        for file in ["stack.yaml", ".env", "4914", "swarm.yml", "a.sw", "x.swz"] {
            assert!(!is_editor_junk(file), "{file} should count");
        }
    }

    #[test]
    fn changes_inside_hidden_folders_are_ignored_but_hidden_files_count() {
        let root = Path::new("/m");
        assert!(is_ignored(root, Path::new("/m/.git/index")));
        assert!(is_ignored(root, Path::new("/m/.git")));
        assert!(is_ignored(root, Path::new("/m/app/.cache/x.yaml")));
        assert!(is_ignored(root, Path::new("/m/app/.x.yaml.swp")));
        assert!(!is_ignored(root, Path::new("/m/app/.env")));
        assert!(!is_ignored(root, Path::new("/m/app/stack.yaml")));
        assert!(!is_ignored(root, Path::new("/m")));
    }
}
