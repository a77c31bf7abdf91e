//! `VipPolicy` rendered into keepalived configurations: golden files for
//! the examples and edge cases, every rendered file accepted by keepalived's
//! own `keepalived --config-test` (in a network namespace of this test's
//! own, where the policy's interface exists), and `bosun vip render`.
//!
//! `BOSUN_BLESS=1` rewrites the golden files under `tests/golden/vip/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use bosun::manifest;
use bosun::vip::{self, Rendered};

use super::support::cli;

fn golden_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/vip")
        .join(case)
}

/// One rendered file: the policy's name and interface, and the file.
struct File {
    policy: String,
    interface: String,
    r: Rendered,
}

/// The rendered files of every policy under `dir`, for nodes given as
/// `(hostname, address)`, with the password of each policy's file.
fn render(dir: &Path, nodes: &[(&str, &str)], checker: &str) -> Vec<File> {
    let desired = manifest::load(dir).unwrap_or_else(|d| panic!("invalid manifests:\n{d}"));
    let mut out = Vec::new();
    for policy in &desired.vip_policies {
        let spec = &policy.spec;
        let password = spec
            .auth
            .as_ref()
            .and_then(|a| a.password_file.as_ref())
            .map(|f| {
                std::fs::read_to_string(f)
                    .expect("password file")
                    .trim_end()
                    .to_string()
            });
        let members = vip::with_priorities(
            spec,
            nodes
                .iter()
                .map(|(h, a)| ((*h).to_string(), String::new(), (*a).to_string())),
        );
        for r in vip::render(
            policy.name(),
            spec,
            &members,
            vip::Options {
                password: password.as_deref(),
                checker,
            },
        ) {
            out.push(File {
                policy: policy.name().to_string(),
                interface: spec.interface_of(&r.hostname).to_string(),
                r,
            });
        }
    }
    out
}

/// Compare (or, with `BOSUN_BLESS=1`, write) the masked files of `case`.
fn golden(case: &str, rendered: &[File]) {
    let dir = golden_dir(case);
    let bless = std::env::var("BOSUN_BLESS").is_ok_and(|v| v == "1");
    if bless {
        std::fs::create_dir_all(&dir).expect("mkdir");
    }
    assert!(!rendered.is_empty(), "{case}: nothing rendered");
    for File { policy, r, .. } in rendered {
        let file = dir.join(format!("{policy}.{}.conf", r.hostname));
        let text = vip::mask(&r.config);
        if bless {
            std::fs::write(&file, &text).expect("write golden file");
            continue;
        }
        let want = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e} (BOSUN_BLESS=1 writes it)", file.display()));
        assert_eq!(
            text, want,
            "{case}: {} differs from its golden file",
            r.hostname
        );
    }
}

/// `keepalived --config-test` of each file, in a network namespace where
/// the policy's interface exists (a veth made there; nothing leaves it).
fn config_test(rendered: &[File]) {
    let scratch = tempfile::tempdir().expect("tempdir");
    for File {
        policy,
        interface,
        r,
    } in rendered
    {
        let file = scratch.path().join(format!("{policy}.{}.conf", r.hostname));
        std::fs::write(&file, &r.config).expect("write");
        let script = format!(
            "ip link add {interface} type veth peer name bosunpeer0 && keepalived --config-test -f {}",
            file.display()
        );
        let out = Command::new("unshare")
            .args(["--net", "sh", "-c", &script])
            .output()
            .expect(
                "unshare (root, util-linux) and keepalived (scripts/setup-docker.sh installs it)",
            );
        assert!(
            out.status.success(),
            "keepalived --config-test refused {}'s file ({}):\n{}\n{}",
            r.hostname,
            out.status,
            String::from_utf8_lossy(&out.stderr),
            vip::mask(&r.config)
        );
    }
}

/// The checker as keepalived sees it: an executable file (the test binary
/// of bosun stands in for the image's).
fn checker() -> &'static str {
    env!("CARGO_BIN_EXE_bosun")
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

const HOMELAB: &[(&str, &str)] = &[
    ("swarm1", "10.0.10.31"),
    ("swarm2", "10.0.10.32"),
    ("swarm3", "10.0.10.33"),
];

