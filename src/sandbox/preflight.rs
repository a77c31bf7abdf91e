//! What the host must provide before a sandbox can start. bosun installs
//! nothing itself; it names exactly what is missing and the Debian package
//! that provides it.

use std::fmt;
use std::path::{Path, PathBuf};

/// A tool the sandbox runs, and the Debian package that provides it.
pub const TOOLS: &[(&str, &str)] = &[
    ("dockerd", "docker.io"),
    ("ip", "iproute2"),
    ("nsenter", "util-linux"),
    ("unshare", "util-linux"),
    ("iptables", "iptables"),
    ("umount", "mount"),
    ("kill", "procps"),
    ("sh", "dash"),
    ("hostname", "hostname"),
];

/// What preflight found missing. Empty when the host is ready.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Effective uid when it is not 0.
    pub not_root: Option<u32>,
    /// Missing tools with their package.
    pub missing: Vec<(String, String)>,
}

impl Report {
    /// Whether nothing is missing.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.not_root.is_none() && self.missing.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "bosun sandbox cannot run on this host:")?;
        if let Some(uid) = self.not_root {
            writeln!(
                f,
                "  - it must run as root (effective uid is {uid}): network namespaces, \
                 bridges and iptables need it; run it with sudo"
            )?;
        }
        for (tool, package) in &self.missing {
            writeln!(f, "  - `{tool}` is not on PATH: apt-get install {package}")?;
        }
        let mut packages: Vec<&str> = Vec::new();
        for (_, package) in &self.missing {
            if !packages.contains(&package.as_str()) {
                packages.push(package);
            }
        }
        if !packages.is_empty() {
            write!(
                f,
                "install them with: apt-get install {}",
                packages.join(" ")
            )?;
        }
        Ok(())
    }
}

/// Check the host: root, and every tool of [`TOOLS`] on [`search_path`].
#[must_use]
pub fn check() -> Report {
    let dirs: Vec<PathBuf> = std::env::split_paths(&search_path()).collect();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    check_with(effective_uid(&status), |tool| {
        dirs.iter().any(|d| d.join(tool).is_file())
    })
}

/// Pure core of [`check`]: the effective uid and a tool lookup.
pub fn check_with(uid: Option<u32>, mut has_tool: impl FnMut(&str) -> bool) -> Report {
    let not_root = match uid {
        Some(0) => None,
        Some(uid) => Some(uid),
        None => Some(u32::MAX),
    };
    let missing = TOOLS
        .iter()
        .filter(|(tool, _)| !has_tool(tool))
        .map(|(t, p)| ((*t).to_owned(), (*p).to_owned()))
        .collect();
    Report { not_root, missing }
}

/// Effective uid from the text of `/proc/self/status` (`Uid: real effective saved fs`).
#[must_use]
pub fn effective_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|uid| uid.parse().ok())
}

/// `PATH` plus the sbin and bin directories it lacks: the `PATH` given to
/// every command the sandbox runs (a non-login root shell may lack sbin).
#[must_use]
pub fn search_path() -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    for extra in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        if !dirs.iter().any(|d| d == Path::new(extra)) {
            dirs.push(PathBuf::from(extra));
        }
    }
    std::env::join_paths(dirs).unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_uid_should_be_the_second_field() {
        let status = "Name:\tbash\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n";
        assert_eq!(effective_uid(status), Some(0));
        assert_eq!(effective_uid("Uid:\t0\t1000\t1000\t1000\n"), Some(1000));
        assert_eq!(effective_uid("nothing"), None);
    }

    #[test]
    fn report_should_be_ok_when_root_with_all_tools() {
        let report = check_with(Some(0), |_| true);
        assert!(report.is_ok(), "{report}");
    }

    #[test]
    fn report_should_name_each_missing_tool_and_package() {
        let report = check_with(Some(1000), |t| {
            !matches!(t, "dockerd" | "nsenter" | "unshare")
        });
        assert!(!report.is_ok());
        let text = report.to_string();
        assert!(
            text.contains("must run as root (effective uid is 1000)"),
            "{text}"
        );
        assert!(
            text.contains("`dockerd` is not on PATH: apt-get install docker.io"),
            "{text}"
        );
        assert!(
            text.contains("`nsenter` is not on PATH: apt-get install util-linux"),
            "{text}"
        );
        assert!(
            text.contains("`unshare` is not on PATH: apt-get install util-linux"),
            "{text}"
        );
        assert!(
            text.ends_with("install them with: apt-get install docker.io util-linux"),
            "{text}"
        );
        assert!(!text.contains("install iptables"), "{text}");
    }

    #[test]
    fn report_should_only_mention_root_when_tools_are_present() {
        let text = check_with(Some(1000), |_| true).to_string();
        assert!(text.contains("sudo"), "{text}");
        assert!(!text.contains("apt-get"), "{text}");
    }
}
