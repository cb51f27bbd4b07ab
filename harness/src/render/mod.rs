//! Pure functions from the topology to the files each flavor runs on.

mod calico;
mod frr;
pub mod graph;
mod kind;
mod vyos;

use std::path::{Path, PathBuf};

use crate::topology::Topology;

pub use calico::{bgp_peers, calico_resources, full_mesh};
pub use frr::frr_conf;
pub use graph::{graph, GraphFormat};
pub use kind::{kind_assigned_names, kind_config};
pub use vyos::vyos_config_boot;

/// One rendered file, at a path relative to the render folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: PathBuf,
    pub contents: String,
}

/// Everything both flavors need: FRR and VyOS configs per router, the kind
/// cluster config and the Calico resources.
pub fn render_all(t: &Topology) -> Vec<RenderedFile> {
    let mut files = Vec::new();
    for (_, router) in t.routers() {
        files.push(RenderedFile {
            path: Path::new("frr").join(format!("{}.conf", router.name)),
            contents: frr_conf(t, &router.name),
        });
        files.push(RenderedFile {
            path: Path::new("vyos").join(&router.name).join("config.boot"),
            contents: vyos_config_boot(t, &router.name),
        });
    }
    files.push(RenderedFile {
        path: PathBuf::from("kind-cluster.yaml"),
        contents: kind_config(t),
    });
    files.push(RenderedFile {
        path: PathBuf::from("calico-resources.yaml"),
        contents: calico_resources(t),
    });
    files
}

/// Writes every rendered file below `out` and returns their paths.
pub fn write_all(t: &Topology, out: &Path) -> crate::Result<Vec<PathBuf>> {
    render_all(t)
        .into_iter()
        .map(|file| {
            let path = out.join(&file.path);
            let written = match path.parent() {
                Some(parent) => std::fs::create_dir_all(parent),
                None => Ok(()),
            }
            .and_then(|()| std::fs::write(&path, &file.contents));
            written.map_err(|source| crate::Error::Write {
                path: path.clone(),
                source,
            })?;
            Ok(path)
        })
        .collect()
}

/// The racks a leaf serves, with their index in the topology.
pub(crate) fn served_racks<'a>(
    t: &'a Topology,
    leaf: &str,
) -> Vec<(usize, &'a crate::topology::Rack)> {
    t.racks
        .iter()
        .enumerate()
        .filter(|(_, r)| r.leaf == leaf)
        .collect()
}

/// The rack of a node, with its index in the topology.
pub(crate) fn rack_of_node<'a>(
    t: &'a Topology,
    node: &str,
) -> Option<(usize, &'a crate::topology::Rack)> {
    t.racks
        .iter()
        .enumerate()
        .find(|(_, r)| r.nodes.iter().any(|n| n.name == node))
}

/// The prefix list holding rack `i`'s subnet (names from indexes: rack names are
/// free text).
pub(crate) fn rack_prefix_list(i: usize) -> String {
    format!("RACK{i}-SUBNET")
}

/// The outbound route map towards rack `i`'s nodes on a leaf serving several racks.
pub(crate) fn rack_route_map(i: usize) -> String {
    format!("RACK{i}-OUT")
}

/// A YAML scalar: plain where that is unambiguous, double-quoted otherwise.
pub(crate) fn yaml_scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " ._/-=!()'&|,".contains(c))
        && !s.starts_with(|c: char| " -!&'".contains(c))
        && !s.ends_with(' ')
        && !matches!(
            s,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~"
        )
        && s.parse::<f64>().is_err();
    if plain {
        s.to_string()
    } else {
        serde_json::Value::String(s.to_string()).to_string()
    }
}

/// Router interfaces in natural order (eth2 before eth10).
pub(crate) fn natural_key(name: &str) -> (String, u64) {
    let digits = name.trim_start_matches(|c: char| !c.is_ascii_digit());
    let prefix = &name[..name.len() - digits.len()];
    (prefix.to_string(), digits.parse().unwrap_or(0))
}
