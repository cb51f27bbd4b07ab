//! `calico-lab up`: bring a lab up, wait for it, print its members, leave it running.

use std::process::ExitCode;
use std::time::Duration;

use calico_lab::{Lab, LabOptions};

use super::progress::Display;
use super::{FlavorArg, LabArg};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    lab: LabArg,
    #[command(flatten)]
    flavor: FlavorArg,
    /// Seconds each convergence wait may take (at least 1).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    wait: u64,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let t = args.lab.topology.load()?;
    if args.flavor.dry_run(&t, args.lab.name.as_deref())? {
        return Ok(ExitCode::SUCCESS);
    }
    let display = Display::new();
    // Torn down when bring-up fails or a signal comes; released once up.
    let options = LabOptions {
        name: args.lab.name,
        flavor: args.flavor.flavor,
        routers: args.flavor.routers,
        detached: true,
        progress: display.listener(),
        ..LabOptions::default()
    };
    let lab = Lab::up(t, options).await;
    let lab = match lab {
        Ok(lab) => lab,
        Err(e) => {
            display.finish();
            return Err(e.into());
        }
    };
    let wait = Duration::from_secs(args.wait);
    let fabric = lab.wait_for_fabric(wait).await?;
    let calico = lab.wait_for_calico(wait).await?;
    display.finish();
    println!("lab {} (run {}):", lab.name(), lab.run_id());
    println!("  {:<36} {:<30} ROLE", "CONTAINER", "DEVICE");
    for m in lab.members() {
        println!("  {:<36} {:<30} {}", m.container, m.device, m.role.as_str());
    }
    println!(
        "fabric BGP sessions Established {:.1} s after the routers started; calico-node sessions {:.1} s later",
        fabric.as_secs_f64(),
        calico.as_secs_f64()
    );
    println!("remove it with: calico-lab down --name {}", lab.name());
    lab.release();
    Ok(ExitCode::SUCCESS)
}
