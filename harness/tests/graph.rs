//! The topology diagram: Mermaid and DOT for the seed and three-racks fixtures;
//! graphviz must accept every DOT output.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use calico_lab::render::{graph, GraphFormat};
use calico_lab::Topology;
use clap::ValueEnum;

fn three_racks() -> Topology {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/topologies/three-racks.yaml");
    Topology::load(&path).expect("three-racks loads")
}

fn fixtures() -> Vec<Topology> {
    vec![Topology::seed(), three_racks()]
}

/// Everything the diagram must show, as it is printed.
fn facts(t: &Topology) -> Vec<String> {
    let mut facts = Vec::new();
    for r in t.spines.iter().chain(&t.leafs) {
        facts.extend([r.name.clone(), r.asn.to_string()]);
    }
    for r in &t.spines {
        facts.push(r.router_id.to_string());
    }
    for rack in &t.racks {
        facts.extend([
            rack.name.clone(),
            rack.bridge.clone(),
            rack.leaf_interface.clone(),
        ]);
        facts.extend([rack.subnet.to_string(), rack.gateway.to_string()]);
        facts.extend(rack.labels.iter().map(|(k, v)| format!("{k}={v}")));
        for node in &rack.nodes {
            facts.extend([
                node.name.clone(),
                node.address.to_string(),
                node.interface.clone(),
            ]);
            facts.push(node.role.as_str().to_string());
        }
    }
    for link in &t.links {
        for e in &link.endpoints {
            facts.extend([e.device.clone(), e.interface.clone(), e.address.to_string()]);
        }
    }
    facts
}

/// Runs `dot -Tsvg` on the text and returns the SVG.
fn graphviz(text: &str) -> String {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("graphviz `dot` runs (apt-get install graphviz)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dot rejected:\n{text}\n{stderr}");
    let svg = String::from_utf8(out.stdout).unwrap();
    assert!(svg.contains("<svg"), "no svg from dot:\n{svg}");
    // graphviz writes '-' as a character reference.
    svg.replace("&#45;", "-")
}

/// Mermaid structure: a flowchart, balanced subgraph/end, one subgraph per rack.
fn check_mermaid(t: &Topology, text: &str) {
    assert!(text.starts_with("flowchart TB\n"), "{text}");
    let (mut depth, mut subgraphs) = (0i32, 0);
    for line in text.lines().map(str::trim) {
        if line.starts_with("subgraph ") {
            depth += 1;
            subgraphs += 1;
            assert_eq!(depth, 1, "racks are not nested:\n{text}");
        } else if line == "end" {
            depth -= 1;
            assert!(depth >= 0, "`end` without `subgraph`:\n{text}");
        }
        assert_eq!(
            line.matches('"').count() % 2,
            0,
            "unbalanced quotes: {line}"
        );
    }
    assert_eq!(depth, 0, "unclosed subgraph:\n{text}");
    assert_eq!(subgraphs, t.racks.len(), "{text}");
}

#[test]
fn both_formats_show_every_name_number_and_address() {
    for t in fixtures() {
        for format in [GraphFormat::Mermaid, GraphFormat::Dot] {
            let text = graph(&t, format);
            for fact in facts(&t) {
                assert!(
                    text.contains(&fact),
                    "{format:?} of {} lacks {fact}",
                    t.name
                );
            }
        }
    }
}

#[test]
fn graphviz_accepts_the_dot_output() {
    for t in fixtures() {
        let text = graph(&t, GraphFormat::Dot);
        assert!(text.starts_with("graph lab {\n"), "{text}");
        assert!(text.contains(&format!("label=\"{}\";", t.name)), "{text}");
        for i in 0..t.racks.len() {
            assert!(text.contains(&format!("subgraph cluster_{i} {{")), "{text}");
        }
        let svg = graphviz(&text);
        for node in t.racks.iter().flat_map(|r| &r.nodes) {
            assert!(svg.contains(&node.name), "svg lacks {}", node.name);
        }
    }
}

#[test]
fn mermaid_output_is_well_formed() {
    for t in fixtures() {
        check_mermaid(&t, &graph(&t, GraphFormat::Mermaid));
    }
}

#[test]
fn link_labels_name_both_ends() {
    let t = three_racks();
    let mermaid = graph(&t, GraphFormat::Mermaid);
    assert!(
        mermaid.contains("sp-a swp1 172.31.0.2/30<br/>tor1 swp1 172.31.0.1/30"),
        "{mermaid}"
    );
    let dot = graph(&t, GraphFormat::Dot);
    assert!(dot.contains("taillabel=\"swp1\\n172.31.0.2/30\", headlabel=\"swp1\\n172.31.0.1/30\""));
    assert!(dot.contains("taillabel=\"swp9\\n172.20.1.254\""), "{dot}");
}

/// Names that would break either language unquoted: quotes, braces, keywords, `#`.
#[test]
fn hostile_names_are_escaped() {
    let mut t = Topology::seed();
    let hostile = r#"end" -- x {#1} \ <b>"#;
    let old = t.spines[0].name.clone();
    t.spines[0].name = hostile.to_string();
    for link in &mut t.links {
        for e in &mut link.endpoints {
            if e.device == old {
                e.device = hostile.to_string();
            }
        }
    }
    t.racks[0].name = "subgraph".to_string();
    t.racks[0].labels.insert("a.b/c\"d".into(), "end".into());
    t.racks[1].nodes[0].name = "node".to_string();

    let dot = graph(&t, GraphFormat::Dot);
    let svg = graphviz(&dot);
    assert!(svg.contains("&lt;b&gt;"), "{svg}");

    let mermaid = graph(&t, GraphFormat::Mermaid);
    check_mermaid(&t, &mermaid);
    assert!(
        mermaid.contains(r#"end#quot; -- x {#35;1} \ #lt;b#gt;"#),
        "{mermaid}"
    );
}

#[test]
fn output_is_deterministic() {
    let t = three_racks();
    for format in [GraphFormat::Mermaid, GraphFormat::Dot] {
        assert_eq!(graph(&t, format), graph(&t.clone(), format));
    }
}

#[test]
fn format_parses_as_a_clap_value() {
    assert_eq!(
        GraphFormat::from_str("mermaid", false),
        Ok(GraphFormat::Mermaid)
    );
    assert_eq!(GraphFormat::from_str("dot", false), Ok(GraphFormat::Dot));
    assert!(GraphFormat::from_str("svg", false).is_err());
}
