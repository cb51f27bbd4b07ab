//! `calico-lab apply` and `delete`: Calico resources to a running lab, as
//! `calicoctl apply -f` and `calicoctl delete -f`.

use std::path::PathBuf;
use std::process::ExitCode;

use calico_lab::backend::Edit;

use super::LabArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    lab: LabArg,
    /// Calico v3 resource files, taken in order.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub async fn run(args: Args, edit: Edit) -> anyhow::Result<ExitCode> {
    let mut lab = args.lab.attach().await?;
    for file in &args.files {
        let changed = lab.edit_file(edit, file).await?;
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