#[test]
fn homelab_ha_renders_three_unicast_peers_with_its_priorities_and_checks() {
    let rendered = render(&example("homelab-ha"), HOMELAB, vip::CHECKER);
    golden("homelab-ha", &rendered);
    let swarm2 = &rendered[1].r;
    assert_eq!((swarm2.hostname.as_str(), swarm2.priority), ("swarm2", 100));
    assert!(
        swarm2.config.contains(
            "    unicast_src_ip 10.0.10.32\n    unicast_peer {\n        10.0.10.31\n        10.0.10.33\n    }"
        ),
        "{}",
        swarm2.config
    );
    config_test(&render(&example("homelab-ha"), HOMELAB, checker()));
}

#[test]
fn keepalived_haproxy_renders_multicast_master_and_backup() {
    let nodes = [("lb1", "192.168.50.11"), ("lb2", "192.168.50.12")];
    let rendered = render(&example("keepalived-haproxy"), &nodes, vip::CHECKER);
    golden("keepalived-haproxy", &rendered);
    for f in &rendered {
        assert!(!f.r.config.contains("unicast"), "{}", f.r.config);
    }
    let prios: Vec<i64> = rendered.iter().map(|f| f.r.priority).collect();
    assert_eq!(prios, [11, 10]);
    config_test(&render(&example("keepalived-haproxy"), &nodes, checker()));
}

const EDGE: &str = "apiVersion: bosun.dev/v1alpha1
kind: VipPolicy
metadata: {name: edge}
spec:
  address: 172.30.0.250/24
  interface: eth1
  virtualRouterId: 77
  preempt: false
  nodes:
    priorities: {n3: 150}
  checks:
    - {name: api, type: tcp, address: '127.0.0.1:6443', interval: 3, fall: 2, rise: 3}
    - {name: own, type: script, script: '/bin/true', interval: 5}
---
apiVersion: bosun.dev/v1alpha1
kind: VipPolicy
metadata: {name: bare}
spec:
  address: 172.30.1.250/24
  interface: eth2
  virtualRouterId: 78
  unicast: false
";

const FIVE: &[(&str, &str)] = &[
    ("n1", "172.30.0.11"),
    ("n2", "172.30.0.12"),
    ("n3", "172.30.0.13"),
    ("n4", "172.30.0.14"),
    ("n5", "172.30.0.15"),
];

/// `nopreempt`, five nodes with one explicit priority (the others below it
/// in hostname order), a tcp and a custom script check, and a policy with
/// no checks and no password.
#[test]
fn edge_cases_render_nopreempt_derived_priorities_custom_scripts_and_no_checks() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("vip.yaml"), EDGE).expect("write");
    let rendered = render(dir.path(), FIVE, vip::CHECKER);
    golden("edge", &rendered);
    let edge: Vec<(&str, i64)> = rendered[..5]
        .iter()
        .map(|f| (f.r.hostname.as_str(), f.r.priority))
        .collect();
    assert_eq!(
        edge,
        [
            ("n1", 149),
            ("n2", 148),
            ("n3", 150),
            ("n4", 147),
            ("n5", 146)
        ]
    );
    let n1 = &rendered[0].r.config;
    assert!(
        n1.contains("    state BACKUP\n") && n1.contains("    nopreempt\n"),
        "{n1}"
    );
    assert!(
        n1.contains("script \"/usr/local/bin/bosun vip check tcp 127.0.0.1:6443\"")
            && n1.contains("script \"/bin/true\""),
        "{n1}"
    );
    let bare = &rendered[5].r.config;
    assert_eq!(rendered[5].policy, "bare");
    assert!(
        !bare.contains("track_script")
            && !bare.contains("authentication")
            && !bare.contains("nopreempt"),
        "{bare}"
    );
    config_test(&render(dir.path(), FIVE, checker()));
}

const V3: &str = "apiVersion: bosun.dev/v1alpha1
kind: VipPolicy
metadata: {name: fast}
spec:
  address: 172.30.2.250/24
  interface: eth0
  virtualRouterId: 79
  advertInterval: 0.1
  nodes:
    priorities: {a: 20, b: 10}
    interfaces: {b: eno1}
  checks:
    - {name: web, type: http, url: 'http://127.0.0.1:8080/', interval: 1, weight: -15}
