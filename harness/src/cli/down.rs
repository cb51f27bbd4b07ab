//! `calico-lab down`: remove a lab's containers.

use std::process::ExitCode;

use calico_lab::backend::ownership;

use super::TopologyArg;

#[derive(clap::Args)]
pub struct Args {
    /// Lab name (default: the topology's name).
    #[arg(long, short)]
    name: Option<String>,
    #[command(flatten)]
    topology: TopologyArg,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let name = match args.name {
        Some(name) => name,
        None => args.topology.load()?.name,
    };
    ownership::check_lab_name(&name)?;
    let removed = ownership::down(&name).await?;
    if removed.is_empty() {
        println!("lab {name}: no container found (nothing to remove)");
    } else {
        println!("lab {name}: removed {} container(s)", removed.len());
    }
    Ok(ExitCode::SUCCESS)
}
