use super::*;

const H: &str = "apiVersion: bosun.dev/v1alpha1\n";

/// Load a folder made of `files`, answering env lookups from `env`.
fn load_files(files: &[(&str, &str)], env: &[(&str, &str)]) -> Result<Desired, Diagnostics> {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let env: std::collections::BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    load_with(dir.path(), &env)
}

fn one(kind: &str, spec: &str) -> Result<Desired, Diagnostics> {
    load_files(
        &[(
            "m.yaml",
            &format!("{H}kind: {kind}\nmetadata: {{name: x}}\nspec:\n{spec}"),
        )],
        &[],
    )
}

/// The messages of every error, joined for `contains` checks.
fn errors(result: Result<Desired, Diagnostics>) -> String {
    match result {
        Ok(d) => panic!("expected errors, got a valid set: {}", d.summary()),
        Err(diags) => diags
            .errors()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn warnings(result: Result<Desired, Diagnostics>) -> String {
    let d = result.unwrap_or_else(|e| panic!("expected a valid set:\n{e}"));
    d.warnings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_error(result: Result<Desired, Diagnostics>, fragment: &str) {
    let e = errors(result);
    assert!(e.contains(fragment), "no `{fragment}` in:\n{e}");
}

// --- parsing and defaults -------------------------------------------------

#[test]
fn network_defaults_to_an_overlay_without_options() {
    let d = one("Network", "  attachable: true\n").unwrap();
    let n = &d.networks[0].spec;
    assert_eq!(n.driver, "overlay");
    assert!(n.attachable && !n.internal && !n.encrypted && !n.ingress);
    assert!(n.ipam.is_none());
}

#[test]
fn network_ipam_parses_subnet_gateway_and_range() {
    let d = one(
        "Network",
        "  ipam: {config: [{subnet: 10.11.0.0/16, gateway: 10.11.0.2, ipRange: 10.11.1.0/24}]}\n",
    )
    .unwrap();
    let ipam = d.networks[0].spec.ipam.as_ref().unwrap();
    assert_eq!(ipam.driver, "default");
    assert_eq!(ipam.config[0].gateway.as_deref(), Some("10.11.0.2"));
    assert_eq!(
        d.networks[0].spec.subnets()[0].1.to_string(),
        "10.11.0.0/16"
    );
}

#[test]
fn stack_defaults_prune_wait_and_resolve_image() {
    let d = one("Stack", "  compose: {services: {web: {image: nginx}}}\n").unwrap();
    let s = &d.stacks[0].spec;
    assert!(s.prune && s.wait.enabled && !s.ha && !s.suspend);
    assert_eq!(s.wait.timeout.get().as_secs(), 300);
    assert_eq!(s.resolve_image, ResolveImage::Changed);
}

#[test]
fn stack_env_values_may_be_numbers_or_booleans() {
    let d = one(
        "Stack",
        "  compose: {services: {}}\n  env: {PORT: 8080, DEBUG: true, NAME: x}\n",
    )
    .unwrap();
    let env = &d.stacks[0].spec.env;
    assert_eq!(
        (env["PORT"].as_str(), env["DEBUG"].as_str()),
        ("8080", "true")
    );
}

#[test]
fn stack_dependencies_parse_as_object_refs() {
    let d = load_files(
        &[(
            "m.yaml",
            &format!(
                "{H}kind: Stack\nmetadata: {{name: a}}\nspec:\n  compose: {{services: {{}}}}\n  dependsOn: [Network/n]\n---\n{H}kind: Network\nmetadata: {{name: n}}\nspec: {{}}\n"
            ),
        )],
        &[],
    )
    .unwrap();
    let deps = d.stacks[0].spec.dependencies();
    assert_eq!(deps[0].to_string(), "Network/n");
    assert_eq!(d.stacks[0].source.document, 0);
    assert_eq!(d.networks[0].source.document, 1);
    assert_eq!(d.networks[0].source.pos.line, 8);
}

#[test]
fn vip_policy_defaults_follow_keepalived_and_swarm() {
    let d = one(
        "VipPolicy",
        "  address: 10.0.10.39/24\n  interface: eth0\n  virtualRouterId: 12\n",
    )
    .unwrap();
    let v = &d.vip_policies[0].spec;
    assert_eq!(v.advert_interval, crate::manifest::Seconds(1.0));
    assert!(v.unicast && v.preempt);
    assert_eq!(v.image, "bosun/keepalived:2.2");
    assert_eq!(v.nodes.selector.role, Some(Role::Manager));
    assert!(v.auth.is_none() && v.checks.is_empty());
}

#[test]
fn vip_checks_default_interval_weight_fall_and_rise() {
    let d = one(
        "VipPolicy",
        "  address: fd00::39/64\n  interface: eth0\n  virtualRouterId: 12\n  checks: [{name: d, type: docker}]\n",
    )
    .unwrap();
    let c = &d.vip_policies[0].spec.checks[0];
    assert_eq!((c.interval, c.weight, c.fall, c.rise), (2, 0, 1, 1));
    assert_eq!(c.kind, CheckType::Docker);
}

#[test]
fn cluster_policy_defaults_to_runbook_recovery() {
    let d = one("ClusterPolicy", "  managers: 3\n").unwrap();
    let c = &d.cluster_policy.as_ref().unwrap().spec;
    assert_eq!(c.quorum.recovery, Recovery::Runbook);
    assert_eq!(c.quorum.grace_period.get().as_secs(), 60);
    assert_eq!(c.quorum.auto_recover_grace_period.get().as_secs(), 300);
    assert!(!c.quorum.auto_recover && !c.dedicated_managers && c.autolock.is_none());
}

#[test]
fn node_labels_and_placement_parse() {
    let d = one(
        "NodeLabels",
        "  rules:\n    - selector: {role: worker, labels: {zone: a}}\n      labels: {rack: 1}\n      availability: drain\n",
    )
    .unwrap();
    let rule = &d.node_labels[0].spec.rules[0];
    assert_eq!(rule.labels["rack"], "1");
    assert_eq!(rule.availability, Some(Availability::Drain));
    let d = one(
        "PlacementPolicy",
        "  selector: {services: [\"a_*\"]}\n  preferences: [{spread: node.labels.rack}]\n  maxReplicasPerNode: 0\n",
    )
    .unwrap();
    assert_eq!(d.placement_policies[0].spec.max_replicas_per_node, Some(0));
}

#[test]
fn merge_keys_and_anchors_work_in_manifests() {
    let d = one(
        "Network",
        "  x: &o {com.docker.network.driver.mtu: \"1400\"}\n"
            .replace("  x: &o", "  options: &o")
            .as_str(),
    )
    .unwrap();
    assert_eq!(
        d.networks[0].spec.options["com.docker.network.driver.mtu"],
        "1400"
    );
}

#[test]
fn non_manifest_yaml_is_ignored_unless_referenced() {
    let d = load_files(
        &[
            (
                "m.yaml",
                &format!("{H}kind: Network\nmetadata: {{name: n}}\nspec: {{}}\n"),
            ),
            ("broken-compose.yml", "services: [\n"),
            ("k8s.yaml", "apiVersion: v1\nkind: ConfigMap\n"),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(d.len(), 1);
}

#[test]
fn a_misspelled_api_group_on_a_bosun_kind_is_reported() {
    let r = load_files(
        &[(
            "m.yaml",
            "apiVersion: bosun/v1alpha1\nkind: Network\nmetadata: {name: n}\nspec: {}\n",
        )],
        &[],
    );
    assert_error(r, "unsupported apiVersion `bosun/v1alpha1`");
    let r = load_files(
        &[("m.yaml", "kind: Stack\nmetadata: {name: n}\nspec: {}\n")],
        &[],
    );
    assert_error(r, "missing field `apiVersion`");
}

// --- rules ------------------------------------------------------------------

#[test]
fn network_rules() {
    assert_error(
        one("Network", "  driver: macvlan\n  encrypted: true\n"),
        "encryption needs the overlay driver",
    );
    assert_error(
        one("Network", "  driver: bridge\n  ingress: true\n"),
        "must use the overlay driver",
    );
    assert_error(
        one(
            "Network",
            "  ipam: {config: [{subnet: 10.0.0.0/24, gateway: 10.0.0.0}]}\n",
        ),
        "network or broadcast address",
    );
    assert_error(
        one(
            "Network",
            "  ipam: {config: [{subnet: 10.0.0.0/24, gateway: 10.0.0.1/24}]}\n",
        ),
        "is not an IP address",
    );
    assert_error(
        one(
            "Network",
            "  ipam: {config: [{subnet: 10.0.0.0/24, ipRange: 10.0.1.0/25}]}\n",
        ),
        "is not inside subnet",
    );
    assert_error(
        one(
            "Network",
            "  ipam: {config: [{subnet: 10.0.0.0/16}, {subnet: 10.0.1.0/24}]}\n",
        ),
        "overlaps",
    );
    assert_error(
        one("Network", "  ipam: {config: [{subnet: \"fd00::/64\"}]}\n"),
        "needs `enableIPv6: true`",
    );
    assert!(
        one(
            "Network",
            "  enableIPv6: true\n  ipam: {config: [{subnet: \"fd00::/64\"}]}\n"
        )
        .is_ok()
    );
}

#[test]
fn subnets_of_different_networks_must_not_overlap() {
    let net = |name: &str, subnet: &str| {
        format!(
            "{H}kind: Network\nmetadata: {{name: {name}}}\nspec: {{ipam: {{config: [{{subnet: {subnet}}}]}}}}\n"
        )
    };
    let r = load_files(
        &[
            ("a.yaml", &net("a", "10.0.0.0/8")),
            ("b.yaml", &net("b", "10.1.0.0/16")),
        ],
        &[],
    );
    assert_error(r, "overlaps subnet 10.0.0.0/8 of Network/a");
}

#[test]
fn stack_rules() {
    assert_error(one("Stack", "  prune: true\n"), "needs `composeFiles`");
    assert_error(one("Stack", "  compose: {}\n"), "inline compose is empty");
    assert_error(
        one("Stack", "  compose: {services: {}}\n  env: {1BAD: x}\n"),
        "not a valid variable name",
    );
    assert_error(
        one(
            "Stack",
            "  compose: {services: {}}\n  dependsOn: [Stack/x]\n",
        ),
        "cannot depend on itself",
    );
    assert_error(
        one(
            "Stack",
            "  compose: {services: {}}\n  dependsOn: [VipPolicy/v]\n",
        ),
        "Network or a Stack only",
    );
    assert_error(
        one(
            "Stack",
            "  compose: {services: {}}\n  wait: {timeout: 0s}\n",
        ),
        "longer than 0",
    );
    assert!(
        one(
            "Stack",
            "  compose: {services: {}}\n  wait: {enabled: false, timeout: 0s}\n"
        )
        .is_ok()
    );
}

#[test]
fn referenced_files_are_checked_where_they_are() {
    let stack = format!(
        "{H}kind: Stack\nmetadata: {{name: s}}\nspec:\n  composeFiles: [c/a.yml]\n  envFiles: [c/.env]\n"
    );
    let r = load_files(
        &[
            ("m.yaml", &stack),
            ("c/a.yml", "services:\n  a: {image: x\n"),
            ("c/.env", "OK=1\nnot valid line\n"),
        ],
        &[],
    );
    let e = errors(r);
    assert!(e.contains("c/a.yml:3:"), "{e}");
    assert!(e.contains("invalid YAML in compose file"), "{e}");
    assert!(e.contains("c/.env:2:1: error: expected `KEY=value`"), "{e}");
    assert!(
        !e.contains("not valid line"),
        "env lines are never echoed: {e}"
    );
}

#[test]
fn node_label_rules() {
    assert_error(
        one("NodeLabels", "  rules: []\n"),
        "needs at least one rule",
    );
    assert_error(
        one(
            "NodeLabels",
            "  rules: [{selector: {hostname: a}, labels: {\"bad key\": x}}]\n",
        ),
        "is not valid",
    );
    let w = warnings(one("NodeLabels", "  rules: [{selector: {hostname: a}}]\n"));
    assert!(w.contains("it does nothing"), "{w}");
    assert_error(
        one(
            "NodeLabels",
            "  rules:\n    - {selector: {hostname: a}, labels: {rack: a}}\n    - {selector: {hostname: a}, labels: {rack: b}}\n",
        ),
        "label `rack` is set to `b` here and to `a`",
    );
}

#[test]
fn placement_rules() {
    assert_error(
        one(
            "PlacementPolicy",
            "  selector: {}\n  maxReplicasPerNode: 1\n",
        ),
        "selector is empty",
    );
    assert_error(
        one(
            "PlacementPolicy",
            "  selector: {services: [x]}\n  constraints: [\"node.hostnam == a\"]\n",
        ),
        "did you mean `node.hostname`?",
    );
    assert_error(
        one(
            "PlacementPolicy",
            "  selector: {services: [x]}\n  preferences: [{spread: \"node.labels a\"}]\n",
        ),
        "single node descriptor",
    );
    let w = warnings(one("PlacementPolicy", "  selector: {services: [x]}\n"));
    assert!(w.contains("it does nothing"), "{w}");
}

fn vip(extra: &str) -> String {
    format!("  address: 10.0.10.39/24\n  interface: ens160\n  virtualRouterId: 12\n{extra}")
}

#[test]
fn vip_rules() {
    assert_error(
        one("VipPolicy", &vip("  advertInterval: 0\n")),
        "must be greater than 0",
    );
    assert_error(
        one(
            "VipPolicy",
            &vip("").replace("ens160", "a-very-long-interface"),
        ),
        "not a valid interface name",
    );
    assert_error(
        one("VipPolicy", &vip("").replace("39/24", "0/24")),
        "network or broadcast address",
    );
    assert_error(
        one("VipPolicy", &vip("  nodes: {selector: {}}\n")),
        "selector is empty",
    );
    assert_error(
        one("VipPolicy", &vip("  auth: {}\n")),
        "needs `passwordFile` or `passwordEnv`",
    );
    assert_error(
        one(
            "VipPolicy",
            &vip("  auth: {passwordFile: a, passwordEnv: B}\n"),
        ),
        "not both",
    );
    let w = warnings(one("VipPolicy", &vip("").replace("12", "51")));
    assert!(w.contains("51 is the default"), "{w}");
}

#[test]
fn vip_fractional_intervals_are_vrrp3_in_hundredths_without_authentication() {
    assert!(one("VipPolicy", &vip("  advertInterval: 0.25\n")).is_ok());
    assert_error(
        one("VipPolicy", &vip("  advertInterval: 0.125\n")),
        "hundredths of a second up to 40.95, got 0.125",
    );
    assert_error(
        one("VipPolicy", &vip("  advertInterval: 300\n")),
        "at most 255 seconds",
    );
    assert_error(
        one(
            "VipPolicy",
            &vip("  advertInterval: 0.5\n  auth: {passwordEnv: VIP_PASS}\n"),
        ),
        "VRRPv3 (the fractional advertInterval 0.5) has no authentication",
    );
    assert_error(
        one(
            "VipPolicy",
            &vip("  nodes: {interfaces: {swarm3: 'en 1'}}\n"),
        ),
        "`en 1` is not a valid interface name",
    );
}

/// The `homelab-ha` numbers: with dockerd dead on the 200 node its
/// priority is 210, the healthy 100 node has 130: the address stays.
#[test]
fn vip_weight_analysis_warns_when_a_failing_check_cannot_move_the_address() {
    let homelab = "  nodes: {priorities: {swarm1: 200, swarm2: 100, swarm3: 50}}\n  checks:\n    - {name: docker, type: docker, weight: 20}\n    - {name: traefik, type: http, url: 'http://127.0.0.1:8080/ping', weight: 10}\n";
    let w = warnings(one("VipPolicy", &vip(homelab)));
    assert!(
        w.contains("spec.checks[0].weight: when `docker` fails on swarm1 (priority 230 while healthy) its priority is 210, not below swarm2's 130: the address stays on swarm1; use weight 101 or beyond"),
        "{w}"
    );
    assert!(w.contains("when `traefik` fails on swarm1"), "{w}");
    // Weights that do move it, a weight 0 (FAULT), and a negative weight
    // large enough: no warning.
    let moving = "  nodes: {priorities: {a: 110, b: 100}}\n  checks:\n    - {name: docker, type: docker, weight: 20}\n    - {name: f, type: docker, weight: 0}\n    - {name: n, type: docker, weight: -30}\n";
    let w = warnings(one("VipPolicy", &vip(moving)));
    assert!(!w.contains("stays on"), "{w}");
    // A negative weight too small to move it says which one would.
    let small = "  nodes: {priorities: {a: 20, b: 10}}\n  checks:\n    - {name: n, type: docker, weight: -5}\n";
    let w = warnings(one("VipPolicy", &vip(small)));
    assert!(
        w.contains(
            "its priority is 15, not below b's 10: the address stays on a; use weight -11 or beyond"
        ),
        "{w}"
    );
}

#[test]
fn vip_checks_need_their_fields_and_sane_numbers() {
    let check = |c: &str| one("VipPolicy", &vip(&format!("  checks: [{c}]\n")));
    assert_error(
        check("{name: t, type: tcp, host: h}"),
        "needs `host` and `port`",
    );
    assert_error(
        check("{name: t, type: tcp, address: nope}"),
        "is not `host:port`",
    );
    assert!(check("{name: t, type: tcp, host: 127.0.0.1, port: 80}").is_ok());
    assert_error(check("{name: s, type: script}"), "needs `script`");
    assert_error(
        check("{name: h, type: http, url: ftp://x}"),
        "not an http:// or https:// URL",
    );
    assert_error(
        check("{name: d, type: docker, url: \"http://x\"}"),
        "does not apply to a `docker` check",
    );
    assert_error(
        check("{name: d, type: docker, interval: 0}"),
        "must be greater than 0 seconds",
    );
    assert_error(
        check("{name: d, type: docker, weight: -254}"),
        "between -253 and 253",
    );
    assert_error(
        check("{name: d, type: docker, rise: 0}"),
        "must be at least 1",
    );
    let w = warnings(one(
        "VipPolicy",
        &vip("  preempt: false\n  checks: [{name: d, type: docker, weight: 10}]\n"),
    ));
    assert!(w.contains("nopreempt"), "{w}");
}

#[test]
fn vip_password_from_env_is_checked_without_printing_it() {
    let doc = format!(
        "{H}kind: VipPolicy\nmetadata: {{name: v}}\nspec:\n{}",
        vip("  auth: {passwordEnv: VIP_PASS}\n")
    );
    let w = warnings(load_files(&[("m.yaml", &doc)], &[]));
    assert!(w.contains("`VIP_PASS` is not set here"), "{w}");
    let e = errors(load_files(
        &[("m.yaml", &doc)],
        &[("VIP_PASS", "longsecret")],
    ));
    assert!(e.contains("has 10 characters"), "{e}");
    assert!(!e.contains("longsecret"));
    assert!(load_files(&[("m.yaml", &doc)], &[("VIP_PASS", "8charsok")]).is_ok());
}

#[test]
fn vip_addresses_are_unique_across_policies() {
    let v = |name: &str, vrid: u32| {
        format!(
            "{H}kind: VipPolicy\nmetadata: {{name: {name}}}\nspec:\n  address: 10.0.10.39/24\n  interface: eth1\n  virtualRouterId: {vrid}\n"
        )
    };
    assert_error(
        load_files(&[("a.yaml", &v("a", 1)), ("b.yaml", &v("b", 2))], &[]),
        "is also the address of VipPolicy/a",
    );
}

#[test]
fn cluster_policy_rules() {
    for (managers, fragment) in [
        (1, "tolerate no manager failure"),
        (4, "an even count"),
        (9, "at most 7"),
    ] {
        let w = warnings(one("ClusterPolicy", &format!("  managers: {managers}\n")));
        assert!(w.contains(fragment), "{managers}: {w}");
    }
    assert!(warnings(one("ClusterPolicy", "  managers: 5\n")).is_empty());
    assert_error(
        one(
            "ClusterPolicy",
            "  quorum: {autoRecover: true, recovery: detect}\n",
        ),
        "autoRecover needs",
    );
    assert_error(
        one("ClusterPolicy", "  quorum: {gracePeriod: 0s}\n"),
        "must be longer than 0",
    );
}

#[test]
fn diagnostics_render_file_line_column_object_and_path() {
    let e = errors(one("VipPolicy", &vip("").replace("12", "256")));
    assert!(
        e.ends_with("m.yaml:7:3: error: VipPolicy/x: spec.virtualRouterId: must be between 1 and 255, got 256"),
        "{e}"
    );
}

#[test]
fn kinds_and_refs_parse_with_suggestions() {
    assert_eq!("VipPolicy".parse::<Kind>().unwrap(), Kind::VipPolicy);
    assert!(
        "vippolicy"
            .parse::<Kind>()
            .unwrap_err()
            .contains("did you mean `VipPolicy`")
    );
    assert!("Stack/".parse::<ObjectRef>().is_err());
    assert_eq!("Stack/a".parse::<ObjectRef>().unwrap().name, "a");
}

#[test]
fn files_swapped_for_symlinks_out_after_validation_are_refused_when_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, content: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    };
    write(
        "stack.yaml",
        &format!(
            "{H}kind: Stack\nmetadata: {{name: app}}\nspec:\n  composeFiles: [compose.yml]\n  envFiles: [app.env]\n"
        ),
    );
    write(
        "compose.yml",
        "services:\n  db:\n    image: postgres:16\n    secrets: [db]\n    env_file: [db.env]\nsecrets:\n  db:\n    file: db.txt\n",
    );
    for f in ["db.txt", "app.env", "db.env"] {
        write(f, "A=1\n");
    }
    let env = std::collections::BTreeMap::new();
    let desired = load_with(dir.path(), &env).unwrap_or_else(|d| panic!("{d}"));
    let stack = &desired.stacks[0];
    assert!(stack.convert(&env, &desired.confinement).is_ok());

    // Each file in turn becomes a symlink to a host file: the read after
    // validation checks again.
    for f in ["db.txt", "app.env", "db.env", "compose.yml"] {
        let path = dir.path().join(f);
        let saved = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &path).unwrap();
        let err = stack
            .convert(&env, &desired.confinement)
            .expect_err("escape refused")
            .to_string();
        assert!(
            err.contains("resolves to /etc/hostname, outside the source root"),
            "{f}: {err}"
        );
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, saved).unwrap();
    }
}

#[test]
fn a_desired_state_without_a_confinement_reads_nothing() {
    let desired = load_files(
        &[
            (
                "s.yaml",
                &format!(
                    "{H}kind: Stack\nmetadata: {{name: app}}\nspec:\n  composeFiles: [c.yml]\n"
                ),
            ),
            ("c.yml", "services:\n  web:\n    image: nginx:1.27\n"),
        ],
        &[],
    );
    // The temp dir is gone, but the stack holds its compose file's path: a
    // default confinement refuses before looking.
    let stack = &desired.unwrap().stacks[0];
    let env = std::collections::BTreeMap::new();
    let err = stack
        .convert(&env, &crate::source::Confinement::default())
        .expect_err("nothing allowed");
    assert!(err.to_string().contains("compose file"), "{err}");
}
