//! `calico-lab fault` and `calico-lab restore`: break a running lab, and mend it.

use std::process::ExitCode;

use calico_lab::fault::Fault;

use super::LabArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    lab: LabArg,
    /// `router-down ROUTER`, `bird-down NODE`, `link-down A B` or
    /// `session-blocked DEVICE PEER_IP`.
    #[arg(required = true, num_args = 1.., value_name = "FAULT")]
    fault: Vec<String>,
}

impl Args {
    fn fault(&self) -> Result<Fault, calico_lab::Error> {
        self.fault.join(" ").parse()
    }
}

/// Injects the fault and leaves it in force.
pub async fn inject(args: Args) -> anyhow::Result<ExitCode> {
    let fault = args.fault()?;
    let lab = args.lab.attach().await?;
    let guard = lab.fault(fault.clone()).await?;
    // In force until `calico-lab restore`.
    guard.leave_in_force();
    println!(
        "{fault}: in force on lab {}; undo with `calico-lab restore --name {} {fault}`",
        lab.name(),
        lab.name()
    );
    Ok(ExitCode::SUCCESS)
}

/// Undoes the fault.
pub async fn restore(args: Args) -> anyhow::Result<ExitCode> {
    let fault = args.fault()?;
    let lab = args.lab.attach().await?;
    lab.restore(&fault).await?;
    println!("{fault}: restored on lab {}", lab.name());
    Ok(ExitCode::SUCCESS)
}
