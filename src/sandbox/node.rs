//! One node's daemon: start dockerd inside the node's network, UTS and mount
//! namespaces, find every process that belongs to it, kill them, and clean up
//! the mounts dockerd leaves under its data and exec roots.
//!
//! Why `nsenter --net` and not `ip netns exec`: the latter remounts `/sys`,
//! after which dockerd fails with "Devices cgroup isn't mounted". The network
//! namespace is entered first, while `/run/netns` is still the host's.
//!
//! Why a mount namespace: a swarm task that binds `/var/run/docker.sock`
//! must reach its own node's daemon, not the host's. Each dockerd runs in a
//! private mount namespace whose `/run` is a fresh tmpfs holding
//! `docker.sock` (a symlink to the node's socket, so the host and the node
//! see the same socket file) and, bound back at the same path, the sandbox's
//! directory (data, exec root, sockets, logs). Everything else dockerd,
//! containerd and the shims put under `/run` (`/run/containerd/s/…` shim
//! sockets, `/run/docker/plugins`, `/run/xtables.lock` — which only guards
//! the tables of the node's own network namespaces) stays private to the
//! node. Mounts dockerd makes (overlays, `exec/netns/*`, secrets) live in that
//! namespace only and vanish with its last process, so the host's mount table
//! never sees them. The copies of the host's mounts under `/run` and the
//! sandbox directory are dropped in the new namespace, so a node never pins
//! another node's or the host's mounts and network namespaces.
//!
//! A node's processes are found from `/proc`, not from a pid file alone:
//! dockerd, its containerd and the containerd shims all live in the node's
//! network namespace (and a container's processes descend from a shim), so
//! "every process in that namespace plus their descendants" covers a node even
//! after its dockerd was `kill -9`ed and the shims were reparented.

use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use super::{Error, Result, run_cmd};

/// Files and directories of one node under the sandbox state directory.
#[derive(Debug, Clone)]
pub struct NodePaths {
    /// `<state>/<node>`.
    pub dir: PathBuf,
}

impl NodePaths {
    /// dockerd `--data-root`.
    #[must_use]
    pub fn data_root(&self) -> PathBuf {
        self.dir.join("data")
    }
    /// dockerd `--exec-root` (containerd socket, netns mounts, shim state).
    #[must_use]
    pub fn exec_root(&self) -> PathBuf {
        self.dir.join("exec")
    }
    /// The Docker API socket of the node.
    #[must_use]
    pub fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }
    /// dockerd `--pidfile`.
    #[must_use]
    pub fn pidfile(&self) -> PathBuf {
        self.dir.join("dockerd.pid")
    }
    /// dockerd's stdout and stderr.
    #[must_use]
    pub fn log(&self) -> PathBuf {
        self.dir.join("dockerd.log")
    }
    /// Mount point where the node's private `/run` is prepared before it is
    /// moved onto `/run` (an empty directory on the host).
    #[must_use]
    pub fn run_stage(&self) -> PathBuf {
        self.dir.join("run")
    }
    /// An empty daemon.json, so the host's /etc/docker/daemon.json cannot interfere.
    #[must_use]
    pub fn config(&self) -> PathBuf {
        self.dir.join("daemon.json")
    }
}

/// The dockerd command line of a node (after the namespace wrappers).
#[must_use]
pub fn dockerd_args(paths: &NodePaths) -> Vec<String> {
    vec![
        "dockerd".into(),
        format!("--data-root={}", paths.data_root().display()),
        format!("--exec-root={}", paths.exec_root().display()),
        format!("--pidfile={}", paths.pidfile().display()),
        format!("--config-file={}", paths.config().display()),
        format!("--host=unix://{}", paths.socket().display()),
        "--iptables=false".into(),
        "--ip6tables=false".into(),
        "--bridge=none".into(),
    ]
}

