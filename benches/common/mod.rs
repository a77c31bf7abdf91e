//! What the benches share: a fresh 1-node sandbox of their own, removed at
//! the end (also on panic), so that nothing else disturbs its daemon.

use std::path::Path;

use bosun::sandbox::{self, Config, Sandbox};

/// Removes the sandbox it names when dropped, also on panic.
pub struct Teardown(&'static str);

impl Drop for Teardown {
    fn drop(&mut self) {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let root = Path::new(sandbox::DEFAULT_ROOT);
        if let Err(e) = rt.block_on(sandbox::teardown(root, self.0)) {
            eprintln!("teardown of sandbox {}: {e}", self.0);
        }
    }
}

/// Remove a leftover sandbox `name` (a bench that was killed), then return
/// the guard that removes the one [`up`] starts.
pub fn guard(rt: &tokio::runtime::Runtime, name: &'static str) -> Teardown {
    let root = Path::new(sandbox::DEFAULT_ROOT);
    if root.join(name).exists() {
        rt.block_on(sandbox::teardown(root, name))
            .unwrap_or_else(|e| panic!("remove a leftover {name} sandbox: {e}"));
    }
    Teardown(name)
}

/// Start the 1-manager sandbox `name` with the busybox test image.
pub async fn up(name: &str) -> Sandbox {
    let sandbox = Sandbox::up(Config::new(name).managers(1))
        .await
        .expect("sandbox up (root needed)");
    sandbox.build_image().await.expect("test image");
    sandbox
}
