//! The two programs the tests run: this build's `bosun` binary and the
//! docker CLI. Each test adds its own arguments, environment and stdio to
//! the commands made here.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Path of the `bosun` binary Cargo built for these tests.
pub const BOSUN: &str = env!("CARGO_BIN_EXE_bosun");

/// `bosun`, to be given arguments.
pub fn bosun() -> Command {
    Command::new(BOSUN)
}

/// `docker`, to be given arguments.
pub fn docker() -> Command {
    Command::new("docker")
}

/// Exit code and output of a finished command, as text.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Run `cmd` to the end, output captured; panics when it cannot start.
pub fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("run bosun");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run `cmd` with `input` on its stdin (stdin closed when `None`).
pub fn feed(cmd: &mut Command, input: Option<&[u8]>) -> std::io::Result<Output> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn()?;
    if let Some(input) = input {
        child.stdin.take().expect("piped stdin").write_all(input)?;
    }
    child.wait_with_output()
}

/// `docker ARGS`: its trimmed stdout, or its stderr when it fails.
pub fn docker_stdout(args: &[&str]) -> Result<String, String> {
    let out = docker().args(args).output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// [`docker_stdout`] that must succeed, tried up to four times a second
/// apart (others write the same node and daemon: "update out of sequence").
pub fn docker_retried(args: &[&str]) -> String {
    let mut last = String::new();
    for _ in 0..4 {
        match docker_stdout(args) {
            Ok(stdout) => return stdout,
            Err(stderr) => last = stderr,
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!("docker {args:?}: {last}");
}

/// `docker ARGS` with `input` on its stdin, which must succeed.
pub fn docker_stdin(args: &[&str], input: &[u8]) {
    let out = feed(docker().args(args).stdout(Stdio::null()), Some(input)).expect("docker");
    assert!(out.status.success(), "docker {args:?}");
}

/// `docker` against the node at `host`, killed when dropped.
pub fn docker_at(host: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("docker");
    cmd.env("DOCKER_HOST", host).kill_on_drop(true);
    cmd
}

/// `docker ARGS` against the node at `host`, with `env` on top.
pub async fn docker_env(host: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    docker_at(host)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap_or_else(|e| panic!("docker {}: {e}", args.join(" ")))
}

/// `docker ARGS` against `host` that must succeed; its trimmed stdout.
pub async fn docker_on(host: &str, args: &[&str]) -> String {
    let out = docker_env(host, args, &[]).await;
    assert!(
        out.status.success(),
        "docker {} exited {:?}: {}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