/// The shell that prepares a node's mount namespace and execs dockerd; run by
/// `unshare --uts --mount --propagation private` inside the node's network
/// namespace. Arguments: hostname, sandbox directory (canonical), its path
/// relative to `/run` (empty when it lies elsewhere), staging mount point,
/// node socket, then the dockerd command line.
///
/// `mount -n`: util-linux would otherwise try to record the mounts in the
/// host's `/run/mount/utab`.
pub const NODE_INIT: &str = r#"set -e
h=$1 dir=$2 rel=$3 stage=$4 sock=$5
shift 5
hostname "$h"
mount -n -t tmpfs -o mode=755 bosun-run "$stage"
mounts=$(while read -r _ _ _ _ m _; do echo "$m"; done </proc/self/mountinfo)
for m in $mounts; do
  case $m in "$stage" | "$stage"/*) continue ;; esac
  case $stage/ in "$m"/*) continue ;; esac
  case $m in /run/* | "$dir"/*) umount -n -l "$m" 2>/dev/null || true ;; esac
done
if [ -n "$rel" ]; then
  mkdir -p "$stage/$rel"
  mount -n --bind "$dir" "$stage/$rel"
fi
mount -n --move "$stage" /run
ln -s "$sock" /run/docker.sock
exec "$@"
"#;

/// Where a node's mount namespace binds the sandbox directory back: its path
/// below `/run` when it lies there (both canonical), or `None`.
#[must_use]
pub fn run_relative(sandbox_dir: &Path, run: &Path) -> Option<PathBuf> {
    sandbox_dir
        .strip_prefix(run)
        .ok()
        .filter(|rel| !rel.as_os_str().is_empty())
        .map(Path::to_owned)
}

/// Where a node is started: its hostname, network namespace and sandbox.
#[derive(Debug, Clone, Copy)]
pub struct Spawn<'a> {
    /// UTS hostname (and so the swarm node's hostname).
    pub hostname: &'a str,
    /// Path of the node's network namespace file.
    pub netns: &'a Path,
    /// The sandbox's directory, bound into the node's private `/run`.
    pub sandbox_dir: &'a Path,
}

/// Start a node's dockerd detached from this process (callers make sure none
/// of the node's processes is left), in the network namespace at
/// `spawn.netns`, a new UTS namespace with hostname `spawn.hostname` and a
/// private mount namespace (see the module docs and [`NODE_INIT`]).
/// Returns the daemon's pid (the wrappers exec, so it is dockerd's own).
pub async fn spawn_dockerd(paths: &NodePaths, spawn: Spawn<'_>) -> Result<u32> {
    for dir in [paths.data_root(), paths.exec_root(), paths.run_stage()] {
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            action: "create directory",
            path: dir.clone(),
            source,
        })?;
    }
    write_file(&paths.config(), "{}\n")?;
    // A pidfile left by a killed daemon makes the next one refuse to start
    // when its pid has been reused.
    let _ = std::fs::remove_file(paths.pidfile());
    let _ = std::fs::remove_file(paths.socket());
    // Same for the managed containerd: dockerd probes the recorded pid with
    // kill(pid, 0), which succeeds on the zombie of a containerd killed a
    // moment ago (until init reaps it), and then waits for a socket that
    // never comes ("timeout waiting for containerd to start").
    let _ = std::fs::remove_file(paths.exec_root().join("containerd/containerd.pid"));
    let canonical = |path: &Path| {
        std::fs::canonicalize(path).map_err(|source| Error::Io {
            action: "resolve",
            path: path.to_owned(),
            source,
        })
    };
    let sandbox_dir = canonical(spawn.sandbox_dir)?;
    let rel = run_relative(&sandbox_dir, &canonical(Path::new("/run"))?).unwrap_or_default();
    let stage = canonical(&paths.run_stage())?;

    // The outer shell backgrounds the daemon and exits at once, so the daemon
    // is not our child (no zombie in a long-lived test process) and stays up
    // after the CLI exits.
    let outer = r#"log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!"#;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(outer)
        .arg("sh")
        .arg(paths.log())
        .arg("nsenter")
        .arg(format!("--net={}", spawn.netns.display()))
        .args([
            "--",
            "unshare",
            "--uts",
            "--mount",
            "--propagation",
            "private",
        ])
        .args(["--", "sh", "-c", NODE_INIT, "sh", spawn.hostname])
        .args([&sandbox_dir, &rel, &stage, &paths.socket()])
        .args(dockerd_args(paths))
        // Swarm tasks first try to pull their image from a registry (none is
        // reachable: each task would wait for a DNS timeout); with this set
        // the agent uses the local image.
        .env("DOCKER_SERVICE_PREFER_OFFLINE_IMAGE", "1")
        .env("PATH", super::preflight::search_path())
        .stdin(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(false);
    let out = cmd
        .output()
        .await
        .map_err(|source| Error::CommandSpawnFailed {
            command: "sh -c … dockerd".into(),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pid: u32 = stdout.trim().parse().map_err(|_| Error::CommandFailed {
        command: format!("start dockerd of {}", spawn.hostname),
        stderr: format!(
            "{}{}",
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    })?;
    write_file(&paths.dir.join("pid"), &format!("{pid}\n"))?;
    Ok(pid)
}

pub(crate) fn write_file(path: &Path, content: &str) -> Result<()> {
    std::fs::write(path, content).map_err(|source| Error::Io {
        action: "write",
        path: path.to_owned(),
        source,
    })
}

/// The last `n` lines of a log file (empty when unreadable).
#[must_use]
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// One row of `/proc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// State letter from `/proc/PID/stat` (`Z` for zombies).
    pub state: char,
    /// Inode of the network namespace (`None` for zombies and vanished processes).
    pub netns: Option<u64>,
    /// Command line, arguments joined by spaces.
    pub cmdline: String,
}

/// Parse `/proc/PID/stat` into (pid, state, ppid); the command name may hold
/// spaces and parentheses, so split after the last `)`.
#[must_use]
pub fn parse_stat(stat: &str) -> Option<(u32, char, u32)> {
    let pid = stat.split_whitespace().next()?.parse().ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((pid, state, parent))
}

/// Snapshot of every process on the host.
#[must_use]
pub fn processes() -> Vec<Proc> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let e = e.ok()?;
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let dir = e.path();
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            let (_, state, parent) = parse_stat(&stat)?;
            let netns = std::fs::metadata(dir.join("ns/net")).ok().map(|m| m.ino());
            let cmdline = std::fs::read(dir.join("cmdline"))
                .map(|b| {
                    String::from_utf8_lossy(&b)
                        .split('\0')
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            Some(Proc {
                pid,
                ppid: parent,
                state,
                netns,
                cmdline,
            })
        })
        .collect()
}

/// Inode of a network namespace file (as `/proc/PID/ns/net` reports it).
#[must_use]
pub fn netns_inode(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// Live processes that belong to a node or sandbox: those in one of the
/// `netns` namespaces, those whose command line mentions `dir_marker`, and all
/// their descendants. Zombies are left out (nothing to kill; their parent
/// reaps them).
#[must_use]
pub fn select(procs: &[Proc], netns: &[u64], dir_marker: &str, also: &[u32]) -> BTreeSet<u32> {
    let me = std::process::id();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for p in procs {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let mut stack: Vec<u32> = procs
        .iter()
        .filter(|p| {
            p.netns.is_some_and(|n| netns.contains(&n))
                || (is_daemon(&p.cmdline) && p.cmdline.contains(dir_marker))
                || also.contains(&p.pid)
        })
        .map(|p| p.pid)
        .collect();
    let mut found = BTreeSet::new();
    while let Some(pid) = stack.pop() {
        if found.insert(pid) {
            stack.extend(children.get(&pid).into_iter().flatten());
        }
    }
    let live: BTreeSet<u32> = procs
        .iter()
        .filter(|p| p.state != 'Z' && p.pid != me)
        .map(|p| p.pid)
        .collect();
    found.intersection(&live).copied().collect()
}

/// Whether a command line is one of the programs a node runs (so a user's
/// `tail …/dockerd.log` that mentions the state directory is never killed).
fn is_daemon(cmdline: &str) -> bool {
    let program = cmdline.split(' ').next().unwrap_or_default();
    let base = program.rsplit('/').next().unwrap_or_default();
    base.starts_with("dockerd")
        || base.starts_with("containerd")
        || base.starts_with("docker-")
        || matches!(base, "runc" | "unshare" | "nsenter")
}

/// Whether a pid is a live (non-zombie) process.
#[must_use]
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| parse_stat(&s))
        .is_some_and(|(_, state, _)| state != 'Z')
}

/// Directory where containerd shims put their sockets, named by a hash; a
/// `SIGKILL`ed shim leaves its socket there. A node's shims write into the
/// node's private `/run` (gone with its mount namespace); only shims in our
/// own mount namespace (nodes started by older versions) share the host's.
pub const SHIM_SOCKET_DIR: &str = "/run/containerd/s/";

/// Whether a process lives in the same mount namespace as this one.
#[must_use]
pub fn shares_mount_ns(pid: u32) -> bool {
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/mnt")).ok();
    ns(&pid.to_string()).is_some_and(|theirs| Some(theirs) == ns("self"))
}

/// Paths of the unix sockets a process has open, from its fds and
/// `/proc/PID/net/unix` (abstract sockets left out).
#[must_use]
pub fn socket_paths(pid: u32) -> Vec<PathBuf> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let inodes: BTreeSet<String> = fds
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy();
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/unix")).unwrap_or_default();
    unix_socket_paths(&table, &inodes)
}

/// From `/proc/net/unix` text, the paths of sockets with one of the inodes.
#[must_use]
pub fn unix_socket_paths(table: &str, inodes: &BTreeSet<String>) -> Vec<PathBuf> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (inode, path) = (fields.get(6)?, fields.get(7)?);
            (inodes.contains(*inode) && path.starts_with('/')).then(|| PathBuf::from(path))
        })
        .collect()
}

/// SIGKILL the given processes and wait until none is alive (zombies count
/// as gone); then remove the sockets the killed shims left in
/// [`SHIM_SOCKET_DIR`].
pub async fn kill_all(pids: &BTreeSet<u32>) -> Result<()> {
    if pids.is_empty() {
        return Ok(());
    }
    let shim_sockets: Vec<PathBuf> = pids
        .iter()
        .filter(|pid| shares_mount_ns(**pid))
        .flat_map(|pid| socket_paths(*pid))
        .filter(|p| p.starts_with(SHIM_SOCKET_DIR))
        .collect();
    let args: Vec<String> = ["-KILL".to_owned(), "--".to_owned()]
        .into_iter()
        .chain(pids.iter().map(u32::to_string))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Some may already be gone: kill then fails for those, which is fine.
    let _ = run_cmd("kill", &args).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        if left.is_empty() {
            for socket in &shim_sockets {
                let _ = std::fs::remove_file(socket);
            }
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::CommandFailed {
                command: "kill -KILL".into(),
                stderr: format!("processes still alive after 15s: {left:?}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Decode the octal escapes (`\040` for space) of a `/proc/self/mountinfo` path.
#[must_use]
pub fn unescape_mount_path(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points at or under `dir`, deepest (latest) first, from mountinfo text.
#[must_use]
pub fn mounts_under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split_whitespace().nth(4))
        .map(|raw| PathBuf::from(unescape_mount_path(raw)))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.reverse();
    found
}

/// Current mount points at or under `dir`.
#[must_use]
pub fn current_mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mounts_under(&info, dir)
}

/// Unmount everything under `dir` (dockerd's overlay, netns and shm mounts),
/// lazily when busy, until nothing is left or no progress is made.
pub async fn unmount_all(dir: &Path) -> Result<()> {
    for _ in 0..10 {
        let mounts = current_mounts_under(dir);
        if mounts.is_empty() {
            return Ok(());
        }
        for m in &mounts {
            let m = m.to_string_lossy();
            if run_cmd("umount", &[&m]).await.is_err() {
                let _ = run_cmd("umount", &["-l", &m]).await;
            }
        }
    }
    let left = current_mounts_under(dir);
    if left.is_empty() {
        Ok(())
    } else {
        Err(Error::CommandFailed {
            command: "umount".into(),
            stderr: format!("still mounted: {left:?}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, parent: u32, netns: u64, cmd: &str) -> Proc {
        Proc {
            pid,
            ppid: parent,
            state: 'S',
            netns: Some(netns),
            cmdline: cmd.into(),
        }
    }

    #[test]
    fn parse_stat_should_handle_odd_command_names() {
        assert_eq!(parse_stat("42 (a (b) c) S 7 42 42 0"), Some((42, 'S', 7)));
        assert_eq!(parse_stat("1 (init) Z 0 1"), Some((1, 'Z', 0)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn select_should_take_namespace_members_and_descendants() {
        let procs = vec![
            p(1, 0, 100, "init"),
            p(
                10,
                1,
                200,
                "dockerd --data-root=/run/bosun-sandbox/x/manager1/data",
            ),
            p(11, 10, 200, "containerd"),
            p(12, 1, 200, "containerd-shim-runc-v2"),
            p(13, 12, 300, "sleep 100"),
            p(20, 1, 100, "unrelated"),
            p(
                22,
                1,
                100,
                "tail -f /run/bosun-sandbox/x/manager1/dockerd.log",
            ),
            p(
                21,
                1,
                400,
                "dockerd --data-root=/run/bosun-sandbox/xy/manager1/data",
            ),
            Proc {
                state: 'Z',
                ..p(14, 12, 300, "")
            },
        ];
        let by_ns = select(&procs, &[200], "/run/bosun-sandbox/x/", &[]);
        assert_eq!(by_ns.into_iter().collect::<Vec<_>>(), vec![10, 11, 12, 13]);
        let by_dir = select(&procs, &[], "/run/bosun-sandbox/x/", &[]);
        assert_eq!(by_dir.into_iter().collect::<Vec<_>>(), vec![10, 11]);
    }

    #[test]
    fn mounts_under_should_list_deepest_first_and_decode() {
        let info = "22 1 0:20 / /run rw - tmpfs tmpfs rw\n\
            30 22 0:30 / /run/bosun-sandbox/x/manager1/data/overlay2/abc/merged rw - overlay overlay rw\n\
            31 22 0:4 / /run/bosun-sandbox/x/manager1/exec/netns/1-ab rw - nsfs nsfs rw\n\
            32 22 0:4 / /run/bosun-sandbox/xy/manager1/exec/netns/a\\040b rw - nsfs nsfs rw\n";
        let m = mounts_under(info, Path::new("/run/bosun-sandbox/x"));
        assert_eq!(
            m,
            vec![
                PathBuf::from("/run/bosun-sandbox/x/manager1/exec/netns/1-ab"),
                PathBuf::from("/run/bosun-sandbox/x/manager1/data/overlay2/abc/merged"),
            ]
        );
        assert_eq!(unescape_mount_path("a\\040b"), "a b");
    }

    #[test]
    fn unix_socket_paths_should_match_inodes() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 5001 /run/containerd/s/abc\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 5002 @abstract\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 5003 /run/other.sock\n\
            0000000000000000: 00000003 00000000 00000000 0001 03 5004\n";
        let inodes = ["5001", "5002", "5004"].map(String::from).into();
        assert_eq!(
            unix_socket_paths(table, &inodes),
            vec![PathBuf::from("/run/containerd/s/abc")]
        );
    }

    #[test]
    fn run_relative_should_bind_back_only_directories_below_run() {
        let run = Path::new("/run");
        assert_eq!(
            run_relative(Path::new("/run/bosun-sandbox/x"), run),
            Some(PathBuf::from("bosun-sandbox/x"))
        );
        assert_eq!(run_relative(Path::new("/tmp/sbx/x"), run), None);
        assert_eq!(run_relative(Path::new("/runner/x"), run), None);
        assert_eq!(run_relative(run, run), None);
    }

    #[test]
    fn dockerd_args_should_isolate_the_daemon() {
        let paths = NodePaths {
            dir: PathBuf::from("/run/bosun-sandbox/x/manager1"),
        };
        let args = dockerd_args(&paths).join(" ");
        assert!(args.contains("--host=unix:///run/bosun-sandbox/x/manager1/docker.sock"));
        assert!(args.contains("--exec-root=/run/bosun-sandbox/x/manager1/exec"));
        assert!(args.contains("--iptables=false"));
        assert!(args.contains("--bridge=none"));
    }
}
