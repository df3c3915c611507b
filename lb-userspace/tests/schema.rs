//! The config's JSON Schema: the shipped file is the generated one, the
//! shipped configs validate against it, and it agrees with `lb check` on the
//! keys it names and on typical mistakes.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&lb::config::schema::json_schema()).expect("a valid JSON Schema")
}

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).expect("YAML")
}

/// The schema's errors for `doc`, as text.
fn schema_errors(doc: &Value) -> Vec<String> {
    validator()
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn shipped_schema_is_the_generated_one() {
    let shipped = std::fs::read_to_string(repo_file("config/lb.schema.json")).unwrap();
    assert!(
        shipped == lb::config::schema::json_schema_text(),
        "config/lb.schema.json is stale: regenerate it with \
         `cargo run -p lb-userspace --bin lb -- schema > config/lb.schema.json`"
    );
}

#[test]
fn shipped_configs_validate() {
    for file in ["config/lb.yaml", "packaging/lb.yaml"] {
        let text = std::fs::read_to_string(repo_file(file)).unwrap();
        assert_eq!(schema_errors(&yaml(&text)), Vec::<String>::new(), "{file}");
        assert!(lb::config::parse(&text).is_ok(), "{file}");
    }
}

#[test]
fn schema_is_draft_07_and_describes_the_keys() {
    let schema = lb::config::schema::json_schema();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    let top = schema["properties"].as_object().unwrap();
    for key in [
        "maglev_table_size",
        "conntrack_entries",
        "encapsulation",
        "services",
    ] {
        assert!(top.contains_key(key), "no {key}");
    }
    assert_eq!(schema["required"], json!(["services"]));
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(top["maglev_table_size"]["default"], 65537);
    // Doc comments of the config types become editor hover text.
    let description = top["maglev_table_size"]["description"].as_str().unwrap();
    assert!(description.contains("Maglev table size"), "{description}");
}

const VALID: &str = "\
services:
  - name: web
    vip: 198.18.100.1
    port: 80
    protocol: tcp
    backends:
      - address: 198.18.3.2
";

/// Typical mistakes: the schema flags each one in the editor, and `lb check`
/// rejects each one too.
#[test]
fn schema_and_check_reject_the_same_mistakes() {
    let cases = [
        ("unknown top-level key", "colour: blue\n"),
        ("unknown service key", "    weight: 3\n"),
        ("protocol", "    protocol: icmp\n"),
        ("port range", "    port: 70000\n"),
        ("panic threshold range", "    panic_threshold: 1.5\n"),
        ("health check kind", "    health_check:\n      kind: ping\n"),
        (
            "health check path",
            "    health_check:\n      kind: http\n      path: healthz\n",
        ),
        (
            "backend key",
            "      - address: 198.18.4.2\n        wieght: 1\n",
        ),
        ("empty backends", "    backends: []\n"),
        ("announce key", "announce:\n  enable: false\n"),
        ("reserved route protocol", "announce:\n  protocol: 2\n"),
        (
            "gateway MAC",
            "encapsulation:\n  gateway_mac: aa:bb:cc:dd:ee\n",
        ),
    ];
    for (what, patch) in cases {
        let text = patched(VALID, patch);
        assert!(
            !schema_errors(&yaml(&text)).is_empty(),
            "{what}: the schema accepts\n{text}"
        );
        assert!(
            lb::config::parse(&text).is_err(),
            "{what}: lb check accepts\n{text}"
        );
    }
    let missing = yaml("maglev_table_size: 65537\n");
    assert!(!schema_errors(&missing).is_empty(), "missing services");
}

/// `VALID` with `patch` applied: a top-level line is prepended, a service key
/// replaces the same key (or is added), a backend list item is appended.
fn patched(base: &str, patch: &str) -> String {
    if !patch.starts_with(' ') {
        return format!("{patch}{base}");
    }
    if patch.starts_with("      - ") {
        return format!("{base}{patch}");
    }
    let key = patch.trim_start().split(':').next().unwrap();
    let mut lines: Vec<&str> = base
        .lines()
        .filter(|l| !l.starts_with(&format!("    {key}:")))
        .collect();
    if key == "backends" {
        lines.retain(|l| !l.starts_with("      - "));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text.push_str(patch);
    text
}

/// A document using every key the schema names, with its default or a
/// plausible value: `lb check` must know every one of those keys.
#[test]
fn check_knows_every_key_the_schema_names() {
    let schema = lb::config::schema::json_schema();
    let doc = example(&schema, &schema);
    let text = serde_yaml::to_string(&doc).unwrap();
    assert!(
        text.contains("interval_ms") && text.contains("gateway_mac"),
        "{text}"
    );
    assert_eq!(schema_errors(&doc), Vec::<String>::new(), "{text}");
    match lb::config::parse(&text) {
        Ok(_) => {}
        Err(lb::config::ConfigError::Invalid(problems)) => {
            let unknown: Vec<_> = problems
                .iter()
                .filter(|p| p.message.contains("unknown key"))
                .collect();
            assert!(unknown.is_empty(), "{unknown:?}\n{text}");
        }
        Err(other) => panic!("{other}"),
    }
}

/// An example instance of `node` (resolving `$ref`s in `root`).
fn example(root: &Value, node: &Value) -> Value {
    if let Some(reference) = node["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        return example(root, &root["definitions"][name]);
    }
    if let Some(all) = node["allOf"].as_array() {
        return example(root, &all[0]);
    }
    if let Some(any) = node["anyOf"].as_array().or(node["oneOf"].as_array()) {
        let first = any.iter().find(|s| s["type"] != "null").unwrap();
        return example(root, first);
    }
    if let Some(default) = node.get("default")
        && !default.is_object()
    {
        return default.clone();
    }
    if let Some(values) = node["enum"].as_array() {
        return values[0].clone();
    }
    if node.get("const").is_some() {
        return node["const"].clone();
    }
    let kind = match &node["type"] {
        Value::Array(kinds) => kinds.iter().find(|k| *k != "null").unwrap().clone(),
        other => other.clone(),
    };
    match (kind.as_str().unwrap_or(""), node["format"].as_str()) {
        ("object", _) => {
            let mut map = Map::new();
            for (key, property) in node["properties"].as_object().into_iter().flatten() {
                map.insert(key.clone(), example(root, property));
            }
            Value::Object(map)
        }
        ("array", _) => json!([example(root, &node["items"])]),
        ("string", Some("ip" | "ipv4")) => json!("198.18.100.1"),
        ("string", Some("ipv6")) => json!("2001:2::1"),
        ("string", _) if node["pattern"].as_str() == Some(lb::config::schema::MAC_PATTERN) => {
            json!("aa:bb:cc:dd:ee:ff")
        }
        ("string", _) => json!("example"),
        ("integer", _) => json!(node["minimum"].as_u64().unwrap_or(0).max(1)),
        ("number", _) => json!(0.5),
        ("boolean", _) => json!(false),
        (other, _) => panic!("no example for type {other:?}: {node}"),
    }
}
