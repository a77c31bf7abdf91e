//! Container images built offline from this host's own binaries.
//!
//! No registry is reachable from the tests, and `docker build` would need a
//! base image. So an image is a rootfs tar for `docker import`: each binary
//! plus every library `ldd` lists for it and the dynamic loader, at the
//! paths `ldd` names (the loader's built-in search path finds them there,
//! no `ld.so.cache` needed). The image's config comes from the run stage of
//! a Dockerfile ([`dockerfile_changes`]), so it mirrors the real image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bosun::sandbox::image::{Entry, tar};

use super::cli;

/// What one path of the rootfs holds.
enum Item {
    Dir(u32),
    File(u32, Vec<u8>),
}

/// A root file system under construction (paths relative, no leading `/`).
pub struct Rootfs {
    items: BTreeMap<String, Item>,
}

impl Default for Rootfs {
    fn default() -> Self {
        Self::new()
    }
}

impl Rootfs {
    /// The directories programs expect: `/etc`, `/root`, `/tmp`, `/var`.
    #[must_use]
    pub fn new() -> Self {
        let mut fs = Rootfs {
            items: BTreeMap::new(),
        };
        for (dir, mode) in [("etc", 0o755), ("root", 0o700), ("tmp", 0o1777)] {
            fs.items.insert(dir.into(), Item::Dir(mode));
        }
        fs.dir("var/tmp", 0o1777)
    }

    /// A directory (and its parents).
    #[must_use]
    pub fn dir(mut self, path: &str, mode: u32) -> Self {
        let path = path.trim_matches('/');
        self.parents(path);
        self.items.insert(path.into(), Item::Dir(mode));
        self
    }

    /// A regular file (and its parent directories).
    #[must_use]
    pub fn file(mut self, path: &str, mode: u32, content: Vec<u8>) -> Self {
        let path = path.trim_matches('/');
        assert!(path.len() < 100, "{path}: too long for a ustar name");
        self.parents(path);
        self.items.insert(path.into(), Item::File(mode, content));
        self
    }

    /// The executable `source` at `dest`, with the libraries and loader it
    /// needs (`ldd`) at their own paths.
    #[must_use]
    pub fn binary(mut self, source: &Path, dest: &str) -> Self {
        let content = read(source);
        for lib in ldd(source) {
            let lib_path = lib.to_str().expect("utf-8 library path").to_owned();
            self = self.file(&lib_path, 0o755, read(&lib));
        }
        self.file(dest, 0o755, content)
    }

    /// The rootfs as a ustar archive.
    #[must_use]
    pub fn tar(&self) -> Vec<u8> {
        let entries: Vec<Entry<'_>> = self
            .items
            .iter()
            .map(|(path, item)| match item {
                Item::Dir(mode) => Entry::Dir(path, *mode),
                Item::File(mode, content) => Entry::File(path, *mode, content),
            })
            .collect();
        tar(&entries)
    }

    fn parents(&mut self, path: &str) {
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            let dir = &path[..at + i];
            self.items.entry(dir.into()).or_insert(Item::Dir(0o755));
            at += i + 1;
        }
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The libraries (and the dynamic loader) `ldd` lists for `binary`; empty
/// for a static binary.
pub fn ldd(binary: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .unwrap_or_else(|e| panic!("ldd {}: {e} (is libc-bin installed?)", binary.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // "not a dynamic executable" (exit 1): nothing to add.
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not a dynamic executable")
                || text.contains("statically linked"),
            "ldd {}: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        return Vec::new();
    }
    parse_ldd(&text)
}

/// Paths in `ldd` output: `libc.so.6 => /lib/…/libc.so.6 (0x…)` and the
/// loader's `/lib64/ld-linux-x86-64.so.2 (0x…)`; the vDSO has no file, and
/// a `not found` library fails the test (the image would not run).
#[must_use]
pub fn parse_ldd(text: &str) -> Vec<PathBuf> {
    let mut libs: Vec<PathBuf> = Vec::new();
    for line in text.lines().map(str::trim) {
        assert!(!line.contains("not found"), "ldd: {line}");
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.trim(),
            None => line,
        };
        let path = path.split(" (").next().unwrap_or_default().trim();
        if path.starts_with('/') && !libs.iter().any(|l| l == Path::new(path)) {
            libs.push(PathBuf::from(path));
        }
    }
    libs
}

/// The `docker import --change` instructions of a Dockerfile's last stage
/// (the image that runs): `ENV`, `WORKDIR`, `VOLUME`, `EXPOSE`, `LABEL`,
/// `USER`, `HEALTHCHECK`, `ENTRYPOINT`, `CMD`, continuation lines joined.
/// File system instructions (`RUN`, `COPY`, `ADD`) are what the rootfs
/// replaces; `STOPSIGNAL` is left out because dockerd 20.10 refuses it as
/// an import change (`SIGTERM` is the default anyway). `base_env` stands for
/// the `ENV` of the `FROM` image, which an imported image does not inherit.
#[must_use]
pub fn dockerfile_changes(dockerfile: &str, base_env: &[&str]) -> Vec<String> {
    const KEPT: [&str; 9] = [
        "ENV",
        "WORKDIR",
        "VOLUME",
        "EXPOSE",
        "LABEL",
        "USER",
        "HEALTHCHECK",
        "ENTRYPOINT",
        "CMD",
    ];
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(part) = line.strip_suffix('\\') {
            current.push_str(part.trim_end());
            current.push(' ');
        } else {
            current.push_str(line);
            instructions.push(std::mem::take(&mut current));
        }
    }
    let last_stage = instructions
        .iter()
        .rposition(|i| i.to_ascii_uppercase().starts_with("FROM "))
        .map_or(0, |i| i + 1);
    let mut changes: Vec<String> = base_env.iter().map(|e| format!("ENV {e}")).collect();
    for instruction in &instructions[last_stage..] {
        let keyword = instruction
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        if KEPT.contains(&keyword.as_str()) {
            changes.push(instruction.clone());
        }
    }
    changes
}

/// `docker import` the tar into the daemon at `docker_host` as `tag`, with
/// the given `--change` instructions.
pub fn import(docker_host: &str, tag: &str, tar: &[u8], changes: &[String]) {
    let mut cmd = cli::docker();
    cmd.env("DOCKER_HOST", docker_host).arg("import");
    for change in changes {
        cmd.arg("--change").arg(change);
    }
    cmd.args(["-", tag])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let out = cli::feed(&mut cmd, Some(tar)).expect("docker import");
    assert!(
        out.status.success(),
        "docker import {tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
