//! `bosun schema`: the committed `crds/` match the Rust types.

use super::support::cli;

#[test]
fn committed_crds_are_up_to_date() {
    let out = cli::bosun()
        .args(["schema", "--check"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run bosun");
    assert!(
        out.status.success(),
        "crds/ is stale; run `cargo run -- schema`:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_stale_schema_folder_fails_the_check_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let crds = dir.path().join("crds");
    let write = cli::bosun()
        .args(["schema", "--dir"])
        .arg(&crds)
        .output()
        .unwrap();
    assert!(write.status.success());
    std::fs::write(crds.join("stack.schema.json"), "{}\n").unwrap();
    std::fs::remove_file(crds.join("network.schema.json")).unwrap();
    let check = cli::bosun()
        .args(["schema", "--check", "--dir"])
        .arg(&crds)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(stderr.contains("stack.schema.json is stale"), "{stderr}");
    assert!(
        stderr.contains("network.schema.json is missing"),
        "{stderr}"
    );
    assert!(stderr.contains("run `bosun schema"), "{stderr}");
}

#[test]
fn schema_generation_is_deterministic_and_covers_every_kind() {
    let first = bosun::manifest::schema::files();
    let second = bosun::manifest::schema::files();
    assert_eq!(first, second);
    let names: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "network.schema.json",
            "stack.schema.json",
            "node-labels.schema.json",
            "placement-policy.schema.json",
            "vip-policy.schema.json",
            "cluster-policy.schema.json",
            "bosun.schema.json"
        ]
    );
}

#[test]
fn the_combined_schema_dispatches_on_kind() {
    let schema = bosun::manifest::schema::combined_schema();
    let one_of = schema["oneOf"].as_array().unwrap();
    assert_eq!(one_of.len(), 6);
    for kind in [
        "Network",
        "Stack",
        "NodeLabels",
        "PlacementPolicy",
        "VipPolicy",
        "ClusterPolicy",
    ] {
        let def = &schema["definitions"][kind];
        assert_eq!(def["properties"]["kind"]["const"], kind);
        assert_eq!(
            def["properties"]["apiVersion"]["const"],
            "bosun.dev/v1alpha1"
        );
        assert_eq!(def["additionalProperties"], false);
    }
    let vip = bosun::manifest::schema::kind_schema(bosun::manifest::Kind::VipPolicy);
    let vrid = &vip["definitions"]["VipPolicySpec"]["properties"]["virtualRouterId"];
    assert_eq!(vrid["minimum"], 1);
    assert_eq!(vrid["maximum"], 255);
    let stack = bosun::manifest::schema::kind_schema(bosun::manifest::Kind::Stack);
    assert_eq!(
        stack["definitions"]["Duration"]["pattern"],
        bosun::manifest::duration::PATTERN
    );
}
