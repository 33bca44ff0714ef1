//! The layering check: types <- proto <- auth <- client <- cli, and lean lower layers.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, bail};
use serde_json::Value;

/// Workspace crates from the bottom layer up; a crate may depend only on crates before it.
const LAYERS: [&str; 5] = [
    "oci-spec-types",
    "oci-distribution-proto",
    "acr-auth",
    "acr-client",
    "acr-cli",
];

/// The only dependencies the pure-data crate may have.
const TYPES_ALLOWED: [&str; 4] = ["serde", "serde_json", "sha2", "base64"];

/// Packages the protocol crate must never pull in, even transitively: it is sans-IO.
const PROTO_FORBIDDEN: [&str; 5] = ["tokio", "hyper", "hyper-util", "reqwest", "mio"];

/// Packages no crate may pull in: heavy C builds or a second HTTP/TLS stack.
const EVERYWHERE_FORBIDDEN: [&str; 3] = ["aws-lc-sys", "openssl-sys", "reqwest"];

/// One package's dependencies: name -> kinds ("normal", "dev", "build").
pub(crate) type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

pub(crate) fn check() -> anyhow::Result<()> {
    let output = super::cargo()
        .args(["metadata", "--format-version", "1", "--locked"])
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: Value = serde_json::from_slice(&output.stdout)?;
    let graph = graph_from_metadata(&metadata)?;
    let problems = violations(&graph);
    if problems.is_empty() {
        eprintln!("layers ok: {}", LAYERS.join(" <- "));
        Ok(())
    } else {
        bail!("layering violated:\n  {}", problems.join("\n  "))
    }
}

/// Builds name -> (dependency name -> kinds) from `cargo metadata`'s resolve graph.
pub(crate) fn graph_from_metadata(metadata: &Value) -> anyhow::Result<Graph> {
    let names: BTreeMap<&str, &str> = metadata["packages"]
        .as_array()
        .context("metadata without packages")?
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();
    let mut graph = Graph::new();
    for node in metadata["resolve"]["nodes"]
        .as_array()
        .context("metadata without resolve")?
    {
        let Some(name) = node["id"].as_str().and_then(|id| names.get(id)) else {
            continue;
        };
        let entry = graph.entry((*name).to_owned()).or_default();
        for dep in node["deps"].as_array().into_iter().flatten() {
            let Some(dep_name) = dep["pkg"].as_str().and_then(|id| names.get(id)) else {
                continue;
            };
            let kinds = entry.entry((*dep_name).to_owned()).or_default();
            for kind in dep["dep_kinds"].as_array().into_iter().flatten() {
                kinds.insert(kind["kind"].as_str().unwrap_or("normal").to_owned());
            }
        }
    }
    Ok(graph)
}

/// Everything `root` pulls in at run time (normal dependencies, transitively).
fn runtime_closure(graph: &Graph, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_owned()];
    while let Some(name) = todo.pop() {
        for (dep, kinds) in graph.get(&name).into_iter().flatten() {
            if kinds.contains("normal") && seen.insert(dep.clone()) {
                todo.push(dep.clone());
            }
        }
    }
    seen
}

