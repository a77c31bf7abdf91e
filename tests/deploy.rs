//! The deployment files in `deploy/`: the stack file is accepted by the
//! docker CLI (`docker stack config`) and by bosun's own compose loader and
//! converter, in both its forms (bind-mounted folder, and the commented git
//! alternative); the Dockerfile and systemd unit say what the docs promise.
//!
//! Needs the docker CLI on PATH (as the conformance tests do); no daemon.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use bosun::compose::{self, LoadOptions};
use serde_json::Value;

use super::support::cli;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(deploy_dir().join(name)).unwrap()
}

/// The stack file with its commented git alternative switched on: the
/// `--dir` command is dropped and the commented `command:`/`secrets:` blocks
/// are uncommented (explanatory comments stay comments).
fn git_variant(stack: &str) -> String {
    let uncomment = ["command:", "  - ", "secrets:", "  bosun_", "    external:"];
    let mut out = String::new();
    for line in stack.lines() {
        let indent = line.len() - line.trim_start().len();
        let body = line.trim_start();
        if body.starts_with("command: [\"run\", \"--dir\"") {
            continue;
        }
        if let Some(rest) = body.strip_prefix("# ")
            && uncomment.iter().any(|p| rest.starts_with(p))
        {
            out.push_str(&line[..indent]);
            out.push_str(rest);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// `docker stack config` on `text` (written next to the original, so that
/// relative paths would resolve the same way).
fn docker_stack_config(text: &str) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bosun-stack.yml");
    std::fs::write(&file, text).unwrap();
    let out = cli::docker()
        .args(["stack", "config", "-c"])
        .arg(&file)
        .env_remove("BOSUN_IMAGE")
        .env_remove("BOSUN_MANIFESTS")
        .output()
        .map_err(|e| format!("cannot run the docker CLI ({e}); it must be on PATH"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// bosun's conversion of `text` as stack `bosun`: the one service, as JSON.
fn bosun_service(text: &str) -> Value {
    let opts = LoadOptions::new(deploy_dir()).env(BTreeMap::new());
    let project = compose::load_str("bosun-stack.yml", text, &opts)
        .unwrap_or_else(|e| panic!("bosun rejects deploy/bosun-stack.yml: {e}"));
    let objects = compose::convert(&project, "bosun")
        .unwrap_or_else(|e| panic!("bosun cannot convert deploy/bosun-stack.yml: {e}"));
    assert_eq!(objects.services.len(), 1);
    serde_json::to_value(&objects.services[0]).unwrap()
}

#[test]
fn stack_file_is_accepted_by_docker_stack_config() {
    let config = docker_stack_config(&read("bosun-stack.yml")).unwrap();
    assert!(config.contains("node.role == manager"), "{config}");
    assert!(config.contains("image: bosun:latest"), "{config}");
    assert!(config.contains("source: /etc/bosun/cluster"), "{config}");
}

#[test]
fn stack_file_git_alternative_is_accepted_by_docker_stack_config() {
    let stack = read("bosun-stack.yml");
    let git = git_variant(&stack);
    assert_ne!(git, stack);
    let config = docker_stack_config(&git).unwrap_or_else(|e| panic!("{e}\n---\n{git}"));
    assert!(config.contains("--git=https://"), "{config}");
    assert!(config.contains("bosun_webhook_secret"), "{config}");
    assert!(!config.contains("--dir"), "{config}");
}

#[test]
fn stack_file_is_accepted_by_bosuns_compose_loader_and_converter() {
    let spec = bosun_service(&read("bosun-stack.yml"));
    assert_eq!(spec["Name"], "bosun_bosun");
    let task = &spec["TaskTemplate"];
    let container = &task["ContainerSpec"];
    assert_eq!(container["Image"], "bosun:latest");
    assert_eq!(
        container["Args"],
        serde_json::json!(["run", "--dir", "/manifests", "--listen", "0.0.0.0:9090"])
    );
    assert_eq!(container["Init"], true);
    assert_eq!(container["StopSignal"], "SIGTERM");
    assert_eq!(container["StopGracePeriod"], 120_000_000_000_u64);
    let mounts = container["Mounts"].as_array().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m["Source"] == "/var/run/docker.sock" && m["Type"] == "bind"),
        "{mounts:?}"
    );
    assert!(
        mounts
            .iter()
            .any(|m| m["Target"] == "/manifests" && m["ReadOnly"] == true),
        "{mounts:?}"
    );
    let test = container["Healthcheck"]["Test"].as_array().unwrap();
    assert_eq!(test[0], "CMD");
    assert_eq!(test.last().unwrap(), "http://127.0.0.1:9090/healthz");
    assert_eq!(
        task["Placement"]["Constraints"],
        serde_json::json!(["node.role == manager"])
    );
    assert_eq!(task["RestartPolicy"]["Condition"], "any");
    assert_eq!(spec["Mode"]["Replicated"]["Replicas"], 1);
    assert_eq!(spec["UpdateConfig"]["Order"], "stop-first");
    let port = &spec["EndpointSpec"]["Ports"][0];
    assert_eq!(port["TargetPort"], 9090);
    assert_eq!(port["PublishedPort"], 9090);
    assert_eq!(port["PublishMode"], "host");
}

#[test]
fn stack_file_git_alternative_is_accepted_by_bosun() {
    let spec = bosun_service(&git_variant(&read("bosun-stack.yml")));
    let container = &spec["TaskTemplate"]["ContainerSpec"];
    let args: Vec<&str> = container["Args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "run");
    assert!(args.contains(&"--git-token-file=/run/secrets/bosun_git_token"));
    assert!(args.contains(&"--webhook-secret-file=/run/secrets/bosun_webhook_secret"));
    let secrets: Vec<&str> = container["Secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["SecretName"].as_str().unwrap())
        .collect();
    assert_eq!(secrets, ["bosun_git_token", "bosun_webhook_secret"]);
}

#[test]
fn dockerfile_runs_bosun_with_git_and_a_healthcheck() {
    let dockerfile = read("Dockerfile");
    for needle in [
        "FROM rust:1-bookworm AS build",
        "FROM debian:bookworm-slim",
        "ENTRYPOINT [\"bosun\"]",
        "CMD [\"run\", \"--dir\", \"/manifests\"",
        "http://127.0.0.1:9090/healthz",
        " git ",
        "ca-certificates",
        "cargo build --release --locked",
    ] {
        assert!(dockerfile.contains(needle), "Dockerfile lacks {needle:?}");
    }
}

/// Every target's source file that Cargo.toml declares, by path: `cargo
/// fetch` refuses a manifest whose targets are missing.
fn declared_targets(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut section = String::new();
    let (mut name, mut path) = (None::<String>, None::<String>);
    let mut flush = |section: &str, name: &mut Option<String>, path: &mut Option<String>| {
        let default = match (section, name.as_deref()) {
            ("[[bench]]", Some(n)) => Some(format!("benches/{n}.rs")),
            ("[[test]]", Some(n)) => Some(format!("tests/{n}.rs")),
            ("[lib]", _) => Some("src/lib.rs".to_string()),
            ("[[bin]]", _) => Some("src/main.rs".to_string()),
            _ => None,
        };
        if let Some(p) = path.take().or(default) {
            out.push(p);
        }
        *name = None;
    };
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            flush(&section, &mut name, &mut path);
            section = line.to_string();
        } else if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().trim_matches('"').to_string();
            match k.trim() {
                "name" => name = Some(v),
                "path" => path = Some(v),
                _ => {}
            }
        }
    }
    flush(&section, &mut name, &mut path);
    out
}

#[test]
fn dockerfile_dependency_step_stubs_every_target_cargo_declares() {
    let dockerfile = read("Dockerfile");
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let targets = declared_targets(&manifest);
    assert!(
        targets.iter().any(|t| t == "benches/run.rs") && targets.iter().any(|t| t == "src/lib.rs"),
        "{targets:?}"
    );
    // The step that fetches dependencies before the sources are copied.
    let step: String = dockerfile
        .lines()
        .skip_while(|l| !l.starts_with("RUN mkdir -p src"))
        .take_while(|l| !l.contains("cargo fetch"))
        .collect();
    for target in &targets {
        assert!(
            step.split_whitespace().any(|w| w == target),
            "deploy/Dockerfile does not stub {target} before `cargo fetch`:\n{step}"
        );
    }
}

#[test]
fn systemd_unit_starts_bosun_after_docker_and_stops_gracefully() {
    let unit = read("bosun.service");
    let directives: Vec<&str> = unit
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .collect();
    for expected in [
        "ExecStart=/usr/local/bin/bosun run --dir /etc/bosun/cluster --listen 127.0.0.1:9090",
        "Restart=on-failure",
        "After=docker.service network-online.target",
        "Requires=docker.service",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=120",
        "SupplementaryGroups=docker",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    ] {
        assert!(
            directives.contains(&expected),
            "bosun.service lacks {expected:?}"
        );
    }
    for line in &directives {
        assert!(line.contains('='), "not a directive: {line:?}");
    }
}

/// `systemd-analyze verify` where it exists (it checks directive names and
/// values; the binary need not be installed for the syntax check to be
/// useful, so only "not found"-type complaints about it are ignored).
#[test]
fn systemd_unit_passes_systemd_analyze_verify_when_available() {
    let Ok(out) = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(deploy_dir().join("bosun.service"))
        .output()
    else {
        eprintln!("systemd-analyze not found; skipping the unit syntax check");
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            !l.contains("/usr/local/bin/bosun")
                && !l.contains("docker.service")
                && !l.contains("System has not been booted with systemd")
                && !l.contains("Failed to connect to bus")
                && !l.trim().is_empty()
        })
        .collect();
    assert!(problems.is_empty(), "systemd-analyze verify:\n{stderr}");
}

/// Parse a `bosun` command line with the real CLI definition.
fn parses(args: &[String]) -> Result<(), String> {
    use clap::Parser as _;
    let command_line = std::iter::once("bosun".to_string()).chain(args.iter().cloned());
    bosun::cli::Cli::try_parse_from(command_line)
        .map(|_| ())
        .map_err(|e| format!("{args:?}: {e}"))
}

#[test]
fn every_command_line_in_deploy_parses_with_bosuns_own_flags() {
    // The swarm service, both forms: `command:` of the converted service.
    for text in [
        read("bosun-stack.yml"),
        git_variant(&read("bosun-stack.yml")),
    ] {
        let svc = bosun_service(&text);
        let args: Vec<String> = svc["TaskTemplate"]["ContainerSpec"]["Args"]
            .as_array()
            .expect("the stack's service has a command")
            .iter()
            .map(|a| a.as_str().expect("string arg").to_string())
            .collect();
        assert_eq!(args.first().map(String::as_str), Some("run"));
        parses(&args).unwrap();
    }
    // The systemd unit: every ExecStart, the commented git example too.
    let unit = read("bosun.service");
    let mut lines = Vec::new();
    let mut current: Option<String> = None;
    for raw in unit.lines() {
        let line = raw.trim_start_matches('#').trim();
        if let Some(cmd) = current.as_mut() {
            cmd.push(' ');
            cmd.push_str(line.trim_end_matches('\\').trim());
            if !line.ends_with('\\') {
                lines.push(current.take().unwrap_or_default());
            }
            continue;
        }
        if let Some(cmd) = line.strip_prefix("ExecStart=/usr/local/bin/bosun ") {
            if cmd.ends_with('\\') {
                current = Some(cmd.trim_end_matches('\\').trim().to_string());
            } else {
                lines.push(cmd.to_string());
            }
        }
    }
    assert!(lines.len() >= 2, "ExecStart lines: {lines:?}");
    for cmd in &lines {
        let args: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
        parses(&args).unwrap();
    }
    // The image's default command.
    let docker = read("Dockerfile");
    let cmd = docker
        .lines()
        .find_map(|l| l.strip_prefix("CMD ["))
        .expect("a CMD line");
    let args: Vec<String> = cmd
        .trim_end_matches(']')
        .split(',')
        .map(|a| a.trim().trim_matches('"').to_string())
        .collect();
    parses(&args).unwrap();
}
