//! Mounts for tests of bad runtime conditions: a folder that cannot be
//! written (root included) and a disk that fills up. They need root, like
//! the sandbox tests, and fail (never skip) without it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mount made for one test, unmounted when dropped (even on panic).
pub struct Mount(PathBuf);

impl Mount {
    fn run(args: &[&str]) {
        let out = Command::new("mount").args(args).output().expect("mount");
        assert!(
            out.status.success(),
            "mount {args:?} (needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `dir` made read-only for everyone, root included (a bind mount).
    pub fn read_only(dir: &Path) -> Self {
        let d = dir.to_str().expect("utf-8");
        Self::run(&["--bind", d, d]);
        let m = Mount(dir.to_path_buf());
        Self::run(&["-o", "remount,bind,ro", d]);
        m
    }

    /// A tmpfs of `size` at `dir`: a disk that fills up.
    pub fn small_disk(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).expect("mkdir");
        let d = dir.to_str().expect("utf-8");
        Self::run(&["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", d]);
        Mount(dir.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
