//! Requests swarm would refuse are refused at validation: `bosun reconcile
//! --once` against the real single-node swarm exits 2 with the diagnostic
//! and creates nothing (no service, config, secret or network of the
//! stacks' namespaces exists afterwards), where applying would have left a
//! half-applied swarm. One case per kind of check; the rules themselves are
//! covered by `tests/malformed/` and `tests/validate.rs`.

use bosun::compose::LABEL_NAMESPACE;

use crate::support::BUSYBOX_IMAGE as IMAGE;
use crate::support::cli;
use crate::support::engine::Engine;

fn prefix(test: &str) -> String {
    format!("pc{test}{}", std::process::id())
}

/// A Stack manifest with inline compose.
fn stack(name: &str, compose: &str) -> String {
    let indented: String = compose.lines().flat_map(|l| ["    ", l, "\n"]).collect();
    format!(
        "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {{name: {name}}}\nspec:\n  wait: {{enabled: false}}\n  compose:\n{indented}---\n"
    )
}

/// Write `files` to a fresh folder, run `bosun reconcile --once` on it and
/// check that it exits 2 naming `file` and `message`, and that none of
/// `stacks` has any object in the swarm.
fn refused_untouched(files: &[(&str, &[u8])], stacks: &[&str], file: &str, message: &str) {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    let cli::Run {
        code,
        stdout,
        stderr,
    } = cli::run(
        cli::bosun()
            .args(["reconcile", "--once", "--no-prune"])
            .arg(dir.path()),
    );
    assert_eq!(code, Some(2), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let place = format!("{}/{file}:", dir.path().display());
    assert!(
        stderr.contains(&place),
        "no diagnostic in {place}:\n{stderr}"
    );
    assert!(stderr.contains(message), "no `{message}`:\n{stderr}");
    assert!(stderr.contains("invalid manifests"), "{stderr}");
    let engine = Engine::from_env().expect("engine");
    for ns in stacks {
        for kind in ["services", "configs", "secrets", "networks"] {
            let found = engine
                .list_labelled(kind, &format!("{LABEL_NAMESPACE}={ns}"))
                .expect("list");
            assert!(found.is_empty(), "{kind} of {ns} exist: {found:?}");
        }
    }
}

#[test]
fn a_secret_at_swarms_size_limit_stops_reconcile_before_anything_is_created() {
    let ns = prefix("size");
    let compose = format!(
        "services:\n  web:\n    image: {IMAGE}\n    networks: [back]\n    configs: [site]\n    secrets: [key]\nnetworks:\n  back: {{}}\nconfigs:\n  site:\n    file: ./site.conf\nsecrets:\n  key:\n    file: ./key.pem\n"
    );
    let manifest = stack(&ns, &compose);
    let key = vec![b'k'; 500 * 1024];
    refused_untouched(
        &[
            ("stack.yaml", manifest.as_bytes()),
            ("site.conf", b"server {}\n"),
            ("key.pem", &key),
        ],
        &[&ns],
        "stack.yaml:20",
        "secret `key` is 512000 bytes; swarm refuses secrets of 512000 bytes (500 KiB) or more",
    );
}

#[test]
fn a_service_name_over_63_characters_stops_reconcile_before_anything_is_created() {
    let ns = prefix("name");
    let long = "w".repeat(64 - ns.len());
    let compose = format!(
        "services:\n  web:\n    image: {IMAGE}\n  {long}:\n    image: {IMAGE}\nconfigs:\n  site:\n    file: ./site.conf\n"
    );
    let manifest = stack(&ns, &compose);
    refused_untouched(
        &[
            ("stack.yaml", manifest.as_bytes()),
            ("site.conf", b"server {}\n"),
        ],
        &[&ns],
        "stack.yaml:10",
        &format!("swarm refuses the service name `{ns}_{long}`: it is 65 characters, at most 63"),
    );
}

#[test]
fn an_ingress_port_published_by_two_stacks_stops_reconcile_before_anything_is_created() {
    let a = prefix("porta");
    let b = prefix("portb");
    let port = 30000 + std::process::id() % 20000;
    let compose = format!("services:\n  web:\n    image: {IMAGE}\n    ports: [\"{port}:80\"]\n");
    let manifests = format!("{}{}", stack(&a, &compose), stack(&b, &compose));
    refused_untouched(
        &[("stacks.yaml", manifests.as_bytes())],
        &[&a, &b],
        "stacks.yaml:21",
        &format!("port {port}/tcp is already published by service `{a}_web` (ingress mode"),
    );
}

#[test]
fn two_configs_with_one_target_stop_reconcile_before_anything_is_created() {
    let ns = prefix("target");
    let compose = format!(
        "services:\n  web:\n    image: {IMAGE}\n    configs:\n      - source: site\n        target: /etc/site.conf\n      - source: site-v2\n        target: /etc/site.conf\nconfigs:\n  site:\n    file: ./site.conf\n  site-v2:\n    file: ./site.conf\n"
    );
    let manifest = stack(&ns, &compose);
    refused_untouched(
        &[
            ("stack.yaml", manifest.as_bytes()),
            ("site.conf", b"server {}\n"),
        ],
        &[&ns],
        "stack.yaml:13",
        "config `site-v2` has the target `/etc/site.conf` of config `site`; swarm refuses a service whose configs share a target",
    );
}
