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
