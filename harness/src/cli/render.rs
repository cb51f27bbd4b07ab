//! `calico-lab render`: write every config derived from a topology.

use std::path::PathBuf;
use std::process::ExitCode;

use super::TopologyArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    topology: TopologyArg,
    #[arg(long, short)]
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let t = args.topology.load()?;
    let written = calico_lab::render::write_all(&t, &args.out)?;
    for path in written {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
