//! The CLI's one error path: an error is printed once, as `error: ` and
//! its context, each cause once after it, and exits 2. Needs no daemon:
//! the daemon addresses below answer nothing.

use super::support::cli;

/// Run bosun with `DOCKER_HOST`; (exit code, stderr).
fn bosun(docker_host: &str, args: &[&str]) -> (Option<i32>, String) {
    let run = cli::run(
        cli::bosun()
            .args(args)
            .env("DOCKER_HOST", docker_host)
            .env("NO_COLOR", "1"),
    );
    (run.code, run.stderr)
}

/// The stderr of a failed command: one `error:` line, the OS error once.
fn assert_once(stderr: &str, context: &str, os_error: &str) {
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line:\n{stderr}");
    assert!(errors[0].contains(context), "{context:?} in:\n{stderr}");
    assert_eq!(
        stderr.matches(os_error).count(),
        1,
        "{os_error:?} printed once:\n{stderr}"
    );
}

fn manifests() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("net.yaml"),
        "apiVersion: bosun.dev/v1alpha1\nkind: Network\nmetadata: {name: edge}\nspec: {}\n",
    )
    .expect("write");
    dir
}

#[test]
fn a_missing_folder_is_printed_once() {
    let gone = tempfile::tempdir().expect("tempdir");
    let missing = gone.path().join("manifests");
    let socket = format!("unix://{}/docker.sock", gone.path().display());
    let (code, stderr) = bosun(
        &socket,
        &[
            "run",
            "--dir",
            missing.to_str().expect("utf-8"),
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_once(
        &stderr,
        &format!("cannot open the manifest folder {}", missing.display()),
        "No such file or directory (os error 2)",
    );
}

#[test]
fn an_absent_daemon_socket_is_printed_once() {
    let dir = manifests();
    let empty = tempfile::tempdir().expect("tempdir");
    let socket = format!("unix://{}/docker.sock", empty.path().display());
    for command in [&["plan"][..], &["reconcile", "--once"][..]] {
        let mut args = command.to_vec();
        args.push(dir.path().to_str().expect("utf-8"));
        let (code, stderr) = bosun(&socket, &args);
        assert_eq!(code, Some(2), "{command:?}: {stderr}");
        assert_once(
            &stderr,
            &format!("cannot reach the Docker daemon at {socket}"),
            "No such file or directory (os error 2)",
        );
    }
}

/// Port 1 of the loopback: nothing listens there, the connection is refused.
#[test]
fn a_refused_connection_is_printed_once() {
    let dir = manifests();
    let (code, stderr) = bosun(
        "tcp://127.0.0.1:1",
        &["plan", dir.path().to_str().expect("utf-8")],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_once(
        &stderr,
        "cannot reach the Docker daemon at tcp://127.0.0.1:1",
        "Connection refused (os error 111)",
    );
}
