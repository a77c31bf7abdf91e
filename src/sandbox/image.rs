//! A tiny test image built without a registry: a rootfs tar holding Debian's
//! static busybox and one symlink per applet, `docker import`ed into a node.

use std::fmt::Write as _;
use std::path::Path;

use super::{Error, Result};

/// Where Debian's `busybox-static` installs the binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Reference of the image `bosun sandbox image` builds.
pub const IMAGE: &str = "bosun/busybox:latest";

/// Whether an ELF file is statically linked (has no `PT_INTERP` program
/// header). `None` when it is not a 64-bit little-endian ELF file.
#[must_use]
pub fn is_static_elf(bytes: &[u8]) -> Option<bool> {
    const PT_INTERP: u32 = 3;
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(bytes.get(o..o + 2)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(bytes.get(o..o + 8)?.try_into().ok()?));
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let p_type = u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
        if p_type == PT_INTERP {
            return Some(false);
        }
    }
    Some(true)
}

/// Read and check the static busybox binary.
pub fn read_busybox(path: &Path) -> Result<Vec<u8>> {
    let missing = |reason: String| Error::BusyboxMissing {
        path: path.to_owned(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| missing(e.to_string()))?;
    match is_static_elf(&bytes) {
        Some(true) => Ok(bytes),
        Some(false) => Err(missing(
            "it is dynamically linked and would not run in an empty image".into(),
        )),
        None => Err(missing("it is not a 64-bit ELF executable".into())),
    }
}

/// Applet names of a busybox binary (`busybox --list`).
pub async fn applets(path: &Path) -> Result<Vec<String>> {
    let out = tokio::process::Command::new(path)
        .arg("--list")
        .output()
        .await
        .map_err(|source| Error::CommandSpawnFailed {
            command: format!("{} --list", path.display()),
            source,
        })?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && !a.contains('/') && *a != "busybox")
        .map(str::to_owned)
        .collect())
}

/// One entry of a tar archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry<'a> {
    /// A directory with its mode.
    Dir(&'a str, u32),
    /// A regular file with its mode and content.
    File(&'a str, u32, &'a [u8]),
    /// A symbolic link and its target.
    Symlink(&'a str, &'a str),
}

/// The rootfs of the test image: busybox in /bin, a symlink per applet, and
/// the few directories programs expect.
#[must_use]
pub fn rootfs_tar(busybox: &[u8], applets: &[String]) -> Vec<u8> {
    let mut entries = vec![
        Entry::Dir("bin", 0o755),
        Entry::Dir("etc", 0o755),
        Entry::Dir("root", 0o700),
        Entry::Dir("tmp", 0o1777),
        Entry::Dir("var", 0o755),
        Entry::File("bin/busybox", 0o755, busybox),
        Entry::File(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        ),
        Entry::File("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n"),
    ];
    let links: Vec<String> = applets.iter().map(|a| format!("bin/{a}")).collect();
    entries.extend(links.iter().map(|l| Entry::Symlink(l, "busybox")));
    tar(&entries)
}

/// A ustar archive of the entries (owner root, mtime 0).
#[must_use]
pub fn tar(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        let (name, mode, kind, size, link, data): (&str, u32, u8, usize, &str, &[u8]) = match *entry
        {
            Entry::Dir(n, m) => (n, m, b'5', 0, "", &[]),
            Entry::File(n, m, d) => (n, m, b'0', d.len(), "", d),
            Entry::Symlink(n, l) => (n, 0o777, b'2', 0, l, &[]),
        };
        let mut h = [0u8; 512];
        put(&mut h[0..100], name.as_bytes());
        put_octal(&mut h[100..108], u64::from(mode));
        put_octal(&mut h[108..116], 0);
        put_octal(&mut h[116..124], 0);
        put_octal(&mut h[124..136], size as u64);
        put_octal(&mut h[136..148], 0);
        h[148..156].fill(b' ');
        h[156] = kind;
        put(&mut h[157..257], link.as_bytes());
        put(&mut h[257..263], b"ustar\0");
        put(&mut h[263..265], b"00");
        put(&mut h[265..297], b"root");
        put(&mut h[297..329], b"root");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        let mut field = String::new();
        let _ = write!(field, "{sum:06o}\0 ");
        put(&mut h[148..156], field.as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn put(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

fn put_octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    put(field, text.as_bytes());
    field[width] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_should_be_readable_by_gnu_tar() {
        let dir = tempfile::tempdir().unwrap();
        let archive = rootfs_tar(b"#!fake\n", &["sh".to_owned(), "ls".to_owned()]);
        assert_eq!(archive.len() % 512, 0);
        let path = dir.path().join("rootfs.tar");
        std::fs::write(&path, &archive).unwrap();
        let out = std::process::Command::new("tar")
            .arg("-tvf")
            .arg(&path)
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(listing.contains("bin/busybox"), "{listing}");
        assert!(listing.contains("bin/sh -> busybox"), "{listing}");
        assert!(listing.contains("drwxrwxrwt"), "{listing}");
    }

    #[test]
    fn static_elf_detection_should_see_the_interpreter() {
        let bash = std::fs::read("/bin/sh").unwrap();
        assert_eq!(is_static_elf(&bash), Some(false));
        assert_eq!(is_static_elf(b"not an elf"), None);
        if let Ok(busybox) = std::fs::read(BUSYBOX) {
            // Debian's busybox-static is static; the plain busybox package is not.
            assert!(is_static_elf(&busybox).is_some());
        }
    }
}
