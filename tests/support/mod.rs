//! Helpers shared by integration tests.

pub mod bosun;
pub mod cases;
pub mod e2e;
pub mod engine;
pub mod snapshot;
pub mod stack;

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