";

/// `VRRPv3` with a sub-second interval, and a node whose interface differs.
#[test]
fn a_fractional_interval_renders_vrrp3_and_a_node_keeps_its_own_interface() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("vip.yaml"), V3).expect("write");
    let nodes = [("a", "172.30.2.11"), ("b", "172.30.2.12")];
    let rendered = render(dir.path(), &nodes, vip::CHECKER);
    golden("vrrp3", &rendered);
    let (a, b) = (&rendered[0].r.config, &rendered[1].r.config);
    assert!(
        a.contains("    version 3\n") && a.contains("    advert_int 0.1\n"),
        "{a}"
    );
    assert!(
        a.contains("    interface eth0\n") && a.contains("172.30.2.250/24 dev eth0"),
        "{a}"
    );
    assert!(
        b.contains("    interface eno1\n") && b.contains("172.30.2.250/24 dev eno1"),
        "{b}"
    );
    assert!(a.contains("    weight -15\n"), "{a}");
    config_test(&render(dir.path(), &nodes, checker()));
}

#[test]
fn vip_render_masks_the_password_unless_asked_and_prints_one_node_bare() {
    let dir = example("homelab-ha");
    let password = std::fs::read_to_string(dir.join("vip.pass"))
        .expect("vip.pass")
        .trim_end()
        .to_string();
    let addresses: Vec<String> = HOMELAB
        .iter()
        .flat_map(|(h, a)| ["--address".to_string(), format!("{h}={a}")])
        .collect();
    let run = |extra: &[&str]| {
        let out = cli::bosun()
            .args(["vip", "render"])
            .arg(&dir)
            .args(&addresses)
            .args(extra)
            .output()
            .expect("bosun vip render");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let all = run(&[]);
    assert_eq!(
        all.matches("# ---- VipPolicy/homelab-vip on").count(),
        3,
        "{all}"
    );
    assert!(
        all.contains("auth_pass ********") && !all.contains(&password),
        "{all}"
    );
    let one = run(&["--node", "swarm3", "--show-password"]);
    assert!(one.starts_with("# keepalived.conf of swarm3"), "{one}");
    assert!(one.contains(&format!("auth_pass {password}")), "{one}");
    assert!(one.contains("    priority 50\n"), "{one}");
    // A node no policy selects is an error naming it.
    let out = cli::bosun()
        .args(["vip", "render"])
        .arg(&dir)
        .args(&addresses)
        .args(["--node", "elsewhere"])
        .output()
        .expect("bosun vip render");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no VipPolicy selects the node `elsewhere`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `bosun vip check docker` against the test daemon's socket (the Engine's
/// `/_ping`), and against a socket that is not there.
#[test]
fn vip_check_docker_asks_the_engine_through_its_socket() {
    let check = |socket: &str| {
        cli::bosun()
            .args(["vip", "check", "docker", "--socket", socket])
            .output()
            .expect("bosun vip check")
    };
    let alive = check("/var/run/docker.sock");
    assert_eq!(
        alive.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&alive.stderr)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let gone = dir.path().join("docker.sock");
    let dead = check(gone.to_str().expect("utf-8"));
    assert_eq!(dead.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&dead.stderr).starts_with("unhealthy: cannot connect to"),
        "{}",
        String::from_utf8_lossy(&dead.stderr)
    );
}

/// The warning `examples/homelab-ha/README.md` quotes.
#[test]
fn homelab_ha_validates_with_the_weight_warning_its_readme_explains() {
    let out = cli::bosun()
        .arg("validate")
        .arg(example("homelab-ha"))
        .output()
        .expect("bosun validate");
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let readme =
        std::fs::read_to_string(example("homelab-ha").join("README.md")).expect("README.md");
    let quoted = readme
        .lines()
        .find(|l| l.starts_with("vip.yaml:35:7: warning:"))
        .expect("the README quotes the warning");
    assert!(stderr.contains(quoted), "{stderr}\n---\n{quoted}");
}
