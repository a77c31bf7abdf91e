use super::*;

fn one(text: &str) -> Node {
    let mut docs = parse(text).expect("valid yaml");
    assert_eq!(docs.len(), 1);
    docs.remove(0)
}

#[test]
fn positions_point_at_keys_and_values() {
    let doc = one("a:\n  b: 1\n  c:\n    - x\n    - y\n");
    let p = Path::root().key("a").key("c").index(1);
    assert_eq!(doc.pos_of(&p.0), Pos { line: 5, column: 7 });
    assert_eq!(
        doc.pos_of(&Path::root().key("a").key("b").0),
        Pos { line: 2, column: 3 }
    );
    // A missing key points at the deepest existing one.
    assert_eq!(
        doc.pos_of(&Path::root().key("a").key("zz").0),
        Pos { line: 1, column: 1 }
    );
}

#[test]
fn core_schema_types_scalars() {
    let doc = one(
        "i: 12\nh: 0x1f\no: 0o17\nf: 1.5\nb: true\nn: ~\ne:\ns: '12'\nt: yes\nu: 0:0\nv: !!str 5\n",
    );
    let j = doc.to_json();
    assert_eq!(j["i"], 12);
    assert_eq!(j["h"], 31);
    assert_eq!(j["o"], 15);
    assert_eq!(j["f"], 1.5);
    assert_eq!(j["b"], true);
    assert!(j["n"].is_null());
    assert!(j["e"].is_null());
    assert_eq!(j["s"], "12");
    assert_eq!(j["t"], "yes");
    assert_eq!(j["u"], "0:0");
    assert_eq!(j["v"], "5");
}

#[test]
fn multi_document_streams_keep_every_document() {
    let docs = parse("a: 1\n---\nb: 2\n---\n").unwrap();
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[1].pos.line, 3);
    assert!(docs[2].is_null());
}

#[test]
fn aliases_expand_and_merge_keys_apply() {
    let mut doc =
        one("base: &b {x: 1, y: 2}\nother: &o {z: 3}\nm:\n  <<: [*b, *o]\n  y: 9\nalias: *b\n");
    doc.apply_merge().unwrap();
    let j = doc.to_json();
    assert_eq!(j["m"], serde_json::json!({"y": 9, "x": 1, "z": 3}));
    assert_eq!(j["alias"], serde_json::json!({"x": 1, "y": 2}));
    // The alias is reported where it is used.
    assert_eq!(doc.get("alias").unwrap().pos.line, 6);
}

#[test]
fn merge_of_a_scalar_is_an_error_with_position() {
    let mut doc = one("a:\n  <<: 5\n");
    let err = doc.apply_merge().unwrap_err();
    assert_eq!(err.pos.line, 2);
}

#[test]
fn duplicate_keys_are_rejected() {
    let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
    assert_eq!(err.pos.line, 3);
    assert!(err.message.contains("`a` already defined"), "{err}");
}

#[test]
fn syntax_errors_carry_a_line() {
    let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
    assert!(err.pos.line >= 1);
    let err = parse("a:\n  b: 1\n c: 2\n").unwrap_err();
    assert_eq!(err.pos.line, 3, "{err}");
}

#[test]
fn unknown_alias_is_an_error() {
    assert!(parse("a: *nope\n").is_err());
}

#[test]
#[allow(clippy::format_push_string)]
fn alias_bombs_are_bounded() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let prev = i - 1;
        let refs = vec![format!("*a{prev}"); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let err = parse(&text).unwrap_err();
    assert!(err.message.contains("more than"), "{err}");
}

#[test]
fn paths_display_like_field_paths() {
    let p = Path::root()
        .key("spec")
        .key("ipam")
        .key("config")
        .index(0)
        .key("subnet");
    assert_eq!(p.to_string(), "spec.ipam.config[0].subnet");
}
