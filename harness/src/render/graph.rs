//! The lab topology as a diagram: Mermaid for a README, DOT for graphviz.
//!
//! Vertex ids are generated (`spine0`, `leaf1`, `rack0_bridge`, `rack0_node2`), so
//! they are valid identifiers in both languages whatever the device names are;
//! names and addresses only ever appear inside quoted, escaped labels.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::topology::Topology;

/// The diagram language `graph` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// A Mermaid `flowchart`, rendered by GitHub in Markdown.
    Mermaid,
    /// A graphviz `graph`, for `dot -Tsvg`.
    Dot,
}

/// Draws the topology: spines, leafs, one cluster per rack with its bridge and
/// nodes, and every rack attachment and router link with its interfaces and addresses.
pub fn graph(t: &Topology, format: GraphFormat) -> String {
    let d = Diagram::new(t);
    match format {
        GraphFormat::Mermaid => mermaid(&d),
        GraphFormat::Dot => dot(&d),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Spine,
    Leaf,
    Node,
    Bridge,
    Other,
}

struct Vertex {
    id: String,
    shape: Shape,
    lines: Vec<String>,
}

/// One end's label on an edge: the device it belongs to, and what to print there.
struct End {
    device: String,
    text: Vec<String>,
}

struct Edge {
    ids: [String; 2],
    ends: [Option<End>; 2],
}

struct Cluster {
    id: String,
    title: Vec<String>,
    vertices: Vec<Vertex>,
}

/// The topology as vertices, clusters and edges, shared by both languages.
struct Diagram {
    title: String,
    spines: Vec<Vertex>,
    leafs: Vec<Vertex>,
    clusters: Vec<Cluster>,
    /// Link endpoints that are no spine, leaf or node (a validated topology has none).
    others: Vec<Vertex>,
    edges: Vec<Edge>,
}

impl Diagram {
    fn new(t: &Topology) -> Self {
        let mut ids: BTreeMap<&str, (String, Shape)> = BTreeMap::new();
        let (mut spines, mut leafs) = (Vec::new(), Vec::new());
        for (i, r) in t.spines.iter().enumerate() {
            let id = format!("spine{i}");
            ids.entry(&r.name).or_insert((id.clone(), Shape::Spine));
            let asn = format!("AS {}", r.asn);
            let lines = vec![r.name.clone(), asn, format!("router-id {}", r.router_id)];
            spines.push(Vertex {
                id,
                shape: Shape::Spine,
                lines,
            });
        }
        for (i, r) in t.leafs.iter().enumerate() {
            let id = format!("leaf{i}");
            ids.entry(&r.name).or_insert((id.clone(), Shape::Leaf));
            leafs.push(Vertex {
                id,
                shape: Shape::Leaf,
                lines: vec![r.name.clone(), format!("AS {}", r.asn)],
            });
        }
        let mut d = Diagram {
            title: t.name.clone(),
            spines,
            leafs,
            clusters: Vec::new(),
            others: Vec::new(),
            edges: Vec::new(),
        };
        let mut node_edges = Vec::new();
        for (i, rack) in t.racks.iter().enumerate() {
            let bridge = format!("rack{i}_bridge");
            let mut title = vec![rack.name.clone()];
            title.extend(rack.labels.iter().map(|(k, v)| format!("{k}={v}")));
            let mut vertices = vec![Vertex {
                id: bridge.clone(),
                shape: Shape::Bridge,
                lines: vec![rack.bridge.clone(), rack.subnet.to_string()],
            }];
            for (j, node) in rack.nodes.iter().enumerate() {
                let id = format!("rack{i}_node{j}");
                ids.entry(&node.name).or_insert((id.clone(), Shape::Node));
                let end = End {
                    device: node.name.clone(),
                    text: vec![node.interface.clone()],
                };
                node_edges.push(Edge {
                    ids: [bridge.clone(), id.clone()],
                    ends: [None, Some(end)],
                });
                let lines = vec![
                    node.name.clone(),
                    node.address.to_string(),
                    node.role.as_str().to_string(),
                ];
                vertices.push(Vertex {
                    id,
                    shape: Shape::Node,
                    lines,
                });
            }
            d.clusters.push(Cluster {
                id: format!("rack{i}"),
                title,
                vertices,
            });
            let end = End {
                device: rack.leaf.clone(),
                text: vec![rack.leaf_interface.clone(), rack.gateway.to_string()],
            };
            let (leaf, _) = d.vertex_of(&mut ids, &rack.leaf);
            d.edges.push(Edge {
                ids: [leaf, bridge],
                ends: [Some(end), None],
            });
        }
        d.edges.append(&mut node_edges);
        for link in &t.links {
            let mut ends = link.endpoints.each_ref().map(|e| {
                let (id, shape) = d.vertex_of(&mut ids, &e.device);
                let text = vec![e.interface.clone(), e.address.to_string()];
                let device = e.device.clone();
                (id, shape, End { device, text })
            });
            // The upper tier first, so both layouts draw spines above leafs.
            if ends[1].1 == Shape::Spine && ends[0].1 != Shape::Spine {
                ends.swap(0, 1);
            }
            let [(a, _, ea), (b, _, eb)] = ends;
            d.edges.push(Edge {
                ids: [a, b],
                ends: [Some(ea), Some(eb)],
            });
        }
        d
    }

    /// The id of a named device, declaring an `Other` vertex for an unknown one.
    fn vertex_of<'t>(
        &mut self,
        ids: &mut BTreeMap<&'t str, (String, Shape)>,
        name: &'t str,
    ) -> (String, Shape) {
        let others = &mut self.others;
        ids.entry(name)
            .or_insert_with(|| {
                let id = format!("other{}", others.len());
                others.push(Vertex {
                    id: id.clone(),
                    shape: Shape::Other,
                    lines: vec![name.to_string()],
                });
                (id, Shape::Other)
            })
            .clone()
    }
}

