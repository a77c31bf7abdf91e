//! Field-level differences between two JSON values.

use serde_json::Value;

use super::Change;

/// Every leaf that differs between `old` and `new`, depth first, object
/// keys in sorted order, list items by index. A member present on one side
/// only is one change (the whole subtree), not one per leaf.
#[must_use]
pub fn diff(old: &Value, new: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk(String::new(), Some(old), Some(new), &mut out);
    out
}

fn walk(path: String, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<Change>) {
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                walk(join_key(&path, k), a.get(k), b.get(k), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            for i in 0..a.len().max(b.len()) {
                walk(format!("{path}[{i}]"), a.get(i), b.get(i), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(Change {
            path,
            old: a.cloned(),
            new: b.cloned(),
        }),
    }
}

/// `Parent.Key`, or `Parent["com.docker.stack.image"]` for keys that are
/// not plain identifiers (label keys).
fn join_key(path: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match (path.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{}]", Value::String(key.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_name_nested_fields_list_items_and_label_keys() {
        let a = json!({"TaskTemplate": {"ContainerSpec": {"Env": ["A=1", "B=2"], "Image": "nginx:1.25"}},
                       "Labels": {"com.docker.stack.image": "nginx"}});
        let b = json!({"TaskTemplate": {"ContainerSpec": {"Env": ["A=1", "B=2", "X=1"], "Image": "nginx:1.27"}},
                       "Labels": {}});
        let paths: Vec<String> = diff(&a, &b).into_iter().map(|c| c.path).collect();
        assert_eq!(
            paths,
            [
                "Labels[\"com.docker.stack.image\"]",
                "TaskTemplate.ContainerSpec.Env[2]",
                "TaskTemplate.ContainerSpec.Image"
            ]
        );
    }

    #[test]
    fn equal_values_have_no_changes() {
        let v = json!({"a": [1, {"b": null}]});
        assert!(diff(&v, &v).is_empty());
    }
}
