//! `calico-lab validate`: load and check a topology, print what it describes.

use std::process::ExitCode;

use super::TopologyArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    topology: TopologyArg,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let t = args.topology.load()?;
    println!(
        "topology '{}' is valid: {} spines, {} leafs, {} racks, {} nodes, {} links",
        t.name,
        t.spines.len(),
        t.leafs.len(),
        t.racks.len(),
        t.nodes().count(),
        t.links.len()
    );
    Ok(ExitCode::SUCCESS)
}