/// Mermaid text for a quoted label: entity codes for what the parser or HTML reads.
fn mermaid_text(lines: &[String]) -> String {
    let escaped: Vec<String> = (lines.iter())
        .map(|l| {
            l.replace('#', "#35;")
                .replace('"', "#quot;")
                .replace('<', "#lt;")
                .replace('>', "#gt;")
                .replace(['\n', '\r'], " ")
        })
        .collect();
    format!("\"{}\"", escaped.join("<br/>"))
}

fn mermaid(d: &Diagram) -> String {
    let mut out = String::from("flowchart TB\n");
    let vertex = |out: &mut String, indent: &str, v: &Vertex| {
        let text = mermaid_text(&v.lines);
        let (open, close) = match v.shape {
            Shape::Spine | Shape::Leaf | Shape::Other => ("[", "]"),
            Shape::Node => ("(", ")"),
            Shape::Bridge => ("{{", "}}"),
        };
        let _ = writeln!(out, "{indent}{}{open}{text}{close}", v.id);
    };
    for v in d.spines.iter().chain(&d.leafs).chain(&d.others) {
        vertex(&mut out, "    ", v);
    }
    for c in &d.clusters {
        let _ = writeln!(out, "    subgraph {}[{}]", c.id, mermaid_text(&c.title));
        for v in &c.vertices {
            vertex(&mut out, "        ", v);
        }
        out.push_str("    end\n");
    }
    for e in &d.edges {
        let both = e.ends.iter().all(Option::is_some);
        let label: Vec<String> = (e.ends.iter().flatten())
            .map(|end| match both {
                true => format!("{} {}", end.device, end.text.join(" ")),
                false => end.text.join(" "),
            })
            .collect();
        let [a, b] = &e.ids;
        let _ = writeln!(out, "    {a} ---|{}| {b}", mermaid_text(&label));
    }
    out
}

/// A DOT double-quoted string; lines are joined with graphviz's `\n`.
fn dot_text(lines: &[String]) -> String {
    let escaped: Vec<String> = (lines.iter())
        .map(|l| {
            l.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace(['\n', '\r'], " ")
        })
        .collect();
    format!("\"{}\"", escaped.join("\\n"))
}

fn dot(d: &Diagram) -> String {
    let mut out = String::from("graph lab {\n");
    let _ = writeln!(
        out,
        "    label={};",
        dot_text(std::slice::from_ref(&d.title))
    );
    // Room between the tiers for the interface labels at both ends of a link.
    out.push_str("    labelloc=t;\n    ranksep=1.2;\n    nodesep=0.8;\n");
    out.push_str("    node [shape=box, fontname=\"Helvetica\"];\n");
    out.push_str("    edge [fontname=\"Helvetica\", fontsize=10, labeldistance=2.5];\n");
    let vertex = |out: &mut String, indent: &str, v: &Vertex| {
        let style = match v.shape {
            Shape::Spine | Shape::Leaf => ", style=bold",
            Shape::Node => ", style=rounded",
            Shape::Bridge => ", shape=hexagon",
            Shape::Other => ", style=dashed",
        };
        let _ = writeln!(
            out,
            "{indent}{} [label={}{style}];",
            v.id,
            dot_text(&v.lines)
        );
    };
    for tier in [&d.spines, &d.leafs] {
        out.push_str("    {\n        rank=same;\n");
        for v in tier {
            vertex(&mut out, "        ", v);
        }
        out.push_str("    }\n");
    }
    for v in &d.others {
        vertex(&mut out, "    ", v);
    }
    for (i, c) in d.clusters.iter().enumerate() {
        let _ = writeln!(out, "    subgraph cluster_{i} {{");
        let _ = writeln!(out, "        label={};", dot_text(&c.title));
        for v in &c.vertices {
            vertex(&mut out, "        ", v);
        }
        out.push_str("    }\n");
    }
    for e in &d.edges {
        let [a, b] = &e.ids;
        let mut attrs = Vec::new();
        for (end, key) in e.ends.iter().zip(["taillabel", "headlabel"]) {
            if let Some(end) = end {
                attrs.push(format!("{key}={}", dot_text(&end.text)));
            }
        }
        let _ = writeln!(out, "    {a} -- {b} [{}];", attrs.join(", "));
    }
    out.push_str("}\n");
    out
}
