//! Output into a closed pipe (`bosun plan DIR | head -1`) ends the command
//! quietly: no panic (Rust ignores SIGPIPE, so `println!` would panic on
//! EPIPE), and the command's own exit code.

use std::process::Stdio;

use super::support::{self, cli};

/// Run the binary with stdout a pipe whose read end is already closed;
/// `(exit code, stderr)`.
fn into_closed_pipe(args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = cli::bosun()
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("run bosun");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn first_example() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let dirs = support::subdirs(&root);
    dirs[0].display().to_string()
}

#[test]
fn validate_into_a_closed_pipe_exits_zero_without_a_panic() {
    let (code, stderr) = into_closed_pipe(&["validate", &first_example()]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn schema_check_into_a_closed_pipe_exits_zero_without_a_panic() {
    let (code, stderr) = into_closed_pipe(&["schema", "--check"]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(code, Some(0), "{stderr}");
}

/// `plan` only reads the local daemon; a plan of an example that is not
/// deployed has differences, so it exits 1 (or 2 if the daemon is away),
/// never 101.
#[test]
fn plan_into_a_closed_pipe_keeps_its_exit_code_without_a_panic() {
    let (code, stderr) = into_closed_pipe(&["plan", "--no-prune", &first_example()]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(code, Some(101), "{stderr}");
    assert!(matches!(code, Some(0..=2)), "{code:?}: {stderr}");
}
