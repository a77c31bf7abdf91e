use super::*;

fn opts() -> LoadOptions {
    LoadOptions::new("/work/stack").var("HOME", "/home/u")
}

fn load1(text: &str) -> Project {
    load_str("stack.yml", text, &opts()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn merge_keys_apply_before_interpolation() {
    let p = load1(
        "x-base: &base\n  image: ${IMG:-busybox}\n  user: \"1000\"\nservices:\n  a:\n    <<: *base\n    user: \"0\"\n",
    );
    let a = p.service("a").unwrap();
    assert_eq!(a.image, "busybox");
    assert_eq!(a.user, "0");
}

#[test]
fn required_variable_errors_name_file_line_and_key() {
    let err = load_str(
        "s.yml",
        "services:\n  web:\n    image: x\n    hostname: ${DOMAIN?Variable not set}\n",
        &opts(),
    )
    .unwrap_err();
    let i = &err.issues[0];
    assert_eq!((i.file.as_str(), i.line), ("s.yml", 4));
    assert_eq!(i.path, "services.web.hostname");
    assert!(
        i.message
            .contains("required variable DOMAIN is missing a value: Variable not set"),
        "{err}"
    );
}

#[test]
fn profiles_are_rejected_like_docker() {
    let err = load_str(
        "k.yml",
        "services:\n  db:\n    image: x\n    profiles: [a]\n",
        &opts(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("k.yml:4:5: services.db Additional property profiles is not allowed"),
        "{err}"
    );
}

#[test]
fn unsupported_and_deprecated_options_warn() {
    let p = load1(
        "services:\n  a:\n    image: x\n    build: .\n    restart: always\n    container_name: c\n",
    );
    assert_eq!(
        p.warnings()[0],
        "Ignoring unsupported options: build, restart"
    );
    assert!(p.warnings()[1].starts_with("Ignoring deprecated options:\n\ncontainer_name: "));
}

#[test]
fn forbidden_options_fail() {
    let err = load_str(
        "f.yml",
        "services:\n  a:\n    image: x\n    extends: b\n",
        &opts(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("extends"), "{err}");
}

#[test]
fn missing_image_fails() {
    let err = load_str("f.yml", "services:\n  a:\n    command: x\n", &opts()).unwrap_err();
    assert!(err.to_string().contains("no image specified"), "{err}");
}

#[test]
fn files_merge_like_docker() {
    let a = "services:\n  web:\n    image: a\n    ports: [\"80:80\"]\n    environment: {A: \"1\"}\n    deploy:\n      replicas: 2\n";
    let b = "services:\n  web:\n    image: b\n    ports: [\"80:8080\", \"443:443\"]\n    environment: {B: \"2\"}\n  db:\n    image: db\n";
    let p = load_sources(
        &[("a.yml".into(), a.into()), ("b.yml".into(), b.into())],
        &opts(),
    )
    .unwrap();
    let web = p.service("web").unwrap();
    assert_eq!(web.image, "b");
    assert_eq!(
        web.ports
            .iter()
            .map(|p| (p.published, p.target))
            .collect::<Vec<_>>(),
        vec![(80, 8080), (443, 443)]
    );
    assert_eq!(web.environment.len(), 2);
    assert_eq!(web.deploy.replicas, Some(2));
    assert!(p.service("db").is_some());
}

#[test]
fn conversion_names_labels_and_defaults_match_docker() {
    let p = load1(
        "services:\n  web:\n    image: nginx\n    command: sh -c 'echo hi'\n    volumes: [\"./data/:/data\", \"named:/n\", \"anon\"]\n    deploy:\n      labels: {a: }\nvolumes:\n  named:\n",
    );
    let objs = convert(&p, "st").unwrap();
    let svc = serde_json::to_value(&objs.services[0]).unwrap();
    assert_eq!(svc["Name"], "st_web");
    assert_eq!(svc["Labels"]["com.docker.stack.image"], "nginx");
    assert_eq!(svc["Labels"]["a"], "");
    assert_eq!(svc["Mode"], serde_json::json!({"Replicated": {}}));
    assert_eq!(svc["EndpointSpec"], serde_json::json!({}));
    assert_eq!(svc["TaskTemplate"]["ForceUpdate"], 0);
    assert_eq!(svc["TaskTemplate"]["Resources"], serde_json::json!({}));
    let cs = &svc["TaskTemplate"]["ContainerSpec"];
    assert_eq!(cs["Args"], serde_json::json!(["sh", "-c", "echo hi"]));
    assert_eq!(
        cs["Privileges"],
        serde_json::json!({"CredentialSpec": null, "SELinuxContext": null, "NoNewPrivileges": false})
    );
    assert_eq!(cs["Mounts"][0]["Source"], "/work/stack/data");
    assert_eq!(cs["Mounts"][1]["Source"], "st_named");
    assert_eq!(
        cs["Mounts"][2],
        serde_json::json!({"Type": "volume", "Target": "anon"})
    );
    assert_eq!(
        svc["TaskTemplate"]["Networks"],
        serde_json::json!([{"Target": "st_default", "Aliases": ["web"]}])
    );
    assert_eq!(objs.networks[0].name, "st_default");
    assert_eq!(objs.networks[0].driver, "overlay");
}

#[test]
fn bosunify_hashes_config_names_and_renames_references() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.txt"), "hello").unwrap();
    let p = load_str(
        "s.yml",
        "services:\n  a:\n    image: x\n    configs: [c]\nconfigs:\n  c:\n    file: ./c.txt\n",
        &LoadOptions::new(dir.path()),
    )
    .unwrap();
    let objs = bosunify(convert(&p, "st").unwrap(), "Stack/st");
    let name = &objs.configs[0].name;
    assert!(
        name.starts_with("st_c-") && name.len() == "st_c-".len() + 8,
        "{name}"
    );
    let cs = objs.services[0]
        .task_template
        .container_spec
        .as_ref()
        .unwrap();
    assert_eq!(&cs.configs[0].config_name, name);
    assert_eq!(objs.services[0].labels[LABEL_OWNER], "Stack/st");
    assert_eq!(objs.configs[0].labels[LABEL_MANAGED_BY], "bosun");
}

#[test]
fn plus_alternative_is_an_invalid_format_like_docker() {
    let err = load_str("s.yml", "services:\n  a:\n    image: ${X:+y}\n", &opts()).unwrap_err();
    assert!(
        err.to_string()
            .contains("invalid interpolation format for services.a.image"),
        "{err}"
    );
}

fn service_json(text: &str) -> serde_json::Value {
    let p = load1(text);
    let objs = convert(&p, "st").unwrap_or_else(|e| panic!("{e}"));
    serde_json::to_value(&objs.services[0]).unwrap()
}

#[test]
fn conformance_traps_from_the_corpus() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.txt"), "x").unwrap();
    let p = load_str(
        "t.yml",
        "services:\n  a:\n    image: x\n    user: 0:0\n    deploy:\n    secrets:\n      - source: s\n        mode: 0400\n      - t\n    healthcheck:\n      test: curl -f http://x/\n      start_period: 30s\n    networks: [host]\nsecrets:\n  s:\n    file: ./s.txt\n  t:\n    external: true\nnetworks:\n  host:\n    external: true\n",
        &LoadOptions::new(dir.path()),
    )
    .unwrap();
    let objs = convert(&p, "st").unwrap();
    let svc = serde_json::to_value(&objs.services[0]).unwrap();
    let cs = &svc["TaskTemplate"]["ContainerSpec"];
    assert_eq!(cs["User"], "0:0");
    assert_eq!(svc["Mode"], serde_json::json!({"Replicated": {}}));
    assert_eq!(cs["Secrets"][0]["File"]["Mode"], 256);
    assert_eq!(cs["Secrets"][1]["File"]["Mode"], 292);
    assert_eq!(cs["Secrets"][1]["SecretName"], "t");
    assert_eq!(cs["Secrets"][1]["File"]["UID"], "0");
    assert_eq!(
        cs["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "curl -f http://x/"])
    );
    assert_eq!(cs["Healthcheck"]["StartPeriod"], 30_000_000_000_i64);
    assert_eq!(
        svc["TaskTemplate"]["Networks"],
        serde_json::json!([{"Target": "host"}])
    );
    assert_eq!(objs.external_networks, vec!["host".to_string()]);
    assert_eq!(objs.external_secrets, vec!["t".to_string()]);
    assert!(objs.networks.is_empty());
}

#[test]
fn replicas_zero_and_zero_durations_follow_go_omitempty() {
    let svc = service_json(
        "services:\n  a:\n    image: x\n    deploy:\n      replicas: 0\n      rollback_config:\n        delay: 0s\n        monitor: 0s\n        max_failure_ratio: 0\n      labels:\n        k:\n",
    );
    assert_eq!(
        svc["Mode"],
        serde_json::json!({"Replicated": {"Replicas": 0}})
    );
    assert_eq!(
        svc["RollbackConfig"],
        serde_json::json!({"Parallelism": 1, "MaxFailureRatio": 0.0, "Order": ""})
    );
    assert_eq!(svc["Labels"]["k"], "");
}

#[test]
fn ports_sort_by_published_and_long_syntax_passes_through() {
    let svc = service_json(
        "services:\n  a:\n    image: x\n    ports:\n      - \"8080:80\"\n      - target: 53\n        published: 53\n        protocol: udp\n        mode: host\n      - 443:443\n",
    );
    assert_eq!(
        svc["EndpointSpec"]["Ports"],
        serde_json::json!([
            {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 53, "PublishMode": "host"},
            {"Protocol": "tcp", "TargetPort": 443, "PublishedPort": 443, "PublishMode": "ingress"},
            {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
        ])
    );
}

#[test]
fn restart_falls_back_to_the_container_policy() {
    let svc = service_json("services:\n  a:\n    image: x\n    restart: on-failure:5\n");
    assert_eq!(
        svc["TaskTemplate"]["RestartPolicy"],
        serde_json::json!({"Condition": "on-failure", "MaxAttempts": 5})
    );
    let svc = service_json("services:\n  a:\n    image: x\n    restart: unless-stopped\n");
    assert_eq!(
        svc["TaskTemplate"]["RestartPolicy"],
        serde_json::json!({"Condition": "any"})
    );
}

#[test]
fn extra_hosts_caps_ulimits_and_resources_convert_like_docker() {
    let svc = service_json(
        "services:\n  a:\n    image: x\n    extra_hosts: [\"h:1.2.3.4\", \"v6=[::1]\"]\n    cap_add: [net_admin, ALL]\n    cap_drop: [sys_admin]\n    ulimits:\n      nofile: {soft: 1, hard: 2}\n      nproc: 5\n    deploy:\n      resources:\n        limits: {cpus: '1.5', memory: 1G, pids: 10}\n        reservations:\n          generic_resources:\n            - discrete_resource_spec: {kind: gpu, value: 2}\n",
    );
    let cs = &svc["TaskTemplate"]["ContainerSpec"];
    assert_eq!(cs["Hosts"], serde_json::json!(["1.2.3.4 h", "::1 v6"]));
    assert_eq!(cs["CapabilityAdd"], serde_json::json!(["ALL"]));
    assert_eq!(cs["CapabilityDrop"], serde_json::json!(["CAP_SYS_ADMIN"]));
    assert_eq!(
        cs["Ulimits"],
        serde_json::json!([{"Name": "nofile", "Hard": 2, "Soft": 1}, {"Name": "nproc", "Hard": 5, "Soft": 5}])
    );
    assert_eq!(
        svc["TaskTemplate"]["Resources"],
        serde_json::json!({
            "Limits": {"NanoCPUs": 1_500_000_000_i64, "MemoryBytes": 1_073_741_824_i64, "Pids": 10},
            "Reservations": {"GenericResources": [{"DiscreteResourceSpec": {"Kind": "gpu", "Value": 2}}]}
        })
    );
}

#[test]
fn bad_sizes_and_undefined_references_name_the_key() {
    let err = load_str(
        "s.yml",
        "services:\n  a:\n    image: x\n    deploy:\n      resources:\n        limits:\n          memory: 12 parsecs\n",
        &opts(),
    )
    .unwrap_err();
    assert_eq!(err.issues[0].line, 7, "{err}");
    assert!(err.issues[0].message.contains("memory"), "{err}");
    let p =
        load1("services:\n  a:\n    image: x\n    networks: [nope]\n    volumes: [\"vol:/v\"]\n");
    let err = convert(&p, "st").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("undefined network \"nope\""), "{text}");
    assert!(text.contains("undefined volume \"vol\""), "{text}");
    assert_eq!(err.issues[0].line, 2);
}

#[test]
fn tilde_binds_expand_against_the_home_option() {
    let p = load_str(
        "s.yml",
        "services:\n  a:\n    image: x\n    volumes: [\"~/cfg:/cfg\"]\n",
        &LoadOptions::new("/w").home_dir("/home/me"),
    )
    .unwrap();
    assert_eq!(p.services[0].volumes[0].source, "/home/me/cfg");
}

#[test]
fn empty_environment_entries_take_the_interpolation_environment() {
    let p = load_str(
        "s.yml",
        "services:\n  a:\n    image: x\n    environment: [FROM_ENV, EMPTY=, UNSET]\n",
        &LoadOptions::new("/w")
            .var("FROM_ENV", "1")
            .var("EMPTY", "2"),
    )
    .unwrap();
    let env = &p.services[0].environment;
    assert_eq!(env["FROM_ENV"].as_deref(), Some("1"));
    assert_eq!(env["EMPTY"].as_deref(), Some("2"));
    assert_eq!(env["UNSET"], None);
}

fn load2(a: &str, b: &str) -> Project {
    load_sources(
        &[("a.yml".into(), a.into()), ("b.yml".into(), b.into())],
        &opts(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn merged_pointer_fields_follow_mergo_zero_value_rules() {
    let base = "services:\n  s:\n    image: a\n    init: true\n    stop_grace_period: 20s\n    healthcheck:\n      test: [CMD, 'true']\n      interval: 10s\n      retries: 3\n    logging:\n      driver: json-file\n    deploy:\n      restart_policy: {delay: 5s, window: 10s}\n    environment: {SET: base, EMPTY: '', KEEP: base}\n";
    let over = "services:\n  s:\n    init: false\n    stop_grace_period: 0s\n    healthcheck:\n      test: [CMD, 'false']\n      interval: 0s\n      timeout: 3s\n      retries: 0\n    logging:\n      options: {max-size: 1m}\n    deploy:\n      restart_policy: {delay: 0s, condition: on-failure}\n    environment: {SET: '', EMPTY: null, KEEP: over}\n    ports: ['18611:81', '18610:80']\n    dns: []\n";
    let p = load2(base, over);
    let s = p.service("s").unwrap();
    let h = s.healthcheck.as_ref().unwrap();
    assert_eq!(h.test, ["CMD", "true", "CMD", "false"]);
    assert_eq!(h.interval, Some(10_000_000_000));
    assert_eq!(h.timeout, Some(3_000_000_000));
    assert_eq!(h.retries, Some(0));
    assert_eq!(s.init, Some(true));
    assert_eq!(s.stop_grace_period, Some(20_000_000_000));
    let rp = s.deploy.restart_policy.as_ref().unwrap();
    assert_eq!(
        (rp.condition.as_str(), rp.delay),
        ("on-failure", Some(5_000_000_000))
    );
    assert!(s.logging.as_ref().unwrap().options.is_empty());
    assert_eq!(s.environment["SET"].as_deref(), Some("base"));
    assert_eq!(s.environment["EMPTY"], None);
    assert_eq!(s.environment["KEEP"].as_deref(), Some("over"));
    let ports: Vec<u32> = s.ports.iter().map(|p| p.published).collect();
    assert_eq!(ports, [18611, 18610]);
    assert_eq!(s.dns, None);
}

#[test]
fn unquoted_timestamps_print_like_go_and_fail_string_fields() {
    let p = load1(
        "services:\n  s:\n    image: a\n    environment:\n      D: 2001-12-14\n      Q: '2001-12-14'\n      O: 2001-12-14t21:59:43.10-05:00\n    labels: {x: 2001-12-14T21:59:43Z}\n",
    );
    let s = p.service("s").unwrap();
    assert_eq!(
        s.environment["D"].as_deref(),
        Some("2001-12-14 00:00:00 +0000 UTC")
    );
    assert_eq!(s.environment["Q"].as_deref(), Some("2001-12-14"));
    assert_eq!(
        s.environment["O"].as_deref(),
        Some("2001-12-14 21:59:43.1 -0500 -0500")
    );
    assert_eq!(s.labels["x"], "2001-12-14 21:59:43 +0000 UTC");
    let err = load_str(
        "stack.yml",
        "services:\n  s:\n    image: 2001-12-14\n",
        &opts(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("'Image' expected type 'string', got unconvertible type 'time.Time'"),
        "{err}"
    );
}
