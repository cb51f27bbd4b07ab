//! `calico-lab collect`: write a running lab's state (what a failing scenario's
//! artifact folder holds) to a folder, for debugging or to replay offline.

use std::path::PathBuf;
use std::process::ExitCode;

use super::LabArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    lab: LabArg,
    /// Folder to write to (emptied first).
    #[arg(long, short)]
    out: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let lab = args.lab.attach().await?;
    calico_lab::artifacts::write_state(&lab, &args.out).await?;
    println!("{}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
