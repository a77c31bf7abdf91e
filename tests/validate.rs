//! `bosun validate`: malformed inputs fail with precise diagnostics, valid
//! folders pass, and no input makes it panic.

use std::path::Path;
use std::process::Output;

use super::support::{self, cli};

fn bosun_validate(dir: &Path) -> Output {
    cli::bosun()
        .arg("validate")
        .arg(dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run bosun")
}

fn write_all(dir: &Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

/// Each `tests/malformed/<case>/expect` line is `<file>:<line> <fragment>`
/// (stderr must name that place and contain the fragment) or `!<text>` (the
/// text must appear nowhere in the output, e.g. a password).
#[test]
fn every_malformed_case_fails_with_its_expected_diagnostics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/malformed");
    let cases = support::subdirs(&root);
    assert!(cases.len() >= 30, "only {} malformed cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let expect = std::fs::read_to_string(case.join("expect")).unwrap_or_default();
        assert!(
            !expect.trim().is_empty(),
            "{name}: missing or empty expect file"
        );
        let out = bosun_validate(Path::new("tests/malformed").join(&name).as_path());
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(2) {
            failures.push(format!("{name}: exit {:?}, want 2", out.status.code()));
        }
        for line in expect.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(secret) = line.strip_prefix('!') {
                if stderr.contains(secret) || stdout.contains(secret) {
                    failures.push(format!("{name}: output contains `{secret}`"));
                }
                continue;
            }
            let (place, fragment) = line.split_once(' ').unwrap_or((line, ""));
            let place = format!("{name}/{place}:");
            if !stderr.contains(&place) {
                failures.push(format!("{name}: no diagnostic at `{place}`"));
            }
            if !stderr.contains(fragment) {
                failures.push(format!("{name}: no `{fragment}`"));
            }
        }
        if !failures.is_empty() && failures.last().is_some_and(|f| f.starts_with(&name)) {
            failures.push(format!("{name}: stderr was:\n{stderr}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const VALID: &[(&str, &str)] = &[
    (
        "cluster/networks.yaml",
        "apiVersion: bosun.dev/v1alpha1
kind: Network
metadata: {name: traefik-public, labels: {team: edge}}
spec:
  driver: overlay
  attachable: true
  encrypted: true
  options: {com.docker.network.driver.mtu: \"1200\"}
  ipam: {config: [{subnet: 10.11.0.0/16, gateway: 10.11.0.2}]}
---
apiVersion: bosun.dev/v1alpha1
kind: Network
metadata: {name: backend}
spec: {internal: true}
",
    ),
    (
        "cluster/stacks/traefik.yaml",
        "apiVersion: bosun.dev/v1alpha1
kind: Stack
metadata: {name: traefik}
spec:
  composeFiles: [traefik/docker-compose.yml, traefik/prod.yml]
  env: {DOMAIN: example.org, REPLICAS: 2}
  envFiles: [traefik/.env]
  dependsOn: [Network/traefik-public, Stack/consul]
  prune: true
  wait: {enabled: true, timeout: 5m}
  resolveImage: never
  ha: false
  suspend: false
---
apiVersion: bosun.dev/v1alpha1
kind: Stack
metadata: {name: consul}
spec:
  compose:
    x-defaults: &defaults {image: 'hashicorp/consul:1.19'}
    services:
      consul: {<<: *defaults}
",
    ),
    ("cluster/stacks/traefik/docker-compose.yml", "services:\n  traefik:\n    image: traefik:v3.1\n"),
    ("cluster/stacks/traefik/prod.yml", "services:\n  traefik:\n    deploy: {replicas: 2}\n"),
    ("cluster/stacks/traefik/.env", "# interpolation\nACME_EMAIL=ops@example.org\nexport LOG_LEVEL=info\n"),
    (
        "cluster/policies.yml",
        "apiVersion: bosun.dev/v1alpha1
kind: NodeLabels
metadata: {name: racks}
spec:
  rules:
    - selector: {hostname: swarm1}
      labels: {rack: a, loadbalancer: \"true\"}
      availability: active
---
apiVersion: bosun.dev/v1alpha1
kind: PlacementPolicy
metadata: {name: spread-racks}
spec:
  selector: {stacks: [traefik], services: [\"traefik_*\"], labels: {tier: front}}
  preferences: [{spread: node.labels.rack}]
  constraints: [\"node.role == worker\", \"node.labels.rack != c\"]
  maxReplicasPerNode: 1
---
apiVersion: bosun.dev/v1alpha1
kind: VipPolicy
metadata: {name: ingress}
spec:
  address: 10.0.10.39/24
  interface: ens160
  virtualRouterId: 12
  advertInterval: 1
  nodes:
    selector: {role: manager}
    priorities: {swarm1: 110, swarm2: 100, swarm3: 90}
  unicast: true
  preempt: true
  auth: {passwordFile: vip.pass}
  checks:
    - {name: docker, type: docker, interval: 1, weight: 20}
    - {name: traefik, type: http, url: \"http://127.0.0.1:8080/ping\", interval: 30, weight: 15}
    - {name: api, type: tcp, address: \"127.0.0.1:443\"}
    - {name: custom, type: script, script: \"/check.sh\", interval: 5, weight: -30, fall: 2, rise: 2}
  image: bosun/keepalived:2.2
---
apiVersion: bosun.dev/v1alpha1
kind: ClusterPolicy
metadata: {name: cluster}
spec:
  managers: 3
  dedicatedManagers: true
  autolock: false
  quorum: {gracePeriod: 60s, autoRecover: false, autoRecoverGracePeriod: 300s}
",
    ),
    ("cluster/vip.pass", "s3cret\n"),
    ("cluster/unrelated-compose.yml", "services: {web: {image: nginx}}\n"),
    ("cluster/.git/broken.yaml", "apiVersion: bosun.dev/v1alpha1\nkind: [\n"),
    ("cluster/README.md", "not yaml\n"),
];

#[test]
fn a_valid_multi_kind_folder_validates_with_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), VALID);
    let out = bosun_validate(&dir.path().join("cluster"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stdout.trim(),
        "valid: 8 manifests (2 Network, 2 Stack, 1 NodeLabels, 1 PlacementPolicy, 1 VipPolicy, 1 ClusterPolicy)"
    );
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn the_library_returns_typed_manifests_with_absolute_paths_and_deploy_order() {
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), VALID);
    let desired = bosun::manifest::load(&dir.path().join("cluster")).unwrap();
    let order: Vec<&str> = desired.stack_order().iter().map(|s| s.name()).collect();
    assert_eq!(order, ["consul", "traefik"]);
    let traefik = desired.stack("traefik").unwrap();
    assert!(
        traefik
            .spec
            .compose_files
            .iter()
            .all(|p| p.is_absolute() && p.is_file())
    );
    assert!(traefik.spec.env_files[0].ends_with("stacks/traefik/.env"));
    assert_eq!(traefik.spec.env["REPLICAS"], "2");
    assert_eq!(traefik.source.pos.line, 1);
    let vip = &desired.vip_policies[0];
    let pass = vip
        .spec
        .auth
        .as_ref()
        .and_then(|a| a.password_file.as_ref())
        .unwrap();
    assert!(pass.is_absolute() && pass.is_file());
    assert_eq!(desired.networks[1].spec.driver, "overlay");
    assert!(desired.cluster_policy.is_some());
}

#[test]
fn a_folder_with_only_a_warning_is_valid_and_prints_the_warning() {
    let dir = tempfile::tempdir().unwrap();
    write_all(
        dir.path(),
        &[(
            "cluster.yaml",
            "apiVersion: bosun.dev/v1alpha1\nkind: ClusterPolicy\nmetadata: {name: cluster}\nspec:\n  managers: 2\n",
        )],
    );
    let out = bosun_validate(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("cluster.yaml:5:3: warning: ClusterPolicy/cluster: spec.managers:"),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("valid: 1 manifest (1 ClusterPolicy), 1 warning")
    );
}

#[test]
fn a_folder_without_manifests_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    write_all(
        dir.path(),
        &[("docker-compose.yml", "services: {a: {image: x}}\n")],
    );
    let out = bosun_validate(dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no bosun manifests found"));
    let out = bosun_validate(&dir.path().join("nope"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such directory"));
}

#[test]
fn errors_in_many_files_are_all_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let net = |name: &str, extra: &str| {
        format!(
            "apiVersion: bosun.dev/v1alpha1\nkind: Network\nmetadata: {{name: {name}}}\nspec:\n{extra}"
        )
    };
    write_all(
        dir.path(),
        &[
            ("a.yaml", &net("a", "  attachable: maybe\n  internal: 3\n")),
            (
                "b.yaml",
                &net(
                    "b",
                    "  ipam: {config: [{subnet: 10.0.0.0/8, gateway: 11.0.0.1}]}\n",
                ),
            ),
            ("c.yaml", &net("c", "  drivr: overlay\n")),
        ],
    );
    let out = bosun_validate(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    for want in [
        "a.yaml:5:3: error: Network/a: spec.attachable",
        "a.yaml:6:3: error: Network/a: spec.internal",
        "b.yaml:5:",
        "gateway 11.0.0.1 is outside subnet 10.0.0.0/8",
        "c.yaml:5:3: error: Network/c: spec.drivr: unknown field `drivr`, did you mean `driver`?",
        "invalid: 4 errors",
    ] {
        assert!(stderr.contains(want), "missing `{want}` in:\n{stderr}");
    }
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ": ",
    "- ",
    "\n",
    "\n  ",
    "\t",
    "&a ",
    "*a",
    "<<: ",
    "---\n",
    "!!str ",
    "!!int ",
    "\"",
    "'",
    "#",
    "|\n",
    ">\n",
    "? ",
    ",",
    "~",
    "null",
    "true",
    "-1",
    "99999999999999999999",
    "1e400",
    "0x",
    "10.0.0.0/8",
    "Stack/",
    "bosun.dev/",
    "apiVersion: bosun.dev/v1alpha1\n",
    "kind: VipPolicy\n",
    "\u{0}",
    "\u{feff}",
    "é",
];

fn mutate(rng: &mut Rng, base: &str) -> Vec<u8> {
    let mut bytes = base.as_bytes().to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(7) {
            0 => bytes.truncate(at),
            1 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] = rng.next() as u8;
            }
            2 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                bytes.splice(at..at, t.bytes());
            }
            3 => {
                let end = (at + rng.below(40)).min(bytes.len());
                bytes.drain(at..end);
            }
            4 => {
                let end = (at + rng.below(80)).min(bytes.len());
                let chunk = bytes[at..end].to_vec();
                bytes.splice(at..at, chunk);
            }
            5 => {
                let depth = rng.below(300);
                let open = if rng.below(2) == 0 { "[" } else { "{a: " };
                let nest = open.repeat(depth);
                bytes.splice(at..at, nest.bytes());
            }
            _ => {
                let noise: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
                bytes.splice(at..at, noise);
            }
        }
    }
    bytes
}

#[test]
fn no_input_makes_validation_panic() {
    let mut bases: Vec<String> = VALID.iter().map(|(_, c)| (*c).to_string()).collect();
    let malformed = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/malformed");
    for case in std::fs::read_dir(malformed).unwrap().flatten() {
        for file in std::fs::read_dir(case.path()).unwrap().flatten() {
            if let Ok(text) = std::fs::read_to_string(file.path()) {
                bases.push(text);
            }
        }
    }
    bases.sort();
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), VALID);
    let root = dir.path().join("cluster");
    let target = root.join("policies.yml");
    let compose = root.join("stacks/traefik/docker-compose.yml");
    let mut rng = Rng(0x5eed_b05c_0000_0001);
    for round in 0..1500 {
        let base = &bases[rng.below(bases.len())];
        let input = mutate(&mut rng, base);
        // The YAML layer alone, then the whole loader on a file in a folder
        // (a mutated manifest, or a mutated compose file it references).
        if let Ok(text) = std::str::from_utf8(&input) {
            let _ = bosun::yaml::parse(text)
                .map(|mut docs| docs.iter_mut().map(bosun::yaml::Node::apply_merge).count());
        }
        let file = if round % 5 == 0 { &compose } else { &target };
        std::fs::write(file, &input).unwrap();
        let _ = bosun::manifest::load(&root);
        std::fs::write(file, VALID[if round % 5 == 0 { 2 } else { 5 }].1).unwrap();
    }
    // Pure random bytes, and pathological shapes.
    for size in [0, 1, 7, 100, 4096] {
        let junk: Vec<u8> = (0..size).map(|_| rng.next() as u8).collect();
        std::fs::write(&target, junk).unwrap();
        let _ = bosun::manifest::load(&root);
    }
    for text in [
        "[".repeat(100_000),
        format!("apiVersion: bosun.dev/v1alpha1\nspec: {}", "{a: ".repeat(50_000)),
        format!("apiVersion: bosun.dev/v1alpha1\n{}", "- \n".repeat(10_000)),
        "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {name: s}\nspec: {dependsOn: [Stack/s, Stack/s]}\n"
            .to_string(),
    ] {
        std::fs::write(&target, text).unwrap();
        let _ = bosun::manifest::load(&root);
    }
}

/// A stack whose web service mounts a config and a secret of the given
/// sizes (the secret filled with a marker that must never be printed).
fn sized_stack(dir: &Path, config_bytes: usize, secret_bytes: usize) {
    write_all(
        dir,
        &[
            (
                "stack.yaml",
                "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {name: app}\nspec:\n  composeFiles: [compose.yml]\n",
            ),
            (
                "compose.yml",
                "services:\n  web:\n    image: nginx\n    configs: [site]\n    secrets: [key]\nconfigs:\n  site:\n    file: ./site.conf\nsecrets:\n  key:\n    file: ./key.pem\n",
            ),
        ],
    );
    std::fs::write(dir.join("site.conf"), "c".repeat(config_bytes)).unwrap();
    std::fs::write(
        dir.join("key.pem"),
        &"SECRETVALUE".repeat(secret_bytes / 11 + 1).as_bytes()[..secret_bytes],
    )
    .unwrap();
}

/// Measured on dockerd 20.10: a config of 1023999 bytes is created, one of
/// 1024000 is refused ("config data must be larger than 0 and less than
/// 1024000 bytes"); secrets likewise at 511999 and 512000.
#[test]
fn configs_and_secrets_one_byte_under_swarms_limits_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    sized_stack(dir.path(), 1000 * 1024 - 1, 500 * 1024 - 1);
    let out = bosun_validate(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn configs_and_secrets_at_swarms_limits_are_refused_without_showing_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    sized_stack(dir.path(), 1000 * 1024, 500 * 1024);
    let out = bosun_validate(dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let shown = dir.path().display().to_string();
    assert!(
        stderr.contains(&format!(
            "{shown}/compose.yml:8:5: error: Stack/app: configs.site.file: config `site` is 1024000 bytes; swarm refuses configs of 1024000 bytes (1000 KiB) or more"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{shown}/compose.yml:11:5: error: Stack/app: secrets.key.file: secret `key` is 512000 bytes; swarm refuses secrets of 512000 bytes (500 KiB) or more"
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("SECRETVALUE") && !stdout.contains("SECRETVALUE"),
        "{stderr}"
    );
}
