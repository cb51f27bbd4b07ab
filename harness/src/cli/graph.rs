//! `calico-lab graph`: the topology as a Mermaid or Graphviz diagram.

use std::process::ExitCode;

use calico_lab::render::{self, GraphFormat};

use super::TopologyArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    topology: TopologyArg,
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    format: GraphFormat,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let t = args.topology.load()?;
    print!("{}", render::graph(&t, args.format));
    Ok(ExitCode::SUCCESS)
}