/// Every layering rule broken in `graph`, as readable lines.
pub(crate) fn violations(graph: &Graph) -> Vec<String> {
    let mut problems = Vec::new();
    for (level, krate) in LAYERS.iter().enumerate() {
        for (dep, kinds) in graph.get(*krate).into_iter().flatten() {
            if let Some(dep_level) = LAYERS.iter().position(|l| l == dep)
                && dep_level >= level
            {
                let kinds: Vec<&str> = kinds.iter().map(String::as_str).collect();
                problems.push(format!(
                    "{krate} depends on {dep} ({}), which is not below it in {}",
                    kinds.join(", "),
                    LAYERS.join(" <- ")
                ));
            }
        }
    }
    for (dep, kinds) in graph.get(LAYERS[0]).into_iter().flatten() {
        if kinds.contains("normal") && !TYPES_ALLOWED.contains(&dep.as_str()) {
            problems.push(format!(
                "oci-spec-types depends on {dep}; it may depend only on {}",
                TYPES_ALLOWED.join(", ")
            ));
        }
    }
    let proto = runtime_closure(graph, LAYERS[1]);
    for forbidden in PROTO_FORBIDDEN {
        if proto.contains(forbidden) {
            problems.push(format!(
                "oci-distribution-proto pulls in {forbidden}; it must stay sans-IO"
            ));
        }
    }
    for krate in LAYERS {
        let closure = runtime_closure(graph, krate);
        for forbidden in EVERYWHERE_FORBIDDEN {
            if closure.contains(forbidden) {
                problems.push(format!(
                    "{krate} pulls in {forbidden}; keep dependency features lean"
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &str, &str)]) -> Graph {
        let mut graph = Graph::new();
        for (from, to, kind) in edges {
            graph
                .entry((*from).to_owned())
                .or_default()
                .entry((*to).to_owned())
                .or_default()
                .insert((*kind).to_owned());
        }
        graph
    }

    #[test]
    fn the_intended_layering_passes() {
        let g = graph(&[
            ("oci-spec-types", "serde", "normal"),
            ("oci-spec-types", "proptest", "dev"),
            ("oci-distribution-proto", "oci-spec-types", "normal"),
            ("oci-distribution-proto", "http", "normal"),
            ("acr-auth", "oci-distribution-proto", "normal"),
            ("acr-auth", "tokio", "normal"),
            ("acr-client", "acr-auth", "normal"),
            ("acr-cli", "acr-client", "normal"),
        ]);
        assert_eq!(violations(&g), Vec::<String>::new());
    }

    #[test]
    fn an_upward_dependency_is_named() {
        let g = graph(&[("acr-auth", "acr-client", "dev")]);
        let problems = violations(&g);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("acr-auth depends on acr-client (dev)"),
            "{problems:?}"
        );
    }

    #[test]
    fn types_may_not_gain_dependencies() {
        let g = graph(&[("oci-spec-types", "regex", "normal")]);
        assert_eq!(
            violations(&g),
            [
                "oci-spec-types depends on regex; it may depend only on serde, serde_json, sha2, base64"
            ]
        );
    }

    #[test]
    fn proto_may_not_reach_tokio_even_transitively() {
        let g = graph(&[
            ("oci-distribution-proto", "some-helper", "normal"),
            ("some-helper", "tokio", "normal"),
            // A dev-dependency on tokio is fine: it never ships.
            ("oci-distribution-proto", "hyper", "dev"),
        ]);
        assert_eq!(
            violations(&g),
            ["oci-distribution-proto pulls in tokio; it must stay sans-IO"]
        );
    }

    #[test]
    fn aws_lc_is_banned_everywhere() {
        let g = graph(&[
            ("acr-client", "rustls", "normal"),
            ("rustls", "aws-lc-sys", "normal"),
        ]);
        assert_eq!(
            violations(&g),
            ["acr-client pulls in aws-lc-sys; keep dependency features lean"]
        );
    }

    #[test]
    fn reads_cargo_metadata_json() {
        let metadata = serde_json::json!({
            "packages": [
                {"id": "a 0.1", "name": "oci-spec-types"},
                {"id": "b 0.1", "name": "acr-cli"},
            ],
            "resolve": {"nodes": [
                {"id": "a 0.1", "deps": [{"pkg": "b 0.1", "dep_kinds": [{"kind": null}]}]},
                {"id": "b 0.1", "deps": []},
            ]}
        });
        let g = graph_from_metadata(&metadata).unwrap();
        assert_eq!(
            g["oci-spec-types"]["acr-cli"],
            BTreeSet::from(["normal".to_owned()])
        );
        assert_eq!(
            violations(&g).len(),
            2,
            "upward dependency and a forbidden types dependency"
        );
    }
}
