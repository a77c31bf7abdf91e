//! Every folder under `examples/` is a complete setup from a real swarm
//! article; each must validate cleanly with the real binary.

use std::path::Path;

use super::support::{self, cli};

#[test]
fn every_example_folder_validates_with_exit_zero() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let dirs = support::subdirs(&root);
    let names: Vec<_> = dirs
        .iter()
        .filter_map(|d| d.file_name()?.to_str().map(str::to_string))
        .collect();
    for expected in [
        "enterprise",
        "homelab-ha",
        "keepalived-haproxy",
        "lab-cluster",
        "saas-testing",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "examples/{expected} is missing"
        );
    }
    for dir in &dirs {
        let cli::Run {
            code,
            stdout,
            stderr,
        } = cli::run(cli::bosun().arg("validate").arg(dir));
        assert_eq!(
            code,
            Some(0),
            "{}: stdout:\n{stdout}\nstderr:\n{stderr}",
            dir.display()
        );
        assert!(stdout.starts_with("valid: "), "{}: {stdout}", dir.display());
        assert!(!stderr.contains("error:"), "{}: {stderr}", dir.display());
    }
}
