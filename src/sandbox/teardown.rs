//! Removing a sandbox without trusting its state: everything is found again
//! from the sandbox name (namespaces, links, rules, processes, mounts).

use std::path::Path;

use super::{Error, Result, mkdir, net, node, run_cmd_output};

/// Remove every trace of sandbox `name` under `root`: kill its processes
/// (by network namespace, by command line mentioning its directory, by
/// recorded pid, and their descendants), unmount everything under its
/// directory, delete namespaces, veths, bridge and iptables rules, then the
/// directory and its subnet claim. Works without a state file and is
/// idempotent; fails with [`Error::CleanupIncomplete`] listing what survived.
pub async fn teardown(root: &Path, name: &str) -> Result<()> {
    net::validate_name(name)?;
    let dir = root.join(name);
    let marker = format!("{}/", dir.display());
    for _ in 0..5 {
        let netns: Vec<u64> = net::sandbox_netns(name)
            .iter()
            .filter_map(|ns| node::netns_inode(&net::netns_path(ns)))
            .collect();
        let recorded = recorded_pids(&dir);
        let pids = node::select(&node::processes(), &netns, &marker, &recorded);
        if pids.is_empty() {
            break;
        }
        tracing::info!(sandbox = name, ?pids, "killing");
        node::kill_all(&pids).await?;
    }
    node::unmount_all(&dir).await?;
    net::teardown(name).await?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|source| Error::Io {
            action: "remove",
            path: dir.clone(),
            source,
        })?;
    }
    release_subnet(root, name);
    let left = leftovers(root, name).await;
    if left.is_empty() {
        Ok(())
    } else {
        Err(Error::CleanupIncomplete {
            name: name.to_owned(),
            leftovers: left,
        })
    }
}

/// Everything of sandbox `name` that exists on the host now: processes,
/// namespaces, mounts, links, iptables rules, state directory. Empty after a
/// successful `down`.
pub async fn leftovers(root: &Path, name: &str) -> Vec<String> {
    let dir = root.join(name);
    let marker = format!("{}/", dir.display());
    let netns_names = net::sandbox_netns(name);
    let netns: Vec<u64> = netns_names
        .iter()
        .filter_map(|ns| node::netns_inode(&net::netns_path(ns)))
        .collect();
    let mut left: Vec<String> = node::select(&node::processes(), &netns, &marker, &[])
        .into_iter()
        .map(|pid| format!("process {pid}"))
        .collect();
    left.extend(netns_names.into_iter().map(|ns| format!("netns {ns}")));
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    left.extend(
        node::mounts_under(&info, &dir)
            .into_iter()
            .map(|m| format!("mount {}", m.display())),
    );
    match net::sandbox_links(name).await {
        Ok(links) => left.extend(links.into_iter().map(|l| format!("link {l}"))),
        Err(err) => left.push(format!("links unknown: {err}")),
    }
    match net::sandbox_rules(name).await {
        Ok(rules) => left.extend(
            rules
                .into_iter()
                .map(|r| format!("iptables rule {}", r[1..].join(" "))),
        ),
        Err(err) => left.push(format!("iptables unknown: {err}")),
    }
    if dir.exists() {
        left.push(format!("directory {}", dir.display()));
    }
    left
}

/// Claim a free /24: the first candidate that no route on the host uses and
/// whose claim file can be created exclusively (safe against parallel `up`s).
pub(crate) async fn claim_subnet(root: &Path, name: &str) -> Result<u8> {
    let claims = root.join(".subnets");
    mkdir(&claims)?;
    let routes = run_cmd_output("ip", &["-4", "route", "show", "table", "all"]).await?;
    for octet in net::octet_candidates(name) {
        if net::octet_in_use(octet, &routes) {
            continue;
        }
        let path = claims.join(octet.to_string());
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                use std::io::Write as _;
                file.write_all(name.as_bytes())
                    .map_err(|source| Error::Io {
                        action: "write",
                        path: path.clone(),
                        source,
                    })?;
                return Ok(octet);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(Error::Io {
                    action: "create",
                    path,
                    source,
                });
            }
        }
    }
    Err(Error::NoFreeSubnet)
}

fn release_subnet(root: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(root.join(".subnets")) else {
        return;
    };
    for entry in entries.flatten() {
        if std::fs::read_to_string(entry.path()).is_ok_and(|owner| owner == name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

pub(crate) fn read_pid(node_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(node_dir.join("pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn recorded_pids(dir: &Path) -> Vec<u32> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| read_pid(&e.path()))
                .collect()
        })
        .unwrap_or_default()
}
