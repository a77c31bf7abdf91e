//! Helpers shared by integration tests.

pub mod bosun;
pub mod cases;
pub mod cli;
pub mod e2e;
pub mod engine;
pub mod local_http;
pub mod mount;
pub mod rootfs;
pub mod snapshot;
pub mod stack;

/// The folders directly under `root`, sorted; panics when `root` cannot be
/// read.
pub fn subdirs(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Copy the folder tree `from` (folders and regular files) to `to`.
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else {
            std::fs::copy(e.path(), dest)?;
        }
    }
    Ok(())
}

/// `PATH` and `HOME` of this process (with defaults when unset), the base of
/// the whole environment a child runs with.
pub fn path_and_home() -> std::collections::BTreeMap<String, String> {
    let mut env = std::collections::BTreeMap::new();
    env.insert(
        "PATH".to_string(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
    );
    env.insert(
        "HOME".to_string(),
        std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
    );
    env
}

/// Hold the machine-wide lock of the tests that deploy corpus files to the
/// local daemon: corpus files use global names (`proxy`, `traefik-public`,
/// `prometheus`) and fixed published ports, so the conformance test and the
/// reconcile corpus test (separate processes under nextest) take turns.
/// The lock is released when the returned file is dropped.
pub fn corpus_lock() -> std::fs::File {
    let path = std::env::temp_dir().join("bosun-corpus.lock");
    let lock = std::fs::File::create(&path).expect("lock file");
    if lock.try_lock().is_err() {
        println!("waiting for another corpus run ({})", path.display());
        lock.lock().expect("lock");
    }
    lock
}

/// The test image on the local daemon: Debian's static busybox imported
/// with `docker import` (no registry is reachable), once per process.
pub const BUSYBOX_IMAGE: &str = "bosun-test/busybox:1";

/// Import [`BUSYBOX_IMAGE`] into the local daemon unless it is there.
pub fn busybox_image() {
    static ONCE: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut done = ONCE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if *done {
        return;
    }
    let have = cli::docker()
        .args(["image", "inspect", BUSYBOX_IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        let path = std::path::Path::new("/bin/busybox");
        let bin = ::bosun::sandbox::image::read_busybox(path).expect("busybox-static");
        let applets = tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(::bosun::sandbox::image::applets(path))
            .expect("applets");
        let tar = ::bosun::sandbox::image::rootfs_tar(&bin, &applets);
        let host = std::env::var("DOCKER_HOST")
            .unwrap_or_else(|_| ::bosun::swarm::DEFAULT_HOST.to_string());
        rootfs::import(&host, BUSYBOX_IMAGE, &tar, &[]);
    }
    *done = true;
}
