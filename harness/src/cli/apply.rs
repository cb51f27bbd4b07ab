//! `calico-lab apply`: Calico resources to a running lab, as `calicoctl apply -f`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::LabArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    lab: LabArg,
    /// Calico v3 resource files, applied in order.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut lab = args.lab.attach().await?;
    for file in &args.files {
        let changed = lab.apply_file(file).await?;
        println!(
            "{}: reconfigured {}",
            file.display(),
            if changed.is_empty() {
                "no node".to_string()
            } else {
                changed.join(", ")
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
